"""The fake Slack's Sign in with Slack endpoints, driven by slack_sdk's own client and URL generator."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth import OpenIDConnectAuthorizeUrlGenerator
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import FakeSlack

REDIRECT = "https://app.example/callback"


async def _code(slack: FakeSlack, scopes: list[str]) -> dict[str, list[str]]:
    url = OpenIDConnectAuthorizeUrlGenerator(
        client_id=slack.openid.client_id, scopes=scopes, redirect_uri=REDIRECT,
        authorization_url=f"{slack.base_url}/openid/connect/authorize").generate("the-state")
    async with aiohttp.ClientSession() as session, session.get(url, allow_redirects=False) as response:
        assert response.status == 302
        location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return parse_qs(urlsplit(location).query)


async def test_code_token_and_user_info_follow_slacks_shapes(slack: FakeSlack) -> None:
    query = await _code(slack, ["openid", "profile"])
    assert query["state"] == ["the-state"]
    client = AsyncWebClient(base_url=slack.api_url)
    token = await client.openid_connect_token(client_id=slack.openid.client_id,
                                              client_secret=slack.openid.client_secret,
                                              code=query["code"][0], redirect_uri=REDIRECT)
    assert token["token_type"] == "Bearer" and token["access_token"].startswith("xoxp-")
    assert token["id_token"].count(".") == 2
    info = await AsyncWebClient(token=token["access_token"], base_url=slack.api_url).openid_connect_userInfo()
    assert info["ok"] and info["sub"] == info["https://slack.com/user_id"] == "U1"
    assert info["https://slack.com/team_id"] == slack.config.team_id and info["name"] == "Alice Liddell"
    with pytest.raises(SlackApiError) as reused:  # a code is exchanged once
        await client.openid_connect_token(client_id=slack.openid.client_id,
                                          client_secret=slack.openid.client_secret,
                                          code=query["code"][0], redirect_uri=REDIRECT)
    assert reused.value.response["error"] == "invalid_code"


async def test_errors_for_a_bad_secret_redirect_scope_or_token(slack: FakeSlack) -> None:
    client = AsyncWebClient(base_url=slack.api_url)
    code = (await _code(slack, ["openid"]))["code"][0]
    with pytest.raises(SlackApiError) as bad_secret:
        await client.openid_connect_token(client_id=slack.openid.client_id, client_secret="wrong", code=code,
                                          redirect_uri=REDIRECT)
    assert bad_secret.value.response["error"] == "bad_client_secret"
    code = (await _code(slack, ["openid"]))["code"][0]
    with pytest.raises(SlackApiError) as bad_redirect:
        await client.openid_connect_token(client_id=slack.openid.client_id,
                                          client_secret=slack.openid.client_secret, code=code,
                                          redirect_uri="https://elsewhere.example/")
    assert bad_redirect.value.response["error"] == "bad_redirect_uri"
    assert (await _code(slack, ["profile"]))["error"] == ["invalid_scope"]
    with pytest.raises(SlackApiError) as bad_token:
        await AsyncWebClient(token="xoxp-unknown", base_url=slack.api_url).openid_connect_userInfo()
    assert bad_token.value.response["error"] == "invalid_auth"

"""Sign in with Slack (OpenID Connect): the authorize page, openid.connect.token, openid.connect.userInfo.

Shapes follow Slack's docs for those methods: the token exchange authenticates with client_id and
client_secret (no token); userInfo takes the user token the exchange issued."""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlencode

from aiohttp import web

from .model import JSON, FakeUser, SlackConfig, SlackError
from .params import basic_credentials, bearer


class OpenIdConnect:
    """Slack's OpenID Connect provider. The authorize page signs in `signing_in_user` without asking
    (a real Slack shows a consent screen) and redirects to `redirect_uri` with `code` and `state`."""

    METHODS = ("openid.connect.token", "openid.connect.userInfo")

    def __init__(self, config: SlackConfig, users: Mapping[str, FakeUser]) -> None:
        self.config = config
        self.users = users
        self.client_id = "1111.2222"
        self.client_secret = "fake-client-secret"
        self.signing_in_user = "U1"
        self.codes: dict[str, tuple[str, str]] = {}
        self.tokens: dict[str, str] = {}
        self.authorize_requests: list[JSON] = []

    def handlers(self) -> dict[str, Callable[[JSON], JSON]]:
        return {"openid.connect.token": self.token, "openid.connect.userInfo": self.user_info}

    async def authorize_page(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.authorize_requests.append(query)
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id or not redirect_uri:
            return web.Response(status=400, text="invalid client_id or redirect_uri", content_type="text/plain")
        # slack_sdk sends scopes comma-separated; OpenID Connect's own form is space-separated.
        if query.get("response_type") != "code" or "openid" not in re.split(r"[ ,]", query.get("scope", "")):
            params = {"error": "invalid_scope", "state": query.get("state", "")}
        else:
            code = f"{secrets.token_hex(6)}.{secrets.token_hex(12)}"
            self.codes[code] = (self.signing_in_user, redirect_uri)
            params = {"code": code, "state": query.get("state", "")}
        raise web.HTTPFound(f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{urlencode(params)}")

    @staticmethod
    def authenticate(request: web.Request, params: JSON) -> None:
        """These methods carry no bot token: the user token (if any) reaches the handler in params, and
        so do client_id/client_secret sent as HTTP Basic credentials (as slack_sdk sends them)."""
        token = bearer(request) or params.get("token")
        if token:
            params["token"] = token
        credentials = basic_credentials(request)
        if credentials is not None:
            client_id, client_secret = credentials
            params.setdefault("client_id", client_id)
            params.setdefault("client_secret", client_secret)

    def token(self, params: JSON) -> JSON:
        if params.get("client_id") != self.client_id:
            raise SlackError("invalid_client_id")
        if params.get("client_secret") != self.client_secret:
            raise SlackError("bad_client_secret")
        grant = self.codes.pop(str(params.get("code", "")), None)
        if grant is None:
            raise SlackError("invalid_code")
        user_id, redirect_uri = grant
        if params.get("redirect_uri") != redirect_uri:
            raise SlackError("bad_redirect_uri")
        access_token = f"xoxp-{secrets.token_hex(12)}"
        self.tokens[access_token] = user_id
        claims = {"iss": "https://slack.com", "sub": user_id, "aud": self.client_id,
                  "https://slack.com/user_id": user_id, "https://slack.com/team_id": self.config.team_id,
                  "exp": int(time.time()) + 3600, "iat": int(time.time())}
        # An unsigned JWT is enough here: the app under test trusts userInfo, not this token.
        id_token = ".".join(base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")
                            for part in ({"alg": "none", "typ": "JWT"}, claims)) + "."
        return {"access_token": access_token, "token_type": "Bearer", "id_token": id_token}

    def user_info(self, params: JSON) -> JSON:
        user_id = self.tokens.get(str(params.get("token", "")))
        if user_id is None:
            raise SlackError("invalid_auth")
        user = self.users.get(user_id)
        c = self.config
        return {"sub": user_id, "https://slack.com/user_id": user_id, "https://slack.com/team_id": c.team_id,
                "email": f"{user.name if user else user_id}@example.com", "email_verified": True,
                "name": user.real_name if user else user_id, "locale": "en-US",
                "https://slack.com/team_name": c.team_name, "https://slack.com/team_domain": c.team_domain}

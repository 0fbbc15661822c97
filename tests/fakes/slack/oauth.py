"""The fake Slack's install flow and its workspaces: Slack's OAuth v2 as documented in
https://api.slack.com/authentication/oauth-v2 and https://api.slack.com/methods/oauth.v2.access.

1. The app sends a person to `/oauth/v2/authorize?client_id=..&scope=..&state=..[&redirect_uri=..][&team=..]`.
2. Slack (here: at once, as if the person clicked Allow) redirects to the redirect_uri, or the app's
   configured Redirect URL when none was given, with `?code=..&state=..`.
3. The app calls `oauth.v2.access` with the code and its client id and secret (HTTP Basic auth or
   form fields) and gets the workspace's bot token, bot user id, team and installer.

Each workspace has its own bot token; Web API calls made with it are answered as that workspace's
bot (auth.test, the author of posted messages).
"""

from __future__ import annotations

import copy
import secrets
from contextvars import ContextVar
from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web

from .model import JSON, SlackConfig, SlackError
from .params import basic_credentials

# The bot token of the Web API request being answered (each aiohttp request runs in its own task).
REQUEST_TOKEN: ContextVar[str | None] = ContextVar("fake_slack_request_token", default=None)


@dataclass(frozen=True)
class FakeWorkspace:
    team_id: str
    team_name: str
    bot_user_id: str
    bot_id: str
    bot_token: str


@dataclass(frozen=True)
class _Grant:
    team_id: str
    scope: str
    redirect_uri: str | None
    installer: str


@dataclass
class Exchange:
    """One oauth.v2.access call the fake answered successfully."""

    team_id: str
    code: str
    client_id: str


class SlackOAuth:
    def __init__(self, config: SlackConfig) -> None:
        self.config = config
        self.redirect_url: str | None = None  # the app's configured Redirect URL
        self.installer = "U1"  # the person who clicks Allow
        self.exchanges: list[Exchange] = []
        self._extra: dict[str, FakeWorkspace] = {}
        self._codes: dict[str, _Grant] = {}
        self.authorize_requests: list[JSON] = []

    # -- workspaces -------------------------------------------------------------------------------

    @property
    def default(self) -> FakeWorkspace:
        """The workspace SlackConfig describes (its bot token is config.bot_token)."""
        c = self.config
        return FakeWorkspace(c.team_id, c.team_name, c.bot_user_id, c.bot_id, c.bot_token)

    def add_workspace(self, team_id: str, team_name: str, bot_user_id: str, bot_id: str) -> FakeWorkspace:
        """Another workspace the app can be installed into, with a bot token of its own."""
        workspace = FakeWorkspace(team_id, team_name, bot_user_id, bot_id, f"xoxb-{team_id}-{secrets.token_hex(8)}")
        self._extra[team_id] = workspace
        return workspace

    def workspace(self, team_id: str) -> FakeWorkspace | None:
        return self.default if team_id == self.config.team_id else self._extra.get(team_id)

    def by_token(self, token: str | None) -> FakeWorkspace | None:
        if token == self.config.bot_token:
            return self.default
        return next((w for w in self._extra.values() if w.bot_token == token), None)

    def current(self) -> FakeWorkspace:
        """The workspace whose bot token authorised the request being answered."""
        return self.by_token(REQUEST_TOKEN.get()) or self.default

    # -- the flow ---------------------------------------------------------------------------------

    async def handle_authorize(self, request: web.Request) -> web.Response:
        query = request.query
        self.authorize_requests.append(dict(query))
        if query.get("client_id") != self.config.client_id:
            return web.Response(status=400, text="invalid_client_id", content_type="text/plain")
        team_id = query.get("team") or self.config.team_id
        redirect_uri = query.get("redirect_uri") or self.redirect_url
        if self.workspace(team_id) is None or redirect_uri is None:
            return web.Response(status=400, text="bad_redirect_uri" if redirect_uri is None else "invalid_team",
                                content_type="text/plain")
        code = f"{secrets.randbelow(10**12)}.{secrets.token_hex(12)}"
        self._codes[code] = _Grant(team_id, query.get("scope", ""), query.get("redirect_uri"), self.installer)
        raise web.HTTPFound(f"{redirect_uri}?{urlencode({'code': code, 'state': query.get('state', '')})}")

    def check_client(self, request: web.Request, params: JSON) -> None:
        """oauth.v2.access authenticates the app, not a token: Basic auth, else client_id/client_secret fields."""
        client_id, client_secret = basic_credentials(request) or (params.get("client_id"), params.get("client_secret"))
        if client_id != self.config.client_id:
            raise SlackError("invalid_client_id")
        if client_secret != self.config.client_secret:
            raise SlackError("bad_client_secret")

    def access(self, params: JSON) -> JSON:
        grant = self._codes.pop(str(params.get("code") or ""), None)
        if grant is None:
            raise SlackError("invalid_code")
        if grant.redirect_uri is not None and params.get("redirect_uri") != grant.redirect_uri:
            raise SlackError("bad_redirect_uri")
        workspace = self.workspace(grant.team_id)
        assert workspace is not None
        self.exchanges.append(Exchange(grant.team_id, str(params["code"]), self.config.client_id))
        return {
            "access_token": workspace.bot_token,
            "token_type": "bot",
            "scope": grant.scope,
            "bot_user_id": workspace.bot_user_id,
            "app_id": self.config.app_id,
            "team": {"name": workspace.team_name, "id": workspace.team_id},
            "enterprise": None,
            "is_enterprise_install": False,
            "authed_user": {"id": grant.installer},
        }


def workspace_event(body: JSON, workspace: FakeWorkspace, default_bot_user_id: str) -> JSON:
    """An event_callback body from EventFactory, as Slack would send it for `workspace`: its team id
    everywhere and its bot user in the mention and the authorizations."""
    body = copy.deepcopy(body)
    body["team_id"] = body["context_team_id"] = workspace.team_id
    body["authorizations"][0].update(team_id=workspace.team_id, user_id=workspace.bot_user_id)
    event = body["event"]
    event["team"] = workspace.team_id
    if "text" in event:
        event["text"] = event["text"].replace(f"<@{default_bot_user_id}>", f"<@{workspace.bot_user_id}>")
    return body

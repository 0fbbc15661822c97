"""/api/{method}: the Web API's door. It reads the parameters, checks the token, applies the delays and
failures tests injected, answers with the method's handler and records the call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiohttp import web
from multidict import CIMultiDict

from .model import JSON, SlackConfig, SlackError
from .oauth import REQUEST_TOKEN, SlackOAuth
from .openid import OpenIdConnect
from .params import bearer, read_params
from .records import ApiCall, Injection
from .state import Changes


class ApiEndpoint:
    def __init__(self, config: SlackConfig, handlers: dict[str, Callable[[JSON], JSON]], oauth: SlackOAuth,
                 changes: Changes) -> None:
        self.config = config
        self.handlers = handlers  # the WebApi's (shared: methods added to it later are answered too)
        self.oauth = oauth
        self.changes = changes
        self.calls: list[ApiCall] = []
        self.injections: list[Injection] = []
        self.latency: dict[str | None, float] = {}

    def take_injection(self, method: str, params: JSON) -> Injection | None:
        return next((injection for injection in self.injections if injection.take(method, params)), None)

    def authorize(self, method: str, request: web.Request, params: JSON) -> None:
        if method in OpenIdConnect.METHODS:
            return OpenIdConnect.authenticate(request, params)
        if method == "oauth.v2.access":
            self.oauth.check_client(request, params)
            return
        token = bearer(request) or params.pop("token", None)
        if method != "apps.connections.open" and token != self.config.bot_token and self.oauth.by_token(token):
            REQUEST_TOKEN.set(token)  # another installed workspace's bot
            return
        expected = self.config.app_token if method == "apps.connections.open" else self.config.bot_token
        if not token:
            raise SlackError("not_authed")
        if token in (self.config.bot_token, self.config.app_token) and token != expected:
            raise SlackError("not_allowed_token_type")
        if token != expected:
            raise SlackError("invalid_auth")

    async def dispatch(
        self, method: str, request: web.Request, params: JSON
    ) -> tuple[int, JSON, dict[str, str]]:
        delay = self.latency.get(method, self.latency.get(None, 0.0))
        if delay:
            await asyncio.sleep(delay)
        handler = self.handlers.get(method)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method", "req_method": method}, {}
        try:
            self.authorize(method, request, params)
            injection = self.take_injection(method, params)
            if injection is not None:
                return injection.status, dict(injection.body), dict(injection.headers)
            return 200, {"ok": True, **handler(params)}, {}
        except SlackError as err:
            return 200, err.body(), {}

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        at = time.monotonic()
        try:
            params = await read_params(request)
        except SlackError as err:
            params, (status, body, headers) = {}, (200, err.body(), {})
        else:
            status, body, headers = await self.dispatch(method, request, params)
        headers_in = CIMultiDict(request.headers)
        self.calls.append(ApiCall(method, params, headers_in, request.content_type, at, status, body))
        self.changes.notify()
        return web.json_response(body, status=status, headers=headers)

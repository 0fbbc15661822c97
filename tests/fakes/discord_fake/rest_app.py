"""REST routes about the bot itself: identity, application, gateway discovery, commands, attachment files."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from .backend import Backend
from .model import JSON
from .rest_common import MISSING_ACCESS, UNKNOWN_USER, forbidden, form_error, json_response, read_json, unknown
from .routing import Routes


class AppRoutes:
    def __init__(self, backend: Backend, gateway_url: Callable[[], str]) -> None:
        self.b = backend
        self._gateway_url = gateway_url

    def register(self, routes: Routes) -> None:
        routes.add("GET", "/users/@me", self.me)
        routes.add("GET", "/users/{user_id}", self.user)
        routes.add("GET", "/oauth2/applications/@me", self.application)
        routes.add("GET", "/applications/@me", self.application)
        routes.add("GET", "/gateway", self.gateway)
        routes.add("GET", "/gateway/bot", self.gateway_bot)
        for prefix in ("/applications/{application_id}", "/applications/{application_id}/guilds/{guild_id}"):
            routes.add("GET", prefix + "/commands", self.list_commands)
            routes.add("PUT", prefix + "/commands", self.overwrite_commands)
            routes.add("POST", prefix + "/commands", self.upsert_command)
        # Attachment files live outside the API, like Discord's CDN, and need no token.
        for prefix in ("/attachments", "/media/attachments"):
            routes.add("GET", prefix + "/{file_id}/{filename}", self.file, api=False)

    async def me(self, request: web.Request) -> web.Response:
        bot = self.b.world.bot.to_payload()
        return json_response(dict(bot, verified=True, mfa_enabled=False, flags=0, email=None, locale="en-US"))

    async def user(self, request: web.Request) -> web.Response:
        try:
            return json_response(self.b.world.users[int(request.match_info["user_id"])].to_payload())
        except (KeyError, ValueError) as exc:
            raise unknown("User", UNKNOWN_USER) from exc

    async def application(self, request: web.Request) -> web.Response:
        world = self.b.world
        return json_response(
            {
                "id": str(world.application_id),
                "name": world.bot.username,
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "owner": world.application_owner.to_payload(),
                "team": None,
                "flags": 0,
                "bot": world.bot.to_payload(),
                "interactions_endpoint_url": None,
                "redirect_uris": [],
                "approximate_guild_count": len(world.guilds),
            }
        )

    async def gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self._gateway_url()})

    async def gateway_bot(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "url": self._gateway_url(),
                "shards": self.b.recommended_shards,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 14_400_000,
                    "max_concurrency": 1,
                },
            }
        )

    async def list_commands(self, request: web.Request) -> web.Response:
        return json_response(self.b.interactions.commands.list(self._command_scope(request)))

    async def overwrite_commands(self, request: web.Request) -> web.Response:
        scope = self._command_scope(request)
        body = await read_json(request)
        if not isinstance(body, list):
            raise form_error([], "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
        return json_response(self.b.interactions.commands.overwrite(scope, body))

    async def upsert_command(self, request: web.Request) -> web.Response:
        scope = self._command_scope(request)
        command: JSON = await read_json(request)
        existed = self.b.interactions.commands.find(command.get("name", ""), scope)
        stored = self.b.interactions.commands.upsert(scope, command)
        return json_response(stored, status=200 if existed and existed[1] == scope else 201)

    def _command_scope(self, request: web.Request) -> int | None:
        if request.match_info["application_id"] != str(self.b.world.application_id):
            raise forbidden(MISSING_ACCESS)
        guild_id = request.match_info.get("guild_id")
        if guild_id is None:
            return None
        if not guild_id.isdigit() or int(guild_id) not in self.b.world.guilds:
            raise forbidden(MISSING_ACCESS)
        return int(guild_id)

    async def file(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        stored = self.b.world.files.get(int(file_id)) if file_id.isdigit() else None
        if stored is None or stored.filename != request.match_info["filename"]:
            raise web.HTTPNotFound()
        return web.Response(body=stored.data, headers={"Content-Type": stored.content_type})

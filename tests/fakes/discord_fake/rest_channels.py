"""REST routes for channels: messages, edits, deletes, threads, typing, DMs."""

from __future__ import annotations

import time

from aiohttp import web

from . import messages, payloads
from .backend import Backend
from .messages import UnknownReference
from .model import EPHEMERAL, HAS_THREAD, JSON, PRIVATE_THREAD
from .opcodes import Intent
from .records import TypingCall
from .rest_common import (
    MISSING_PERMISSIONS,
    UNKNOWN_USER,
    ApiError,
    edit_stored_message,
    forbidden,
    form_error,
    json_response,
    message_body,
    no_content,
    read_json,
    read_message_request,
    store_uploads,
    unknown,
    validate_message_fields,
)
from .routing import Routes

ARCHIVE_DURATIONS = (60, 1440, 4320, 10080)


class ChannelRoutes:
    def __init__(self, backend: Backend) -> None:
        self.b = backend

    def register(self, routes: Routes) -> None:
        channel_path = "/channels/{channel_id}"
        message_path = channel_path + "/messages/{message_id}"
        routes.add("GET", channel_path, self.get_channel)
        routes.add("GET", channel_path + "/messages", self.history)
        routes.add("POST", channel_path + "/messages", self.create_message)
        routes.add("GET", message_path, self.get_message)
        routes.add("PATCH", message_path, self.edit_message)
        routes.add("DELETE", message_path, self.delete_message)
        routes.add("POST", message_path + "/threads", self.thread_from_message)
        routes.add("POST", channel_path + "/threads", self.thread_without_message)
        routes.add("POST", channel_path + "/typing", self.typing)
        routes.add("POST", "/users/@me/channels", self.open_dm)

    async def get_channel(self, request: web.Request) -> web.Response:
        return json_response(
            payloads.channel_object(self.b.world, self.b.channel(request.match_info["channel_id"]))
        )

    async def history(self, request: web.Request) -> web.Response:
        channel = self.b.channel(request.match_info["channel_id"])
        limit = min(max(int(request.query.get("limit", "50")), 1), 100)
        before = int(request.query.get("before", str(1 << 63)))
        after = int(request.query.get("after", "0"))
        found = [
            m
            for mid, m in self.b.world.messages.items()
            if int(m["channel_id"]) == channel.id and after < mid < before and not m["flags"] & EPHEMERAL
        ]
        found.sort(key=lambda m: int(m["id"]), reverse=True)
        # With only "after", Discord returns the messages closest to it.
        page = found[-limit:] if "after" in request.query and "before" not in request.query else found[:limit]
        return json_response(page)

    async def create_message(self, request: web.Request) -> web.Response:
        channel = self.b.channel(request.match_info["channel_id"])
        body, files = await read_message_request(request)
        validate_message_fields(body)
        draft = message_body(body, store_uploads(self.b.world, body, files))
        try:
            message = messages.create(self.b.world, channel, self.b.world.bot, draft)
        except UnknownReference as exc:
            raise form_error(
                ["message_reference"], "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
            ) from exc
        self.b.record("create", message, via="channel", body=body)
        await self.b.gateway.dispatch_message("MESSAGE_CREATE", message)
        return json_response(message)

    async def get_message(self, request: web.Request) -> web.Response:
        channel = self.b.channel(request.match_info["channel_id"])
        return json_response(self.b.message(channel, request.match_info["message_id"]))

    async def edit_message(self, request: web.Request) -> web.Response:
        channel = self.b.channel(request.match_info["channel_id"])
        message = self.b.message(channel, request.match_info["message_id"])
        if int(message["author"]["id"]) != self.b.world.bot.id:
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        body, files = await read_message_request(request)
        edited = edit_stored_message(self.b.world, message, body, files)
        self.b.record("edit", edited, via="channel", body=body)
        await self.b.gateway.dispatch_message("MESSAGE_UPDATE", edited)
        return json_response(edited)

    async def delete_message(self, request: web.Request) -> web.Response:
        channel = self.b.channel(request.match_info["channel_id"])
        message = self.b.message(channel, request.match_info["message_id"])
        if int(message["author"]["id"]) != self.b.world.bot.id:
            raise forbidden(MISSING_PERMISSIONS)
        await self.b.delete(message, via="channel")
        return no_content()

    async def thread_from_message(self, request: web.Request) -> web.Response:
        parent = self.b.channel(request.match_info["channel_id"])
        message = self.b.message(parent, request.match_info["message_id"])
        if parent.guild_id is None or parent.is_thread:
            raise ApiError(400, 50024, "Cannot execute action on this channel type")
        if "thread" in message or int(message["id"]) in self.b.world.channels:
            raise ApiError(400, 160004, "A thread has already been created for this message")
        name, duration = _thread_options(await read_json(request))
        # Discord gives a message's thread the message's own id.
        thread = self.b.world.add_thread(
            parent, name, self.b.world.bot, thread_id=int(message["id"]), auto_archive_duration=duration
        )
        message["thread"] = payloads.channel_object(self.b.world, thread)
        message["flags"] |= HAS_THREAD
        return json_response(await self._announce_thread(thread.id))

    async def thread_without_message(self, request: web.Request) -> web.Response:
        parent = self.b.channel(request.match_info["channel_id"])
        if parent.guild_id is None or parent.is_thread:
            raise ApiError(400, 50024, "Cannot execute action on this channel type")
        body = await read_json(request)
        name, duration = _thread_options(body)
        private = body.get("type", PRIVATE_THREAD) == PRIVATE_THREAD
        thread = self.b.world.add_thread(
            parent, name, self.b.world.bot, private=private, auto_archive_duration=duration
        )
        return json_response(await self._announce_thread(thread.id))

    async def _announce_thread(self, thread_id: int) -> JSON:
        world = self.b.world
        thread = world.channels[thread_id]
        payload = dict(
            payloads.channel_object(world, thread), member=payloads.thread_member_object(thread, world.bot)
        )
        await self.b.gateway.dispatch(
            "THREAD_CREATE", dict(payload, newly_created=True), guild_id=thread.guild_id, intent=Intent.GUILDS
        )
        return payload

    async def typing(self, request: web.Request) -> web.Response:
        channel = self.b.channel(request.match_info["channel_id"])
        self.b.records.typing.append(TypingCall(channel.id, time.monotonic()))
        return no_content()

    async def open_dm(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        try:
            user = self.b.world.users[int(body.get("recipient_id", 0))]
        except (KeyError, ValueError) as exc:
            raise unknown("User", UNKNOWN_USER) from exc
        return json_response(payloads.channel_object(self.b.world, self.b.world.open_dm(user)))


def _thread_options(body: JSON) -> tuple[str, int]:
    name = body.get("name") or ""
    if not 1 <= len(name) <= 100:
        raise form_error(["name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    duration = body.get("auto_archive_duration") or 1440
    if duration not in ARCHIVE_DURATIONS:
        raise form_error(
            ["auto_archive_duration"], "BASE_TYPE_CHOICES", f"Value must be one of {ARCHIVE_DURATIONS}."
        )
    return name, duration

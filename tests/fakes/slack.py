"""A fake Slack for end-to-end tests: Web API, Socket Mode, file hosting, response_url, signed events.

It is a real aiohttp server on 127.0.0.1 (random port). slack_sdk's AsyncWebClient, SocketModeClient and
slack_bolt's AsyncApp talk to it unmodified: give them ``base_url=slack.api_url``.

    async with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.config.bot_token, base_url=slack.api_url)
        ...
        await slack.wait_for(lambda: slack.messages("C1"))
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import itertools
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from slack_sdk.signature import SignatureVerifier

from tests.fakes.slack_oauth import REQUEST_TOKEN, FakeWorkspace, SlackOAuth

JSON = dict[str, Any]
T = TypeVar("T")

MARKDOWN_LIMIT = 12_000
TEXT_LIMIT = 40_000
# Fields that form-encoded callers send as JSON strings; normalised so assertions see structures.
_JSON_FIELDS = ("blocks", "attachments", "chunks", "files", "prompts", "metadata", "loading_messages")

__all__ = [
    "ApiCall",
    "AssistantThread",
    "Delivery",
    "EventFactory",
    "FakeChannel",
    "FakeFile",
    "FakeSlack",
    "FakeUser",
    "FileDownload",
    "Message",
    "OpenIdConnect",
    "ResponseUrlPost",
    "Revision",
    "SignedSender",
    "SlackConfig",
    "SocketAck",
    "TsClock",
    "dm_channel_id",
]


# --------------------------------------------------------------------------------------------------
# Configuration and records


@dataclass
class SlackConfig:
    """Identity of the fake workspace and behaviour switches (mutable at run time)."""

    bot_token: str = "xoxb-fake-bot-token"
    app_token: str = "xapp-fake-app-token"
    signing_secret: str = "fake-signing-secret"
    team_id: str = "T1"
    team_name: str = "Fake Team"
    team_domain: str = "fake"
    app_id: str = "A1"
    bot_user_id: str = "UBOT"
    bot_id: str = "BBOT"
    bot_name: str = "seedbot"
    # The app's credentials for the OAuth install flow (tests/fakes/slack_oauth.py).
    client_id: str = "1111.2222"
    client_secret: str = "fake-client-secret"
    # False: chat.*Stream answer "unknown_method", what Slack says of a method that is not available.
    streaming_enabled: bool = True
    # Slack ends a stream on its own after ~5 minutes; later appends get message_not_in_streaming_state.
    stream_ttl: float | None = 300.0
    # Slack requires recipient_user_id/recipient_team_id on chat.startStream outside DMs.
    require_stream_recipient: bool = True
    # How a file URL answers without the bot token: "redirect" (302 to an HTML sign-in page) or "forbidden".
    file_auth_failure: Literal["redirect", "forbidden"] = "redirect"


@dataclass(frozen=True)
class ApiCall:
    """One Web API request as the fake received it (params merged from query, form and JSON body)."""

    method: str
    params: JSON
    headers: Mapping[str, str]
    content_type: str
    at: float
    status: int
    response: JSON

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        return self.response.get("error")


@dataclass(frozen=True)
class Revision:
    """A change to a message's visible text: post, update, or one stream call."""

    at: float
    method: str
    text: str


@dataclass
class Message:
    channel: str
    ts: str
    user: str
    text: str = ""
    markdown_text: str | None = None
    blocks: list[JSON] | None = None
    thread_ts: str | None = None
    bot_id: str | None = None
    subtype: str | None = None
    files: list[JSON] = field(default_factory=list)
    metadata: JSON | None = None
    stream_state: Literal["streaming", "stopped", "expired"] | None = None
    stream_started_at: float | None = None
    chunks: list[JSON] = field(default_factory=list)
    revisions: list[Revision] = field(default_factory=list)

    @property
    def visible_text(self) -> str:
        """What a user sees: markdown_text (streamed or posted) if any, else text."""
        return self.markdown_text if self.markdown_text is not None else self.text

    @property
    def is_bot(self) -> bool:
        return self.bot_id is not None

    @property
    def update_times(self) -> list[float]:
        """Monotonic times of every change after the first (updates and stream appends/stops)."""
        return [r.at for r in self.revisions[1:]]

    def to_api(self, team_id: str, app_id: str) -> JSON:
        out: JSON = {"type": "message", "ts": self.ts, "user": self.user, "text": self.visible_text}
        out["team"] = team_id
        if self.bot_id:
            out.update(bot_id=self.bot_id, app_id=app_id)
        optional = {"thread_ts": self.thread_ts, "subtype": self.subtype, "blocks": self.blocks}
        out.update({k: v for k, v in optional.items() if v is not None})
        if self.files:
            out["files"] = self.files
        return out


@dataclass
class FakeChannel:
    """A public or private channel, as conversations.info describes it (the conversation object)."""

    id: str
    name: str
    is_private: bool = False
    created: int = 1_700_000_000

    def to_api(self) -> JSON:
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "is_archived": False,
            "is_general": self.name == "general",
            "is_member": True,
            "created": self.created,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }


@dataclass
class FakeUser:
    id: str
    name: str
    real_name: str = ""
    display_name: str = ""
    is_bot: bool = False
    team_id: str = "T1"
    tz: str = "Europe/London"

    def to_api(self) -> JSON:
        profile = {
            "real_name": self.real_name,
            "real_name_normalized": self.real_name,
            "display_name": self.display_name,
            "display_name_normalized": self.display_name,
            "team": self.team_id,
        }
        return {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "deleted": False,
            "real_name": self.real_name,
            "tz": self.tz,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
        }


@dataclass
class FakeFile:
    id: str
    name: str
    title: str
    mimetype: str
    filetype: str
    user: str
    created: int
    content: bytes | None = None
    declared_length: int | None = None
    channels: list[str] = field(default_factory=list)

    def to_api(self, base_url: str, team_id: str) -> JSON:
        path = f"{base_url}/files-pri/{team_id}-{self.id}"
        return {
            "id": self.id,
            "created": self.created,
            "timestamp": self.created,
            "name": self.name,
            "title": self.title,
            "mimetype": self.mimetype,
            "filetype": self.filetype,
            "pretty_type": self.filetype.upper(),
            "user": self.user,
            "user_team": team_id,
            "mode": "hosted",
            "is_external": False,
            "is_public": bool(self.channels),
            "size": len(self.content or b""),
            "url_private": f"{path}/{quote(self.name)}",
            "url_private_download": f"{path}/download/{quote(self.name)}",
            "permalink": f"{base_url}/files/{self.user}/{self.id}/{quote(self.name)}",
            "channels": list(self.channels),
        }


@dataclass
class AssistantThread:
    status: str = ""
    loading_messages: list[str] | None = None
    title: str | None = None
    prompts: list[JSON] | None = None


@dataclass(frozen=True)
class FileDownload:
    file_id: str
    authorized: bool
    at: float


@dataclass(frozen=True)
class ResponseUrlPost:
    """A POST the app made to a slash command's response_url."""

    url: str
    body: JSON
    at: float


@dataclass(frozen=True)
class SocketAck:
    envelope_id: str
    payload: JSON | None
    at: float
    latency: float


@dataclass(frozen=True)
class _Envelope:
    id: str
    type: str
    sent_at: float


class SlackError(Exception):
    def __init__(self, code: str, detail: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail

    def body(self) -> JSON:
        out: JSON = {"ok": False, "error": self.code}
        if self.detail:
            out["response_metadata"] = {"messages": [f"[ERROR] {self.detail}"]}
        return out


@dataclass
class _Injection:
    method: str | None
    remaining: int
    status: int
    body: JSON
    headers: dict[str, str]


def dm_channel_id(user_id: str) -> str:
    """The fake's DM channel id for a user: "U1" -> "D1", "UBOT" -> "DBOT"."""
    return "D" + user_id[1:]


class TsClock:
    """Unique, increasing Slack timestamps ("1700000000.000100") from the wall clock."""

    def __init__(self) -> None:
        self._last_us = 0

    def next(self) -> str:
        us = max(time.time_ns() // 1000, self._last_us + 1)
        self._last_us = us
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"


class _Changes:
    """Wakes wait_for() whenever the fake's state changes."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._event.wait(), seconds)
        except TimeoutError:
            pass


# --------------------------------------------------------------------------------------------------
# Workspace state


class SlackState:
    """The in-memory workspace: messages per channel, users, files, DMs, assistant threads."""

    def __init__(self, config: SlackConfig, clock: TsClock) -> None:
        self.config = config
        self.clock = clock
        self.channels: dict[str, list[Message]] = {}
        self.users: dict[str, FakeUser] = {}
        self.conversations: dict[str, FakeChannel] = {}
        self.files: dict[str, FakeFile] = {}
        self.assistant: dict[tuple[str, str], AssistantThread] = {}
        self.sessions: dict[tuple[str, str], str] = {}  # agent session status by (channel, thread_ts)
        self.changes = _Changes()
        self._ids = itertools.count(1)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08d}"

    def add_message(self, message: Message, method: str) -> Message:
        if message.thread_ts:
            message.thread_ts = self.thread_root(message.channel, message.thread_ts)
            thread = self.assistant.get((message.channel, message.thread_ts))
            if message.is_bot and thread is not None:
                # Slack clears an assistant thread's status when the app replies in it.
                thread.status = ""
        message.revisions.append(Revision(time.monotonic(), method, message.visible_text))
        self.channels.setdefault(message.channel, []).append(message)
        self.changes.notify()
        return message

    def revise(self, message: Message, method: str) -> None:
        message.revisions.append(Revision(time.monotonic(), method, message.visible_text))
        self.changes.notify()

    def find(self, channel: str, ts: str) -> Message | None:
        return next((m for m in self.channels.get(channel, []) if m.ts == ts), None)

    def thread_root(self, channel: str, ts: str) -> str:
        # A reply's ts given as thread_ts lands in the parent's thread, as on Slack.
        message = self.find(channel, ts)
        return message.thread_ts if message and message.thread_ts else ts

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        return [m for m in self.channels.get(channel, []) if thread_ts in (m.ts, m.thread_ts)]


# --------------------------------------------------------------------------------------------------
# Web API methods


def _require(params: JSON, *names: str) -> None:
    for name in names:
        if params.get(name) in (None, "", []):
            raise SlackError("invalid_arguments", f"missing required field: {name}")


def _channel(params: JSON, key: str = "channel") -> str:
    channel = params.get(key)
    if not channel:
        raise SlackError("channel_not_found")
    return str(channel)


BLOCK_TYPES = frozenset({"actions", "context", "context_actions", "divider", "header", "image", "markdown",
                         "rich_text", "section"})
TASK_STATUSES = ("pending", "in_progress", "complete", "error")
MAX_BLOCKS = 50


def _plain_text(value: Any, limit: int = 75) -> bool:
    return (isinstance(value, dict) and value.get("type") == "plain_text" and isinstance(value.get("text"), str)
            and 0 < len(value["text"]) <= limit)


def _check_element(element: Any, block_type: str) -> None:
    """The interactive elements the app sends, checked against Block Kit's documented fields."""
    if not isinstance(element, dict):
        raise SlackError("invalid_blocks", f"{block_type} element is not an object")
    kind = element.get("type")
    if block_type == "actions" and kind == "button":
        value = element.get("value", "")
        if not _plain_text(element.get("text")) or not element.get("action_id") or len(value) > 2000:
            raise SlackError("invalid_blocks", "button needs text (plain_text), action_id, value <= 2000")
        if element.get("style") not in (None, "primary", "danger"):
            raise SlackError("invalid_blocks", "button style must be primary or danger")
    elif block_type == "context_actions" and kind == "feedback_buttons":
        for side in ("positive_button", "negative_button"):
            button = element.get(side)
            if not isinstance(button, dict) or not _plain_text(button.get("text")) \
                    or not isinstance(button.get("value"), str) or not button["value"]:
                raise SlackError("invalid_blocks", f"feedback_buttons.{side} needs text and value")
    elif block_type == "context_actions" and kind == "icon_button":
        if not _plain_text(element.get("text")) or not element.get("icon"):
            raise SlackError("invalid_blocks", "icon_button needs icon and text")
    elif block_type in ("actions", "context_actions"):
        raise SlackError("invalid_blocks", f"{kind} is not allowed in {block_type}")


def _check_blocks(blocks: Any) -> None:
    """Blocks as Slack validates the parts this app uses (else invalid_blocks)."""
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        raise SlackError("invalid_blocks", f"blocks must be a list of at most {MAX_BLOCKS}")
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in BLOCK_TYPES:
            raise SlackError("invalid_blocks", f"unknown block type {kind!r}")
        if len(str(block.get("block_id", ""))) > 255:
            raise SlackError("invalid_blocks", "block_id longer than 255")
        if kind == "markdown" and not (isinstance(block.get("text"), str) and 0 < len(block["text"]) <= MARKDOWN_LIMIT):
            raise SlackError("invalid_blocks", "markdown block needs text of 1..12000 characters")
        if kind in ("actions", "context_actions"):
            elements = block.get("elements")
            limit = 5 if kind == "context_actions" else 25
            if not isinstance(elements, list) or not 0 < len(elements) <= limit:
                raise SlackError("invalid_blocks", f"{kind} needs 1..{limit} elements")
            for element in elements:
                _check_element(element, kind)


def _check_chunks(chunks: Any) -> None:
    """Streaming chunks (chat.*Stream `chunks`): markdown_text, task_update, plan_update, blocks."""
    if not isinstance(chunks, list):
        raise SlackError("invalid_arguments", "chunks must be an array")
    for chunk in chunks:
        kind = chunk.get("type") if isinstance(chunk, dict) else None
        if kind == "markdown_text":
            if not isinstance(chunk.get("text"), str):
                raise SlackError("invalid_arguments", "markdown_text chunk needs text")
        elif kind == "task_update":
            if not chunk.get("id") or not chunk.get("title") or chunk.get("status") not in TASK_STATUSES:
                raise SlackError("invalid_arguments", "task_update chunk needs id, title and a known status")
        elif kind == "plan_update":
            if not chunk.get("title"):
                raise SlackError("invalid_arguments", "plan_update chunk needs title")
        elif kind == "blocks":
            _check_blocks(chunk.get("blocks"))
        else:
            raise SlackError("invalid_arguments", f"unknown chunk type {kind!r}")


def _check_content(params: JSON) -> tuple[str | None, str | None, Any]:
    """text, markdown_text and blocks of a chat.postMessage/chat.update, validated as Slack does."""
    text, markdown, blocks = params.get("text"), params.get("markdown_text"), params.get("blocks")
    if markdown is not None and (text is not None or blocks is not None):
        raise SlackError("markdown_text_conflict")
    if blocks:
        _check_blocks(blocks)
    if not (text or markdown or blocks or params.get("attachments")):
        raise SlackError("no_text")
    if len(text or "") > TEXT_LIMIT or len(markdown or "") > MARKDOWN_LIMIT:
        raise SlackError("msg_too_long")
    return text, markdown, blocks


class WebApi:
    """Handlers for the Web API methods the fake implements. Each returns the body minus "ok"."""

    def __init__(self, state: SlackState, base_url: Callable[[], str], socket_url: Callable[[], str],
                 identity: Callable[[], FakeWorkspace]) -> None:
        self.state = state
        self.config = state.config
        self.identity = identity  # the workspace whose bot token made the request
        self._base_url = base_url
        self._socket_url = socket_url
        self.uploads: dict[str, str] = {}
        self.dms: dict[tuple[str, ...], str] = {}
        self.handlers: dict[str, Callable[[JSON], JSON]] = {
            "auth.test": self.auth_test,
            "chat.postMessage": self.post_message,
            "chat.update": self.update,
            "chat.startStream": self.start_stream,
            "chat.appendStream": self.append_stream,
            "chat.stopStream": self.stop_stream,
            "conversations.open": self.conversations_open,
            "users.info": self.users_info,
            "conversations.info": self.conversations_info,
            "assistant.threads.setStatus": self.set_status,
            "assistant.threads.setSuggestedPrompts": self.set_suggested_prompts,
            "assistant.threads.setTitle": self.set_title,
            "agents.sessions.setStatus": self.set_session_status,
            "files.getUploadURLExternal": self.get_upload_url,
            "files.completeUploadExternal": self.complete_upload,
            "files.info": self.files_info,
            "apps.connections.open": self.connections_open,
        }

    def _api(self, message: Message) -> JSON:
        return message.to_api(self.config.team_id, self.config.app_id)

    def auth_test(self, params: JSON) -> JSON:
        c, me = self.config, self.identity()
        return {
            "url": f"https://{c.team_domain}.slack.com/",
            "team": me.team_name,
            "user": c.bot_name,
            "team_id": me.team_id,
            "user_id": me.bot_user_id,
            "bot_id": me.bot_id,
            "is_enterprise_install": False,
        }

    def _bot_message(self, channel: str, thread_ts: str | None, **fields: Any) -> Message:
        me = self.identity()
        ts = self.state.clock.next()
        return Message(channel, ts, me.bot_user_id, bot_id=me.bot_id, thread_ts=thread_ts, **fields)

    def post_message(self, params: JSON) -> JSON:
        channel = _channel(params)
        text, markdown, blocks = _check_content(params)
        message = self._bot_message(
            channel,
            params.get("thread_ts"),
            text=text or "",
            markdown_text=markdown,
            blocks=blocks,
            metadata=params.get("metadata"),
        )
        self.state.add_message(message, "chat.postMessage")
        return {"channel": channel, "ts": message.ts, "message": self._api(message)}

    def _own_message(self, params: JSON) -> Message:
        channel = _channel(params)
        _require(params, "ts")
        message = self.state.find(channel, str(params["ts"]))
        if message is None:
            raise SlackError("message_not_found")
        if message.user != self.config.bot_user_id:
            raise SlackError("cant_update_message")
        return message

    def update(self, params: JSON) -> JSON:
        message = self._own_message(params)
        text, markdown, blocks = _check_content(params)
        # Slack replaces the text but keeps the old blocks unless new ones (maybe []) are given.
        message.text, message.markdown_text = text or "", markdown
        if blocks is not None:
            message.blocks = blocks or None
        self.state.revise(message, "chat.update")
        return {
            "channel": message.channel,
            "ts": message.ts,
            "text": message.visible_text,
            "message": self._api(message),
        }

    @staticmethod
    def _stream_text(params: JSON) -> tuple[str, list[JSON]]:
        """The markdown a stream call adds (markdown_text + markdown_text chunks) and its other chunks."""
        chunks: list[JSON] = params.get("chunks") or []
        _check_chunks(chunks)
        parts = [params.get("markdown_text") or ""]
        parts += [c.get("text", "") for c in chunks if c.get("type") == "markdown_text"]
        text = "".join(parts)
        if len(text) > MARKDOWN_LIMIT:
            raise SlackError("msg_too_long")
        return text, [c for c in chunks if c.get("type") != "markdown_text"]

    def _check_streaming_available(self) -> None:
        if not self.config.streaming_enabled:
            raise SlackError("unknown_method")

    def start_stream(self, params: JSON) -> JSON:
        self._check_streaming_available()
        channel = _channel(params)
        _require(params, "thread_ts")
        if params.get("task_display_mode") not in (None, "timeline", "plan"):
            raise SlackError("invalid_arguments", "task_display_mode must be timeline or plan")
        if self.config.require_stream_recipient and not channel.startswith("D"):
            for key in ("recipient_user_id", "recipient_team_id"):
                if not params.get(key):
                    raise SlackError(f"missing_{key}")
        text, chunks = self._stream_text(params)
        message = self._bot_message(
            channel,
            str(params["thread_ts"]),
            markdown_text=text,
            chunks=chunks,
            stream_state="streaming",
            stream_started_at=time.monotonic(),
        )
        self.state.add_message(message, "chat.startStream")
        return {"channel": channel, "ts": message.ts}

    def _streaming_message(self, params: JSON) -> Message:
        self._check_streaming_available()
        channel = _channel(params)
        _require(params, "ts")
        message = self.state.find(channel, str(params["ts"]))
        if message is None:
            raise SlackError("message_not_found")
        ttl, started = self.config.stream_ttl, message.stream_started_at
        if message.stream_state == "streaming" and ttl is not None and started is not None:
            if time.monotonic() - started > ttl:
                message.stream_state = "expired"
        if message.stream_state != "streaming":
            raise SlackError("message_not_in_streaming_state")
        return message

    def _extend(self, message: Message, params: JSON) -> None:
        text, chunks = self._stream_text(params)
        message.markdown_text = (message.markdown_text or "") + text
        message.chunks += chunks

    def append_stream(self, params: JSON) -> JSON:
        message = self._streaming_message(params)
        if not params.get("markdown_text") and not params.get("chunks"):
            raise SlackError("no_text")
        self._extend(message, params)
        self.state.revise(message, "chat.appendStream")
        return {"channel": message.channel, "ts": message.ts}

    def stop_stream(self, params: JSON) -> JSON:
        message = self._streaming_message(params)
        if params.get("session_status") not in (None, "active", "processing", "suspended", "closed"):
            raise SlackError("invalid_arguments", "session_status must be active, processing, suspended or closed")
        if params.get("blocks"):
            _check_blocks(params["blocks"])
        self._extend(message, params)
        if params.get("blocks"):
            message.blocks = params["blocks"]
        if params.get("metadata"):
            message.metadata = params["metadata"]
        message.stream_state = "stopped"
        self.state.revise(message, "chat.stopStream")
        return {"channel": message.channel, "ts": message.ts, "message": self._api(message)}

    def conversations_open(self, params: JSON) -> JSON:
        if params.get("channel"):
            return {"channel": {"id": params["channel"]}}
        _require(params, "users")
        users = tuple(sorted(u.strip() for u in str(params["users"]).split(",") if u.strip()))
        for user in users:
            if user not in self.state.users:
                raise SlackError("user_not_found")
        already = users in self.dms
        if not already:
            self.dms[users] = dm_channel_id(users[0]) if len(users) == 1 else self.state.new_id("G")
        return {"no_op": already, "already_open": already, "channel": {"id": self.dms[users]}}

    def users_info(self, params: JSON) -> JSON:
        _require(params, "user")
        user = self.state.users.get(str(params["user"]))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": user.to_api()}

    def conversations_info(self, params: JSON) -> JSON:
        _require(params, "channel")
        channel_id = str(params["channel"])
        known = self.state.conversations.get(channel_id)
        if known is not None:
            return {"channel": known.to_api()}
        if channel_id.startswith("D"):
            # A DM: the conversation object has no name, only the other person.
            return {"channel": {"id": channel_id, "is_im": True, "is_channel": False, "is_group": False,
                                "is_private": True, "user": "U" + channel_id[1:], "created": 1_700_000_000}}
        raise SlackError("channel_not_found")

    def _assistant_thread(self, params: JSON, *required: str) -> AssistantThread:
        _require(params, "channel_id", "thread_ts", *required)
        key = (str(params["channel_id"]), str(params["thread_ts"]))
        return self.state.assistant.setdefault(key, AssistantThread())

    def _prompt_target(self, params: JSON) -> AssistantThread:
        """setSuggestedPrompts: a thread (assistant view) or, without thread_ts, the DM (agent view)."""
        _require(params, "channel_id", "prompts")
        key = (str(params["channel_id"]), str(params.get("thread_ts") or ""))
        return self.state.assistant.setdefault(key, AssistantThread())

    def set_status(self, params: JSON) -> JSON:
        if "status" not in params:
            raise SlackError("invalid_arguments", "missing required field: status")
        thread = self._assistant_thread(params)
        thread.status, thread.loading_messages = str(params["status"]), params.get("loading_messages")
        return {}

    def set_suggested_prompts(self, params: JSON) -> JSON:
        thread = self._prompt_target(params)
        prompts = params["prompts"]
        if not isinstance(prompts, list) or len(prompts) > 4 or not all(
                isinstance(p, dict) and p.get("title") and p.get("message") for p in prompts):
            raise SlackError("invalid_arguments", "prompts: up to 4, each with title and message")
        thread.prompts = prompts
        if params.get("title"):
            thread.title = params["title"]
        return {}

    def set_session_status(self, params: JSON) -> JSON:
        """agents.sessions.setStatus: creates the thread's agent session if needed, sets its status."""
        _require(params, "channel_id", "status")
        if params["status"] not in ("active", "processing", "suspended", "closed"):
            raise SlackError("invalid_arguments", "status must be active, processing, suspended or closed")
        key = (str(params["channel_id"]), str(params.get("thread_ts") or ""))
        self.state.sessions[key] = str(params["status"])
        return {}

    def set_title(self, params: JSON) -> JSON:
        self._assistant_thread(params, "title").title = str(params["title"])
        return {}

    def get_upload_url(self, params: JSON) -> JSON:
        _require(params, "filename", "length")
        try:
            length = int(params["length"])
        except ValueError:
            raise SlackError("invalid_arguments", "length must be an integer") from None
        name = str(params["filename"])
        file = FakeFile(
            id=self.state.new_id("F"),
            name=name,
            title=name,
            mimetype=_guess_mimetype(name),
            filetype=name.rsplit(".", 1)[-1] if "." in name else "binary",
            user=self.config.bot_user_id,
            created=int(time.time()),
            declared_length=length,
        )
        self.state.files[file.id] = file
        upload_id = secrets.token_urlsafe(12)
        self.uploads[upload_id] = file.id
        return {"upload_url": f"{self._base_url()}/upload/v1/{upload_id}", "file_id": file.id}

    def complete_upload(self, params: JSON) -> JSON:
        _require(params, "files")
        files: list[FakeFile] = []
        for item in params["files"]:
            file = self.state.files.get(str(item.get("id")))
            if file is None or file.content is None:
                raise SlackError("file_not_found")
            file.title = item.get("title") or file.title
            files.append(file)
        channels = [params["channel_id"]] if params.get("channel_id") else []
        channels += [c for c in str(params.get("channels") or "").split(",") if c]
        for channel in channels:
            for file in files:
                file.channels.append(channel)
            shared = [f.to_api(self._base_url(), self.config.team_id) for f in files]
            message = self._bot_message(
                channel,
                params.get("thread_ts"),
                text=params.get("initial_comment") or "",
                files=shared,
            )
            self.state.add_message(message, "files.completeUploadExternal")
        return {"files": [{"id": f.id, "title": f.title} for f in files]}

    def files_info(self, params: JSON) -> JSON:
        _require(params, "file")
        file = self.state.files.get(str(params["file"]))
        if file is None:
            raise SlackError("file_not_found")
        return {"file": file.to_api(self._base_url(), self.config.team_id)}

    def connections_open(self, params: JSON) -> JSON:
        return {"url": self._socket_url()}


def _guess_mimetype(name: str) -> str:
    known = {
        "png": "image/png",
        "jpg": "image/jpeg",
        "gif": "image/gif",
        "pdf": "application/pdf",
        "txt": "text/plain",
        "diff": "text/x-diff",
        "patch": "text/x-diff",
        "json": "application/json",
    }
    return known.get(name.rsplit(".", 1)[-1].lower(), "application/octet-stream")


# --------------------------------------------------------------------------------------------------
# Socket Mode


class SocketHub:
    """The Socket Mode WebSocket endpoint: hello on connect, envelopes out, acks in."""

    def __init__(self, config: SlackConfig, changes: _Changes) -> None:
        self.config = config
        self._changes = changes
        self.tickets: set[str] = set()
        self.sockets: list[web.WebSocketResponse] = []
        self.connections_total = 0
        self.envelopes: dict[str, _Envelope] = {}
        self.acks: list[SocketAck] = []
        self.accepting = True

    def issue_ticket(self) -> str:
        ticket = uuid.uuid4().hex
        self.tickets.add(ticket)
        return ticket

    async def handle(self, request: web.Request) -> web.StreamResponse:
        # Tickets stay valid after use: slack_sdk retries a failed connect() with the same URL.
        if not self.accepting or request.query.get("ticket") not in self.tickets:
            return web.Response(status=401, text="invalid ticket")
        ws = web.WebSocketResponse(timeout=1.0)
        await ws.prepare(request)
        self.sockets.append(ws)
        self.connections_total += 1
        self._changes.notify()
        try:
            await ws.send_json(self._hello())
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self._receive(msg.data)
        finally:
            self.sockets.remove(ws)
            self._changes.notify()
        return ws

    def _hello(self) -> JSON:
        return {
            "type": "hello",
            "num_connections": len(self.sockets),
            "debug_info": {"host": "fake-applink-1", "build_number": 1, "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.config.app_id},
        }

    def _receive(self, data: str) -> None:
        at = time.monotonic()
        try:
            message = json.loads(data)
        except ValueError:
            return
        envelope = self.envelopes.get(message.get("envelope_id", ""))
        if envelope is None:
            return
        latency = at - envelope.sent_at
        self.acks.append(SocketAck(envelope.id, message.get("payload"), at, latency))
        self._changes.notify()

    def open_sockets(self) -> list[web.WebSocketResponse]:
        return [ws for ws in self.sockets if not ws.closed]

    async def send(self, type_: str, payload: JSON, **extra: Any) -> str:
        sockets = self.open_sockets()
        if not sockets:
            raise RuntimeError("no Socket Mode client is connected; await slack.wait_for_socket() first")
        envelope_id = str(uuid.uuid4())
        body = {"envelope_id": envelope_id, "type": type_, "payload": payload, **extra}
        # Slack delivers each envelope on one connection; the newest mirrors a fresh reconnect taking over.
        self.envelopes[envelope_id] = _Envelope(envelope_id, type_, time.monotonic())
        await sockets[-1].send_json(body)
        return envelope_id

    async def request_refresh(self) -> None:
        for ws in self.open_sockets():
            await ws.send_json(
                {
                    "type": "disconnect",
                    "reason": "refresh_requested",
                    "debug_info": {"host": "fake-applink-1"},
                }
            )

    async def close_all(self) -> None:
        self.accepting = False
        for ws in list(self.sockets):
            await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY)


# --------------------------------------------------------------------------------------------------
# Events API payloads and signed delivery


class EventFactory:
    """Builds Events API bodies and slash command forms as Slack sends them.

    Bound to a FakeSlack (``slack.events``), each user message it builds is also stored in the fake's
    channel model and slash commands get a response_url served by the fake.
    """

    def __init__(
        self,
        config: SlackConfig | None = None,
        *,
        clock: TsClock | None = None,
        record: Callable[[Message], None] | None = None,
        response_url: Callable[[], str] | None = None,
    ) -> None:
        self.config = config or SlackConfig()
        self.clock = clock or TsClock()
        self._record = record
        self._response_url = response_url or (lambda: "https://hooks.slack.com/commands/T1/1/fake")

    def event_callback(self, event: JSON) -> JSON:
        c = self.config
        return {
            "token": "fake-verification-token",
            "team_id": c.team_id,
            "context_team_id": c.team_id,
            "context_enterprise_id": None,
            "api_app_id": c.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": "Ev" + secrets.token_hex(5).upper(),
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": c.team_id,
                    "user_id": c.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": "4-" + secrets.token_urlsafe(16),
        }

    def _user_event(
        self,
        type_: str,
        text: str,
        user: str,
        channel: str,
        thread_ts: str | None,
        files: list[JSON] | None,
        **extra: Any,
    ) -> JSON:
        ts = self.clock.next()
        event: JSON = {"type": type_, "user": user, "text": text, "ts": ts, "channel": channel}
        event.update(event_ts=ts, team=self.config.team_id, client_msg_id=str(uuid.uuid4()))
        if thread_ts:
            event["thread_ts"] = thread_ts
        if files:
            event["files"] = files
        event.update({k: v for k, v in extra.items() if v is not None})
        if self._record is not None:
            self._record(
                Message(
                    channel,
                    ts,
                    user,
                    text=text,
                    thread_ts=thread_ts,
                    files=list(files or []),
                    bot_id=extra.get("bot_id"),
                    subtype=extra.get("subtype"),
                )
            )
        return event

    def app_mention(
        self,
        text: str,
        *,
        user: str = "U1",
        channel: str = "C1",
        thread_ts: str | None = None,
        files: list[JSON] | None = None,
    ) -> JSON:
        """An app_mention event_callback; "<@BOT> " is prepended unless the text already mentions the bot."""
        mention = f"<@{self.config.bot_user_id}>"
        if mention not in text:
            text = f"{mention} {text}"
        return self.event_callback(self._user_event("app_mention", text, user, channel, thread_ts, files))

    def message(
        self,
        text: str,
        *,
        user: str = "U1",
        channel: str | None = None,
        channel_type: Literal["im", "channel", "group", "mpim"] = "im",
        thread_ts: str | None = None,
        files: list[JSON] | None = None,
        bot_id: str | None = None,
        subtype: str | None = None,
    ) -> JSON:
        """A message event_callback; channel defaults to the user's DM (dm_channel_id) for channel_type im."""
        if channel is None:
            channel = dm_channel_id(user) if channel_type == "im" else "C1"
        event = self._user_event(
            "message",
            text,
            user,
            channel,
            thread_ts,
            files,
            channel_type=channel_type,
            bot_id=bot_id,
            subtype=subtype,
        )
        if subtype == "file_share":
            event.update(upload=False, display_as_bot=False)
        return self.event_callback(event)

    def file_share(
        self,
        text: str,
        files: list[JSON],
        *,
        user: str = "U1",
        channel: str | None = None,
        channel_type: Literal["im", "channel", "group", "mpim"] = "im",
        thread_ts: str | None = None,
    ) -> JSON:
        """A message/file_share event_callback carrying file objects (e.g. from FakeSlack.add_file)."""
        return self.message(
            text,
            user=user,
            channel=channel,
            channel_type=channel_type,
            thread_ts=thread_ts,
            files=files,
            subtype="file_share",
        )

    def slash_command(
        self,
        text: str = "",
        *,
        command: str = "/seed",
        user_id: str = "U1",
        user_name: str = "alice",
        channel_id: str = "C1",
        channel_name: str = "general",
    ) -> dict[str, str]:
        c = self.config
        return {
            "token": "fake-verification-token",
            "team_id": c.team_id,
            "team_domain": c.team_domain,
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": c.app_id,
            "is_enterprise_install": "false",
            "response_url": self._response_url(),
            "trigger_id": f"{secrets.randbelow(10**10)}.{secrets.randbelow(10**10)}.{secrets.token_hex(16)}",
        }

    def app_home_opened(self, user: str = "U1", *, tab: Literal["home", "messages"] = "messages",
                        app_context: JSON | None = None) -> JSON:
        """app_home_opened: under agent view, tab "messages" means the user opened the app's DM."""
        event: JSON = {"type": "app_home_opened", "user": user, "channel": dm_channel_id(user), "tab": tab,
                       "event_ts": self.clock.next()}
        if app_context is not None:
            event["app_context"] = app_context
        return self.event_callback(event)

    def app_context_changed(self, user: str = "U1", entities: list[JSON] | None = None) -> JSON:
        """What the user views changed (agent view); entities most relevant first, {} when none."""
        context: JSON = {"entities": entities} if entities else {}
        return self.event_callback({"type": "app_context_changed", "user": user, "channel": dm_channel_id(user),
                                    "context": context, "event_ts": self.clock.next()})

    def agent_session_stopped(self, channel: str, thread_ts: str, *, user: str = "U1",
                              streaming_message_ts: list[str] | None = None) -> JSON:
        """The user clicked the native stop button of an agent session."""
        return self.event_callback({"type": "agent_session_stopped", "channel": channel, "thread_ts": thread_ts,
                                    "user": user, "streaming_message_ts": list(streaming_message_ts or []),
                                    "event_ts": self.clock.next()})

    def block_actions(self, message: Message, action: JSON, *, user: FakeUser) -> JSON:
        """A block_actions payload for a click on `action` (an element of `message`), as Slack sends it."""
        c = self.config
        return {
            "type": "block_actions",
            "user": {"id": user.id, "username": user.name, "name": user.name, "team_id": c.team_id},
            "api_app_id": c.app_id,
            "token": "fake-verification-token",
            "container": {"type": "message", "message_ts": message.ts, "channel_id": message.channel,
                          "is_ephemeral": False, "thread_ts": message.thread_ts},
            "trigger_id": f"{secrets.randbelow(10**10)}.{secrets.randbelow(10**10)}.{secrets.token_hex(16)}",
            "team": {"id": c.team_id, "domain": c.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": message.channel,
                        "name": "general" if message.channel.startswith("C") else "directmessage"},
            "message": message.to_api(c.team_id, c.app_id),
            "state": {"values": {}},
            "response_url": self._response_url(),
            "actions": [dict(action, action_ts=self.clock.next())],
        }

    def url_verification(self, challenge: str = "fake-challenge") -> JSON:
        return {"token": "fake-verification-token", "challenge": challenge, "type": "url_verification"}


@dataclass(frozen=True)
class Delivery:
    """The app's answer to a signed request. status is None when Slack's 3 s timeout expired first."""

    status: int | None
    body: str
    headers: Mapping[str, str]
    elapsed: float

    @property
    def timed_out(self) -> bool:
        return self.status is None


class SignedSender:
    """POSTs Events API bodies and slash command forms to an app, signed as Slack signs them."""

    def __init__(self, url: str, signing_secret: str, *, ack_timeout: float = 3.0) -> None:
        self.url = url
        self.verifier = SignatureVerifier(signing_secret)
        self.ack_timeout = ack_timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SignedSender:
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post_event(
        self,
        payload: JSON,
        *,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> Delivery:
        """retry_num/retry_reason add X-Slack-Retry-*; timestamp/signature override the real ones."""
        return await self._post(
            json.dumps(payload), "application/json", retry_num, retry_reason, timestamp, signature
        )

    async def post_interaction(self, payload: JSON) -> Delivery:
        """An interactivity request: Slack POSTs `payload=<json>` form-encoded to the Request URL."""
        return await self._post(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded",
                                None, None, None, None)

    async def post_slash_command(
        self, form: Mapping[str, str], *, timestamp: int | None = None, signature: str | None = None
    ) -> Delivery:
        return await self._post(
            urlencode(form), "application/x-www-form-urlencoded", None, None, timestamp, signature
        )

    async def post_raw(self, body: bytes, content_type: str, *, headers: Mapping[str, str] | None = None) -> Delivery:
        """POST any bytes, signed as Slack signs them (over the raw body); `headers` add or replace
        headers, e.g. a malformed X-Slack-Request-Timestamp."""
        ts = str(int(time.time()))
        signed = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": "v0=" + hmac.new(self.verifier.signing_secret.encode(),
                                                  f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest(),
        }
        signed.update(headers or {})
        async with aiohttp.ClientSession() as session:
            return await self._send(session, body, signed)

    async def _post(
        self,
        body: str,
        content_type: str,
        retry_num: int | None,
        retry_reason: str | None,
        timestamp: int | None,
        signature: str | None,
    ) -> Delivery:
        ts = str(timestamp if timestamp is not None else int(time.time()))
        headers = {
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature or self.verifier.generate_signature(timestamp=ts, body=body),
        }
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
        if self._session is None:
            async with aiohttp.ClientSession() as session:
                return await self._send(session, body, headers)
        return await self._send(self._session, body, headers)

    async def _send(self, session: aiohttp.ClientSession, body: str | bytes, headers: Mapping[str, str]) -> Delivery:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.ack_timeout):
                data = body.encode() if isinstance(body, str) else body
                async with session.post(self.url, data=data, headers=headers) as res:
                    text = await res.text()
                    return Delivery(res.status, text, CIMultiDict(res.headers), time.monotonic() - started)
        except TimeoutError:
            return Delivery(None, "", CIMultiDict(), time.monotonic() - started)


# --------------------------------------------------------------------------------------------------
# The server


async def _read_params(request: web.Request) -> JSON:
    params: JSON = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise SlackError("invalid_json") from None
            if isinstance(body, dict):
                params.update(body)
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
    for key in _JSON_FIELDS:
        if isinstance(params.get(key), str):
            try:
                params[key] = json.loads(params[key])
            except ValueError:
                raise SlackError("invalid_arguments", f"{key} is not valid JSON") from None
    return params


def _bearer(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    return auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else None


class FakeSlack:
    """The fake Slack server. Use as ``async with FakeSlack(team_id="T9", ...) as slack:``.

    Keyword overrides are SlackConfig fields; ``slack.config`` can also be changed while running.
    """

    def __init__(self, config: SlackConfig | None = None, **overrides: Any) -> None:
        self.config = dataclasses.replace(config or SlackConfig(), **overrides)
        self.clock = TsClock()
        self.state = SlackState(self.config, self.clock)
        self.oauth = SlackOAuth(self.config)
        self.api = WebApi(self.state, lambda: self.base_url, self._socket_url, self.oauth.current)
        self.api.handlers["oauth.v2.access"] = self.oauth.access
        self.hub = SocketHub(self.config, self.state.changes)
        self.openid = OpenIdConnect(self.config, self.state.users)
        self.api.handlers.update(self.openid.handlers())
        self.events = EventFactory(
            self.config,
            clock=self.clock,
            record=self._record_user_message,
            response_url=self._new_response_url,
        )
        self.file_downloads: list[FileDownload] = []
        self.response_url_posts: list[ResponseUrlPost] = []
        self._calls: list[ApiCall] = []
        self._injections: list[_Injection] = []
        self._latency: dict[str | None, float] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0
        c = self.config
        self.add_user(c.bot_user_id, c.bot_name, real_name=c.bot_name, display_name=c.bot_name, is_bot=True)
        self.add_user("U1", "alice", real_name="Alice Liddell", display_name="alice")
        self.add_user("U2", "bob", real_name="Bob Builder", display_name="bob")

    # lifecycle ------------------------------------------------------------------------------------

    async def __aenter__(self) -> FakeSlack:
        app = web.Application()
        app.add_routes(
            [
                web.route("*", "/api/{method}", self._handle_api),
                web.get("/socket-mode", self.hub.handle),
                web.get("/files-pri/{team_file}/{name}", self._handle_file),
                web.get("/files-pri/{team_file}/download/{name}", self._handle_file),
                web.get("/signin", self._handle_signin),
                web.get("/openid/connect/authorize", self.openid.authorize_page),
                web.get("/oauth/v2/authorize", self.oauth.handle_authorize),
                web.post("/upload/v1/{upload_id}", self._handle_upload),
                web.post("/commands/{team}/{id}/{secret}", self._handle_response_url),
            ]
        )
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.hub.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """For AsyncWebClient(base_url=...); slack_sdk needs the trailing slash."""
        return f"{self.base_url}/api/"

    def _socket_url(self) -> str:
        ticket = self.hub.issue_ticket()
        return f"ws://127.0.0.1:{self.port}/socket-mode?ticket={ticket}&app_id={self.config.app_id}"

    def sender(self, url: str, *, ack_timeout: float = 3.0) -> SignedSender:
        """A SignedSender for the app's /slack/events URL, using this workspace's signing secret."""
        return SignedSender(url, self.config.signing_secret, ack_timeout=ack_timeout)

    # set-up -------------------------------------------------------------------------------------

    def add_user(
        self, user_id: str, name: str, *, real_name: str = "", display_name: str = "", is_bot: bool = False
    ) -> FakeUser:
        user = FakeUser(user_id, name, real_name, display_name, is_bot, self.config.team_id)
        self.state.users[user_id] = user
        return user

    def add_channel(self, channel_id: str, name: str, *, is_private: bool = False) -> FakeChannel:
        """A channel conversations.info knows by name (others answer channel_not_found, DMs excepted)."""
        channel = FakeChannel(channel_id, name, is_private)
        self.state.conversations[channel_id] = channel
        return channel

    def add_file(
        self,
        name: str,
        content: bytes,
        mimetype: str = "text/plain",
        filetype: str = "text",
        *,
        user: str = "U1",
        title: str | None = None,
    ) -> JSON:
        """Host a file a user shared; returns the Slack file object (URLs point at the fake)."""
        file = FakeFile(
            self.state.new_id("F"),
            name,
            title or name,
            mimetype,
            filetype,
            user,
            created=int(time.time()),
            content=content,
            declared_length=len(content),
        )
        self.state.files[file.id] = file
        return file.to_api(self.base_url, self.config.team_id)

    def inject_rate_limit(self, method: str | None = None, *, times: int = 1, retry_after: int = 1) -> None:
        """The next `times` calls of `method` (None: any method) get HTTP 429 + Retry-After."""
        self._injections.append(
            _Injection(
                method, times, 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)}
            )
        )

    def inject_error(
        self, method: str | None, error: str = "fatal_error", *, times: int = 1, status: int = 200
    ) -> None:
        """The next `times` calls of `method` answer {"ok": false, "error": error} with HTTP `status`."""
        self._injections.append(_Injection(method, times, status, {"ok": False, "error": error}, {}))

    def set_latency(self, seconds: float, method: str | None = None) -> None:
        """Delay every answer of `method` (None: all methods) by `seconds`."""
        self._latency[method] = seconds

    def expire_stream(self, channel: str, ts: str) -> None:
        """End a stream as Slack's timeout does: later appends/stops get message_not_in_streaming_state."""
        message = self._message(channel, ts)
        if message.stream_state == "streaming":
            message.stream_state = "expired"

    # queries ------------------------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[ApiCall]:
        return [c for c in self._calls if method is None or c.method == method]

    def messages(self, channel: str) -> list[Message]:
        return list(self.state.channels.get(channel, []))

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        """The thread's parent (if known to the fake) and its replies, oldest first."""
        return self.state.thread(channel, thread_ts)

    def message(self, channel: str, ts: str) -> Message | None:
        return self.state.find(channel, ts)

    def _message(self, channel: str, ts: str) -> Message:
        message = self.state.find(channel, ts)
        if message is None:
            raise KeyError(f"no message {ts} in {channel}")
        return message

    def final_text(self, channel: str, ts: str) -> str:
        """The text a user sees now: streamed/posted markdown_text, else text, after all updates."""
        return self._message(channel, ts).visible_text

    def file(self, file_id: str) -> FakeFile:
        return self.state.files[file_id]

    def assistant_thread(self, channel: str, thread_ts: str) -> AssistantThread:
        return self.state.assistant.get((channel, thread_ts), AssistantThread())

    def dm_channel(self, user_id: str) -> str:
        return dm_channel_id(user_id)

    def dm_prompts(self, user_id: str) -> list[JSON] | None:
        """The suggested prompts set for a user's DM with the app (agent view: no thread_ts)."""
        return self.assistant_thread(dm_channel_id(user_id), "").prompts

    def stop_agent_session(self, channel: str, thread_ts: str, *, user: str = "U1") -> JSON:
        """The user clicks the native stop button of the agent session in a thread: Slack stops the
        app's streams in progress there itself and sends agent_session_stopped naming them."""
        stopped = [m for m in self.state.thread(channel, thread_ts) if m.is_bot and m.stream_state == "streaming"]
        for message in stopped:
            message.stream_state = "stopped"
            self.state.revise(message, "agent_session_stopped")
        return self.events.agent_session_stopped(channel, thread_ts, user=user,
                                                 streaming_message_ts=[m.ts for m in stopped])

    def click(self, channel: str, ts: str, action_id: str, *, user: str = "U1", positive: bool = True) -> JSON:
        """A block_actions payload for clicking the element `action_id` on the bot's message (in its
        blocks, or in a `blocks` chunk of its stream); feedback buttons click the positive or negative
        side. Raises LookupError if the message carries no such element, as no one could click it."""
        message = self._message(channel, ts)
        blocks = list(message.blocks or [])
        blocks += [b for chunk in message.chunks if chunk.get("type") == "blocks" for b in chunk.get("blocks", [])]
        for block in blocks:
            for element in block.get("elements") or ():
                if element.get("action_id") != action_id:
                    continue
                action: JSON = {"action_id": action_id, "block_id": block.get("block_id") or self.state.new_id("b"),
                                "type": element["type"]}
                if element["type"] == "feedback_buttons":
                    chosen = element["positive_button" if positive else "negative_button"]
                    action.update(value=chosen["value"], text=chosen["text"])
                else:
                    action.update(value=element.get("value", ""), text=element.get("text"))
                return self.events.block_actions(message, action, user=self.state.users[user])
        raise LookupError(f"no element {action_id!r} on message {ts} in {channel}")

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:  # noqa: ASYNC109
        """Return predicate()'s first truthy value, re-checked on each change; TimeoutError past `timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout}s")
            # Poll too: a predicate may also depend on state outside the fake.
            await self.state.changes.wait(min(remaining, 0.05))

    # Socket Mode --------------------------------------------------------------------------------

    @property
    def socket_connections(self) -> int:
        return len(self.hub.open_sockets())

    @property
    def socket_connections_total(self) -> int:
        return self.hub.connections_total

    @property
    def acks(self) -> list[SocketAck]:
        return list(self.hub.acks)

    async def wait_for_socket(self, count: int = 1, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until `count` Socket Mode connections are open."""
        await self.wait_for(lambda: self.socket_connections >= count, timeout)

    async def socket_send_event(self, payload: JSON, retry_attempt: int = 0, retry_reason: str = "") -> str:
        """Push an events_api envelope carrying `payload` (an event_callback body); returns envelope_id."""
        return await self.hub.send(
            "events_api",
            payload,
            accepts_response_payload=False,
            retry_attempt=retry_attempt,
            retry_reason=retry_reason,
        )

    async def socket_send_slash_command(self, form: Mapping[str, str]) -> str:
        return await self.hub.send("slash_commands", dict(form), accepts_response_payload=True)

    async def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> SocketAck:  # noqa: ASYNC109
        return await self.wait_for(
            lambda: next((a for a in self.hub.acks if a.envelope_id == envelope_id), None), timeout
        )

    async def socket_refresh(self) -> None:
        """Send {"type": "disconnect", "reason": "refresh_requested"}; slack_sdk reconnects on it."""
        await self.hub.request_refresh()

    # HTTP handlers ------------------------------------------------------------------------------

    def _record_user_message(self, message: Message) -> None:
        self.state.add_message(message, "event")

    def _new_response_url(self) -> str:
        command_id = self.state.new_id("")
        return f"{self.base_url}/commands/{self.config.team_id}/{command_id}/{secrets.token_hex(8)}"

    def _take_injection(self, method: str) -> _Injection | None:
        for injection in self._injections:
            if injection.remaining > 0 and injection.method in (None, method):
                injection.remaining -= 1
                return injection
        return None

    def _authorize(self, method: str, request: web.Request, params: JSON) -> None:
        if method in OpenIdConnect.METHODS:
            return OpenIdConnect.authenticate(request, params)
        if method == "oauth.v2.access":
            self.oauth.check_client(request, params)
            return
        token = _bearer(request) or params.pop("token", None)
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

    async def _dispatch(
        self, method: str, request: web.Request, params: JSON
    ) -> tuple[int, JSON, dict[str, str]]:
        delay = self._latency.get(method, self._latency.get(None, 0.0))
        if delay:
            await asyncio.sleep(delay)
        handler = self.api.handlers.get(method)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method", "req_method": method}, {}
        try:
            self._authorize(method, request, params)
            injection = self._take_injection(method)
            if injection is not None:
                return injection.status, dict(injection.body), dict(injection.headers)
            return 200, {"ok": True, **handler(params)}, {}
        except SlackError as err:
            return 200, err.body(), {}

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        at = time.monotonic()
        try:
            params = await _read_params(request)
        except SlackError as err:
            params, (status, body, headers) = {}, (200, err.body(), {})
        else:
            status, body, headers = await self._dispatch(method, request, params)
        headers_in = CIMultiDict(request.headers)
        self._calls.append(ApiCall(method, params, headers_in, request.content_type, at, status, body))
        self.state.changes.notify()
        return web.json_response(body, status=status, headers=headers)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        team_file = request.match_info["team_file"]
        file = self.state.files.get(team_file.split("-", 1)[-1])
        authorized = self.oauth.by_token(_bearer(request)) is not None
        if file is not None:
            self.file_downloads.append(FileDownload(file.id, authorized, time.monotonic()))
            self.state.changes.notify()
        if not authorized:
            if self.config.file_auth_failure == "forbidden":
                return web.Response(status=403, text=_SIGNIN_HTML, content_type="text/html")
            raise web.HTTPFound(f"/signin?redir={quote(request.path_qs)}")
        if file is None or file.content is None:
            return web.Response(status=404, text="file not found")
        return web.Response(body=file.content, content_type=file.mimetype)

    async def _handle_signin(self, request: web.Request) -> web.Response:
        return web.Response(text=_SIGNIN_HTML, content_type="text/html")

    async def _handle_upload(self, request: web.Request) -> web.Response:
        file_id = self.api.uploads.get(request.match_info["upload_id"])
        if file_id is None:
            return web.Response(status=404, text="upload URL not found", content_type="text/plain")
        if request.content_type == "multipart/form-data":
            form = await request.post()
            part = next((v for v in form.values() if isinstance(v, web.FileField)), None)
            content = part.file.read() if part is not None else b""
        else:
            content = await request.read()
        self.state.files[file_id].content = content
        self.state.changes.notify()
        return web.Response(text=f"OK - {len(content)}", content_type="text/plain")

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.Response(status=400, text="invalid_payload", content_type="text/plain")
        self.response_url_posts.append(ResponseUrlPost(str(request.url), body, time.monotonic()))
        self.state.changes.notify()
        return web.json_response({"ok": True})


# --------------------------------------------------------------------------------------------------
# Sign in with Slack (OpenID Connect): the authorize page, openid.connect.token, openid.connect.userInfo.
# Shapes follow Slack's docs for those methods: the token exchange authenticates with client_id and
# client_secret (no token); userInfo takes the user token the exchange issued.


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
        token = _bearer(request) or params.get("token")
        if token:
            params["token"] = token
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            client_id, _, client_secret = base64.b64decode(auth[len("Basic "):]).decode().partition(":")
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


_SIGNIN_HTML = (
    "<!DOCTYPE html><html><head><title>Slack</title></head>"
    "<body><h1>Sign in to your workspace</h1></body></html>"
)

"""The fake Slack server: one aiohttp app on 127.0.0.1 serving the Web API, Socket Mode, hosted files,
uploads, response_urls and the sign-in pages; set-up and queries for tests."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

from aiohttp import web

from .endpoint import ApiEndpoint
from .events import EventFactory
from .model import JSON, AssistantThread, FakeChannel, FakeFile, FakeUser, Message, SlackConfig, TsClock, dm_channel_id
from .oauth import SlackOAuth
from .openid import OpenIdConnect
from .params import bearer
from .records import ApiCall, FileDownload, Injection, ResponseUrlPost, SocketAck
from .sender import SignedSender
from .socket_mode import SocketHub
from .state import SlackState
from .web_api import WebApi

T = TypeVar("T")

# The Web API methods that post or change the bot's messages in a channel.
POSTING_METHODS = ("chat.postMessage", "chat.startStream", "chat.appendStream", "chat.stopStream", "chat.update")


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
        self.endpoint = ApiEndpoint(self.config, self.api.handlers, self.oauth, self.state.changes)
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
                web.route("*", "/api/{method}", self.endpoint.handle),
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
        self.endpoint.injections.append(
            Injection(
                method, times, 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)}
            )
        )

    def inject_error(
        self,
        method: str | None,
        error: str = "fatal_error",
        *,
        times: int | None = 1,
        status: int = 200,
        channel: str | None = None,
    ) -> None:
        """The next `times` calls (every one if None) of `method` (None: any), only those naming `channel` if
        given, answer {"ok": false, "error": error} with HTTP `status`: Slack's error body, which Slack sends
        with HTTP 200 (https://docs.slack.dev/apis/web-api/, "Evaluating responses")."""
        self.endpoint.injections.append(
            Injection(method, times, status, {"ok": False, "error": error}, {}, channel=channel)
        )

    def refuse_posts(self, channel: str, error: str = "not_in_channel") -> None:
        """Slack refuses the bot's posts in `channel` from now on: every chat.postMessage, chat.startStream,
        chat.appendStream, chat.stopStream and chat.update there answers {"ok": false, "error": error}, as
        for a channel the bot is not in (not_in_channel), archived (is_archived), or where a workspace
        setting restricts posting (restricted_action)."""
        for method in POSTING_METHODS:
            self.inject_error(method, error, times=None, channel=channel)

    def delete_message(self, channel: str, ts: str) -> None:
        """Someone deletes a message (chat.delete, or a person in Slack): later calls naming it, a stream's
        appends among them, answer message_not_found."""
        self.state.channels[channel].remove(self._message(channel, ts))
        self.state.changes.notify()

    def set_latency(self, seconds: float, method: str | None = None) -> None:
        """Delay every answer of `method` (None: all methods) by `seconds`."""
        self.endpoint.latency[method] = seconds

    def expire_stream(self, channel: str, ts: str) -> None:
        """End a stream as Slack's timeout does: later appends/stops get message_not_in_streaming_state."""
        message = self._message(channel, ts)
        if message.stream_state == "streaming":
            message.stream_state = "expired"

    # queries ------------------------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[ApiCall]:
        return [c for c in self.endpoint.calls if method is None or c.method == method]

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

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        team_file = request.match_info["team_file"]
        file = self.state.files.get(team_file.split("-", 1)[-1])
        authorized = self.oauth.by_token(bearer(request)) is not None
        if file is not None:
            self.file_downloads.append(FileDownload(file.id, authorized, time.monotonic()))
            self.state.changes.notify()
        if not authorized:
            if self.config.file_auth_failure == "forbidden":
                return web.Response(status=403, text=SIGNIN_HTML, content_type="text/html")
            raise web.HTTPFound(f"/signin?redir={quote(request.path_qs)}")
        if file is None or file.content is None:
            return web.Response(status=404, text="file not found")
        return web.Response(body=file.content, content_type=file.mimetype)

    async def _handle_signin(self, request: web.Request) -> web.Response:
        return web.Response(text=SIGNIN_HTML, content_type="text/html")

    async def _handle_upload(self, request: web.Request) -> web.Response:
        file_id = self.api.files.uploads.get(request.match_info["upload_id"])
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


SIGNIN_HTML = (
    "<!DOCTYPE html><html><head><title>Slack</title></head>"
    "<body><h1>Sign in to your workspace</h1></body></html>"
)

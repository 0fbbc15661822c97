"""Events API bodies, interactivity payloads and slash command forms, as Slack sends them."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal

from .model import JSON, FakeUser, Message, SlackConfig, TsClock, dm_channel_id

# The deprecated verification token Slack still sends in every payload.
VERIFICATION_TOKEN = "fake-verification-token"


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
            "token": VERIFICATION_TOKEN,
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

    def assistant_thread_started(self, thread_ts: str, *, user: str = "U1", channel: str = "D1",
                                 context: JSON | None = None) -> JSON:
        """An assistant_thread_started event_callback: `user` opened the assistant pane, whose thread is
        `thread_ts` in their DM `channel`; `context` is what they were looking at (empty: nothing)."""
        return self.event_callback({
            "type": "assistant_thread_started",
            "assistant_thread": {"user_id": user, "channel_id": channel, "thread_ts": thread_ts,
                                 "context": context or {}},
            "event_ts": self.clock.next(),
        })

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
            "token": VERIFICATION_TOKEN,
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
            "trigger_id": _trigger_id(),
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
            "token": VERIFICATION_TOKEN,
            "container": {"type": "message", "message_ts": message.ts, "channel_id": message.channel,
                          "is_ephemeral": False, "thread_ts": message.thread_ts},
            "trigger_id": _trigger_id(),
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
        return {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}


def _trigger_id() -> str:
    return f"{secrets.randbelow(10**10)}.{secrets.randbelow(10**10)}.{secrets.token_hex(16)}"

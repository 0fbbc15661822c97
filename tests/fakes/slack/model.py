"""The fake Slack's objects: its configuration, messages, channels, users, files, errors and timestamps."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

JSON = dict[str, Any]

MARKDOWN_LIMIT = 12_000
TEXT_LIMIT = 40_000


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
    # The app's credentials for the OAuth install flow (oauth.py).
    client_id: str = "1111.2222"
    client_secret: str = "fake-client-secret"
    # False: chat.*Stream answer "unknown_method", what Slack says of a method that is not available.
    streaming_enabled: bool = True
    # Slack ends a stream on its own after ~5 minutes; later appends get message_not_in_streaming_state.
    stream_ttl: float | None = 300.0
    # Whether a stopped stream's message lists the blocks of its `blocks` chunks among its blocks (after its text as
    # a markdown block), in chat.stopStream's `message` and after: Slack's pages do not say; True tries the case
    # where a Stop button sent as a chunk would stay in the finished answer.
    stream_keeps_chunk_blocks: bool = False
    # Slack requires recipient_user_id/recipient_team_id on chat.startStream outside DMs.
    require_stream_recipient: bool = True
    # How a file URL answers without the bot token: "redirect" (302 to an HTML sign-in page) or "forbidden".
    file_auth_failure: Literal["redirect", "forbidden"] = "redirect"


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
        """What a user sees: markdown_text (streamed or posted) if any, else the text of its markdown
        blocks (with blocks, Slack shows them and `text` is only the notification's), else text."""
        if self.markdown_text is not None:
            return self.markdown_text
        shown = [b["text"] for b in self.blocks or [] if b.get("type") == "markdown" and isinstance(b.get("text"), str)]
        return "\n".join(shown) if shown else self.text

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

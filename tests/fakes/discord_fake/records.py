"""What clients did to the fake, kept for tests to assert on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .model import JSON


@dataclass(frozen=True)
class RestCall:
    method: str
    path: str  # below the API base, e.g. "/channels/123/messages"
    query: dict[str, str]
    status: int
    at: float  # time.monotonic()


@dataclass(frozen=True)
class MessageEvent:
    kind: Literal["create", "edit", "delete"]
    channel_id: int
    message_id: int
    content: str
    at: float  # time.monotonic()
    via: Literal["channel", "interaction"] = "channel"
    payload: JSON = field(default_factory=dict)  # the request body (allowed_mentions, embeds, ...)


@dataclass(frozen=True)
class InteractionCallback:
    interaction_id: int
    token: str
    type: int
    data: JSON
    at: float  # time.monotonic()


@dataclass(frozen=True)
class TypingCall:
    channel_id: int
    at: float  # time.monotonic()


@dataclass(frozen=True)
class GatewayConnection:
    path: str
    query: dict[str, str]
    compression: str | None  # "zlib-stream" when frames were compressed, None for plain text frames


@dataclass
class Records:
    calls: list[RestCall] = field(default_factory=list)
    message_events: list[MessageEvent] = field(default_factory=list)
    interaction_callbacks: list[InteractionCallback] = field(default_factory=list)
    typing: list[TypingCall] = field(default_factory=list)
    connections: list[GatewayConnection] = field(default_factory=list)
    identifies: list[JSON] = field(default_factory=list)
    resumes: list[JSON] = field(default_factory=list)
    presence_updates: list[JSON] = field(default_factory=list)
    replayed: list[tuple[str, int]] = field(default_factory=list)  # (event name, seq) re-sent on RESUME
    heartbeats: int = 0

    def calls_to(self, method: str, path_prefix: str = "") -> list[RestCall]:
        return [c for c in self.calls if c.method == method and c.path.startswith(path_prefix)]

    def events(self, kind: str, channel_id: int | None = None) -> list[MessageEvent]:
        return [
            e
            for e in self.message_events
            if e.kind == kind and (channel_id is None or e.channel_id == channel_id)
        ]

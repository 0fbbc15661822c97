"""The normalised types every platform adapter and the core agree on.

Adapters translate platform events into these; the core never sees a Slack or Discord payload.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from bot.text_safety import clean_name, clean_text

# Reasoning effort as the Seed endpoint names it (`reasoning_effort`).
Effort = Literal["low", "medium", "high"]


class Platform(StrEnum):
    """Where a message came from; the first part of every scope and thread address."""

    SLACK = "slack"
    DISCORD = "discord"
    CLI = "cli"


@dataclass(frozen=True, slots=True)
class Address:
    """A channel or a person as people type it: `platform:id` where a platform has one workspace in this
    deployment, `platform:workspace:id` where several share it (`slack:T0123:C0456`, `slack:T0123:U0789`).
    `workspace_id` is None when the address names none."""

    platform: str
    workspace_id: str | None
    id: str

    @classmethod
    def parse(cls, text: str) -> Address:
        """`slack:U0456` or `slack:T0123:U0456`. Raises ValueError naming the expected shape."""
        parts = text.strip().split(":")
        if len(parts) not in (2, 3) or parts[0] not in tuple(Platform) or not all(parts):
            raise ValueError(f"{text!r} is not an id: write platform:id or platform:workspace:id, "
                             "e.g. slack:U0456 or slack:T0123:U0456")
        return cls(parts[0], parts[1] if len(parts) == 3 else None, parts[-1])

    def __str__(self) -> str:
        return ":".join(p for p in (self.platform, self.workspace_id, self.id) if p)


class AttachmentKind(StrEnum):
    """What an adapter made of a file: text for the prompt, an image for the model, or refused."""

    TEXT = "text"
    IMAGE = "image"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file that came with a message, already fetched (or refused) by the adapter.

    `data` holds the bytes for TEXT and IMAGE; SKIPPED carries `skipped_reason` in plain words,
    which the core passes on to the user so nothing is dropped silently.
    """

    filename: str
    kind: AttachmentKind
    size: int
    data: bytes = b""
    content_type: str = ""
    skipped_reason: str = ""

    def text(self) -> str:
        """The contents as text, undecodable bytes and NULs replaced (bot.text_safety)."""
        return clean_text(self.data.decode("utf-8", errors="replace"))


@dataclass(frozen=True, slots=True)
class ThreadKey:
    """Where a conversation lives. `thread_id` is the platform's id for the thread (Slack thread_ts,
    Discord thread channel id, a DM channel id) and is unique within its channel."""

    platform: Platform
    workspace_id: str
    channel_id: str
    thread_id: str


@dataclass(frozen=True, slots=True)
class Incoming:
    """One user message, as every adapter must hand it to `ChatService.handle`."""

    thread: ThreadKey
    message_id: str
    user_id: str
    text: str
    user_name: str = ""
    attachments: tuple[Attachment, ...] = ()
    channel_name: str = ""
    is_direct: bool = False
    force_review: bool = False
    web_search: bool | None = None
    thinking: bool | None = None
    reasoning_effort: str | None = None
    # What the person is looking at as they write, as the platform tells it (Slack's app_context),
    # in plain words for the model; not part of what they wrote.
    context: str = ""

    @property
    def platform(self) -> Platform:
        return self.thread.platform

    @property
    def dedup_key(self) -> str:
        t = self.thread
        return f"{t.platform}:{t.workspace_id}:{t.channel_id}:{self.message_id}"

    def cleaned(self) -> Incoming:
        """This message with every text field made safe to store and send (bot.text_safety): platform
        payloads are untrusted, and a lone surrogate or a NUL would fail the database write; names are
        also kept from steering the display (`clean_name`)."""
        key = self.thread
        return replace(
            self, text=clean_text(self.text), message_id=clean_text(self.message_id),
            user_id=clean_text(self.user_id), user_name=clean_name(self.user_name),
            channel_name=clean_name(self.channel_name), context=clean_text(self.context),
            attachments=tuple(replace(a, filename=clean_text(a.filename)) for a in self.attachments),
            thread=ThreadKey(key.platform, clean_text(key.workspace_id), clean_text(key.channel_id),
                             clean_text(key.thread_id)),
        )


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    web_searches: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.cached_tokens + other.cached_tokens,
            self.completion_tokens + other.completion_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.web_searches + other.web_searches,
        )


NANOS_PER_USD = 1_000_000_000


def usd_string(nanos: int) -> str:
    """Exact dollars as a decimal string, for machines: 1_600_000 -> "0.0016"."""
    return format((Decimal(nanos) / NANOS_PER_USD).normalize(), "f")


def format_usd(nanos: int) -> str:
    """Dollars for people: cents from a dollar up, four decimals below, six for fractions of a cent."""
    dollars = nanos / NANOS_PER_USD
    if abs(dollars) >= 1:
        return f"${dollars:,.2f}"
    if abs(dollars) >= 0.0001 or nanos == 0:
        return f"${dollars:.4f}"
    return f"${dollars:.6f}"


def counted(count: int, noun: str) -> str:
    """`count` and an English noun whose plural takes an s, for people: (1, "model call") -> "1 model call",
    (2, "model call") -> "2 model calls", (0, "answer") -> "0 answers"."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def first_line(error: BaseException) -> str:
    """An exception's message, first line only, or its class name where it has none: what a report of it in
    one line shows ("database \"x\" does not exist", "ConnectionRefusedError")."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


@dataclass(frozen=True, slots=True)
class Footer:
    """What the last message of an answer says about itself. `usage_known` is False when the provider
    sent no usage: then `cost_nanos` is the reservation charged in its place, and `usage` says nothing."""

    usage: Usage
    cost_nanos: int
    budget_left_fraction: float | None = None
    budget_left_nanos: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    usage_known: bool = True
    secrets_masked: int = 0

    def text(self) -> str:
        """The footer's words, one line: `1,234 tokens · $0.0012 · ...notes`."""
        u = self.usage
        tokens = u.prompt_tokens + u.completion_tokens
        if self.usage_known:
            parts = [f"{tokens:,} tokens", format_usd(self.cost_nanos)]
        else:
            parts = [f"usage not reported; charged the reserved {format_usd(self.cost_nanos)}"]
        if self.budget_left_fraction is not None and self.budget_left_fraction < 0.2:
            left = format_usd(self.budget_left_nanos or 0)
            parts.append(f"{left} left in this channel's budget")
        if self.secrets_masked:
            many = self.secrets_masked != 1
            parts.append(f"{self.secrets_masked} secret{'s were' if many else ' was'} masked before sending")
        return " · ".join(parts + list(self.notes))

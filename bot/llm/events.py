"""What goes to the Seed endpoint (`ChatRequest`) and what comes back from it (stream events, `Completion`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.domain import Effort, Usage


@dataclass(slots=True)
class ChatRequest:
    """One Chat Completions call as seedbot makes it; `body` gives the JSON the Seed endpoint takes
    (its Chat Completions reference: `enable_thinking`, `enable_web_search`, `enable_caching` are Seed's own)."""

    messages: list[dict[str, Any]]
    max_tokens: int = 4096
    enable_thinking: bool = True
    reasoning_effort: Effort | None = None
    enable_web_search: bool = False
    enable_caching: bool = False
    stop: list[str] = field(default_factory=list)

    def body(self, model: str, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "messages": self.messages,
            "max_tokens": self.max_tokens,
            "enable_thinking": self.enable_thinking,
            "enable_web_search": self.enable_web_search,
            "enable_caching": self.enable_caching,
            "stream": stream,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        if self.enable_thinking and self.reasoning_effort:
            body["reasoning_effort"] = self.reasoning_effort
        if self.stop:
            body["stop"] = ",".join(self.stop)
        return body


@dataclass(frozen=True, slots=True)
class ContentDelta:
    """Answer text the stream added, as it arrived (already cleaned of NULs and lone surrogates)."""

    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """Thinking text the stream added (`reasoning_content`); shown as progress, never stored as the answer."""

    text: str


@dataclass(frozen=True, slots=True)
class UsageReport:
    """The call's token counts, validated against the context window; the stream's last event but `Finish`."""

    usage: Usage


@dataclass(frozen=True, slots=True)
class UsageRejected:
    """The provider sent a usage object that cannot be trusted; `reason` says why. The call's
    usage is then unknown, and it is charged its reservation."""

    reason: str


@dataclass(frozen=True, slots=True)
class Finish:
    reason: str


StreamEvent = ContentDelta | ReasoningDelta | UsageReport | UsageRejected | Finish


@dataclass(slots=True)
class Completion:
    """A whole answer, as `SeedClient.complete` collects it."""

    content: str
    reasoning: str
    usage: Usage | None
    finish_reason: str

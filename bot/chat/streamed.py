"""One streamed model call as ChatService sees it, and the sentences that say how it ended."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.chat.controls import Stopper
from bot.chat.redaction import redact
from bot.domain import Usage
from bot.llm import SeedContentFiltered, SeedError, SeedStreamBroken
from bot.ports import SinkBroken

# Said to a sink that can no longer show anything, and kept as the Answer's reason. A sink refused for good only
# closes; one whose post failed this once shows it (adapters.slack.sink, adapters.discord.sink).
NOT_POSTED = "The answer could not be posted here, so it was stopped; please ask again."


@dataclass(slots=True)
class StreamedCall:
    """The state of one streamed model call. `parts`: the model's text as it came; `masked_parts`: the same with
    its secrets masked (bot.chat.redaction.StreamRedactor), what the person is shown and what is stored. `sent`:
    the request went to the provider (the cost rule charges nothing for one that did not); `lost`: the platform
    refused the answer for good, so the call was not made or was cut there (bot.ports.SinkBroken)."""

    parts: list[str] = field(default_factory=list)
    masked_parts: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    stopper: Stopper | None = None
    usage: Usage | None = None
    usage_problem: str = "no usage reported"
    finish: str = ""
    error: SeedError | None = None
    lost: SinkBroken | None = None
    sent: bool = False
    started: float = 0.0
    first_token: float | None = None

    def stopped_by(self, stopper: Stopper) -> None:
        self.stopper = stopper

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def masked_text(self) -> str:
        return "".join(self.masked_parts)

    @property
    def failure(self) -> str | None:
        """What went wrong, for the ledger's `error` ("SeedStreamBroken: …", "SinkBroken: …"), or None."""
        problem = self.lost or self.error
        return described(problem) if problem is not None else None


def described(problem: Exception) -> str:
    """An exception as the ledger's `error` column keeps it: its class name, then its message, secrets masked (a
    provider's error may quote what it was sent)."""
    return redact(f"{type(problem).__name__}: {problem}")


def cut_reason(error: SeedError) -> str:
    """The footer's words for an answer the model's stream cut short."""
    if isinstance(error, SeedStreamBroken):
        return "the connection to the model broke."
    return error.user_message.rstrip(".").lower() + "."


LIMIT_REACHED_THINKING = ("The model used its whole output limit thinking and wrote no answer; ask again with --fast "
                          "(less thinking) or a narrower question.")
LIMIT_REACHED = "The model reached its output limit before writing an answer; please ask a narrower question."


def failure_sentence(call: StreamedCall) -> str:
    """What the user reads when a call produced no answer text, or what could not be posted."""
    if call.lost is not None:
        return NOT_POSTED
    if call.error is not None:
        return call.error.user_message
    if call.finish == "content_filter":
        return SeedContentFiltered.user_message
    if call.finish == "length":  # rephrasing would not help
        thought = any(call.reasoning) or bool(call.usage and call.usage.reasoning_tokens)
        return LIMIT_REACHED_THINKING if thought else LIMIT_REACHED
    return "The model returned an empty answer; please rephrase and try again."

"""What the core calls out through. Adapters implement these; the core imports no platform."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from bot.domain import Footer

StepState = Literal["in_progress", "complete", "error"]


@dataclass(frozen=True, slots=True)
class Step:
    """One visible step of preparing an answer ("Searching the web"), as Slack's task_update chunk
    shows it (https://docs.slack.dev/reference/methods/chat.appendStream): `id` is stable across the
    step's updates within one answer, `state` moves from in_progress to complete (or error)."""

    id: str
    title: str
    state: StepState = "in_progress"


class SinkBroken(Exception):
    """Raised by a ReplySink whose platform refuses the answer for good (no permission to post there, the
    channel or the message being edited is gone): nothing more of it can be shown. The core then does not
    ask the model, or stops the call at once, and ends the message "failed" with this as its reason, so
    the text says what the platform answered (its error code, no secrets). The sink logs it once itself."""


class ReplySink(Protocol):
    """Where one answer goes, as it is produced.

    The core calls `start` once, then any number of `status`, `step` and `append`, then exactly one of
    `finish` (the answer is complete or was cut; the footer says which) or `fail` (nothing useful
    was produced, `reason` is a plain sentence for the user). The sink owns pacing and splitting.
    `start`, `step`, `append` and `finish` may raise SinkBroken; `fail` then only closes the sink (it
    posts nothing where the platform refused).
    """

    async def start(self) -> None: ...

    async def status(self, text: str) -> None: ...

    async def step(self, step: Step) -> None:
        """Show a step of the answer's preparation; a sink that cannot show steps shows its title as
        a status, or nothing."""
        ...

    async def append(self, delta: str) -> None: ...

    async def finish(self, footer: Footer) -> None: ...

    async def fail(self, reason: str) -> None: ...


class Notifier(Protocol):
    """Direct messages to people and channels, for summaries and alerts (not answers)."""

    async def send_direct(self, user_id: str, text: str, *, png: bytes | None = None,
                          filename: str = "") -> None: ...

    async def send_channel(self, workspace_id: str, channel_id: str, text: str) -> None: ...

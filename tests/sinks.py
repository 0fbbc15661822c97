"""A ReplySink that records what the core sent it, for tests of the core without a platform."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.domain import Footer
from bot.ports import SinkBroken, Step


@dataclass
class RecordingSink:
    started: int = 0
    statuses: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    deltas: list[str] = field(default_factory=list)
    footer: Footer | None = None
    failure: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.deltas)

    async def start(self) -> None:
        self.started += 1

    async def status(self, text: str) -> None:
        self.statuses.append(text)

    async def step(self, step: Step) -> None:
        self.steps.append(step)

    async def append(self, delta: str) -> None:
        self.deltas.append(delta)

    async def finish(self, footer: Footer) -> None:
        self.footer = footer

    async def fail(self, reason: str) -> None:
        self.failure = reason


REFUSAL = "Discord refused sending the answer in channel 7: 403 Missing Permissions (error code 50013)"


@dataclass
class RefusingSink(RecordingSink):
    """A platform that refuses the answer for good (bot.ports.SinkBroken) at `refuse_at`: "start", "append"
    (from the second one on) or "finish"."""

    refuse_at: str = "start"

    async def start(self) -> None:
        await super().start()
        if self.refuse_at == "start":
            raise SinkBroken(REFUSAL)

    async def append(self, delta: str) -> None:
        if self.refuse_at == "append" and self.deltas:
            raise SinkBroken(REFUSAL)
        await super().append(delta)

    async def finish(self, footer: Footer) -> None:
        await super().finish(footer)
        if self.refuse_at == "finish":
            raise SinkBroken(REFUSAL)


@dataclass
class Sent:
    kind: str
    to: str
    text: str
    png: bytes | None = None


@dataclass
class RecordingNotifier:
    """A Notifier that records deliveries; `fail_times` makes the next sends raise."""

    sent: list[Sent] = field(default_factory=list)
    fail_times: int = 0

    async def send_direct(self, user_id: str, text: str, *, png: bytes | None = None, filename: str = "") -> None:
        self._maybe_fail()
        self.sent.append(Sent("direct", user_id, text, png))

    async def send_channel(self, workspace_id: str, channel_id: str, text: str) -> None:
        self._maybe_fail()
        self.sent.append(Sent("channel", f"{workspace_id}/{channel_id}", text))

    def _maybe_fail(self) -> None:
        if self.fail_times:
            self.fail_times -= 1
            raise ConnectionError("platform unreachable")

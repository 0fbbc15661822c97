"""A ReplySink that records what the core sent it, for tests of the core without a platform."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.domain import Footer


@dataclass
class RecordingSink:
    started: int = 0
    statuses: list[str] = field(default_factory=list)
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

    async def append(self, delta: str) -> None:
        self.deltas.append(delta)

    async def finish(self, footer: Footer) -> None:
        self.footer = footer

    async def fail(self, reason: str) -> None:
        self.failure = reason

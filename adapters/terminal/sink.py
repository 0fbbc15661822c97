"""A ReplySink for the terminal: the answer streams to stdout as it arrives."""

from __future__ import annotations

import sys
from typing import TextIO

from bot.domain import Footer
from bot.ports import Step


class TerminalSink:
    def __init__(self, out: TextIO = sys.stdout, err: TextIO = sys.stderr, *, quiet: bool = False) -> None:
        self._out = out
        self._err = err
        self._quiet = quiet
        self._wrote_answer = False
        self.footer: Footer | None = None
        self.failure: str | None = None

    async def start(self) -> None:
        pass

    async def status(self, text: str) -> None:
        if not self._quiet and self._err.isatty():
            self._err.write(f"({text})\r")
            self._err.flush()

    async def step(self, step: Step) -> None:
        if step.state == "in_progress":
            await self.status(step.title)

    async def append(self, delta: str) -> None:
        self._wrote_answer = True
        if not self._quiet:
            self._out.write(delta)
            self._out.flush()

    async def finish(self, footer: Footer) -> None:
        self.footer = footer
        if not self._quiet:
            if self._wrote_answer:
                self._out.write("\n")
            self._out.write(f"-- {footer.text()}\n")
            self._out.flush()

    async def fail(self, reason: str) -> None:
        self.failure = reason
        self._err.write(f"seedbot: {reason}\n")
        self._err.flush()

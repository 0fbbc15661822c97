"""The sink the core writes to: a ReplySink whose failures are logged, never raised into the books."""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from bot.domain import Footer
from bot.ports import ReplySink, SinkBroken, Step

log = logging.getLogger(__name__)


class GuardedSink:
    """Shields the core from a failing platform: a sink error is logged and never interrupts the
    accounting of a call that is already paid for. After an append fails, later appends are skipped
    (the platform is not hammered); finish and fail are still tried, since they may recover.

    A SinkBroken from any call is the platform refusing the answer for good: `lost` keeps it (the first
    one), for the core to stop the model call and end the message failed. It is not logged again here:
    the sink that raised it logged it once, with the platform's error code."""

    def __init__(self, sink: ReplySink) -> None:
        self._sink = sink
        self.broken = False
        self.lost: SinkBroken | None = None

    async def start(self) -> None:
        await self._call("start", self._sink.start())

    async def status(self, text: str) -> None:
        await self._call("status", self._sink.status(text))

    async def step(self, step: Step) -> None:
        await self._call("step", self._sink.step(step))

    async def append(self, delta: str) -> None:
        if not self.broken:
            self.broken = not await self._call("append", self._sink.append(delta))

    async def finish(self, footer: Footer) -> None:
        await self._call("finish", self._sink.finish(footer))

    async def fail(self, reason: str) -> None:
        await self._call("fail", self._sink.fail(reason))

    async def _call(self, what: str, call: Awaitable[None]) -> bool:
        try:
            await call
        except SinkBroken as exc:
            self.broken = True
            self.lost = self.lost or exc
            log.debug("reply sink %s: the platform refuses the answer (%s)", what, exc)
            return False
        except Exception:  # noqa: BLE001 - any platform failure; the books come first
            log.exception("reply sink %s failed", what)
            return False
        return True

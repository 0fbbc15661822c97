"""A bound on how many answers are in their start phase at once.

Starting an answer is the event loop's busiest moment: the platform event is dispatched, the message
claimed and the money reserved, a connection to the model opened and the request sent, and the
platform's first calls made. When hundreds of answers start in the same instant, their tasks wake
together and the loop spends long iterations on them, in which nothing else (an unrelated Slack
event's acknowledgement, /healthz) is served. The gate lets STARTS_AT_ONCE answers start at a time;
an answer leaves it as soon as the model's first event arrives, when it ends, or after
MAX_HOLD_SECONDS at most (a review, a slow model, a loaded machine), so nothing waits long behind it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

STARTS_AT_ONCE = 16
MAX_HOLD_SECONDS = 1.0


class StartGate:
    def __init__(self, at_once: int = STARTS_AT_ONCE, max_hold_seconds: float = MAX_HOLD_SECONDS) -> None:
        self._places = asyncio.Semaphore(at_once)
        self._max_hold = max_hold_seconds

    @asynccontextmanager
    async def starting(self) -> AsyncIterator[Callable[[], None]]:
        """Wait for a place; yields `started()`, which gives it back (idempotent; also done on exit)."""
        await self._places.acquire()
        held = True

        def started() -> None:
            nonlocal held
            if held:
                held = False
                timer.cancel()
                self._places.release()

        timer = asyncio.get_running_loop().call_later(self._max_hold, started)
        try:
            yield started
        finally:
            started()

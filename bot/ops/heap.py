"""Hand freed heap back to the operating system once a burst of answers is over, and keep the cyclic
garbage collector's full collections short.

A burst of streaming answers allocates many short-lived buffers (HTTP bodies, SQLite pages, JSON) in
the event loop's thread and in the SQLite writer thread. Python frees them, but glibc's malloc keeps
the freed pages of each thread's arena for reuse, so resident memory steps up after every burst that
happens to fragment a new stretch of heap, and never comes down. `malloc_trim(0)` (glibc's documented
call for this, malloc_trim(3)) returns the free pages at the top of every arena and the free whole pages
inside them. On other C libraries there is nothing to call and nothing happens.

A full (generation 2) collection scans every tracked object. After start-up that is ~150,000 objects
(modules, SDK clients, compiled statements) that live as long as the process, and scanning them took
85-95 ms on this machine: one such collection in the middle of a burst held up every acknowledgement
and health check queued behind it. `freeze_long_lived` moves them out of the collector's sight.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
from typing import Any

log = logging.getLogger(__name__)

IDLE_SECONDS = 1.0  # how long no answer must have run before trimming: not between two answers of a burst


def freeze_long_lived() -> int:
    """Collect, then move every object alive now to the collector's permanent generation (`gc.freeze`,
    Python's gc docs), so that later full collections scan only what was made after. For a process once
    it has started: what is frozen is never collected, so it is called once, when everything alive is
    meant to live on. Returns how many objects are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def _malloc_trim() -> Any | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


class HeapTrimmer:
    """Calls glibc's malloc_trim(0), in a worker thread, once the process has been idle IDLE_SECONDS
    after work. `running_changed(running)` is told how many units of work (answers) run, whenever
    one starts or ends."""

    def __init__(self, idle_seconds: float = IDLE_SECONDS) -> None:
        self._trim = _malloc_trim()
        self._idle_seconds = idle_seconds
        self._timer: asyncio.TimerHandle | None = None
        self._running: asyncio.Task[None] | None = None
        self.trims = 0

    def running_changed(self, running: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._trim is not None and running == 0:
            self._timer = asyncio.get_running_loop().call_later(self._idle_seconds, self._start)

    def _start(self) -> None:
        self._timer = None
        if self._running is None or self._running.done():
            self._running = asyncio.get_running_loop().create_task(self._release(), name="heap-trim")

    async def _release(self) -> None:
        assert self._trim is not None
        await asyncio.to_thread(self._trim, 0)
        self.trims += 1

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

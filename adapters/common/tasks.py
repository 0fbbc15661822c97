"""Fire-and-forget work that is still accounted for: adapters answer each message in a task, and
this keeps a reference to every task (so none is garbage-collected mid-answer), logs any exception
(so one bad message never kills the process) and lets shutdown wait for answers in flight."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

# After the grace, how long cancelled answers may take to close (settle, then post the interruption
# notice) before shutdown stops waiting for them: a platform that answers slowly must not hold the
# process past its supervisor's patience. The books are settled before the notice is sent, and a notice
# never sent is posted by crash recovery at the next start (adapters/common/recovery.py).
CLOSING_SECONDS = 10.0


class BackgroundTasks:
    def __init__(self, on_count: Callable[[int], None] | None = None) -> None:
        """`on_count(running)` is called whenever a task starts or ends (bot.ops.heap.HeapTrimmer uses it)."""
        self._tasks: set[asyncio.Task[Any]] = set()
        self._on_count = on_count

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str = "") -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name or None)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        if self._on_count is not None:
            self._on_count(len(self._tasks))
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if self._on_count is not None:
            self._on_count(len(self._tasks))
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("task %s failed", task.get_name(), exc_info=exc)

    def __len__(self) -> int:
        return len(self._tasks)

    async def _unfinished(self, seconds: float, hurry: asyncio.Event | None) -> set[asyncio.Task[Any]]:
        """The tasks still running after `seconds`, or as soon as `hurry` is set (none cancelled). Tasks
        spawned meanwhile (an answer its dispatch started) are waited for too, within the same time."""
        deadline = asyncio.get_running_loop().time() + seconds
        hurried = asyncio.ensure_future(hurry.wait()) if hurry is not None else None
        try:
            while (running := {task for task in self._tasks if not task.done()}) and \
                    (left := deadline - asyncio.get_running_loop().time()) > 0:
                # Cancelling this waiter (below) leaves the tasks it watches running: asyncio.wait never cancels them.
                everything = asyncio.ensure_future(asyncio.wait(running))
                try:
                    waited = {everything} if hurried is None else {everything, hurried}
                    await asyncio.wait(waited, timeout=left, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    everything.cancel()
                if hurried is not None and hurried.done():
                    break
        finally:
            if hurried is not None:
                hurried.cancel()
        return {task for task in self._tasks if not task.done()}

    async def drain(self, grace_seconds: float, closing_seconds: float = CLOSING_SECONDS,
                    hurry: asyncio.Event | None = None) -> int:
        """Wait up to `grace_seconds` for tasks in flight (less if `hurry` is set meanwhile: an operator's
        second signal), then cancel the rest and give them up to `closing_seconds` to close; one still
        closing then is cancelled again and no longer waited for (its shielded close goes on while the
        process lives). Returns how many were cancelled."""
        if not self._tasks:
            return 0
        pending = await self._unfinished(grace_seconds, hurry)
        for task in pending:
            task.cancel()
        if pending:
            _closed, closing = await asyncio.wait(pending, timeout=closing_seconds)
            if closing:
                log.warning("%d answers did not close within %g s after the grace; leaving them to crash recovery",
                            len(closing), closing_seconds)
            for task in closing:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        return len(pending)

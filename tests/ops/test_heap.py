"""HeapTrimmer: the heap is trimmed once the last answer of a burst has ended, not between answers."""

from __future__ import annotations

import asyncio

from adapters.common.tasks import BackgroundTasks
from bot.ops.heap import HeapTrimmer


async def test_trims_once_after_the_last_task_of_a_burst() -> None:
    heap = HeapTrimmer(idle_seconds=0.05)
    tasks = BackgroundTasks(on_count=heap.running_changed)
    for delay in (0.01, 0.02, 0.03):
        tasks.spawn(asyncio.sleep(delay))
    await tasks.drain(5)
    assert heap.trims == 0  # not while the burst ran, nor the instant it ended
    for _ in range(100):
        if heap.trims:
            break
        await asyncio.sleep(0.02)
    assert heap.trims == 1


async def test_new_work_postpones_the_trim() -> None:
    heap = HeapTrimmer(idle_seconds=0.2)
    tasks = BackgroundTasks(on_count=heap.running_changed)
    await tasks.spawn(asyncio.sleep(0))
    await asyncio.sleep(0.05)
    tasks.spawn(asyncio.sleep(0.5))  # still running when the first timer would have fired
    await asyncio.sleep(0.3)
    assert heap.trims == 0
    heap.cancel()

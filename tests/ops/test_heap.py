"""HeapTrimmer: the heap is trimmed once the last answer of a burst has ended, not between answers; and
what lives at start-up is frozen out of full collections."""

from __future__ import annotations

import asyncio
import gc

from adapters.common.tasks import BackgroundTasks
from bot.ops.heap import HeapTrimmer, freeze_long_lived


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


def test_freezing_takes_what_lives_now_out_of_full_collections() -> None:
    class Node:
        pass

    survivor, garbage = Node(), Node()
    survivor.self, garbage.self = survivor, garbage  # cycles: only the collector can tell them apart
    garbage_id = id(garbage)
    del garbage
    try:
        frozen = freeze_long_lived()
        assert frozen == gc.get_freeze_count() > 0
        # The unreachable cycle was collected first; what lives on is no longer scanned by any generation.
        tracked = {id(o) for o in gc.get_objects()}
        assert id(survivor) not in tracked and garbage_id not in tracked
        made_after = Node()
        assert id(made_after) in {id(o) for o in gc.get_objects()}
    finally:
        gc.unfreeze()  # the test process goes on collecting as before

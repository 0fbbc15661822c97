"""StartGate: a bounded number of answers in their start phase; an answer leaves it at its model's
first event, so a long answer never keeps the next one from starting. And long texts are counted off the loop."""

from __future__ import annotations

import asyncio
import threading
import time

from bot.chat.service import ChatService
from bot.chat.start_gate import StartGate
from tests.factories import incoming
from tests.fakes.seed import FakeSeed, Reply
from tests.sinks import RecordingSink


async def test_no_more_than_the_bound_start_at_once_and_every_place_comes_back() -> None:
    gate = StartGate(2)
    inside: list[int] = []
    now = 0

    async def one(fail: bool) -> None:
        nonlocal now
        async with gate.starting() as started:
            now += 1
            inside.append(now)
            await asyncio.sleep(0.01)
            now -= 1
            started()
            started()  # twice is once
            if fail:
                raise ValueError("an answer that failed")

    results = await asyncio.gather(*(one(i == 3) for i in range(8)), return_exceptions=True)
    assert max(inside) == 2 and len(inside) == 8
    assert sum(isinstance(r, ValueError) for r in results) == 1
    async with asyncio.timeout(5), gate.starting(), gate.starting():
        pass  # both places are free again


async def test_a_place_comes_back_after_the_longest_hold_even_if_never_given() -> None:
    gate = StartGate(1, max_hold_seconds=0.05)
    async with gate.starting():
        async with asyncio.timeout(5), gate.starting():  # a review, say, still running in the first
            pass


async def test_a_streaming_answer_does_not_hold_the_only_place(core_for, sqlite_url: str,
                                                              fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url)
    service = ChatService(settings=core.settings, llm=core.llm, budget=core.budget, store=core.store,
                          prices=core.prices, starts_at_once=1)
    # A stream shorter than the gate's longest hold, so only its first event can free the place in time.
    fake_seed.script(Reply(content="long " * 20, chunk_chars=5, chunk_delay=0.02), Reply(content="short"))

    class FinishTime(RecordingSink):
        finished_at = 0.0

        async def finish(self, footer) -> None:  # noqa: ANN001
            self.finished_at = time.monotonic()
            await super().finish(footer)

    first_sink = FinishTime()
    first = asyncio.create_task(service.handle(incoming("first", thread="t1"), first_sink))
    await asyncio.sleep(0)  # the first answer takes the only place
    second = await service.handle(incoming("second", thread="t2"), RecordingSink())
    await first
    assert second is not None and second.text == "short"
    assert fake_seed.requests[1].at < first_sink.finished_at  # started while the first still streamed


async def test_long_texts_are_counted_off_the_event_loop() -> None:
    from bot.chat.service import OFF_LOOP_CHARS, _estimate

    loop_thread = threading.get_ident()
    seen: list[int] = []

    def count() -> int:
        seen.append(threading.get_ident())
        return 7

    assert await _estimate(count, OFF_LOOP_CHARS - 1) == 7
    assert await _estimate(count, OFF_LOOP_CHARS) == 7
    assert seen[0] == loop_thread and seen[1] != loop_thread

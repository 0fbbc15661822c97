"""AckFirst: acknowledged events are dispatched once Slack requests stop arriving, in order, and never held
past the hold time under steady traffic."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from adapters.common.tasks import BackgroundTasks
from adapters.slack.adapter import AckFirst


def recording() -> tuple[list[str], Callable[[str], Callable[[], Awaitable[None]]]]:
    """What was dispatched, in order, and a maker of dispatches that record their event."""
    dispatched: list[str] = []

    def dispatch_of(event: str) -> Callable[[], Awaitable[None]]:
        async def dispatch() -> None:
            dispatched.append(event)

        return dispatch

    return dispatched, dispatch_of


async def test_a_burst_is_dispatched_only_after_its_last_request_and_in_order() -> None:
    tasks = BackgroundTasks()
    dispatched, dispatch_of = recording()
    gate = AckFirst(tasks, hold_seconds=60.0)
    for turn in range(5):  # a request acknowledged in each of five turns of the loop
        gate.arrived()
        gate.dispatch_later(dispatch_of(f"event {turn}"))
        await asyncio.sleep(0)
        assert dispatched == []
    await tasks.drain(5.0)
    assert dispatched == [f"event {turn}" for turn in range(5)]


async def test_steady_traffic_holds_a_dispatch_no_longer_than_the_hold() -> None:
    tasks = BackgroundTasks()
    dispatched, dispatch_of = recording()
    gate = AckFirst(tasks, hold_seconds=0.05)
    gate.dispatch_later(dispatch_of("first"))
    turns = 0
    while not dispatched:  # a new request every turn: without the hold this would never end
        gate.arrived()
        await asyncio.sleep(0)
        turns += 1
        assert turns < 1_000_000
    await tasks.drain(5.0)
    assert dispatched == ["first"]

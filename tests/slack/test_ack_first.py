"""AckFirst: acknowledged events are dispatched once Slack requests stop arriving, in order, never held past
the hold time under steady traffic, and never dropped by a shutdown: what is held when the process stops
accepting is dispatched then, within the shutdown's grace."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from adapters import runtime
from adapters.common.tasks import BackgroundTasks
from adapters.slack.adapter import AckFirst, SlackAdapter
from bot.config import Settings
from tests.books import read_books_at
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack
from tests.slack.harness import bot_replies, running_bot


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


async def test_a_shutdown_releasing_the_queue_while_requests_arrive_logs_no_error(
        caplog: pytest.LogCaptureFixture) -> None:
    """stop_accepting releases the queue while the release waits a turn of the loop, and the requests answered
    503 meanwhile still count as arrivals: the release found its queue empty and raised IndexError."""
    tasks = BackgroundTasks()
    dispatched, dispatch_of = recording()
    gate = AckFirst(tasks, hold_seconds=60.0)
    gate.dispatch_later(dispatch_of("acknowledged"))
    await asyncio.sleep(0)  # the release is waiting its turn
    gate.release_now()
    gate.arrived()
    await tasks.drain(5.0)
    assert dispatched == ["acknowledged"]
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]


async def _requests_every_turn(gate: AckFirst) -> None:
    while True:  # what handle_http does first for each request, in every turn of the loop: a burst
        gate.arrived()
        await asyncio.sleep(0)


@pytest.mark.parametrize("cut", ["no grace", "second signal"])
async def test_a_shutdown_that_cuts_the_hold_short_still_dispatches_what_was_acknowledged(cut: str) -> None:
    tasks = BackgroundTasks()
    dispatched, dispatch_of = recording()
    gate = AckFirst(tasks, hold_seconds=60.0)
    burst = asyncio.create_task(_requests_every_turn(gate))
    await asyncio.sleep(0)
    gate.dispatch_later(dispatch_of("acknowledged"))
    if cut == "no grace":
        await tasks.drain(0.0)  # cancels the release before it ever ran
    else:
        hurry = asyncio.Event()
        hurry.set()
        await tasks.drain(60.0, hurry=hurry)  # cancels it while it holds
    burst.cancel()
    await tasks.drain(5.0)
    assert dispatched == ["acknowledged"]


async def test_stop_accepting_dispatches_what_is_held_within_the_shutdown_grace(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The drain after the platforms close is made short, so an answer it (not the grace) waited for would be cut.
    monkeypatch.setattr(runtime, "DRAIN_SECONDS", 0.5)
    fake_seed.script(Reply(content="Streamed for a while. " * 20, chunk_chars=20, chunk_delay=0.05))
    async with running_bot(slack, settings_for, tmp_path, SEEDBOT_SHUTDOWN_GRACE=30) as bot:
        [adapter] = bot.process.adapters
        assert isinstance(adapter, SlackAdapter)
        adapter._ack_first._hold = 60.0  # held until the process stops accepting, however slow this machine
        burst = asyncio.create_task(_requests_every_turn(adapter._ack_first))
        mention = slack.events.app_mention("asked during a burst")
        async with slack.sender(bot.events_url) as sender:
            assert (await sender.post_event(mention)).status == 200
        assert slack.calls() == [] or all(c.method == "auth.test" for c in slack.calls())  # not dispatched yet
    burst.cancel()  # the bot stopped (leaving the block) while the burst went on
    books = await read_books_at(f"sqlite+aiosqlite:///{tmp_path / 'slack.db'}")
    assert [row.status for row in books.ledger] == ["ok"] and books.user_statuses == ["ok"]
    [reply] = bot_replies(slack, "C1", mention["event"]["ts"])
    assert "Streamed for a while." in reply.visible_text

"""Live calls keep their reservations (point 5 of the failure contract): a running call's
reservation is extended by the heartbeat, only a dead process's expires, and a settlement that
arrives after an expiry corrects that ledger row instead of booking twice."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text, update
from sqlalchemy.util import await_only

from bot.budget import counters
from bot.budget.outcomes import Grant, Settlement
from bot.budget.reservations import CLOSED_KEPT, BudgetManager
from bot.config import Settings
from bot.domain import Platform
from bot.storage.tables import Reservation, utcnow
from tests.books import read_books
from tests.factories import incoming
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack
from tests.slack.harness import running_bot, wait_for_answer
from tests.waiting import wait_until_idle


async def reserve(core, message_id: str = "warm") -> Grant:  # noqa: ANN001
    claimed = await core.store.claim(incoming("create channel", message_id=message_id), "", 0)
    assert claimed is not None
    grant = await core.budget.reserve(channel_pk=claimed.channel.pk, scope_key=claimed.channel.scope_key,
                                      thread_pk=claimed.thread.pk, user_id="U1", kind="chat",
                                      estimated_prompt_tokens=1_000, wanted_max_tokens=4_096, web_search=False)
    assert isinstance(grant, Grant)
    return grant


async def test_a_call_slower_than_the_ttl_keeps_its_reservation_and_books_its_usage(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    fake_seed.script(Reply(content="Worth the wait.", first_token_delay=5.0, prompt_tokens=100, completion_tokens=5))
    async with running_bot(slack, settings_for, tmp_path, SEEDBOT_RESERVATION_TTL=2) as bot, \
            slack.sender(bot.events_url) as sender:
        mention = slack.events.app_mention("slow question")
        await sender.post_event(mention)
        await wait_for_answer(slack, "C1", mention["event"]["ts"], timeout=30)
        await bot.idle(timeout=30)
        assert bot.process.core is not None
        books = await read_books(bot.process.core.db)
    (row,) = books.ledger
    assert row.status == "ok" and row.usage_known and row.error is None
    assert [r.status for r in books.reservations] == ["settled"]
    assert books.user_statuses == ["ok"] and books.balanced()


async def test_a_dead_processs_reservation_expires_while_the_live_one_is_kept(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    async with running_bot(slack, settings_for, tmp_path, SEEDBOT_RESERVATION_TTL=2) as bot:
        core = bot.process.core
        assert core is not None
        live = await reserve(core, "live")  # held by this process: the heartbeat extends it
        core.budget._live.discard((dead := await reserve(core, "dead")).reservation_id)  # as if its process died

        async def expired() -> bool:
            books = await read_books(core.db)
            return {r.id: r.status for r in books.reservations}.get(dead.reservation_id) == "expired"

        for _ in range(300):  # polled: expiry comes from the maintenance loop, within TTL + one tick
            if await expired():
                break
            await asyncio.sleep(0.1)
        books = await read_books(core.db)
        statuses = {r.id: r.status for r in books.reservations}
        assert statuses[live.reservation_id] == "active"
        (row,) = books.ledger
        assert row.status == "expired" and row.cost_nanos == dead.amount_nanos and not row.usage_known
        await core.budget.settle(live, Settlement(status="ok", cost_nanos=10))
        await wait_until_idle(bot.process.tasks)


async def test_a_settlement_after_expiry_corrects_the_row_instead_of_booking_twice(
        core_for, database_url: str, fake_seed: FakeSeed) -> None:
    core = await core_for(database_url)
    grant = await reserve(core)
    later = utcnow() + timedelta(seconds=core.settings.reservation_ttl_seconds + 1)
    assert await core.budget.expire_stale(now=later) == 1
    before = await read_books(core.db)
    assert before.counter("slack:C1").spent_nanos == grant.amount_nanos
    await core.budget.settle(grant, Settlement(status="ok", cost_nanos=1_234, prompt_tokens=10,
                                               completion_tokens=3, usage_known=True))
    books = await read_books(core.db)
    (row,) = books.ledger
    assert (row.status, row.cost_nanos, row.usage_known, row.prompt_tokens) == ("ok", 1_234, True, 10)
    assert "expired" in (row.error or "")
    assert books.counter("slack:C1").spent_nanos == 1_234 and books.balanced()
    assert [r.status for r in books.reservations] == ["settled"]


async def test_expiring_several_reservations_beside_a_settlement_does_not_deadlock(
        core_for, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`expire_stale` closes dead reservations in id order. It used to lock each one's counters as it moved
    them, so a Slack reservation's (global, slack:…) and then a Discord one's (discord:…, global…), while a live
    Discord call's settlement locked discord:… then global: a cycle, and PostgreSQL killed the expiry. It now
    locks all their counters first, in the key order every transaction uses. (A global limit, so that the global
    scope has a counter.)"""
    core = await core_for(postgres_url, SEEDBOT_GLOBAL_BUDGET="100/day")

    async def reserve(platform: Platform, channel: str, user: str) -> Grant:
        claimed = await core.store.claim(incoming("q", platform=platform, channel=channel, user=user), "", 0)
        assert claimed is not None
        grant = await core.budget.reserve(channel_pk=claimed.channel.pk, scope_key=claimed.channel.scope_key,
                                          thread_pk=claimed.thread.pk, user_id=user, kind="chat",
                                          estimated_prompt_tokens=1_000, wanted_max_tokens=1_000, web_search=False)
        assert isinstance(grant, Grant)
        return grant

    await reserve(Platform.SLACK, "C1", "U1")
    await reserve(Platform.DISCORD, "D1", "U2")
    live = await reserve(Platform.DISCORD, "D1", "U3")
    await core.db.run(lambda session: session.execute(text(
        f"UPDATE budget_reservations SET expires_at = now() + interval '1 day' WHERE id = {live.reservation_id}")))
    first_moved, expiring = asyncio.Event(), contextvars.ContextVar("expiring", default=False)
    move = counters.move

    def pausing(connection: Any, *args: Any, **kwargs: Any) -> Any:
        moved = move(connection, *args, **kwargs)
        if expiring.get() and not first_moved.is_set():
            first_moved.set()  # the first dead reservation's counters are moved; let the settlement start
            await_only(asyncio.sleep(0.5))
        return moved

    monkeypatch.setattr(counters, "move", pausing)

    async def expire() -> int:
        expiring.set(True)
        return await core.budget.expire_stale(utcnow() + timedelta(hours=1))

    async def settle() -> object:
        await first_moved.wait()
        return await core.budget.settle(live, Settlement(status="ok", cost_nanos=1))

    expired, _ = await asyncio.wait_for(asyncio.gather(expire(), settle()), 30)
    assert expired == 2
    books = await read_books(core.db)
    assert not books.active_reservations and books.balanced()


async def test_closed_reservations_are_pruned_a_week_after_their_call_ended(core_for, database_url: str) -> None:
    """A reservation closed (settled, released or expired) and dead for more than `CLOSED_KEPT` is deleted, oldest
    first; its ledger row stays, and the books with it. An active one stays whatever its age, a recent closed one
    stays, and so does the highest id (SQLite would give it again, and the ledger's reservation_pk is unique)."""
    core = await core_for(database_url, SEEDBOT_DEFAULT_CHANNEL_BUDGET="5/day")
    await core.store.claim(incoming("creates channel 1", message_id="warm"), "", 0)
    now = [datetime(2030, 1, 9, 10)]
    budget = BudgetManager(core.db, core.settings, core.prices, clock=lambda: now[0])
    call: Any = dict(channel_pk=1, scope_key="slack:C1", thread_pk=None, user_id="U1", kind="chat",
                     estimated_prompt_tokens=10, wanted_max_tokens=10, web_search=False)

    async def grant() -> Grant:
        granted = await budget.reserve(**call)
        assert isinstance(granted, Grant)
        return granted

    async def settled(cost_nanos: int) -> Grant:
        granted = await grant()
        await budget.settle(granted, Settlement(status="ok", cost_nanos=cost_nanos))
        return granted

    settled_long_ago, released, dead = await settled(1_000), await settled(0), await grant()
    now[0] += timedelta(hours=1)
    assert await budget.expire_stale() == 1
    running = await grant()
    budget._live.discard(running.reservation_id)  # left active past its expiry: only expire_stale closes it
    newest = await settled(2_000)
    now[0] += CLOSED_KEPT + timedelta(days=1)
    assert await budget.prune_closed() == 3
    books = await read_books(core.db)
    assert [(r.id, r.status) for r in books.reservations] == [
        (running.reservation_id, "active"), (newest.reservation_id, "settled")]
    assert [row.reservation_pk for row in books.ledger] == [
        settled_long_ago.reservation_id, released.reservation_id, dead.reservation_id, newest.reservation_id]
    (counter,) = books.counters  # the day's: what its calls spent, and `running` still reserved
    assert (counter.spent_nanos, counter.reserved_nanos) == (books.ledger_spent("slack:C1"), running.amount_nanos)
    recent = await settled(3_000)  # now the highest id: `newest` may go, `recent` was alive a moment ago
    assert await budget.prune_closed() == 1
    assert [r.id for r in (await read_books(core.db)).reservations] == [running.reservation_id, recent.reservation_id]
    assert await budget.prune_closed() == 0


async def test_the_running_bot_prunes_closed_reservations_when_its_maintenance_starts(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    """Through `seedbot run`'s maintenance loop: two answers in Slack, the first one's reservation aged past
    `CLOSED_KEPT`; the bot started again deletes it (its first maintenance tick runs at start), and keeps the
    second one's and both ledger rows."""
    fake_seed.default_reply = Reply(content="Answered.")
    for question in ("first", "second"):
        async with running_bot(slack, settings_for, tmp_path) as bot, slack.sender(bot.events_url) as sender:
            mention = slack.events.app_mention(question)
            await sender.post_event(mention)
            await wait_for_answer(slack, "C1", mention["event"]["ts"])
            await bot.idle(timeout=30)
            assert bot.process.core is not None
            first, *_ = (await read_books(bot.process.core.db)).reservations
            if question == "second":
                await bot.process.core.db.run(lambda session, pk=first.id: session.execute(
                    update(Reservation).where(Reservation.id == pk)
                    .values(expires_at=utcnow() - CLOSED_KEPT - timedelta(hours=1))))
    async with running_bot(slack, settings_for, tmp_path) as bot:
        assert bot.process.core is not None
        core = bot.process.core

        for _ in range(300):  # polled: the maintenance loop's first tick runs beside the start
            if len((books := await read_books(core.db)).reservations) == 1:
                break
            await asyncio.sleep(0.1)
    assert [r.status for r in books.reservations] == ["settled"] and books.reservations[0].id != first.id
    assert len(books.ledger) == 2 and books.balanced()


async def test_the_stale_reservations_of_many_people_expire_in_batches(core_for, postgres_url: str) -> None:
    """A fleet down for longer than the TTL leaves the reservations of 1,700 people stale at once: they expire
    and the books balance. Taken in one transaction, their 1,702 scopes' locks were one select list longer than
    PostgreSQL takes (1,664 entries): nothing expired, ever, and no process could start (found by a break-it
    review)."""
    core = await core_for(postgres_url, SEEDBOT_DEFAULT_CHANNEL_BUDGET="100000/day")
    await core.store.claim(incoming("creates channel 1", message_id="warm"), "", 0)
    call: Any = dict(channel_pk=1, scope_key="slack:C1", thread_pk=None, kind="chat", estimated_prompt_tokens=10,
                     wanted_max_tokens=10, web_search=False)
    for start in range(0, 1_700, 50):
        grants = await asyncio.gather(*(core.budget.reserve(**call, user_id=f"U{n}") for n in range(start, start + 50)))
        assert all(isinstance(grant, Grant) for grant in grants)
    core.budget._live.clear()  # their process died
    assert await core.budget.expire_stale(utcnow() + timedelta(days=1)) == 1_700
    books = await read_books(core.db)
    assert not books.active_reservations and len(books.ledger) == 1_700 and books.balanced()

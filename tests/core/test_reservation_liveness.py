"""Live calls keep their reservations (point 5 of the failure contract): a running call's
reservation is extended by the heartbeat, only a dead process's expires, and a settlement that
arrives after an expiry corrects that ledger row instead of booking twice."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.util import await_only

from bot.budget import counters
from bot.budget.outcomes import Grant, Settlement
from bot.config import Settings
from bot.domain import Platform
from bot.storage.tables import utcnow
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

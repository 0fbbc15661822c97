"""Counters exist only where a limit is (bot.budget.counters): a scope without one has no counter, and a counter
that opens while calls are running counts them and is released by them, whatever they named."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.util import await_only

from bot.budget import reservations
from bot.budget.counters import counter_key, open_counter, scopes_of
from bot.budget.locks import scope_lock, scopes_shared
from bot.budget.outcomes import Grant, Settlement
from bot.budget.reservations import BudgetManager
from bot.budget.scopes import GLOBAL_SCOPE, call_scopes, channel_scope
from bot.domain import NANOS_PER_USD, Incoming, Platform, ThreadKey
from bot.storage.conversations import ConversationStore
from bot.storage.tables import utcnow
from tests.books import read_books
from tests.factories import incoming

SCOPE = channel_scope("slack", "C1")
CALL: Any = dict(channel_pk=1, scope_key=SCOPE, thread_pk=None, user_id="U1", kind="chat",
                 estimated_prompt_tokens=10, wanted_max_tokens=10, web_search=False)


async def reserve(core) -> Grant:  # noqa: ANN001
    grant = await core.budget.reserve(**CALL)
    assert isinstance(grant, Grant)
    return grant


def hold_the_next_reservation(monkeypatch: pytest.MonkeyPatch) -> tuple[asyncio.Event, asyncio.Event]:
    """The next call to reserve stops between its read and its INSERT (`planned` is set then) until `release` is
    set, holding its transaction and its locks; the calls after it run through."""
    planned, release = asyncio.Event(), asyncio.Event()
    reserve_if_room = reservations.reserve_if_room

    def held(connection: Any, *args: Any) -> int | None:
        if not planned.is_set():
            planned.set()
            await_only(release.wait())
        return reserve_if_room(connection, *args)

    monkeypatch.setattr(reservations, "reserve_if_room", held)
    return planned, release


async def test_no_limit_no_counter_and_a_global_limit_set_mid_call_is_released_by_that_call(
        core_for, database_url: str) -> None:
    """Without a global limit no answer touches a global counter. A call reserved then is counted when a limit
    appears (the counter opens from the books, counting it as reserved) and, though it names no global counter,
    moves it when it settles: without that the counter kept its amount reserved until the day ended."""
    core = await core_for(database_url, SEEDBOT_DEFAULT_CHANNEL_BUDGET="none")
    await core.store.claim(incoming("creates channel 1", message_id="warm"), "", 0)
    await core.budget.settle(await reserve(core), Settlement(status="ok", cost_nanos=2 * NANOS_PER_USD))
    running = await reserve(core)
    assert (await read_books(core.db)).counters == []
    await core.budget.limits.set_limit(GLOBAL_SCOPE, "10/day", "test")
    after = await reserve(core)  # opens the global counter: $2 spent, `running` reserved
    books = await read_books(core.db)
    (counter,) = books.counters
    assert (counter.scope_key, counter.spent_nanos) == (GLOBAL_SCOPE, 2 * NANOS_PER_USD)
    assert counter.reserved_nanos == running.amount_nanos + after.amount_nanos
    assert [r.counter_keys for r in books.reservations] == ["", "", counter_key(
        GLOBAL_SCOPE, "day", counter.period_start)]
    await core.budget.settle(running, Settlement(status="ok", cost_nanos=NANOS_PER_USD))
    await core.budget.settle(after, Settlement(status="ok", cost_nanos=NANOS_PER_USD))
    books = await read_books(core.db)
    assert books.counter(GLOBAL_SCOPE).spent_nanos == 4 * NANOS_PER_USD and books.balanced()
    assert (await core.budget.scope_state(GLOBAL_SCOPE)).available_nanos == 6 * NANOS_PER_USD


async def test_a_call_running_across_its_channels_period_change_releases_the_new_periods_counter(
        core_for, database_url: str) -> None:
    """Reserved under a daily limit, settled after an admin made it weekly and another call opened the week's
    counter (counting the first as reserved): its settlement moves the week's counter too, so nothing stays
    reserved there (before, it stayed until the week ended). Switching back to daily finds the day's counter
    exact: every call named it meanwhile."""
    core = await core_for(database_url, SEEDBOT_DEFAULT_CHANNEL_BUDGET="5/day")
    await core.store.claim(incoming("creates channel 1", message_id="warm"), "", 0)
    running = await reserve(core)
    await core.budget.limits.set_limit(SCOPE, "20/week", "test")
    other = await reserve(core)
    await core.budget.settle(running, Settlement(status="ok", cost_nanos=2 * NANOS_PER_USD))
    await core.budget.settle(other, Settlement(status="ok", cost_nanos=NANOS_PER_USD))
    books = await read_books(core.db)
    assert sorted((c.period, c.spent_nanos, c.reserved_nanos) for c in books.counters) == [
        ("day", 3 * NANOS_PER_USD, 0), ("week", 3 * NANOS_PER_USD, 0)] and books.balanced()
    await core.budget.limits.set_limit(SCOPE, "5/day", "test")
    assert (await core.budget.scope_state(SCOPE)).available_nanos == 2 * NANOS_PER_USD


async def test_a_global_limit_set_while_many_calls_run_keeps_the_books_exact(core_for, database_url: str) -> None:
    """Sixty calls reserved and settled concurrently while an admin sets, removes and sets again a global limit:
    every counter that opened, opened while others reserved and settled, and ends exact (spent equal to the
    ledger, nothing reserved). On PostgreSQL this is what the scopes' locks are for: without it a call planned
    before a counter opened and committed after escaped it."""
    core = await core_for(database_url, SEEDBOT_DEFAULT_CHANNEL_BUDGET="none", SEEDBOT_GLOBAL_BUDGET="none")
    await core.store.claim(incoming("creates channel 1", message_id="warm"), "", 0)
    rng = random.Random(7)

    async def call(n: int) -> None:
        await asyncio.sleep(rng.random() / 10)
        grant = await reserve(core)
        await asyncio.sleep(rng.random() / 50)
        await core.budget.settle(grant, Settlement(status="ok", cost_nanos=1_000 + n))

    async def admin() -> None:
        for value in ("100/day", "none", "100/day"):
            await asyncio.sleep(0.025)
            await core.budget.limits.set_limit(GLOBAL_SCOPE, value, "test")

    await asyncio.gather(admin(), *(call(n) for n in range(60)))
    books = await read_books(core.db)
    assert len(books.ledger) == 60 and not books.active_reservations
    assert [c.scope_key for c in books.counters] == [GLOBAL_SCOPE] and books.balanced()


async def test_a_counter_opens_only_once_the_reservations_planned_without_it_are_committed(
        core_for, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reservation planned while the global scope had no limit is held between its read and its INSERT; an
    admin sets a global limit and the next call must open the counter. Opening takes the books exclusively, so
    it waits for the held reservation, then counts it; without the lock the counter opened first, the held
    reservation committed naming no counter and with an id above `opened_through`, and escaped the limit."""
    core = await core_for(postgres_url, SEEDBOT_DEFAULT_CHANNEL_BUDGET="none")
    await core.store.claim(incoming("creates channel 1", message_id="warm"), "", 0)
    planned, release = hold_the_next_reservation(monkeypatch)
    slow = asyncio.create_task(core.budget.reserve(**CALL))
    await planned.wait()
    await core.budget.limits.set_limit(GLOBAL_SCOPE, "10/day", "test")
    opening = asyncio.create_task(core.budget.reserve(**CALL))
    await asyncio.sleep(0.3)
    assert not opening.done()  # waiting for the books
    release.set()
    grants = [await slow, await opening]
    for grant in grants:
        assert isinstance(grant, Grant)
        await core.budget.settle(grant, Settlement(status="ok", cost_nanos=NANOS_PER_USD))
    books = await read_books(core.db)
    assert books.counter(GLOBAL_SCOPE).spent_nanos == 2 * NANOS_PER_USD and books.balanced()


async def test_opening_a_channels_counter_waits_for_that_channels_calls_only(
        core_for, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each scope's books have a lock of their own: while a call of channel 2 is held between its read and its
    INSERT, channel 1's first call under a new limit opens channel 1's counter and is granted (with one lock for
    all the books it waited for channel 2's call). A call of channel 1 held the same way makes the opener of its
    week's counter wait, and is counted there."""
    core = await core_for(postgres_url, SEEDBOT_DEFAULT_CHANNEL_BUDGET="none")
    for channel in ("C1", "C2"):
        await core.store.claim(incoming("creates the channel", channel=channel, message_id=f"warm-{channel}"), "", 0)
    other = CALL | dict(channel_pk=2, scope_key=channel_scope("slack", "C2"))
    assert len({scope_lock(key) for key in call_scopes(SCOPE, "U1") + call_scopes(other["scope_key"], "U1")}) == 5
    for held_call, limit, waits in ((other, "10/day", False), (CALL, "20/week", True)):
        planned, release = hold_the_next_reservation(monkeypatch)
        slow = asyncio.create_task(core.budget.reserve(**held_call))
        await planned.wait()
        await core.budget.limits.set_limit(SCOPE, limit, "test")
        opening = asyncio.create_task(core.budget.reserve(**CALL))
        if waits:
            await asyncio.sleep(0.3)
            assert not opening.done()  # waiting for the held call of its own channel
        else:  # granted while the other channel's call is held (with one lock for all scopes it waited here)
            await asyncio.wait_for(asyncio.shield(opening), timeout=30)
        release.set()
        for grant in (await slow, await opening):
            assert isinstance(grant, Grant)
            await core.budget.settle(grant, Settlement(status="ok", cost_nanos=NANOS_PER_USD))
    books = await read_books(core.db)
    assert sorted((c.scope_key, c.period, c.spent_nanos, c.reserved_nanos) for c in books.counters) == [
        (SCOPE, "day", 3 * NANOS_PER_USD, 0), (SCOPE, "week", 3 * NANOS_PER_USD, 0)] and books.balanced()


async def test_a_counter_opened_after_its_period_ended_takes_none_of_the_next_periods_calls(
        core_for, database_url: str) -> None:
    """A reservation attempt just before midnight finds day D's counter not open; the counter opens only after
    midnight, when a call of day D+1 is running. D's counter counts only D's calls, and that call's settlement
    moves D+1's counter, not D's: the daily report of D reads D's counter (found by a break-it review)."""
    core = await core_for(database_url, SEEDBOT_DEFAULT_CHANNEL_BUDGET="5/day")
    await core.store.claim(incoming("creates channel 1", message_id="warm"), "", 0)
    day = datetime(2030, 1, 9)
    now = [day + timedelta(days=1, seconds=1)]
    budget = BudgetManager(core.db, core.settings, core.prices, clock=lambda: now[0])
    running = await budget.reserve(**CALL)
    await core.db.run_core(lambda connection: open_counter(connection, (SCOPE, "day", day), day + timedelta(1)))
    await budget.settle(running, Settlement(status="ok", cost_nanos=NANOS_PER_USD))
    state = await budget.scope_state(SCOPE, at=day + timedelta(hours=23))
    assert (state.spent_nanos, state.reserved_nanos) == (0, 0)
    assert (await budget.scope_state(SCOPE)).spent_nanos == NANOS_PER_USD
    books = await read_books(core.db)
    assert sorted((c.period_start, c.spent_nanos, c.reserved_nanos) for c in books.counters) == [
        (day, 0, 0), (day + timedelta(1), NANOS_PER_USD, 0)]


async def test_limits_changing_on_every_kind_of_scope_while_calls_reserve_settle_and_die(
        core_for, database_url: str) -> None:
    """150 calls in three channels by three people reserve and settle, and one in seven dies (expired by
    `expire_stale`, now or a day on), while limits are set, changed and removed on channel, person, `*` and
    global scopes: every counter that opened ends exact (from a break-it review of the locks per scope)."""
    core = await core_for(database_url, SEEDBOT_DEFAULT_CHANNEL_BUDGET="none")
    channels = ["C1", "C2", "C3"]
    for channel in channels:
        await core.store.claim(incoming("creates the channel", channel=channel, message_id=f"warm-{channel}"), "", 0)
    rng = random.Random(11)
    scopes = [GLOBAL_SCOPE, *(channel_scope("slack", c) for c in channels),
              *(f"slack:U{u}@slack:{c}" for u in range(3) for c in channels), *(f"slack:*@slack:{c}" for c in channels)]

    async def call(n: int) -> None:
        await asyncio.sleep(rng.random() / 5)
        c = rng.randrange(3)
        grant = await core.budget.reserve(**CALL | dict(channel_pk=c + 1, scope_key=channel_scope("slack", channels[c]),
                                                       user_id=f"U{rng.randrange(3)}"))
        assert isinstance(grant, Grant)
        await asyncio.sleep(rng.random() / 20)
        if n % 7 == 0:
            core.budget._live.discard(grant.reservation_id)  # its process died: left to expire_stale
            return
        await core.budget.settle(grant, Settlement(status="ok", cost_nanos=1_000 + n))

    async def admin() -> None:
        for _ in range(30):
            await asyncio.sleep(rng.random() / 50)
            await core.budget.limits.set_limit(rng.choice(scopes), rng.choice(["1000/day", "1000/week", "none"]),
                                               "test")

    async def expirer() -> None:
        for _ in range(10):
            await asyncio.sleep(0.03)
            await core.budget.expire_stale(utcnow() + timedelta(days=1) if rng.random() < 0.5 else None)

    await asyncio.gather(admin(), expirer(), *(call(n) for n in range(150)))
    await core.budget.expire_stale(utcnow() + timedelta(days=1))
    books = await read_books(core.db)
    assert not books.active_reservations and len(books.ledger) == 150 and books.counters and books.balanced()


@pytest.mark.parametrize("workspace_scoped", [frozenset(), frozenset({"slack"})])
async def test_the_claim_locks_the_scopes_it_reserves_in(core_for, postgres_url: str,
                                                         workspace_scoped: frozenset[str]) -> None:
    """The locks a claim takes, computed from the thread key before the claim, are those of the scopes its
    reservation records and its settlement takes again: Slack (workspace-scoped or not), Discord DMs and
    guilds, the CLI."""
    core = await core_for(postgres_url, SEEDBOT_DEFAULT_CHANNEL_BUDGET="1/day", SEEDBOT_DEFAULT_USER_BUDGET="1/day")
    store = ConversationStore(core.db, workspace_scoped)
    keys = [ThreadKey(Platform.SLACK, "T1", "C9", "t"), ThreadKey(Platform.SLACK, "", "C8", "t"),
            ThreadKey(Platform.DISCORD, "dm", "123", "123"), ThreadKey(Platform.DISCORD, "55", "66", "77"),
            ThreadKey(Platform.CLI, "local", "cli", "abc")]
    for n, key in enumerate(keys):
        message = Incoming(thread=key, message_id=f"m{n}", user_id=f"U-{n}_x", text="q").cleaned()
        first = core.budget.scope_locks(store.channel_scope_of(message.thread), message.user_id)

        def then(connection: Any, claimed: Any, message: Incoming = message) -> Any:
            return core.budget.reserve_in(connection, channel_pk=claimed.channel.pk,
                                          scope_key=claimed.channel.scope_key, thread_pk=claimed.thread.pk,
                                          user_id=message.user_id, kind="chat", estimated_prompt_tokens=10,
                                          wanted_max_tokens=10, web_search=False)

        claimed = await core.budget.reserving(lambda message=message, first=first: store.claim_then(
            message, "q", 1, then, first=first))
        assert claimed is not None and isinstance(grant := claimed[1], Grant)
        row = (await read_books(core.db)).reservations[-1]
        assert first is not None and dict(first.params) == dict(scopes_shared(scopes_of(row)).params)
        assert dict(scopes_shared(grant.scope_keys).params) == dict(first.params)

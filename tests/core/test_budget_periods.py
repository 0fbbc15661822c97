"""A budget's period switched away and back: the counter of the period switched to matches the ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text

from bot.budget.outcomes import Settlement
from bot.budget.reservations import BudgetManager
from bot.budget.scopes import EVERYONE, channel_scope, person_scope
from bot.domain import NANOS_PER_USD
from tests.books import read_books
from tests.factories import incoming

SCOPE = channel_scope("slack", "C1")
ADMIN = "slack:UADMIN"


async def spend(core, dollars: int) -> None:  # noqa: ANN001
    """One call settled at exactly `dollars`, through the same reserve/settle as an answer."""
    claimed = await core.store.claim(incoming(f"call costing {dollars}", message_id=f"m{dollars}"), "", 0)
    assert claimed is not None
    grant = await core.budget.reserve(channel_pk=1, scope_key=SCOPE, thread_pk=None, user_id="U1", kind="chat",
                                      estimated_prompt_tokens=10, wanted_max_tokens=10, web_search=False)
    await core.budget.settle(grant, Settlement(status="ok", cost_nanos=dollars * NANOS_PER_USD))


async def set_budget(core, value: str) -> str:  # noqa: ANN001
    return await core.admin.slash_command("slack", "UADMIN", "C1", f"budget {value}")


async def replay(core, *steps: str | int) -> None:  # noqa: ANN001
    """Budget commands (strings) and calls settled at so many dollars (ints), in order."""
    for step in steps:
        if isinstance(step, str):
            assert "changed" in await set_budget(core, step)
        else:
            await spend(core, step)


def worst_case_tokens(core, dollars_x100: int) -> int:  # noqa: ANN001
    """max_tokens whose worst case (10 prompt tokens) is about dollars_x100 / 100 dollars."""
    return core.prices.max_tokens_affordable(10, False, dollars_x100 * NANOS_PER_USD // 100)


async def test_month_day_month_rebuilds_the_monthly_counter_from_the_ledger(core_for, database_url: str) -> None:
    core = await core_for(database_url, SEEDBOT_ADMINS=ADMIN)
    await replay(core, "100/month", 10, "50/day", 3, "100/month")
    state = await core.budget.scope_state(SCOPE)
    assert (state.spent_nanos, state.available_nanos) == (13 * NANOS_PER_USD, 87 * NANOS_PER_USD)
    assert "Spent this period: $13.00 (13%)" in await set_budget(core, "")
    wanted = worst_case_tokens(core, 8_832)  # a call whose worst case is $88.32
    grant = await core.budget.reserve(channel_pk=1, scope_key=SCOPE, thread_pk=None, user_id="U1", kind="chat",
                                      estimated_prompt_tokens=10, wanted_max_tokens=wanted, web_search=False)
    assert grant.shrunk and grant.amount_nanos <= 87 * NANOS_PER_USD


async def test_day_week_day_rebuilds_the_daily_counter(core_for, sqlite_url: str) -> None:
    core = await core_for(sqlite_url, SEEDBOT_ADMINS=ADMIN)
    await replay(core, "20/day", 4, "100/week", 6, "20/day")
    state = await core.budget.scope_state(SCOPE)
    assert (state.spent_nanos, state.available_nanos) == (10 * NANOS_PER_USD, 10 * NANOS_PER_USD)
    # Changing the amount but not the period keeps the counter (nothing was missed).
    await set_budget(core, "30/day")
    assert (await core.budget.scope_state(SCOPE)).spent_nanos == 10 * NANOS_PER_USD


async def test_a_settlement_reports_the_channels_position_under_the_limit_it_has_by_then(
        core_for, database_url: str) -> None:
    """The footer's "budget left" after a call: against the limit an admin set while the call ran (the
    settlement reads it in its own statement), and the default's when the channel has no row of its own."""
    core = await core_for(database_url, SEEDBOT_ADMINS=ADMIN, SEEDBOT_DEFAULT_CHANNEL_BUDGET="40/day")

    async def settled_after(change: str | None, dollars: int):  # noqa: ANN202
        claimed = await core.store.claim(incoming("q", message_id=f"q{change}{dollars}"), "", 0)
        assert claimed is not None
        grant = await core.budget.reserve(channel_pk=1, scope_key=SCOPE, thread_pk=None, user_id="U1", kind="chat",
                                          estimated_prompt_tokens=10, wanted_max_tokens=10, web_search=False)
        if change is not None:
            assert "changed" in await set_budget(core, change)
        return await core.budget.settle(grant, Settlement(status="ok", cost_nanos=dollars * NANOS_PER_USD))

    by_default = await settled_after(None, 4)
    assert (by_default.limit_nanos, by_default.left_nanos) == (40 * NANOS_PER_USD, 36 * NANOS_PER_USD)
    raised = await settled_after("100/day", 6)  # same period: the counter stands, the limit is the new one
    assert (raised.limit_nanos, raised.left_nanos, raised.spent_nanos) == (
        100 * NANOS_PER_USD, 90 * NANOS_PER_USD, 10 * NANOS_PER_USD)
    weekly = await settled_after("500/week", 5)  # another period: the position is the week's
    assert (weekly.limit_nanos, weekly.left_nanos) == (500 * NANOS_PER_USD, 485 * NANOS_PER_USD)


async def test_a_settlement_reads_its_own_channels_budget_row_not_another_scopes(core_for, database_url: str) -> None:
    """On SQLite a RETURNING's subquery loses its table qualifiers unless written out: the channel's position
    must not come from the first budget row of another scope."""
    core = await core_for(database_url, SEEDBOT_DEFAULT_CHANNEL_BUDGET="40/day")
    # Another channel has a budget row of its own; C1 has none (the default applies).
    await core.budget.limits.set_limit(channel_scope("slack", "C9"), "7/day", "admin")
    claimed = await core.store.claim(incoming("q", message_id="q1"), "", 0)
    assert claimed is not None
    grant = await core.budget.reserve(channel_pk=claimed.channel.pk, scope_key=SCOPE, thread_pk=None, user_id="U1",
                                      kind="chat", estimated_prompt_tokens=10, wanted_max_tokens=10, web_search=False)
    remaining = await core.budget.settle(grant, Settlement(status="ok", cost_nanos=4 * NANOS_PER_USD))
    fresh = await core.budget.remaining(SCOPE)
    assert (remaining.limit_nanos, remaining.left_nanos) == (fresh.limit_nanos, fresh.left_nanos) == (
        40 * NANOS_PER_USD, 36 * NANOS_PER_USD)


async def test_switching_a_channels_everyone_row_away_and_back_rebuilds_each_persons_counter(
        core_for, database_url: str) -> None:
    """A person without a row of their own has the channel's `*` row as their limit; switching that row's
    period away and back must not leave their counter of the first period missing what was spent meanwhile
    (found by a break-it review: the stale counter granted past the limit)."""
    core = await core_for(database_url, SEEDBOT_ADMINS=ADMIN, SEEDBOT_DEFAULT_CHANNEL_BUDGET="none")
    person, everyone, own = person_scope(SCOPE, "U1"), person_scope(SCOPE, EVERYONE), person_scope(SCOPE, "U2")
    await core.budget.limits.set_limit(everyone, "100/month", "test")
    await core.budget.limits.set_limit(own, "100/month", "test")  # U2's limit is their own row's
    await spend(core, 10)
    u2 = await core.budget.reserve(channel_pk=1, scope_key=SCOPE, thread_pk=None, user_id="U2", kind="chat",
                                   estimated_prompt_tokens=10, wanted_max_tokens=10, web_search=False)
    await core.budget.limits.set_limit(everyone, "50/day", "test")
    await spend(core, 3)
    await core.budget.limits.set_limit(everyone, "100/month", "test")
    state = await core.budget.scope_state(person)
    assert (state.spent_nanos, state.available_nanos) == (13 * NANOS_PER_USD, 87 * NANOS_PER_USD)
    # U2's counter is theirs, unchanged: it stays, holding the call still running.
    books = await read_books(core.db)
    assert [(c.period, c.reserved_nanos) for c in books.counters if c.scope_key == own] == [("month", u2.amount_nanos)]


async def test_reading_a_scopes_position_takes_the_books_and_opens_no_counter(core_for, database_url: str) -> None:
    """A read of a position (the footer after a settlement, `/seed budget`, the console) where the period's
    counter is not opened yet takes what the books say and writes nothing: opening it there, under the counter
    locks a settlement holds, deadlocked with reservers opening the same counter (found by a break-it review)."""
    core = await core_for(database_url, SEEDBOT_ADMINS=ADMIN)
    await spend(core, 3)
    running = await core.budget.reserve(channel_pk=1, scope_key=SCOPE, thread_pk=None, user_id="U1", kind="chat",
                                        estimated_prompt_tokens=10, wanted_max_tokens=10, web_search=False)
    await core.db.run(lambda session: session.execute(text("DELETE FROM budget_counters")))
    state = await core.budget.scope_state(SCOPE)
    assert (state.spent_nanos, state.reserved_nanos) == (3 * NANOS_PER_USD, running.amount_nanos)
    assert await core.db.run(lambda session: session.scalar(text("SELECT count(*) FROM budget_counters"))) == 0
    # A reservation opens it, from the same books.
    await spend(core, 1)
    assert (await core.budget.scope_state(SCOPE)).spent_nanos == 4 * NANOS_PER_USD


async def test_the_footer_after_the_channels_period_changed_mid_call_reads_the_new_periods_books(
        core_for, database_url: str) -> None:
    """A call reserved under a daily channel limit and settled after an admin made it weekly: the footer reads
    the week from the books, not the day's counter the settlement moved. People's limit is weekly too, so a
    person's counter key ends with the channel's weekly key: matched as a substring, it looked moved."""
    core = await core_for(database_url, SEEDBOT_DEFAULT_CHANNEL_BUDGET="none")
    await core.store.claim(incoming("creates channel 1", message_id="warm"), "", 0)
    now = [datetime(2026, 11, 30, 12)]  # a Monday
    budget = BudgetManager(core.db, core.settings, core.prices, clock=lambda: now[0])
    call: Any = dict(channel_pk=1, scope_key=SCOPE, thread_pk=None, user_id="U1", kind="chat",
                     estimated_prompt_tokens=10, wanted_max_tokens=10, web_search=False)
    await budget.limits.set_limit(SCOPE, "5/week", "test")
    await budget.limits.set_limit(person_scope(SCOPE, EVERYONE), "5/week", "test")
    await budget.settle(await budget.reserve(**call), Settlement(status="ok", cost_nanos=3 * NANOS_PER_USD))
    now[0] = datetime(2026, 12, 2, 12)  # Wednesday
    await budget.limits.set_limit(SCOPE, "5/day", "test")
    running = await budget.reserve(**call)
    await budget.limits.set_limit(SCOPE, "5/week", "test")
    footer = await budget.settle(running, Settlement(status="ok", cost_nanos=NANOS_PER_USD))
    assert (footer.limit_nanos, footer.left_nanos) == (5 * NANOS_PER_USD, NANOS_PER_USD)  # $3 Monday, $1 now

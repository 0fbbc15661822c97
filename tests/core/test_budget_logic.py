from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bot.budget.limits import BudgetLimit, Period
from bot.budget.outcomes import Denial
from bot.budget.periods import (
    CallSize,
    ScopeState,
    days_in_month,
    period_bounds,
    plan_call,
    plan_degraded,
    project_month_end,
)
from bot.budget.pricing import PriceBook
from bot.chat.notices import denial_text
from bot.config import load_settings
from bot.domain import Platform

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("period", "now_utc", "start", "end"),
    [
        # 23:30 UTC on 26 Nov is already 27 Nov in Berlin (UTC+1).
        (Period.DAY, datetime(2026, 11, 26, 23, 30), datetime(2026, 11, 26, 23, 0), datetime(2026, 11, 27, 23, 0)),
        # Weeks start on Monday (23 Nov 2026), midnight Berlin time.
        (Period.WEEK, datetime(2026, 11, 26, 12, 0), datetime(2026, 11, 22, 23, 0), datetime(2026, 11, 29, 23, 0)),
        (Period.MONTH, datetime(2026, 11, 26, 12, 0), datetime(2026, 10, 31, 23, 0), datetime(2026, 11, 30, 23, 0)),
        # The day DST ends (25 Oct 2026) has 25 hours.
        (Period.DAY, datetime(2026, 10, 25, 12, 0), datetime(2026, 10, 24, 22, 0), datetime(2026, 10, 25, 23, 0)),
        # December rolls into the next year.
        (Period.MONTH, datetime(2026, 12, 15), datetime(2026, 11, 30, 23, 0), datetime(2026, 12, 31, 23, 0)),
    ],
)
def test_periods_follow_the_calendar_in_the_configured_zone(period: Period, now_utc: datetime, start: datetime,
                                                           end: datetime) -> None:
    assert period_bounds(period, now_utc, BERLIN) == (start, end)


def scope(limit: int | None, spent: int = 0, reserved: int = 0, key: str = "slack:C1") -> ScopeState:
    return ScopeState(key, BudgetLimit(limit, Period.DAY), datetime(2026, 1, 1), datetime(2026, 1, 2), spent, reserved)


PRICES = PriceBook.from_settings(load_settings(_env_file=None))


def test_plan_takes_the_wanted_tokens_when_they_fit() -> None:
    plan = plan_call(PRICES, [scope(10**9), scope(None, key="global")], CallSize(1_000, 4_096, 256, False))
    assert plan.fits and plan.max_tokens == 4_096
    assert plan.amount_nanos == PRICES.worst_case_nanos(1_000, 4_096, False)


def test_plan_shrinks_to_the_tightest_scope() -> None:
    room = PRICES.worst_case_nanos(1_000, 1_000, False)
    plan = plan_call(PRICES, [scope(10**9), scope(room + 50, spent=50, key="global")],
                     CallSize(1_000, 4_096, 256, False))
    assert plan.max_tokens == 1_000 and plan.amount_nanos <= room
    assert plan.binding_scope is not None and plan.binding_scope.scope_key == "global"


def test_plan_refuses_below_a_useful_answer() -> None:
    room = PRICES.worst_case_nanos(1_000, 100, False)
    plan = plan_call(PRICES, [scope(room)], CallSize(1_000, 4_096, 256, False))
    assert not plan.fits


def test_reserved_money_counts_as_spent() -> None:
    wanted = PRICES.worst_case_nanos(1_000, 4_096, False)
    plan = plan_call(PRICES, [scope(wanted * 2, spent=wanted // 2, reserved=wanted)],
                     CallSize(1_000, 4_096, 256, False))
    assert plan.fits and plan.max_tokens < 4_096


def degraded(scopes: list[ScopeState], *, web: bool = True, thinking: bool = True):  # noqa: ANN201
    return plan_degraded(PRICES, scopes, CallSize(1_000, 4_096, 256, web),
                         thinking=thinking)


def test_degrade_keeps_everything_while_a_budget_has_room() -> None:
    plan = degraded([scope(10**9, spent=10**9 * 89 // 100)])
    assert (plan.web_search, plan.thinking, plan.max_tokens, plan.degraded_by) == (True, True, 4_096, None)


def test_degrade_turns_web_search_off_first_once_a_scope_is_nearly_spent() -> None:
    person = scope(10**9, spent=10**9 * 95 // 100, key="slack:U1@slack:C1")
    plan = degraded([scope(10**10), person])
    assert (plan.web_search, plan.thinking, plan.max_tokens) == (False, True, 4_096)
    assert plan.degraded_by == person


def test_degrade_turns_web_search_off_when_its_price_does_not_fit() -> None:
    prices = PriceBook(PRICES.short, PRICES.long, web_search_per_call=Decimal("0.01"))
    room = prices.worst_case_nanos(1_000, 4_096, False)
    plan = plan_degraded(prices, [scope(room)], CallSize(1_000, 4_096, 256, True), thinking=True)
    assert (plan.web_search, plan.thinking, plan.max_tokens, plan.amount_nanos) == (False, True, 4_096, room)


def test_degrade_turns_thinking_off_before_shrinking_and_refuses_last() -> None:
    room = PRICES.worst_case_nanos(1_000, 1_000, False)
    shrunk = degraded([scope(room)], web=False)
    assert (shrunk.thinking, shrunk.max_tokens, shrunk.fits) == (False, 1_000, True)
    refused = degraded([scope(PRICES.worst_case_nanos(1_000, 100, False))], web=False)
    assert not refused.fits


def test_days_in_month_counts_leap_years() -> None:
    assert [days_in_month(date(2028, m, 5)) for m in (1, 2, 4)] == [31, 29, 30]
    assert days_in_month(date(2026, 2, 28)) == 28


@pytest.mark.parametrize(("spent", "today", "projected"), [
    (3_000_000_000, date(2026, 11, 10), 9_000_000_000),  # $3 in 10 of 30 days -> $9
    (1_000_000_000, date(2026, 12, 31), 1_000_000_000),  # the last day: what was spent
    (1, date(2026, 2, 3), 9),  # rounds down: 28/3 of a nano-dollar
    (0, date(2026, 1, 1), 0),
])
def test_project_month_end_scales_the_spend_so_far_to_the_month(spent: int, today: date, projected: int) -> None:
    assert project_month_end(spent, today) == projected


def test_a_refusal_says_what_is_left_and_names_the_budget_an_admin_would_raise() -> None:
    settings = load_settings(_env_file=None)
    nothing_spent = Denial(scope_key="cli:cli", spent_nanos=0, limit_nanos=100_000,
                           resets_at=datetime(2026, 12, 2), needed_nanos=9_900_000)
    text = denial_text(nothing_spent, Platform.CLI, settings)
    # Nothing was spent: the budget is not "used up", it is smaller than this answer's worst case.
    assert "used up" not in text and "has too little left for this answer" in text
    assert "$0.0000 of $0.0001 spent" in text and "`seedbot budget set cli:cli`" in text

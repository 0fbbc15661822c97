"""Pure budget arithmetic: calendar periods in a time zone, and what fits in what is left."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.budget.limits import BudgetLimit, Period
from bot.budget.outcomes import Remaining
from bot.budget.pricing import PriceBook


def period_bounds(period: Period, now_utc: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The calendar period holding `now_utc` in `tz`, as naive UTC [start, end). Weeks start on Monday."""
    local = now_utc.replace(tzinfo=UTC).astimezone(tz)
    day = local.date()
    if period is Period.DAY:
        first, after = day, day + timedelta(days=1)
    elif period is Period.WEEK:
        first = day - timedelta(days=day.weekday())
        after = first + timedelta(days=7)
    else:
        first = day.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
    return local_midnight_utc(first, tz), local_midnight_utc(after, tz)


def local_midnight_utc(day, tz: ZoneInfo) -> datetime:  # noqa: ANN001 - a date
    local = datetime(day.year, day.month, day.day, tzinfo=tz)
    return local.astimezone(UTC).replace(tzinfo=None)


# From this share of a limit spent, web search goes off: its price per call is configured, but the
# search results it pours into the prompt are not known when the call is reserved.
NEARLY_SPENT_PERCENT = 90


@dataclass(frozen=True, slots=True)
class ScopeState:
    """One budget scope as the reserver sees it: its counter as last committed, or locked."""

    scope_key: str
    limit: BudgetLimit
    period_start: datetime
    period_end: datetime
    spent_nanos: int
    reserved_nanos: int

    @property
    def available_nanos(self) -> int | None:
        if self.limit.limit_nanos is None:
            return None
        return max(0, self.limit.limit_nanos - self.spent_nanos - self.reserved_nanos)

    @property
    def nearly_spent(self) -> bool:
        """Spent (not merely reserved: concurrent calls reserve far more than they spend) at least
        NEARLY_SPENT of a limit."""
        if self.limit.limit_nanos is None:
            return False
        return self.spent_nanos >= self.limit.limit_nanos * NEARLY_SPENT_PERCENT // 100

    def remaining(self) -> Remaining:
        """The scope's position as the footer and `/seed budget` show it."""
        return Remaining(self.available_nanos, self.limit.limit_nanos, self.scope_key, self.period_end,
                         self.spent_nanos)


@dataclass(frozen=True, slots=True)
class Plan:
    """The outcome of sizing a call against what is left: `max_tokens == 0` means it does not fit."""

    max_tokens: int
    amount_nanos: int
    binding_scope: ScopeState | None
    web_search: bool = False
    thinking: bool = True
    # The scope that made the call cheaper (web search or thinking turned off), if one did.
    degraded_by: ScopeState | None = None

    @property
    def fits(self) -> bool:
        return self.max_tokens > 0


@dataclass(frozen=True, slots=True)
class CallSize:
    """What one model call asks of the budgets: its prompt (`estimated_prompt_tokens`, our cl100k estimate
    times the safety factor), the answer it wants (`wanted_max_tokens`) and the shortest worth sending
    (`min_max_tokens`), and whether it searches the web (priced per call)."""

    estimated_prompt_tokens: int
    wanted_max_tokens: int
    min_max_tokens: int
    web_search: bool


def plan_call(prices: PriceBook, scopes: list[ScopeState], size: CallSize) -> Plan:
    """Size a call to the tightest scope: the wanted max_tokens if its worst case fits, else as many
    output tokens as fit, as long as that is at least `min_max_tokens`."""
    prompt, wanted, web_search = size.estimated_prompt_tokens, size.wanted_max_tokens, size.web_search
    limited = [s for s in scopes if s.available_nanos is not None]
    tightest = min(limited, key=lambda s: s.available_nanos or 0, default=None)
    wanted_cost = prices.worst_case_nanos(prompt, wanted, web_search)
    if tightest is None or wanted_cost <= (tightest.available_nanos or 0):
        return Plan(wanted, wanted_cost, tightest)
    affordable = prices.max_tokens_affordable(prompt, web_search, tightest.available_nanos or 0)
    if affordable < min(size.min_max_tokens, wanted):
        return Plan(0, wanted_cost, tightest)
    return Plan(affordable, prices.worst_case_nanos(prompt, affordable, web_search), tightest)


def plan_degraded(prices: PriceBook, scopes: list[ScopeState], size: CallSize, *, thinking: bool) -> Plan:
    """Make a call cheaper before refusing it: web search off (when it does not fit, or a scope is
    nearly spent), then thinking off, then `plan_call`'s shrinking of max_tokens.

    Thinking does not change the worst case (reasoning tokens are billed inside completion tokens,
    under max_tokens), so it goes off exactly when max_tokens must shrink: a shortened answer needs
    its tokens for text, not for reasoning.
    """
    degraded_by: ScopeState | None = None
    web_search = size.web_search
    if web_search:
        nearly = next((s for s in scopes if s.nearly_spent), None)
        whole = plan_call(prices, scopes, replace(size, min_max_tokens=size.wanted_max_tokens))
        if nearly is not None or not whole.fits:
            web_search, degraded_by = False, nearly or whole.binding_scope
    plan = plan_call(prices, scopes, replace(size, web_search=web_search))
    if thinking and plan.max_tokens < size.wanted_max_tokens:
        thinking, degraded_by = False, plan.binding_scope
    return Plan(plan.max_tokens, plan.amount_nanos, plan.binding_scope, web_search, thinking, degraded_by)


def plan_for(prices: PriceBook, scopes: list[ScopeState], size: CallSize, *, thinking: bool, degrade: bool) -> Plan:
    """What a call may be given the scopes' positions: `plan_degraded` if `degrade` (SEEDBOT_DEGRADE), else
    `plan_call`'s shrinking only, web search and thinking staying as asked."""
    if degrade:
        return plan_degraded(prices, scopes, size, thinking=thinking)
    return replace(plan_call(prices, scopes, size), web_search=size.web_search, thinking=thinking)


def days_in_month(day: date) -> int:
    """How many days the month of `day` has (28..31)."""
    return calendar.monthrange(day.year, day.month)[1]


def project_month_end(spent_nanos: int, today: datetime.date) -> int:
    """The month's spend at its end if it goes on at the pace so far: nano-dollars spent since the 1st
    × days in the month ÷ days elapsed, today counted as a whole day (`today` is the local date in
    SEEDBOT_TIMEZONE). Rounds down."""
    return spent_nanos * days_in_month(today) // today.day

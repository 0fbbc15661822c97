"""Spending limits and their periods (pure): `5/day`, `$12.50/week`, `100/month`, `none`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from bot.domain import NANOS_PER_USD


class Period(StrEnum):
    """The calendar unit a budget resets on, in UTC (a week starts on Monday)."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class BudgetLimit:
    """A spending limit per period. `limit_nanos is None` means unlimited."""

    limit_nanos: int | None
    period: Period = Period.DAY

    @property
    def unlimited(self) -> bool:
        return self.limit_nanos is None

    def describe(self) -> str:
        if self.limit_nanos is None:
            return "unlimited"
        dollars = Decimal(self.limit_nanos) / NANOS_PER_USD
        return f"${dollars.normalize():f}/{self.period.value}"


_BUDGET_RE = re.compile(r"^\$?\s*(\d+(?:\.\d+)?)\s*(?:/\s*(day|week|month|daily|weekly|monthly))?$")
_PERIOD_ALIASES = {"daily": "day", "weekly": "week", "monthly": "month"}
# Far above any real chat budget and far below what a 64-bit nano-dollar counter holds ($9.2 billion),
# so sums of spent and reserved amounts never overflow the database column.
MAX_BUDGET_USD = 1_000_000


def parse_budget(text: str) -> BudgetLimit:
    """`5/day`, `$12.50/week`, `100/month`, `none` (unlimited). A bare amount is per day."""
    value = text.strip().lower()
    if value in ("none", "unlimited", "off"):
        return BudgetLimit(None)
    match = _BUDGET_RE.match(value)
    if not match:
        raise ValueError(f"{_shown(text)} is not a budget; write it like 5/day, 12.50/week, 100/month or none")
    amount = Decimal(match.group(1))
    period = _PERIOD_ALIASES.get(match.group(2) or "day", match.group(2) or "day")
    # The range first: multiplying an amount of a million digits would overflow Decimal's exponent.
    nanos = amount * NANOS_PER_USD if amount <= MAX_BUDGET_USD else None
    if nanos is None or nanos != nanos.to_integral_value():
        raise ValueError(f"{_shown(text)} is out of range: a budget is $0 to ${MAX_BUDGET_USD:,} per {period}, "
                         "in steps of at most a nano-dollar ($0.000000001), or none")
    return BudgetLimit(int(nanos), Period(period))


def _shown(text: str) -> str:
    """`text` quoted for an error message, cut to 40 characters: the person sees which value was refused
    without a reply the size of what they pasted."""
    return repr(text if len(text) <= 40 else text[:39] + "…")

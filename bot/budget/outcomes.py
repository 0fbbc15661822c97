"""What reserving and settling hand back and take: a Grant or a Denial, the Remaining position of a
budget, and the Settlement of a finished call. Amounts are integer nano-dollars; times naive UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Required, TypedDict


@dataclass(frozen=True, slots=True)
class Grant:
    reservation_id: int
    amount_nanos: int
    max_tokens: int
    shrunk: bool
    # The scopes the call reserved in (`scopes.call_scopes`): settling takes their books shared.
    scope_keys: tuple[str, ...]
    web_search: bool = False
    thinking: bool = True
    # The scope whose nearly spent budget turned web search or thinking off, if any.
    degraded_by: str | None = None
    # The channel had no limit when the call was reserved: a settlement that finds no counter of the channel to
    # move has no position to show in the footer, instead of reading it from the books.
    channel_unlimited: bool = False


@dataclass(frozen=True, slots=True)
class Denial:
    """Not enough budget. Carries what the user is told."""

    scope_key: str
    spent_nanos: int
    limit_nanos: int
    resets_at: datetime
    needed_nanos: int


@dataclass(frozen=True, slots=True)
class Remaining:
    """The channel's position after a call, for the footer."""

    left_nanos: int | None
    limit_nanos: int | None
    scope_key: str = ""
    period_end: datetime | None = None
    spent_nanos: int = 0

    @property
    def fraction(self) -> float | None:
        if self.limit_nanos is None or self.left_nanos is None or self.limit_nanos == 0:
            return None
        return self.left_nanos / self.limit_nanos


@dataclass(frozen=True, slots=True)
class Settlement:
    """How a reservation ends: the ledger fields of the call. `cost_nanos` 0 releases it."""

    status: str
    cost_nanos: int
    model: str = ""
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    web_searches: int = 0
    usage_known: bool = True
    error: str | None = None
    first_token_ms: int | None = None
    duration_ms: int | None = None

    def __post_init__(self) -> None:
        if self.cost_nanos < 0:  # money is never negative: a bug upstream, not a refund
            raise ValueError(f"a settlement cannot cost {self.cost_nanos} nano-dollars")


class CallToReserve(TypedDict, total=False):
    """The keyword arguments of `BudgetManager.reserve_in` after the connection (all but `thinking` required)."""

    channel_pk: Required[int]
    scope_key: Required[str]
    thread_pk: Required[int | None]
    user_id: Required[str]
    kind: Required[str]
    estimated_prompt_tokens: Required[int]  # tokens
    wanted_max_tokens: Required[int]  # tokens
    web_search: Required[bool]
    thinking: bool

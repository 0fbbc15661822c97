"""The one cost rule of the project: what a model call is charged. Pure: no I/O, no floats.

- The provider's usage passed validation (bot.llm.validate_usage): its exact price.
- The request never reached the provider: nothing (the reservation is released).
- The request was sent but usage is missing or invalid: the reservation, the worst case the call
  could have cost, so a budget never under-counts.
- A person stopped the call and no usage came: our prompt estimate plus the tokens of the text
  produced, capped at the reservation, marked as estimated (`stopped_call_charge`).

Every charge is integer nano-dollars and never negative.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.budget.pricing import PriceBook
from bot.chat.tokens import count_tokens
from bot.domain import Usage


class Basis(StrEnum):
    USAGE = "usage"  # priced from the provider's valid usage
    RESERVED = "reserved"  # usage unknown: charged the reservation
    ESTIMATED = "estimated"  # stopped by a person without usage: prompt estimate + produced text
    RELEASED = "released"  # never sent: nothing charged


ESTIMATED_NOTE = "charge estimated from the prompt and the text produced (the model reported no usage)"


@dataclass(frozen=True, slots=True)
class Charge:
    """What one call costs and on what basis. `usage_known` goes to the ledger row and the footer (which
    then says the reservation was charged); `note` (empty unless estimated) goes to the footer's notes."""

    cost_nanos: int
    basis: Basis

    @property
    def usage_known(self) -> bool:
        return self.basis is Basis.USAGE

    @property
    def note(self) -> str:
        return ESTIMATED_NOTE if self.basis is Basis.ESTIMATED else ""


def call_charge(prices: PriceBook, usage: Usage | None, *, reserved_nanos: int, request_sent: bool) -> Charge:
    """The charge of a finished, failed or abandoned call.

    `usage` is the validated usage (None when missing or invalid); `reserved_nanos` the call's
    reservation; `request_sent` whether the request may have reached the provider."""
    if usage is not None:
        return Charge(max(0, prices.cost_nanos(usage)), Basis.USAGE)
    if not request_sent:
        return Charge(0, Basis.RELEASED)
    return Charge(max(0, reserved_nanos), Basis.RESERVED)


def stopped_call_charge(prices: PriceBook, *, prompt_estimate_tokens: int, produced_text: str,
                        reserved_nanos: int, usage: Usage | None = None, web_search: bool = False) -> Charge:
    """The charge of a call a person stopped (e.g. a Stop button) before it finished.

    Valid `usage`, if the provider still sent it, prices exactly (even above the reservation: the books
    stay exact). Without it: `prompt_estimate_tokens` (the reservation's prompt estimate, tokens) plus
    the cl100k tokens of `produced_text` (what the model streamed before the stop, reasoning included),
    at the tier's uncached rates, plus one web search if one was allowed (it may have run), capped at
    `reserved_nanos`, since the provider cannot have produced more than the call allowed; basis
    ESTIMATED. Never negative."""
    if usage is not None:
        return Charge(max(0, prices.cost_nanos(usage)), Basis.USAGE)
    estimate = Usage(prompt_tokens=max(0, prompt_estimate_tokens), completion_tokens=count_tokens(produced_text),
                     web_searches=1 if web_search else 0)
    return Charge(max(0, min(prices.cost_nanos(estimate), reserved_nanos)), Basis.ESTIMATED)

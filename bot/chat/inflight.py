"""What one message's answer holds open while it runs, so that whoever ends it early (the answer
supervisor after an unexpected exception, a shutdown) can close it truthfully: every reservation
settled by the cost rule and the user's message given a final status."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from bot.budget.cost_rule import call_charge
from bot.budget.outcomes import Grant, Settlement
from bot.budget.pricing import PriceBook
from bot.budget.reservations import BudgetManager
from bot.storage.conversations import ConversationStore

log = logging.getLogger(__name__)


@dataclass(slots=True)
class OpenCall:
    """A reserved model call not yet settled. `parts` is the text produced so far (shared with the
    streaming code); `sent` turns true just before the request goes to the provider."""

    grant: Grant
    prompt_estimate: int
    sent: bool = False
    parts: list[str] = field(default_factory=list)


@dataclass(slots=True)
class InFlight:
    """Filled in by ChatService and ReviewService as an answer proceeds."""

    message_pk: int | None = None
    calls: dict[int, OpenCall] = field(default_factory=dict)

    def open(self, grant: Grant, prompt_estimate: int) -> OpenCall:
        """Record a reservation just granted (`prompt_estimate` in tokens); returns its record."""
        call = OpenCall(grant, prompt_estimate)
        self.calls[grant.reservation_id] = call
        return call

    def settled(self, grant: Grant) -> None:
        """Forget a reservation once its settlement is written."""
        self.calls.pop(grant.reservation_id, None)


async def close_abandoned(inflight: InFlight, *, budget: BudgetManager, store: ConversationStore,
                          prices: PriceBook, model: str, status: str, error: str) -> None:
    """Settle every call `inflight` still holds (cost rule: released if never sent, else the
    reservation, usage unknown) and give its user message `status` if it is still pending.

    Each step is tried on its own; a failure is logged and the rest still runs."""
    for call in list(inflight.calls.values()):
        charge = call_charge(prices, None, reserved_nanos=call.grant.amount_nanos, request_sent=call.sent)
        try:
            await budget.settle(call.grant, Settlement(status=status, cost_nanos=charge.cost_nanos, model=model,
                                                       usage_known=False, error=error))
        except Exception:  # noqa: BLE001 - the maintenance loop expires what could not be settled
            log.exception("settling reservation %s failed", call.grant.reservation_id)
        else:
            inflight.settled(call.grant)
    if inflight.message_pk is not None:
        try:
            await store.finish_pending(inflight.message_pk, status)
        except Exception:  # noqa: BLE001
            log.exception("marking message %s %s failed", inflight.message_pk, status)

"""An answer's plan, made inside the transaction that claims its message: the prompt's window and the call's
reservation. One transaction where there were two (claim, then reserve): on PostgreSQL a BEGIN, a COMMIT
and a pool checkout fewer per answer, on SQLite one trip to the writer thread fewer."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from bot.budget.outcomes import Denial, Grant
from bot.budget.reservations import BudgetManager
from bot.chat.notices import too_long_text
from bot.chat.prompt import Options, Window, choose_window
from bot.config import Settings
from bot.domain import Incoming
from bot.storage.conversations import Claimed


@dataclass(frozen=True, slots=True)
class Planned:
    """What an answer's first transaction decided beside claiming the message: that the new turn alone is
    too long for the context (`too_long`, the sentence saying so), or the prompt's window, its estimates
    (tokens) and the call's reservation (a Denial when the budget refuses)."""

    too_long: str | None = None
    window: Window | None = None
    prompt_estimate: int = 0
    reserved_prompt: int = 0
    granted: Grant | Denial | None = None
    web_search: bool = False
    fast: bool = False


def plan_answer(connection: Connection, claimed: Claimed, incoming: Incoming, options: Options, fixed_tokens: int,
                settings: Settings, budget: BudgetManager) -> Planned:
    """The window of history that fits beside the `fixed_tokens` every prompt of this turn carries (system
    prompt and new turn, tokens), scaled by how far the thread's last estimate fell short, and the
    reservation of the call's worst case (`BudgetManager.reserve_in`, in the caller's transaction)."""
    thread = claimed.thread
    correction = thread.last_prompt_actual / thread.last_prompt_estimate if thread.last_prompt_estimate else 1.0
    correction = max(1.0, correction)
    if fixed_tokens * correction > settings.context_tokens:
        return Planned(too_long_text(math.ceil(fixed_tokens * correction), settings.context_tokens))
    window = choose_window(claimed.history, floor_pk=thread.floor_pk, budget_tokens=settings.context_tokens,
                           fixed_tokens=fixed_tokens, correction=correction)
    prompt_estimate = fixed_tokens + window.tokens()
    reserved_prompt = math.ceil(prompt_estimate * max(correction, settings.token_safety_factor))
    web = options.web_search or bool(incoming.web_search) or claimed.channel.web_search
    fast = options.fast or incoming.thinking is False
    granted = budget.reserve_in(
        connection, channel_pk=claimed.channel.pk, scope_key=claimed.channel.scope_key, thread_pk=thread.pk,
        user_id=incoming.user_id, kind="chat", estimated_prompt_tokens=reserved_prompt,
        wanted_max_tokens=settings.seed_max_tokens, web_search=web, thinking=not fast)
    return Planned(None, window, prompt_estimate, reserved_prompt, granted, web, fast)

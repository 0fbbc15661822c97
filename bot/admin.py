"""Budget and spend commands, the same verbs on every surface: Slack's /seed, Discord's /budget and
/spend, and the CLI. Each returns the text to show; permission checks live here, not in adapters."""

from __future__ import annotations

import shlex
from datetime import datetime, timedelta

from bot.addresses import Address
from bot.budget import BudgetManager, channel_scope
from bot.config import Settings, parse_budget
from bot.domain import format_usd
from bot.models import utcnow
from bot.reports import Reports
from bot.store import ConversationStore

NOT_ADMIN = ("Only seedbot admins can change budgets, and you are not one of them. "
             "Ask an admin (listed in SEEDBOT_ADMINS) to make the change.")
HELP = ("Usage: `/seed budget` shows this channel's budget, `/seed budget 5/day` (or `/week`, `/month`, `none`) "
        "sets it, `/seed web on|off` and `/seed effort low|medium|high` set this channel's defaults "
        "(admins only), `/seed spend` shows the last 7 days.")


class AdminCommands:
    def __init__(self, settings: Settings, budget: BudgetManager, reports: Reports, store: ConversationStore) -> None:
        self._settings = settings
        self._budget = budget
        self._reports = reports
        self._store = store

    def is_admin(self, platform: str, user_id: str, workspace_id: str | None = None) -> bool:
        """Whether SEEDBOT_ADMINS names this person: `slack:U0123`, or `slack:T0123:U0123` where the
        platform's ids carry the workspace (bot/addresses.py)."""
        return str(Address(platform, self._workspace(platform, workspace_id), user_id)) in self._settings.admin_ids

    def _workspace(self, platform: str, workspace_id: str | None) -> str | None:
        return workspace_id if platform in self._settings.workspace_scoped_platforms else None

    async def budget_show(self, scope_key: str) -> str:
        state = await self._budget.scope_state(scope_key)
        used = state.spent_nanos + state.reserved_nanos
        resets = state.period_end.strftime("%Y-%m-%d %H:%M") + " UTC"
        if state.limit.limit_nanos is None:
            text = f"Budget for {scope_key}: unlimited. Spent this {state.limit.period.value}: {format_usd(used)}."
        else:
            share = used / state.limit.limit_nanos if state.limit.limit_nanos else 1.0
            text = (f"Budget for {scope_key}: {state.limit.describe()}. Spent this period: {format_usd(used)} "
                    f"({share:.0%}); resets {resets}.")
        changes = await self._budget.changes(scope_key, limit=5)
        if changes:
            history = "; ".join(f"{c.changed_at:%Y-%m-%d %H:%M} {c.changed_by}: {c.old_value} → {c.new_value}"
                                for c in changes)
            text += f"\nRecent changes: {history}"
        return text

    async def budget_set(self, platform: str, user_id: str, scope_key: str, value: str,
                         workspace_id: str | None = None) -> str:
        if not self.is_admin(platform, user_id, workspace_id):
            return NOT_ADMIN
        try:
            limit = parse_budget(value)
        except ValueError as exc:
            return str(exc)
        old, new = await self._budget.set_limit(scope_key, limit, changed_by=f"{platform}:{user_id}")
        return f"Budget for {scope_key} changed from {old} to {new}. It applies from the next message."

    async def spend(self, days: int = 7, now: datetime | None = None) -> str:
        until = now or utcnow()
        report = await self._reports.spend(until - timedelta(days=days), until)
        lines = [f"Spend over the last {days} days: {format_usd(report.cost_nanos)} in {report.requests} model "
                 f"calls ({report.refusals} refused for budget)."]
        lines += [f"• {c.address}: {format_usd(c.cost_nanos)} ({c.requests} calls)" for c in report.channels[:10]]
        return "\n".join(lines)

    async def channel_option(self, platform: str, user_id: str, channel_id: str, option: str,
                             args: list[str], workspace_id: str | None = None) -> str:
        if not self.is_admin(platform, user_id, workspace_id):
            return NOT_ADMIN
        allowed = {"web": ("on", "off"), "effort": ("low", "medium", "high")}[option]
        if len(args) != 1 or args[0] not in allowed:
            return f"Usage: `/seed {option} {'|'.join(allowed)}`"
        if option == "web":
            changed = await self._store.set_channel_options(platform, channel_id, web_search=args[0] == "on")
        else:
            changed = await self._store.set_channel_options(platform, channel_id, reasoning_effort=args[0])
        if not changed:
            return "I have not answered in this channel yet; mention me here once, then set its options."
        return f"This channel's {option} is now {args[0]}."

    async def slash_command(self, platform: str, user_id: str, channel_id: str, text: str,
                            workspace_id: str | None = None) -> str:
        """`/seed budget [VALUE]`, `/seed budget CHANNEL [VALUE]`, `/seed spend`. `workspace_id` is the
        workspace the command came from (it counts where several share the deployment)."""
        try:
            words = shlex.split(text)
        except ValueError:
            words = text.split()
        if not words or words[0] not in ("budget", "spend", "web", "effort"):
            return HELP
        if words[0] == "spend":
            return await self.spend()
        if words[0] in ("web", "effort"):
            return await self.channel_option(platform, user_id, channel_id, words[0], words[1:], workspace_id)
        args = words[1:]
        scope = channel_scope(platform, channel_id, self._workspace(platform, workspace_id))
        if args and ":" in args[0]:
            scope, args = args[0], args[1:]
        if not args:
            return await self.budget_show(scope)
        return await self.budget_set(platform, user_id, scope, " ".join(args), workspace_id)

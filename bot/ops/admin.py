"""Budget and spend commands, the same verbs on every surface: Slack's /seed, Discord's /budget and
/spend, and the CLI. Each returns the text to show; permission checks live here, not in adapters."""

from __future__ import annotations

import shlex
from datetime import datetime, timedelta

from bot.budget.limits import parse_budget
from bot.budget.reservations import BudgetManager
from bot.budget.scopes import EVERYONE, GLOBAL_SCOPE, deployment_channel_scope, person_scope, split_person_scope
from bot.config import Settings
from bot.domain import Address, counted, format_usd
from bot.ops.reports import Reports, runs_out_lines, top_users_line
from bot.storage.conversations import ConversationStore
from bot.text_safety import markdown_literal

BUDGETS = "budgets"
WEB_SEARCH = "this channel's web search setting (/seed web on|off)"
EFFORT = "this channel's reasoning effort (/seed effort low|medium|high)"


def not_admin(setting: str) -> str:
    """The refusal for a non-admin, naming the `setting` they tried to change (BUDGETS, WEB_SEARCH, EFFORT)."""
    return (f"Only seedbot admins can change {setting}, and you are not one of them. "
            "Ask an admin (listed in SEEDBOT_ADMINS) to make the change.")


ONLY_THIS_CHANNEL = ("You can see the budget of the channel you are in; other channels' budgets and their "
                     "change history are for seedbot admins.")


HELP = ("Usage: `/seed budget` shows this channel's budget, `/seed budget 5/day` (or `/week`, `/month`, `none`) "
        "sets it, `/seed budget user 1/day` sets each person's own limit in this channel, "
        "`/seed web on|off` and `/seed effort low|medium|high` set this channel's defaults "
        "(admins only), `/seed spend` shows the last 7 days (this channel's; everywhere for admins).")


class AdminCommands:
    def __init__(self, settings: Settings, budget: BudgetManager, reports: Reports, store: ConversationStore) -> None:
        self._settings = settings
        self._budget = budget
        self._reports = reports
        self._store = store

    def is_admin(self, platform: str, user_id: str, workspace_id: str | None = None) -> bool:
        """Whether SEEDBOT_ADMINS names this person: `slack:U0123`, or `slack:T0123:U0123` where the
        platform's ids carry the workspace (bot.domain.Address)."""
        return str(Address(platform, self._workspace(platform, workspace_id), user_id)) in self._settings.admin_ids

    def _workspace(self, platform: str, workspace_id: str | None) -> str | None:
        return workspace_id if platform in self._settings.workspace_scoped_platforms else None

    async def budget_show(self, scope_key: str) -> str:
        """A budget with its spend this period and its last changes (a channel's also with the limit
        each person has in it). No permission check: callers with a viewer use `budget_view`."""
        state = await self._budget.scope_state(scope_key)
        used = state.spent_nanos + state.reserved_nanos
        resets = state.period_end.strftime("%Y-%m-%d %H:%M") + " UTC"
        label = markdown_literal(await self._reports.scope_label(scope_key))
        if state.limit.limit_nanos is None:
            text = f"Budget for {label}: unlimited. Spent this {state.limit.period.value}: {format_usd(used)}."
        else:
            share = used / state.limit.limit_nanos if state.limit.limit_nanos else 1.0
            text = (f"Budget for {label}: {state.limit.describe()}. Spent this period: {format_usd(used)} "
                    f"({share:.0%}); resets {resets}.")
        if scope_key != GLOBAL_SCOPE and split_person_scope(scope_key) is None:
            people = await self._budget.limits.limit_for_scope(person_scope(scope_key, EVERYONE))
            text += f"\nEach person's own limit here: {people.describe()}."
        changes = await self._budget.limits.changes(scope_key, limit=5)
        if changes:
            history = "; ".join(f"{c.changed_at:%Y-%m-%d %H:%M} {c.changed_by}: {c.old_value} → {c.new_value}"
                                for c in changes)
            text += f"\nRecent changes: {history}"
        return text

    async def budget_view(self, platform: str, user_id: str, here: str, scope_key: str,
                          workspace_id: str | None = None) -> str:
        """`budget_show` for someone in channel `here`: admins see any budget, others only this channel's
        (its own, or a person's limit in it)."""
        person = split_person_scope(scope_key)
        if (person[1] if person else scope_key) != here and not self.is_admin(platform, user_id, workspace_id):
            return ONLY_THIS_CHANNEL
        return await self.budget_show(scope_key)

    async def budget_set(self, platform: str, user_id: str, scope_key: str, value: str,
                         workspace_id: str | None = None) -> str:
        if not self.is_admin(platform, user_id, workspace_id):
            return not_admin(BUDGETS)
        try:
            limit = parse_budget(value)
        except ValueError as exc:
            return str(exc)
        old, new = await self._budget.limits.set_limit(scope_key, limit, changed_by=f"{platform}:{user_id}")
        label = markdown_literal(await self._reports.scope_label(scope_key))
        return f"Budget for {label} changed from {old} to {new}. It applies from the next message."

    async def spend(self, days: int = 7, *, channel: str | None = None,
                    workspace: tuple[str, str] | None = None) -> str:
        """The spend of the last `days` days (today and the days before it in SEEDBOT_TIMEZONE, as `seedbot spend`
        and the console count them), everywhere (or in one `workspace`: platform, workspace id) or in one
        `channel` (a scope key), by name, with the month-end forecast of monthly budgets."""
        today = datetime.now(self._settings.tz).date()
        report = await self._reports.spend_days(today - timedelta(days=days - 1), today, channel=channel,
                                                workspace=workspace)
        where = "" if channel is None else \
            f" in {markdown_literal((await self._reports.channel_labels([channel]))[channel])}"
        lines = [f"Spend{where} over the last {days} days: {format_usd(report.cost_nanos)} in "
                 f"{counted(report.requests, 'model call')} ({report.refusals} refused for budget)."]
        for c in report.channels[:10]:
            line = f"• {markdown_literal(c.label)}: {format_usd(c.cost_nanos)} ({counted(c.requests, 'call')})"
            if c.position.forecast_nanos is not None:
                line += f"; month-end forecast {format_usd(c.position.forecast_nanos)} of {c.position.budget}"
            lines.append(line)
        lines += runs_out_lines(report)
        if report.users:
            lines.append(top_users_line(report))
        return "\n".join(lines)

    async def spend_view(self, platform: str, user_id: str, here: str, days: int = 7,
                         workspace_id: str | None = None) -> str:
        """`/seed spend`, `/spend`: everywhere for admins (their own workspace's channels where several
        workspaces share the deployment), only channel `here` for everyone else."""
        if not self.is_admin(platform, user_id, workspace_id):
            return await self.spend(days, channel=here)
        scoped = self._workspace(platform, workspace_id)
        return await self.spend(days, workspace=(platform, scoped) if scoped else None)

    async def channel_option(self, platform: str, user_id: str, channel_id: str, option: str,
                             args: list[str], workspace_id: str | None = None) -> str:
        if not self.is_admin(platform, user_id, workspace_id):
            return not_admin(WEB_SEARCH if option == "web" else EFFORT)
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
        """`/seed budget [VALUE]`, `/seed budget user [VALUE]`, `/seed budget CHANNEL [VALUE]`, `/seed spend`.
        `workspace_id` is the workspace the command came from (it counts where several share the
        deployment)."""
        try:
            words = shlex.split(text)
        except ValueError:
            words = text.split()
        if not words or words[0] not in ("budget", "spend", "web", "effort"):
            return HELP
        here = scope = deployment_channel_scope(platform, channel_id, workspace_id,
                                                self._settings.workspace_scoped_platforms)
        if words[0] == "spend":
            return await self.spend_view(platform, user_id, here, workspace_id=workspace_id)
        if words[0] in ("web", "effort"):
            return await self.channel_option(platform, user_id, channel_id, words[0], words[1:], workspace_id)
        args = words[1:]
        if args and args[0] == "user":
            scope, args = person_scope(here, EVERYONE), args[1:]
        elif args and ":" in args[0]:
            scope, args = args[0], args[1:]
        if not args:
            return await self.budget_view(platform, user_id, here, scope, workspace_id)
        return await self.budget_set(platform, user_id, scope, " ".join(args), workspace_id)

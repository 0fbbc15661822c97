"""Spend figures from the ledger, the daily summary's text, and its 14-day chart.

Every figure is a SQL sum over integer nano-dollars, so the summary adds up to the ledger exactly.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.budget import BudgetManager, channel_scope
from bot.budget_logic import local_midnight_utc
from bot.config import Settings
from bot.db import Database
from bot.domain import NANOS_PER_USD, format_usd, usd_string
from bot.models import Channel, Refusal, UsageEntry
from bot.pricing import PriceBook

FAILED_STATUSES = ("failed", "cut", "expired")
TOP_USERS = 5
CHART_DAYS = 14


@dataclass(frozen=True, slots=True)
class ChannelSpend:
    address: str
    name: str
    cost_nanos: int
    requests: int
    budget: str = ""
    utilisation: float | None = None


@dataclass(frozen=True, slots=True)
class UserSpend:
    user_id: str
    cost_nanos: int
    requests: int


@dataclass(slots=True)
class SpendReport:
    since: datetime
    until: datetime
    cost_nanos: int = 0
    requests: int = 0
    answers: int = 0
    refusals: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    web_searches: int = 0
    cache_savings_nanos: int = 0
    channels: list[ChannelSpend] = field(default_factory=list)
    users: list[UserSpend] = field(default_factory=list)

    @property
    def cache_hit_ratio(self) -> float:
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0

    def as_json(self) -> dict[str, object]:
        return {
            "since": self.since.isoformat(), "until": self.until.isoformat(),
            "cost_usd": usd_string(self.cost_nanos), "requests": self.requests, "answers": self.answers,
            "refusals": self.refusals, "failures": self.failures,
            "tokens": {"prompt": self.prompt_tokens, "cached": self.cached_tokens,
                       "completion": self.completion_tokens, "reasoning": self.reasoning_tokens},
            "cache_hit_ratio": round(self.cache_hit_ratio, 4),
            "cache_savings_usd": usd_string(self.cache_savings_nanos),
            "web_searches": self.web_searches,
            "channels": [{"channel": c.address, "name": c.name, "cost_usd": usd_string(c.cost_nanos),
                          "requests": c.requests, "budget": c.budget,
                          "utilisation": None if c.utilisation is None else round(c.utilisation, 4)}
                         for c in self.channels],
            "users": [{"user": u.user_id, "cost_usd": usd_string(u.cost_nanos), "requests": u.requests}
                      for u in self.users],
        }


class Reports:
    def __init__(self, db: Database, settings: Settings, prices: PriceBook, budget: BudgetManager) -> None:
        self._db = db
        self._settings = settings
        self._prices = prices
        self._budget = budget

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """A calendar day in SEEDBOT_TIMEZONE, as naive UTC [start, end)."""
        tz = self._settings.tz
        return local_midnight_utc(day, tz), local_midnight_utc(day + timedelta(days=1), tz)

    async def spend(self, since: datetime, until: datetime, *, with_budgets: bool = True,
                    workspace: tuple[str, str] | None = None) -> SpendReport:
        """Ledger figures for [since, until) (naive UTC); `workspace` (platform, workspace id) limits
        them to that workspace's channels, for its own admins' summary."""
        report = SpendReport(since, until)
        in_range = (UsageEntry.started_at >= since, UsageEntry.started_at < until,
                    *_in_workspace(UsageEntry.channel_pk, workspace))
        async with self._db.session() as session:
            totals = (await session.execute(select(
                func.coalesce(func.sum(UsageEntry.cost_nanos), 0), func.count(UsageEntry.id),
                func.coalesce(func.sum(case((UsageEntry.status.in_(("ok", "filtered")), 1), else_=0)), 0),
                func.coalesce(func.sum(case((UsageEntry.status.in_(FAILED_STATUSES), 1), else_=0)), 0),
                func.coalesce(func.sum(UsageEntry.prompt_tokens), 0),
                func.coalesce(func.sum(UsageEntry.cached_tokens), 0),
                func.coalesce(func.sum(UsageEntry.completion_tokens), 0),
                func.coalesce(func.sum(UsageEntry.reasoning_tokens), 0),
                func.coalesce(func.sum(UsageEntry.web_searches), 0),
            ).where(*in_range))).one()
            (report.cost_nanos, report.requests, report.answers, report.failures, report.prompt_tokens,
             report.cached_tokens, report.completion_tokens, report.reasoning_tokens,
             report.web_searches) = (int(v) for v in totals)
            report.refusals = int(await session.scalar(select(func.count(Refusal.id)).where(
                Refusal.created_at >= since, Refusal.created_at < until,
                *_in_workspace(Refusal.channel_pk, workspace))) or 0)
            report.cache_savings_nanos = await self._cache_savings(session, in_range)
            rows = await session.execute(
                select(Channel.platform, Channel.workspace_id, Channel.channel_id, Channel.name,
                       func.sum(UsageEntry.cost_nanos), func.count(UsageEntry.id))
                .join(Channel, Channel.id == UsageEntry.channel_pk).where(*in_range)
                .group_by(Channel.platform, Channel.workspace_id, Channel.channel_id, Channel.name)
                .order_by(func.sum(UsageEntry.cost_nanos).desc()))
            channel_rows = [(self._scope(p, w, c), n, int(cost), int(count)) for p, w, c, n, cost, count in rows]
            users = await session.execute(
                select(Channel.platform, UsageEntry.user_id, func.sum(UsageEntry.cost_nanos),
                       func.count(UsageEntry.id))
                .join(Channel, Channel.id == UsageEntry.channel_pk).where(*in_range)
                .group_by(Channel.platform, UsageEntry.user_id)
                .order_by(func.sum(UsageEntry.cost_nanos).desc()).limit(TOP_USERS))
            report.users = [UserSpend(f"{p}:{u}", int(cost), int(count)) for p, u, cost, count in users]
        for address, name, cost, count in channel_rows:
            budget, utilisation = "", None
            if with_budgets:
                budget, utilisation = await self._utilisation(address, until)
            report.channels.append(ChannelSpend(address, name, cost, count, budget, utilisation))
        return report

    async def _cache_savings(self, session: AsyncSession, in_range: tuple[Any, ...]) -> int:
        """What cached tokens would have cost at the uncached rate, minus what they cost."""
        threshold = self._prices.long_context_threshold
        savings = 0
        for tier, condition in ((self._prices.short, UsageEntry.prompt_tokens < threshold),
                                (self._prices.long, UsageEntry.prompt_tokens >= threshold)):
            cached = int(await session.scalar(select(func.coalesce(func.sum(UsageEntry.cached_tokens), 0)).where(
                *in_range, condition)) or 0)
            per_token = (tier.input_per_m - tier.cached_input_per_m) * NANOS_PER_USD / 1_000_000
            savings += int(cached * per_token)
        return savings

    async def _utilisation(self, scope_key: str, at: datetime) -> tuple[str, float | None]:
        """The budget of a channel and how much of its period containing `at` is spent."""
        state = await self._budget.scope_state(scope_key, at=at - timedelta(microseconds=1))
        if state.limit.limit_nanos is None:
            return state.limit.describe(), None
        spent = await self._db.run(
            lambda session: BudgetManager.ledger_spent(session, scope_key, state.period_start, until=at))
        return state.limit.describe(), spent / state.limit.limit_nanos if state.limit.limit_nanos else None

    async def daily_series(self, last_day: date, days: int = CHART_DAYS,
                           workspace: tuple[str, str] | None = None) -> dict[str, list[int]]:
        """Spend per channel per day for the `days` days ending with `last_day`, oldest first (in one
        workspace's channels when given)."""
        first = last_day - timedelta(days=days - 1)
        start, _ = self.day_bounds(first)
        _, end = self.day_bounds(last_day)
        async with self._db.session() as session:
            rows = await session.execute(
                select(Channel.platform, Channel.workspace_id, Channel.channel_id, UsageEntry.started_at,
                       UsageEntry.cost_nanos)
                .join(Channel, Channel.id == UsageEntry.channel_pk)
                .where(UsageEntry.started_at >= start, UsageEntry.started_at < end,
                       *_in_workspace(UsageEntry.channel_pk, workspace)))
            series: dict[str, list[int]] = {}
            tz = self._settings.tz
            for platform, workspace_id, channel_id, started, cost in rows:
                local_day = started.replace(tzinfo=UTC).astimezone(tz).date()
                index = (local_day - first).days
                if 0 <= index < days:
                    series.setdefault(self._scope(platform, workspace_id, channel_id), [0] * days)[index] += int(cost)
        return series

    def _scope(self, platform: str, workspace_id: str, channel_id: str) -> str:
        scoped = platform in self._settings.workspace_scoped_platforms
        return channel_scope(platform, channel_id, workspace_id if scoped else None)


def _in_workspace(channel_pk: Any, workspace: tuple[str, str] | None) -> tuple[Any, ...]:
    if workspace is None:
        return ()
    platform, workspace_id = workspace
    return (channel_pk.in_(select(Channel.id).where(Channel.platform == platform,
                                                    Channel.workspace_id == workspace_id)),)


def render_summary(report: SpendReport, day: date) -> str:
    """The daily summary as Markdown (both platforms render it)."""
    lines = [
        f"**seedbot spend for {day:%A %d %B %Y}**",
        "",
        f"Total **{format_usd(report.cost_nanos)}** · {report.requests} model calls · {report.answers} answers · "
        f"{report.refusals} refused for budget · {report.failures} failed",
    ]
    if report.channels:
        lines += ["", "| channel | spend | budget | used |", "|---|---:|---|---:|"]
        for channel in report.channels:
            used = "" if channel.utilisation is None else f"{channel.utilisation:.0%}"
            label = f"{channel.address} ({channel.name})" if channel.name else channel.address
            lines.append(f"| {label} | {format_usd(channel.cost_nanos)} | {channel.budget} | {used} |")
    if report.users:
        top = ", ".join(f"{u.user_id} {format_usd(u.cost_nanos)}" for u in report.users)
        lines += ["", f"Top users: {top}"]
    lines += [
        "",
        f"Tokens: {report.prompt_tokens:,} prompt ({report.cached_tokens:,} cached, "
        f"{report.cache_hit_ratio:.0%} hit ratio, saving {format_usd(report.cache_savings_nanos)}), "
        f"{report.completion_tokens:,} completion ({report.reasoning_tokens:,} reasoning). "
        f"Web searches: {report.web_searches}.",
    ]
    return "\n".join(lines)


def render_chart(series: dict[str, list[int]], last_day: date) -> bytes:
    """A PNG: daily spend stacked by channel. CPU-heavy: call it in a thread."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    days = len(next(iter(series.values()))) if series else CHART_DAYS
    labels = [(last_day - timedelta(days=days - 1 - i)).strftime("%d %b") for i in range(days)]
    figure = Figure(figsize=(8, 3.6), dpi=100)
    axes = figure.add_subplot()
    bottom = [0.0] * days
    for channel, values in sorted(series.items(), key=lambda item: -sum(item[1])):
        dollars = [v / NANOS_PER_USD for v in values]
        axes.bar(labels, dollars, bottom=bottom, label=channel)
        bottom = [b + d for b, d in zip(bottom, dollars, strict=True)]
    axes.set_ylabel("USD")
    axes.set_title(f"seedbot spend, last {days} days")
    axes.tick_params(axis="x", labelrotation=45, labelsize=8)
    if series:
        axes.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()

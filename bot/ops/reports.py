"""Spend figures from the ledger and the daily summary's text (its chart: bot.ops.chart).

Every figure is a SQL sum over integer nano-dollars, so the summary adds up to the ledger exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from bot.budget.counters import ledger_spent
from bot.budget.limits import Period
from bot.budget.periods import local_midnight_utc, project_month_end
from bot.budget.pricing import PriceBook
from bot.budget.reservations import BudgetManager
from bot.budget.scopes import EVERYONE, GLOBAL_SCOPE, channel_pks, deployment_channel_scope, split_person_scope
from bot.config import Settings
from bot.domain import NANOS_PER_USD, counted, format_usd, usd_string
from bot.ops.chart import CHART_DAYS
from bot.storage.engine import Database
from bot.storage.feedback import FeedbackCounts, FeedbackStore
from bot.storage.names import CHANNEL, USER, NameBook, channel_label, person_label
from bot.storage.tables import Channel, Refusal, UsageEntry
from bot.text_safety import markdown_literal

FAILED_STATUSES = ("failed", "cut", "expired", "empty_answer")
TOP_USERS = 5


@dataclass(frozen=True, slots=True)
class BudgetPosition:
    """A channel's budget in the period holding a report's end. `forecast_nanos` is the projected
    month-end spend of a monthly budget (None for other periods and unlimited budgets)."""

    budget: str = ""
    utilisation: float | None = None
    forecast_nanos: int | None = None
    limit_nanos: int | None = None

    @property
    def runs_out(self) -> bool:
        """Projected to spend its whole limit before the month ends."""
        return self.forecast_nanos is not None and self.limit_nanos is not None \
            and self.forecast_nanos > self.limit_nanos


@dataclass(frozen=True, slots=True)
class ChannelSpend:
    address: str
    name: str
    cost_nanos: int
    requests: int
    position: BudgetPosition = field(default_factory=BudgetPosition)

    @property
    def label(self) -> str:
        return channel_label(self.name, self.address)


@dataclass(frozen=True, slots=True)
class UserSpend:
    user_id: str
    cost_nanos: int
    requests: int
    name: str = ""

    @property
    def label(self) -> str:
        return person_label(self.name, self.user_id)


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
    feedback: FeedbackCounts = field(default_factory=FeedbackCounts)

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
                          "requests": c.requests, "budget": c.position.budget,
                          "utilisation": None if c.position.utilisation is None else round(c.position.utilisation, 4),
                          "forecast_usd": None if c.position.forecast_nanos is None
                          else usd_string(c.position.forecast_nanos),
                          "runs_out": c.position.runs_out}
                         for c in self.channels],
            "users": [{"user": u.user_id, "name": u.name, "cost_usd": usd_string(u.cost_nanos),
                       "requests": u.requests} for u in self.users],
            "feedback": {"helpful": self.feedback.helpful, "not_helpful": self.feedback.not_helpful},
        }


# The days a report may be asked for: wide enough for any ledger, narrow enough that the day after and each day's
# local midnight in any time zone exist as datetimes (`day_bounds`).
REPORT_DAYS = (date(1970, 1, 1), date(9000, 12, 31))


def parse_report_day(text: str) -> date:
    """A day written YYYY-MM-DD, within REPORT_DAYS. Raises ValueError, in words for the admin."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = date.min
    if not REPORT_DAYS[0] <= day <= REPORT_DAYS[1]:
        raise ValueError(f"must be a date like 2026-11-26, from {REPORT_DAYS[0]} to {REPORT_DAYS[1]}")
    return day


class Reports:
    def __init__(self, db: Database, settings: Settings, prices: PriceBook, budget: BudgetManager,
                 names: NameBook) -> None:
        self._db = db
        self._settings = settings
        self._prices = prices
        self._budget = budget
        self._names = names
        self.feedback = FeedbackStore(db)

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """A calendar day in SEEDBOT_TIMEZONE, as naive UTC [start, end). `day` must be a REPORT_DAYS one (outside
        it the next day or a local midnight may not exist as a datetime: OverflowError)."""
        tz = self._settings.tz
        return local_midnight_utc(day, tz), local_midnight_utc(day + timedelta(days=1), tz)

    async def spend_days(self, first: date, last: date, **options: object) -> SpendReport:
        """`spend` over whole local days, `first` to `last` inclusive (what `seedbot spend` shows)."""
        start, _ = self.day_bounds(first)
        _, end = self.day_bounds(last)
        return await self.spend(start, end, **options)  # type: ignore[arg-type]

    async def spend(self, since: datetime, until: datetime, *, with_budgets: bool = True,
                    channel: str | None = None, top_users: int | None = TOP_USERS,
                    workspace: tuple[str, str] | None = None) -> SpendReport:
        """Ledger figures for [since, until) (naive UTC), all channels or only `channel` (a scope key);
        `top_users=None` lists every person; `workspace` (platform, workspace id) limits them to that
        workspace's channels, for its own admins' summary."""
        report = SpendReport(since, until)
        in_range: tuple[Any, ...] = (UsageEntry.started_at >= since, UsageEntry.started_at < until,
                                     *_in_workspace(UsageEntry.channel_pk, workspace))
        refused: tuple[Any, ...] = (Refusal.created_at >= since, Refusal.created_at < until,
                                    *_in_workspace(Refusal.channel_pk, workspace))
        if channel is not None:
            pks = channel_pks(channel)
            in_range += (UsageEntry.channel_pk.in_(pks),)
            refused += (Refusal.channel_pk.in_(pks),)
        def work(session: Session) -> tuple[list[Any], list[Any]]:
            totals = session.execute(select(
                func.coalesce(func.sum(UsageEntry.cost_nanos), 0), func.count(UsageEntry.id),
                func.coalesce(func.sum(case((UsageEntry.status.in_(("ok", "filtered")), 1), else_=0)), 0),
                func.coalesce(func.sum(case((UsageEntry.status.in_(FAILED_STATUSES), 1), else_=0)), 0),
                func.coalesce(func.sum(UsageEntry.prompt_tokens), 0),
                func.coalesce(func.sum(UsageEntry.cached_tokens), 0),
                func.coalesce(func.sum(UsageEntry.completion_tokens), 0),
                func.coalesce(func.sum(UsageEntry.reasoning_tokens), 0),
                func.coalesce(func.sum(UsageEntry.web_searches), 0),
            ).where(*in_range)).one()
            (report.cost_nanos, report.requests, report.answers, report.failures, report.prompt_tokens,
             report.cached_tokens, report.completion_tokens, report.reasoning_tokens,
             report.web_searches) = (int(v) for v in totals)
            report.refusals = int(session.scalar(select(func.count(Refusal.id)).where(*refused)) or 0)
            report.cache_savings_nanos = self._cache_savings(session, in_range)
            rows = session.execute(
                select(Channel.platform, Channel.workspace_id, Channel.channel_id, Channel.name,
                       func.sum(UsageEntry.cost_nanos), func.count(UsageEntry.id))
                .join(Channel, Channel.id == UsageEntry.channel_pk).where(*in_range)
                .group_by(Channel.platform, Channel.workspace_id, Channel.channel_id, Channel.name)
                .order_by(func.sum(UsageEntry.cost_nanos).desc()))
            users = session.execute(
                select(Channel.platform, UsageEntry.user_id, func.sum(UsageEntry.cost_nanos),
                       func.count(UsageEntry.id))
                .join(Channel, Channel.id == UsageEntry.channel_pk).where(*in_range)
                .group_by(Channel.platform, UsageEntry.user_id)
                .order_by(func.sum(UsageEntry.cost_nanos).desc()).limit(top_users))
            return ([(p, w, c, n, int(cost), int(count)) for p, w, c, n, cost, count in rows],
                    [(p, u, int(cost), int(count)) for p, u, cost, count in users])

        channel_rows, user_rows = await self._db.read(work)
        names = await self._names.names([(p, CHANNEL, c) for p, _, c, *_ in channel_rows]
                                        + [(p, USER, u) for p, u, *_ in user_rows])
        report.users = [UserSpend(f"{p}:{u}", cost, count, names.get((p, USER, u), ""))
                        for p, u, cost, count in user_rows]
        for platform, workspace_id, channel_id, name, cost, count in channel_rows:
            address = self._scope(platform, workspace_id, channel_id)
            position = await self._position(address, until) if with_budgets else BudgetPosition()
            report.channels.append(ChannelSpend(address, names.get((platform, CHANNEL, channel_id), name), cost,
                                                count, position))
        answered_in = channel_pks(channel) if channel is not None else _workspace_channels(workspace)
        report.feedback = await self.feedback.counts(since, until, channel_pks=answered_in)
        return report

    async def scope_label(self, scope_key: str) -> str:
        """How people read a budget key: `#backend (slack:C0123)`, `Ada in #backend (slack:C0123)` (her
        own limit there), `each person in #backend (slack:C0123)`, `the global cap`."""
        person = split_person_scope(scope_key)
        channel = person[1] if person else scope_key
        if channel == GLOBAL_SCOPE:
            return "the global cap"
        name = (await self.channel_labels([channel]))[channel]
        where = channel if name == channel else f"{name} ({channel})"
        if person is None:
            return where
        if person[0] == EVERYONE:
            return f"each person in {where}"
        platform = channel.partition(":")[0]
        who = (await self._names.names([(platform, USER, person[0])])).get((platform, USER, person[0]))
        return f"{person_label(who, f'{platform}:{person[0]}')} in {where}"

    async def channel_labels(self, addresses: list[str]) -> dict[str, str]:
        """`slack:C0123` (or `slack:T0123:C0123`) -> `#backend` (the address itself while no name is known).
        Names are kept by the platform's channel id, the last part of the address."""
        keys = {address: (address.partition(":")[0], CHANNEL, address.rpartition(":")[2]) for address in addresses}
        names = await self._names.names(keys.values())
        return {address: channel_label(names.get(key), address) for address, key in keys.items()}

    def _cache_savings(self, session: Session, in_range: tuple[Any, ...]) -> int:
        """What cached tokens would have cost at the uncached rate, minus what they cost, over the ledger
        rows `in_range` selects."""
        threshold = self._prices.long_context_threshold
        savings = 0
        for tier, condition in ((self._prices.short, UsageEntry.prompt_tokens < threshold),
                                (self._prices.long, UsageEntry.prompt_tokens >= threshold)):
            cached = int(session.scalar(select(func.coalesce(func.sum(UsageEntry.cached_tokens), 0)).where(
                *in_range, condition)) or 0)
            per_token = (tier.input_per_m - tier.cached_input_per_m) * NANOS_PER_USD / 1_000_000
            savings += int(cached * per_token)
        return savings

    async def _position(self, scope_key: str, at: datetime) -> BudgetPosition:
        """The budget of a channel, how much of its period containing `at` is spent, and for a monthly
        budget the month-end forecast as of the local day holding `at` (counted as a whole day)."""
        last_moment = at - timedelta(microseconds=1)
        state = await self._budget.scope_state(scope_key, at=last_moment)
        limit = state.limit.limit_nanos
        if limit is None:
            return BudgetPosition(state.limit.describe())
        spent = await self._db.run_core(
            lambda connection: ledger_spent(connection, scope_key, state.period_start, until=at))
        forecast = None
        if state.limit.period is Period.MONTH:
            forecast = project_month_end(spent, last_moment.replace(tzinfo=UTC).astimezone(self._settings.tz).date())
        return BudgetPosition(state.limit.describe(), spent / limit if limit else None, forecast, limit)

    async def chart_data(self, last_day: date, workspace: tuple[str, str] | None = None
                         ) -> tuple[dict[str, list[int]], dict[str, str]]:
        """What `render_chart` draws for the CHART_DAYS ending `last_day` (in one workspace's channels when
        given): the series and channel labels."""
        series = await self.daily_series(last_day, workspace=workspace)
        return series, await self.channel_labels(list(series))

    async def daily_series(self, last_day: date, days: int = CHART_DAYS,
                           workspace: tuple[str, str] | None = None) -> dict[str, list[int]]:
        """Spend per channel per day for the `days` days ending with `last_day`, oldest first (in one
        workspace's channels when given)."""
        first = last_day - timedelta(days=days - 1)
        start, _ = self.day_bounds(first)
        _, end = self.day_bounds(last_day)
        query = (select(Channel.platform, Channel.workspace_id, Channel.channel_id, UsageEntry.started_at,
                        UsageEntry.cost_nanos)
                 .join(Channel, Channel.id == UsageEntry.channel_pk)
                 .where(UsageEntry.started_at >= start, UsageEntry.started_at < end,
                        *_in_workspace(UsageEntry.channel_pk, workspace)))
        rows = await self._db.read(lambda session: session.execute(query).all())
        series: dict[str, list[int]] = {}
        tz = self._settings.tz
        for platform, workspace_id, channel_id, started, cost in rows:
            local_day = started.replace(tzinfo=UTC).astimezone(tz).date()
            index = (local_day - first).days
            if 0 <= index < days:
                series.setdefault(self._scope(platform, workspace_id, channel_id), [0] * days)[index] += int(cost)
        return series

    def _scope(self, platform: str, workspace_id: str, channel_id: str) -> str:
        return deployment_channel_scope(platform, channel_id, workspace_id, self._settings.workspace_scoped_platforms)


def _workspace_channels(workspace: tuple[str, str] | None) -> Select[Any] | None:
    """The row ids of one workspace's channels (platform, workspace id), as a subquery; None for all."""
    if workspace is None:
        return None
    platform, workspace_id = workspace
    return select(Channel.id).where(Channel.platform == platform, Channel.workspace_id == workspace_id)


def _in_workspace(channel_pk: Any, workspace: tuple[str, str] | None) -> tuple[Any, ...]:
    channels = _workspace_channels(workspace)
    return () if channels is None else (channel_pk.in_(channels),)


def render_summary(report: SpendReport, day: date) -> str:
    """The daily summary as Markdown (both platforms render it). Channels and people by name."""
    lines = [
        f"**seedbot spend for {day:%A %d %B %Y}**",
        "",
        f"Total **{format_usd(report.cost_nanos)}** · {counted(report.requests, 'model call')} · "
        f"{counted(report.answers, 'answer')} · {report.refusals} refused for budget · {report.failures} failed",
    ]
    if report.feedback.rated:
        lines += ["", report.feedback.sentence() + "."]
    if report.channels:
        lines += ["", "| channel | spend | budget | used | month-end forecast |", "|---|---:|---|---:|---:|"]
        for channel in report.channels:
            position = channel.position
            used = "" if position.utilisation is None else f"{position.utilisation:.0%}"
            forecast = "" if position.forecast_nanos is None else format_usd(position.forecast_nanos)
            lines.append(f"| {markdown_literal(channel.label)} | {format_usd(channel.cost_nanos)} | {position.budget} "
                         f"| {used} | {forecast} |")
        lines += runs_out_lines(report)
    if report.users:
        lines += ["", top_users_line(report)]
    lines += [
        "",
        f"Tokens: {report.prompt_tokens:,} prompt ({report.cached_tokens:,} cached, "
        f"{report.cache_hit_ratio:.0%} hit ratio, saving {format_usd(report.cache_savings_nanos)}), "
        f"{report.completion_tokens:,} completion ({report.reasoning_tokens:,} reasoning). "
        f"Web searches: {report.web_searches}.",
    ]
    return "\n".join(lines)


def top_users_line(report: SpendReport) -> str:
    """The biggest spenders (TOP_USERS) by name, with what each spent."""
    return "Top users: " + ", ".join(f"{markdown_literal(u.label)} {format_usd(u.cost_nanos)}" for u in report.users)


def runs_out_lines(report: SpendReport) -> list[str]:
    """One warning per channel whose monthly budget is projected to run out before the month ends."""
    return [f"⚠ {markdown_literal(c.label)} is projected to spend {format_usd(c.position.forecast_nanos or 0)} this "
            f"month, more than its {c.position.budget}: it will run out before the month ends."
            for c in report.channels if c.position.runs_out]

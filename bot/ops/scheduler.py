"""Once-only deliveries: the daily spend summary and budget alerts.

"Once" is decided by the database, never by process memory: a delivery is a row with a unique key,
inserted (claimed) before anything is sent. Replicas racing for the same key see exactly one winner.
A failed send is marked failed and claimed again on a later tick; a claim whose process died is
taken over after CLAIM_TIMEOUT. A bot that was down at report time sends the missed summary once
when it comes back (only the latest due day, not a backlog).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from bot.budget.outcomes import Denial, Remaining
from bot.budget.scopes import GLOBAL_SCOPE, split_person_scope
from bot.config import Settings
from bot.domain import Incoming, format_usd
from bot.ops.chart import render_chart
from bot.ops.reports import Reports, render_summary
from bot.ports import Notifier
from bot.storage.engine import Database
from bot.storage.tables import Delivery, utcnow
from bot.text_safety import markdown_literal

log = logging.getLogger(__name__)

CLAIM_TIMEOUT = timedelta(minutes=10)
MAX_ATTEMPTS = 5
ALERT_THRESHOLDS = (0.8, 1.0)


@dataclass(frozen=True, slots=True)
class Admin:
    platform: str
    user_id: str

    @classmethod
    def parse(cls, text: str) -> Admin:
        platform, _, user_id = text.partition(":")
        return cls(platform, user_id)

    def __str__(self) -> str:
        return f"{self.platform}:{self.user_id}"

    @property
    def workspace(self) -> tuple[str, str] | None:
        """(platform, workspace id) of an admin written `slack:T0123:U0456`: they are told about that
        workspace only. None for `slack:U0456`: the whole deployment."""
        workspace_id, _, _ = self.user_id.rpartition(":")
        return (self.platform, workspace_id) if workspace_id else None

    def hears_of(self, scope_key: str) -> bool:
        """Whether an alert about the budget `scope_key` is for this admin: one of the whole deployment hears of
        every budget; a workspace's admin of the global cap and of their workspace's channels only (another
        workspace's channel names and spend are another tenant's)."""
        if self.workspace is None or scope_key == GLOBAL_SCOPE:
            return True
        platform, *ids = scope_key.split(":")
        return len(ids) == 2 and (platform, ids[0]) == self.workspace


class Deliveries:
    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._clock = clock

    async def claim(self, key: str) -> bool:
        """True if this caller now owns sending `key`: a new key, a failed one, or an abandoned claim."""
        now = self._clock()
        claim = self._db.insert(Delivery).values(key=key, status="claimed", attempts=1, claimed_at=now) \
            .on_conflict_do_nothing(index_elements=["key"]).returning(Delivery.id)
        retake = update(Delivery).where(
            Delivery.key == key, Delivery.attempts < MAX_ATTEMPTS,
            or_(Delivery.status == "failed",
                (Delivery.status == "claimed") & (Delivery.claimed_at < now - CLAIM_TIMEOUT)),
        ).values(status="claimed", attempts=Delivery.attempts + 1, claimed_at=now)

        def work(session: Session) -> bool:
            return session.scalar(claim) is not None or session.execute(retake).rowcount == 1
        # `Database.run`, not an async session: on SQLite the writer thread finishes the transaction even if this
        # caller is cancelled, instead of a second connection holding the write lock while it is torn down.
        return await self._db.run(work)

    async def finish(self, key: str, error: str | None = None) -> None:
        statement = update(Delivery).where(Delivery.key == key).values(
            status="failed" if error else "sent", error=error, sent_at=None if error else self._clock())
        await self._db.run(lambda session: session.execute(statement))


class Scheduler:
    """Ticks every minute (from `seedbot run`); each tick does what is due and nothing twice."""

    def __init__(self, settings: Settings, db: Database, reports: Reports, notifiers: Mapping[str, Notifier],
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._settings = settings
        self._reports = reports
        self._notifiers = notifiers
        self._clock = clock
        self.deliveries = Deliveries(db, clock)
        self.admins = [Admin.parse(a) for a in sorted(settings.admin_ids)]

    def due_day(self, now_utc: datetime) -> date:
        """The latest day whose summary is due: yesterday once today's report time has passed."""
        local = now_utc.replace(tzinfo=UTC).astimezone(self._settings.tz)
        hour, minute = self._settings.report_time.hour, self._settings.report_time.minute
        passed = local.time() >= time(hour, minute)
        return local.date() - timedelta(days=1 if passed else 2)

    async def tick(self) -> int:
        return await self.send_summary(self.due_day(self._clock()))

    async def send_summary(self, day: date) -> int:
        """Deliver `day`'s summary to every admin not yet served. Returns how many were sent now."""
        pending = [admin for admin in self.admins if self._notifiers.get(admin.platform) is not None]
        claimed = [admin for admin in pending if await self.deliveries.claim(f"summary:{day.isoformat()}:{admin}")]
        if not claimed:
            return 0
        summaries = {workspace: await self.build_summary(day, workspace)
                     for workspace in dict.fromkeys(admin.workspace for admin in claimed)}
        sent = 0
        for admin in claimed:
            key = f"summary:{day.isoformat()}:{admin}"
            text, png = summaries[admin.workspace]
            try:
                await self._notifiers[admin.platform].send_direct(admin.user_id, text, png=png,
                                                                  filename=f"seedbot-spend-{day}.png")
            except Exception as exc:  # noqa: BLE001 - any failure is retried on a later tick
                log.warning("daily summary to %s failed: %s", admin, exc)
                await self.deliveries.finish(key, error=f"{type(exc).__name__}: {exc}")
            else:
                await self.deliveries.finish(key)
                sent += 1
        return sent

    async def build_summary(self, day: date, workspace: tuple[str, str] | None = None) -> tuple[str, bytes]:
        since, until = self._reports.day_bounds(day)
        report = await self._reports.spend(since, until, workspace=workspace)
        series, labels = await self._reports.chart_data(day, workspace=workspace)
        png = await asyncio.to_thread(render_chart, series, day, labels)
        return render_summary(report, day), png


class BudgetAlerts:
    """Tells admins when a channel crosses 80% and 100% of its period budget, once per threshold per
    period, and tells the channel once that the bot is paused there until the reset."""

    def __init__(self, settings: Settings, deliveries: Deliveries, notifiers: Mapping[str, Notifier],
                 reports: Reports) -> None:
        self._settings = settings
        self._deliveries = deliveries
        self._notifiers = notifiers
        self._reports = reports
        self._admins = [Admin.parse(a) for a in sorted(settings.admin_ids)]

    async def after_charge(self, incoming: Incoming, remaining: Remaining) -> None:
        if remaining.limit_nanos is None or remaining.left_nanos is None or remaining.period_end is None:
            return
        used = 1 - remaining.left_nanos / remaining.limit_nanos if remaining.limit_nanos else 1.0
        for threshold in ALERT_THRESHOLDS:
            if used >= threshold:
                await self._alert_admins(remaining.scope_key, remaining.period_end, threshold,
                                         remaining.spent_nanos, remaining.limit_nanos)
        if used >= 1.0:
            await self._pause_notice(incoming, remaining.scope_key, remaining.period_end)

    async def after_denial(self, incoming: Incoming, denial: Denial, channel_scope: str) -> None:
        """A refusal means the scope is full. The global cap alerts admins too; only a channel's own
        budget pauses that channel with a notice (a full global cap is told per message already).
        A person's own limit alerts no one: it is there so admins need not watch each person, and the
        person is told in the refusal."""
        if split_person_scope(denial.scope_key) is not None:
            return
        for threshold in ALERT_THRESHOLDS:
            await self._alert_admins(denial.scope_key, denial.resets_at, threshold, denial.spent_nanos,
                                     denial.limit_nanos)
        if denial.scope_key == channel_scope:
            await self._pause_notice(incoming, denial.scope_key, denial.resets_at)

    async def _alert_admins(self, scope_key: str, period_end: datetime, threshold: float, spent: int,
                            limit: int) -> None:
        for admin in self._admins:
            notifier = self._notifiers.get(admin.platform)
            key = f"alert:{scope_key}:{period_end.isoformat()}:{threshold:.0%}:{admin}"
            if notifier is None or not admin.hears_of(scope_key) or not await self._deliveries.claim(key):
                continue
            label = markdown_literal(await self._reports.scope_label(scope_key))
            text = (f"Budget alert: {label} has used {threshold:.0%} of its budget "
                    f"({format_usd(spent)} of {format_usd(limit)}) this period, which resets "
                    f"{period_end:%Y-%m-%d %H:%M} UTC. Raise it with `/seed budget` or `seedbot budget set`.")
            await self._send(key, notifier.send_direct(admin.user_id, text))

    async def _pause_notice(self, incoming: Incoming, scope_key: str, period_end: datetime) -> None:
        notifier = self._notifiers.get(incoming.platform.value)
        key = f"paused:{scope_key}:{period_end.isoformat()}"
        if notifier is None or not await self._deliveries.claim(key):
            return
        text = (f"This channel has used its seedbot budget, so I am paused here until "
                f"{period_end:%Y-%m-%d %H:%M} UTC. An admin can raise it with `/seed budget`.")
        await self._send(key, notifier.send_channel(incoming.thread.workspace_id, incoming.thread.channel_id, text))

    async def _send(self, key: str, sending) -> None:  # noqa: ANN001 - an awaitable
        try:
            await sending
        except Exception as exc:  # noqa: BLE001 - the claim is retried on a later alert
            log.warning("delivery %s failed: %s", key, exc)
            await self._deliveries.finish(key, error=f"{type(exc).__name__}: {exc}")
        else:
            await self._deliveries.finish(key)

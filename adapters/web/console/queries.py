"""What the console reads besides the spend figures (those come from bot.ops.reports, like `seedbot spend`
and the daily summary): ledger rows under filters, conversations, and the process's health."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from bot.budget.scopes import deployment_channel_scope
from bot.ops.reports import Reports, parse_report_day
from bot.ops.retention import Retention
from bot.storage.engine import Database
from bot.storage.names import CHANNEL, USER
from bot.storage.tables import Channel, Delivery, DisplayName, Message, Reservation, Thread, UsageEntry

LEDGER_PAGE_ROWS = 500
THREAD_LIST_ROWS = 100


@dataclass(frozen=True, slots=True)
class LedgerFilter:
    """Filters of the ledger page, each optional: a local day, a channel (`slack:C0123`, or `slack:T0123:C0456`
    where several workspaces share the deployment), a person (`slack:U0123`), a ledger status (`ok`, ...)."""

    day: date | None = None
    channel: str | None = None
    person: str | None = None
    status: str | None = None

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> LedgerFilter:
        """The filters of a ledger page's query string. Raises ValueError, in words for the admin, for a day
        that is not a date of bot.ops.reports.REPORT_DAYS, or a value holding a NUL (PostgreSQL refuses one in
        a text parameter)."""
        if any("\x00" in query.get(name, "") for name in ("channel", "person", "status")):
            raise ValueError("a filter may not hold a NUL character")
        text = query.get("day")
        try:
            day = parse_report_day(text) if text else None
        except ValueError as exc:
            raise ValueError(f"day {exc}") from None
        return cls(day=day, channel=query.get("channel") or None, person=query.get("person") or None,
                   status=query.get("status") or None)

    def query_string(self) -> dict[str, str]:
        values = {"day": self.day.isoformat() if self.day else "", "channel": self.channel or "",
                  "person": self.person or "", "status": self.status or ""}
        return {k: v for k, v in values.items() if v}


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One ledger row as the console shows it: `channel` and `person` as `platform:id`, money in
    nano-dollars, `started_at` naive UTC; `channel_name` and `person_name` as the platform last gave
    them, empty when unknown (chosen by people on the platform: text to guard wherever it goes)."""

    id: int
    started_at: datetime
    channel: str
    person: str
    kind: str
    model: str
    status: str
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    web_searches: int
    cost_nanos: int
    thread_pk: int | None
    channel_name: str
    person_name: str


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    """A conversation in the list: its row id, channel, platform thread id and message count."""

    pk: int
    channel: str
    channel_name: str
    platform_thread_id: str
    messages: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ThreadMessage:
    """One stored message of a conversation; `user` is the poster's name, or seedbot's."""

    role: str
    user: str
    content: str
    status: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Health:
    """The health page's figures: reservations still `active` and the nano-dollars they hold."""

    database_ok: bool
    last_summary_sent_at: datetime | None
    active_reservations: int
    reserved_nanos: int


class ConsoleQueries:
    """Read (and, for conversations, delete) what the console shows beyond bot.ops.reports' figures."""

    def __init__(self, db: Database, reports: Reports, workspace_scoped: frozenset[str]) -> None:
        """`workspace_scoped`: Settings.workspace_scoped_platforms, so a channel's address is the budget key
        the bot reserves in (`slack:T0123:C0456` where several Slack workspaces share the deployment)."""
        self._db = db
        self._reports = reports
        self._workspace_scoped = workspace_scoped
        self._retention = Retention(db)

    def _ledger_conditions(self, filters: LedgerFilter) -> list[object]:
        conditions: list[object] = []
        if filters.day is not None:
            start, end = self._reports.day_bounds(filters.day)
            conditions += [UsageEntry.started_at >= start, UsageEntry.started_at < end]
        if filters.channel:
            platform, *ids = filters.channel.split(":")
            conditions += [Channel.platform == platform, Channel.channel_id == ids[-1]]
            if len(ids) > 1:
                conditions.append(Channel.workspace_id == ids[0])
        if filters.person:
            platform, _, user_id = filters.person.partition(":")
            conditions += [Channel.platform == platform, UsageEntry.user_id == user_id]
        if filters.status:
            conditions.append(UsageEntry.status == filters.status)
        return conditions

    async def ledger(self, filters: LedgerFilter, limit: int = LEDGER_PAGE_ROWS,
                     after: LedgerRow | None = None) -> list[LedgerRow]:
        """Up to `limit` ledger rows matching `filters`, newest first, starting after the row `after` (the
        last of the page before: the CSV download reads the ledger page by page)."""
        # Columns, not ORM entities: a CSV of the whole ledger should not build an object per row.
        e = UsageEntry
        # Names as bot.ops.reports picks them: the learned display name, else the name the channel came with.
        channel_name, person_name = aliased(DisplayName), aliased(DisplayName)
        query = (select(e.id, e.started_at, Channel.platform, Channel.workspace_id, Channel.channel_id, e.user_id,
                        e.kind, e.model,
                        e.status, e.prompt_tokens, e.cached_tokens, e.completion_tokens, e.reasoning_tokens,
                        e.web_searches, e.cost_nanos, e.thread_pk, func.coalesce(channel_name.name, Channel.name),
                        func.coalesce(person_name.name, ""))
                 .join(Channel, Channel.id == e.channel_pk)
                 .outerjoin(channel_name, and_(channel_name.platform == Channel.platform, channel_name.kind == CHANNEL,
                                               channel_name.platform_id == Channel.channel_id))
                 .outerjoin(person_name, and_(person_name.platform == Channel.platform, person_name.kind == USER,
                                              person_name.platform_id == e.user_id))
                 .where(*self._ledger_conditions(filters))
                 .order_by(e.started_at.desc(), e.id.desc()).limit(limit))
        if after is not None:
            query = query.where(or_(e.started_at < after.started_at,
                                    and_(e.started_at == after.started_at, e.id < after.id)))

        def work(session: Session) -> list[LedgerRow]:
            return [LedgerRow(row_id, started, self._address(platform, workspace_id, channel_id),
                              f"{platform}:{user_id}", *rest)
                    for row_id, started, platform, workspace_id, channel_id, user_id, *rest in session.execute(query)]

        return await self._db.read(work)

    async def ledger_totals(self, filters: LedgerFilter) -> tuple[int, int]:
        """(rows, nano-dollars) of every ledger row matching `filters`."""
        query = (select(func.count(UsageEntry.id), func.coalesce(func.sum(UsageEntry.cost_nanos), 0))
                 .join(Channel, Channel.id == UsageEntry.channel_pk).where(*self._ledger_conditions(filters)))
        count, total = await self._db.read(lambda session: session.execute(query).one())
        return int(count), int(total)

    async def ledger_choices(self) -> tuple[list[str], list[str]]:
        """The statuses and people present in the ledger, for the filter menus."""

        def work(session: Session) -> tuple[list[str], list[str]]:
            statuses = sorted(session.scalars(select(UsageEntry.status).distinct()))
            people = sorted(f"{p}:{u}" for p, u in session.execute(
                select(Channel.platform, UsageEntry.user_id).join(Channel, Channel.id == UsageEntry.channel_pk)
                .distinct()))
            return statuses, people

        return await self._db.read(work)

    async def channels(self) -> list[tuple[str, str]]:
        """Every channel the bot has seen, as (address, name)."""
        query = select(Channel.platform, Channel.workspace_id, Channel.channel_id, Channel.name).order_by(
            Channel.platform, Channel.workspace_id, Channel.channel_id)
        return await self._db.read(
            lambda session: [(self._address(p, w, c), n) for p, w, c, n in session.execute(query)])

    async def threads(self, limit: int = THREAD_LIST_ROWS) -> list[ThreadSummary]:
        """The most recently active conversations."""
        counts = (select(Message.thread_pk, func.count(Message.id).label("n"))
                  .group_by(Message.thread_pk).subquery())
        query = (select(Thread.id, Channel.platform, Channel.workspace_id, Channel.channel_id, Channel.name,
                        Thread.platform_thread_id, func.coalesce(counts.c.n, 0), Thread.updated_at)
                 .join(Channel, Channel.id == Thread.channel_pk).outerjoin(counts, counts.c.thread_pk == Thread.id)
                 .order_by(Thread.updated_at.desc(), Thread.id.desc()).limit(limit))
        return await self._db.read(lambda session: [
            ThreadSummary(pk, self._address(p, w, c), name, thread_id, int(n), updated)
            for pk, p, w, c, name, thread_id, n, updated in session.execute(query)])

    async def thread(self, thread_pk: int) -> tuple[ThreadSummary, list[ThreadMessage]] | None:
        """A conversation and its messages, oldest first; None if there is no such thread."""
        summary = next((t for t in await self._thread_row(thread_pk)), None)
        if summary is None:
            return None
        query = (select(Message.role, Message.user_name, Message.user_id, Message.content, Message.status,
                        Message.created_at).where(Message.thread_pk == thread_pk).order_by(Message.id))
        messages = await self._db.read(lambda session: [
            ThreadMessage(role, name or user_id or "seedbot", content, status, created)
            for role, name, user_id, content, status, created in session.execute(query)])
        return summary, messages

    async def _thread_row(self, thread_pk: int) -> list[ThreadSummary]:
        query = (select(Thread.id, Channel.platform, Channel.workspace_id, Channel.channel_id, Channel.name,
                        Thread.platform_thread_id, Thread.updated_at)
                 .join(Channel, Channel.id == Thread.channel_pk).where(Thread.id == thread_pk))
        return await self._db.read(lambda session: [
            ThreadSummary(pk, self._address(p, w, c), name, thread_id, 0, updated)
            for pk, p, w, c, name, thread_id, updated in session.execute(query)])

    def _address(self, platform: str, workspace_id: str, channel_id: str) -> str:
        return deployment_channel_scope(platform, channel_id, workspace_id, self._workspace_scoped)

    async def delete_thread(self, thread_pk: int) -> int | None:
        """Delete a conversation's messages and the thread itself, by the rule of `Retention.forget_thread`
        (its ledger rows and reservations stay, their thread reference cleared). Returns how many messages
        were deleted, or None when there was no such conversation. Raises ThreadBeingAnswered while a call
        of it is in flight."""
        removed = await self._retention.forget_thread(thread_pk)
        return removed.user_messages + removed.answers if removed.threads else None

    async def health(self) -> Health:
        """Whether the database answers, when a daily summary was last delivered, and the money held by
        reservations still active."""
        try:
            def work(session: Session) -> tuple[datetime | None, int, int]:
                last = session.scalar(select(func.max(Delivery.sent_at)).where(
                    Delivery.key.like("summary:%"), Delivery.status == "sent"))
                count, held = session.execute(select(
                    func.count(Reservation.id), func.coalesce(func.sum(Reservation.amount_nanos), 0))
                    .where(Reservation.status == "active")).one()
                return last, int(count), int(held)

            last, count, held = await self._db.read(work)
        except Exception:  # noqa: BLE001 - the page reports a failing database instead of failing
            return Health(False, None, 0, 0)
        return Health(True, last, count, held)

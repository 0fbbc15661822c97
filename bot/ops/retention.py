"""Keeping conversations no longer than SEEDBOT_RETENTION_DAYS, and forgetting on request.

What goes: threads and their messages (the text people wrote and the answers to it). What stays: the
ledger, budget counters, refusals and deliveries, which hold ids and money but no text, so spend
history and summaries stay exact after a thread is gone. A ledger row (and a reservation) loses
only its reference to the deleted thread; the schema's ON DELETE SET NULL says the same, and the
explicit UPDATE keeps it true where a connection runs without foreign-key enforcement. (A closed reservation
itself goes a week after its call ended, whatever the retention: `BudgetManager.prune_closed`.)

Deletions run in batches of `BATCH_SIZE` threads, one transaction each, so a large first sweep
never holds the write lock (SQLite) or many row locks (PostgreSQL) for long.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import Session

from bot.domain import counted
from bot.ops.scheduler import Deliveries
from bot.storage.engine import Database
from bot.storage.tables import Channel, Message, Reservation, Thread, UsageEntry, utcnow

log = logging.getLogger(__name__)

BATCH_SIZE = 500


class ThreadBeingAnswered(Exception):
    """The thread has a model call in flight (an active reservation). Deleted now, the answer could not be
    stored and its settlement would fail: the person would see an error instead of the answer they were
    reading. Its `thread_pk` is the thread's row id."""

    def __init__(self, thread_pk: int) -> None:
        super().__init__(f"conversation {thread_pk} is being answered right now; try again in a minute")
        self.thread_pk = thread_pk


@dataclass(slots=True)
class Removed:
    """What one deletion removed: message rows by role, whole threads, and where (channel addresses)."""

    user_messages: int = 0
    answers: int = 0
    threads: int = 0
    places: set[str] = field(default_factory=set)

    def __iadd__(self, other: Removed) -> Removed:
        self.user_messages += other.user_messages
        self.answers += other.answers
        self.threads += other.threads
        self.places |= other.places
        return self

    def describe(self) -> str:
        where = f" in {', '.join(sorted(self.places))}" if self.places else ""
        return (f"removed {counted(self.user_messages, 'message')} and {counted(self.answers, 'answer')} to them; "
                f"{counted(self.threads, 'thread')} deleted{where}")


@dataclass(frozen=True, slots=True)
class ThreadRef:
    """A stored thread, by our row id and as people address it (`slack:C0123` + platform thread id)."""

    pk: int
    address: str
    thread_id: str


class Retention:
    """Deletes threads past the retention period, a person's messages, or one thread."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def purge_older_than(self, cutoff: datetime) -> Removed:
        """Delete every thread whose last message (or, with none, whose creation) is before `cutoff`
        (naive UTC), `BATCH_SIZE` threads per transaction."""
        stale = (select(Thread.id).where(
            Thread.created_at < cutoff,
            ~exists().where(Message.thread_pk == Thread.id, Message.created_at >= cutoff))
            .order_by(Thread.id).limit(BATCH_SIZE))
        removed = Removed()
        while True:
            batch = await self._db.run(lambda session: self._delete_threads(
                session, list(session.scalars(stale))))
            removed += batch
            if batch.threads < BATCH_SIZE:
                return removed

    async def forget_user(self, platform: str, workspace_id: str | None, user_id: str) -> Removed:
        """Delete every message `user_id` wrote on `platform` (in one workspace, or all when None) and
        every answer to them; threads left empty are deleted too. Raises ThreadBeingAnswered while a call
        of one of those threads is in flight (nothing is deleted then)."""
        def work(session: Session) -> Removed:
            query = (select(Message.id, Message.thread_pk).join(Thread, Message.thread_pk == Thread.id)
                     .join(Channel, Thread.channel_pk == Channel.id)
                     .where(Channel.platform == platform, Message.role == "user", Message.user_id == user_id))
            if workspace_id is not None:
                query = query.where(Channel.workspace_id == workspace_id)
            rows = session.execute(query).all()
            message_pks = [pk for pk, _ in rows]
            thread_pks = sorted({thread_pk for _, thread_pk in rows})
            _refuse_while_answered(session, thread_pks)
            removed = Removed(places=set().union(*(_places(session, chunk) for chunk in _chunks(thread_pks))))
            for chunk in _chunks(message_pks):
                removed.answers += session.execute(
                    delete(Message).where(Message.role == "assistant", Message.reply_to_pk.in_(chunk))).rowcount
                removed.user_messages += session.execute(delete(Message).where(Message.id.in_(chunk))).rowcount
            empty = [pk for pk in thread_pks
                     if session.scalar(select(func.count(Message.id)).where(Message.thread_pk == pk)) == 0]
            removed.threads = sum(self._delete_threads(session, chunk).threads for chunk in _chunks(empty))
            return removed

        return await self._db.run(work)

    async def find_threads(self, platform: str | None, workspace_id: str | None, channel_id: str | None,
                           thread_id: str) -> list[ThreadRef]:
        """Stored threads with platform thread id `thread_id`, narrowed by whichever of platform,
        workspace and channel are given."""
        query = (select(Thread.id, Channel.platform, Channel.channel_id, Thread.platform_thread_id)
                 .join(Channel, Thread.channel_pk == Channel.id).where(Thread.platform_thread_id == thread_id))
        for column, value in ((Channel.platform, platform), (Channel.workspace_id, workspace_id),
                              (Channel.channel_id, channel_id)):
            if value is not None:
                query = query.where(column == value)
        rows = await self._db.run(lambda session: session.execute(query).all())
        return [ThreadRef(pk, f"{p}:{c}", t) for pk, p, c, t in rows]

    async def forget_thread(self, thread_pk: int) -> Removed:
        """Delete one thread and all its messages (`Removed.threads` is 0 when there was no such thread).
        Raises ThreadBeingAnswered while a call of it is in flight; the check and the deletion are one
        transaction."""

        def work(session: Session) -> Removed:
            _refuse_while_answered(session, [thread_pk])
            return self._delete_threads(session, [thread_pk])

        return await self._db.run(work)

    @staticmethod
    def _delete_threads(session: Session, thread_pks: Sequence[int]) -> Removed:
        removed = Removed(places=_places(session, thread_pks))
        if not thread_pks:
            return removed
        session.execute(update(UsageEntry).where(UsageEntry.thread_pk.in_(thread_pks)).values(thread_pk=None))
        session.execute(update(Reservation).where(Reservation.thread_pk.in_(thread_pks)).values(thread_pk=None))
        for role, count in session.execute(select(Message.role, func.count(Message.id))
                                           .where(Message.thread_pk.in_(thread_pks)).group_by(Message.role)):
            if role == "user":
                removed.user_messages = count
            else:
                removed.answers += count
        session.execute(delete(Message).where(Message.thread_pk.in_(thread_pks)))
        removed.threads = session.execute(delete(Thread).where(Thread.id.in_(thread_pks))).rowcount
        return removed


def _refuse_while_answered(session: Session, thread_pks: Sequence[int]) -> None:
    """Raise ThreadBeingAnswered for the first of `thread_pks` with an active reservation (a call in flight)."""
    for chunk in _chunks(thread_pks):
        answering = session.scalar(select(Reservation.thread_pk).where(
            Reservation.thread_pk.in_(chunk), Reservation.status == "active").limit(1))
        if answering is not None:
            raise ThreadBeingAnswered(answering)


class RetentionSweep:
    """The maintenance loop's daily purge: at most one replica runs it per UTC day (a claimed
    delivery row, like the daily summary's), and a failed sweep is retried on a later tick."""

    def __init__(self, retention_days: int, retention: Retention, deliveries: Deliveries,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._days = retention_days
        self._retention = retention
        self._deliveries = deliveries
        self._clock = clock

    async def tick(self) -> Removed | None:
        """Purge if due today and not yet done by any replica; None when nothing ran (retention off,
        or already claimed)."""
        if self._days == 0:
            return None
        now = self._clock()
        key = f"retention:{now.date().isoformat()}"
        if not await self._deliveries.claim(key):
            return None
        try:
            removed = await self._retention.purge_older_than(now - timedelta(days=self._days))
        except Exception as exc:
            await self._deliveries.finish(key, error=f"{type(exc).__name__}: {exc}")
            raise
        await self._deliveries.finish(key)
        if removed.threads:
            log.info("retention: %s", removed.describe())
        return removed


def _places(session: Session, thread_pks: Sequence[int]) -> set[str]:
    if not thread_pks:
        return set()
    rows = session.execute(select(Channel.platform, Channel.channel_id).distinct()
                           .join(Thread, Thread.channel_pk == Channel.id).where(Thread.id.in_(thread_pks)))
    return {f"{platform}:{channel_id}" for platform, channel_id in rows}


def _chunks(values: Sequence[int], size: int = BATCH_SIZE) -> list[Sequence[int]]:
    # Keeps IN lists under SQLite's and asyncpg's bound-parameter limits for a person with many messages.
    return [values[i:i + size] for i in range(0, len(values), size)]

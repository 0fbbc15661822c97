"""Reserve, settle and release money against channel and global budgets.

Every reservation runs in one transaction that locks the counter rows of its scopes (SELECT ... FOR
UPDATE on PostgreSQL; SQLite transactions begin IMMEDIATE, see bot.db), so concurrent reservers in
any number of processes are serialised and the sum reserved plus spent never passes a limit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.budget_logic import Plan, ScopeState, period_bounds, plan_call
from bot.config import BudgetLimit, Period, Settings, parse_budget
from bot.db import Database
from bot.models import (
    Budget,
    BudgetChange,
    BudgetCounter,
    Channel,
    Refusal,
    Reservation,
    UsageEntry,
    utcnow,
)
from bot.pricing import PriceBook

log = logging.getLogger(__name__)

GLOBAL_SCOPE = "global"

AlsoInTransaction = Callable[[Session], None]


def channel_scope(platform: str, channel_id: str, workspace_id: str | None = None) -> str:
    """A channel's budget key, as people write it: `slack:C0123`, `discord:4567`, or `slack:T0123:C0456`
    when given the workspace (several of the platform's workspaces share the deployment). Keyed by the
    platform's ids rather than our row id, so a budget can be set before the bot has seen the channel."""
    return f"{platform}:{workspace_id}:{channel_id}" if workspace_id else f"{platform}:{channel_id}"


def _channel_pks(scope_key: str):  # noqa: ANN202 - a scalar subquery
    platform, *workspace, channel_id = scope_key.split(":")
    query = select(Channel.id).where(Channel.platform == platform, Channel.channel_id == channel_id)
    return query.where(Channel.workspace_id == workspace[0]) if workspace else query


@dataclass(frozen=True, slots=True)
class Grant:
    reservation_id: int
    amount_nanos: int
    max_tokens: int
    shrunk: bool


@dataclass(frozen=True, slots=True)
class Denial:
    """Not enough budget. Carries what the user is told."""

    scope_key: str
    spent_nanos: int
    limit_nanos: int
    resets_at: datetime
    needed_nanos: int


@dataclass(frozen=True, slots=True)
class Remaining:
    """The channel's position after a call, for the footer."""

    left_nanos: int | None
    limit_nanos: int | None
    scope_key: str = ""
    period_end: datetime | None = None
    spent_nanos: int = 0

    @property
    def fraction(self) -> float | None:
        if self.limit_nanos is None or self.left_nanos is None or self.limit_nanos == 0:
            return None
        return self.left_nanos / self.limit_nanos


@dataclass(frozen=True, slots=True)
class Settlement:
    """How a reservation ends: the ledger fields of the call. `cost_nanos` 0 releases it."""

    status: str
    cost_nanos: int
    model: str = ""
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    web_searches: int = 0
    usage_known: bool = True
    error: str | None = None
    first_token_ms: int | None = None
    duration_ms: int | None = None


def _counter_key(scope: ScopeState) -> str:
    return f"{scope.scope_key}|{scope.limit.period.value}|{scope.period_start.isoformat()}"


def _parse_counter_key(key: str) -> tuple[str, str, datetime]:
    scope_key, period, start = key.split("|")
    return scope_key, period, datetime.fromisoformat(start)


class BudgetManager:
    def __init__(self, db: Database, settings: Settings, prices: PriceBook,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._settings = settings
        self._prices = prices
        self._clock = clock

    # -- limits --

    def limit_for(self, session: Session, scope_key: str) -> BudgetLimit:
        row = session.get(Budget, scope_key)
        if row is not None:
            return BudgetLimit(row.limit_nanos, Period(row.period))
        if scope_key == GLOBAL_SCOPE:
            return self._settings.global_budget_limit
        return self._settings.default_budget

    async def limit_for_scope(self, scope_key: str) -> BudgetLimit:
        def work(session: Session) -> Any:
            return self.limit_for(session, scope_key)

        return await self._db.run(work)

    async def explicit_limits(self) -> list[tuple[str, BudgetLimit]]:
        def work(session: Session) -> Any:
            rows = session.scalars(select(Budget).order_by(Budget.scope_key))
            return [(row.scope_key, BudgetLimit(row.limit_nanos, Period(row.period))) for row in rows]

        return await self._db.run(work)

    async def set_limit(self, scope_key: str, limit: BudgetLimit | str, changed_by: str) -> tuple[str, str]:
        """Set a scope's budget and record the change. Returns (old, new) as people read them."""
        if isinstance(limit, str):
            limit = parse_budget(limit)

        def work(session: Session) -> Any:
            old = self.limit_for(session, scope_key)
            row = session.get(Budget, scope_key)
            if row is None:
                row = Budget(scope_key=scope_key)
                session.add(row)
            row.limit_nanos = limit.limit_nanos
            row.period = limit.period.value
            row.updated_by = changed_by
            row.updated_at = self._clock()
            session.add(BudgetChange(scope_key=scope_key, changed_by=changed_by, old_value=old.describe(),
                                     new_value=limit.describe(), changed_at=self._clock()))
            return old.describe(), limit.describe()

        return await self._db.run(work)

    async def changes(self, scope_key: str, limit: int = 10) -> list[BudgetChange]:
        def work(session: Session) -> Any:
            rows = session.scalars(select(BudgetChange).where(BudgetChange.scope_key == scope_key)
                                   .order_by(BudgetChange.id.desc()).limit(limit))
            return list(rows)

        return await self._db.run(work)

    # -- reservations --

    async def reserve(
        self,
        *,
        channel_pk: int,
        scope_key: str,
        thread_pk: int | None,
        user_id: str,
        kind: str,
        estimated_prompt_tokens: int,
        wanted_max_tokens: int,
        web_search: bool,
    ) -> Grant | Denial:
        now = self._clock()

        def work(session: Session) -> Any:
            scopes = self._lock_scopes(session, [scope_key, GLOBAL_SCOPE], now)
            plan: Plan = plan_call(
                self._prices, scopes, estimated_prompt_tokens=estimated_prompt_tokens,
                wanted_max_tokens=wanted_max_tokens, min_max_tokens=self._settings.min_answer_tokens,
                web_search=web_search,
            )
            if not plan.fits:
                binding = plan.binding_scope
                assert binding is not None and binding.limit.limit_nanos is not None
                session.add(Refusal(channel_pk=channel_pk, user_id=user_id, scope_key=binding.scope_key,
                                    needed_nanos=plan.amount_nanos,
                                    available_nanos=binding.available_nanos or 0, created_at=now))
                return Denial(binding.scope_key, binding.spent_nanos + binding.reserved_nanos,
                              binding.limit.limit_nanos, binding.period_end, plan.amount_nanos)
            for scope in scopes:
                self._adjust(session, _counter_key(scope), reserved=plan.amount_nanos)
            reservation = Reservation(
                channel_pk=channel_pk, thread_pk=thread_pk, user_id=user_id, kind=kind,
                counter_keys=";".join(_counter_key(s) for s in scopes), amount_nanos=plan.amount_nanos,
                created_at=now, expires_at=now + timedelta(seconds=self._settings.reservation_ttl_seconds),
            )
            session.add(reservation)
            session.flush()
            return Grant(reservation.id, plan.amount_nanos, plan.max_tokens, plan.max_tokens < wanted_max_tokens)

        return await self._db.run(work)

    async def settle(self, grant: Grant, outcome: Settlement, *, also: AlsoInTransaction | None = None) -> Remaining:
        """End a reservation at the call's exact cost (0 releases it) and write its ledger row.

        `also` runs in the same transaction, so an answer and the money it cost are stored together.
        """

        def work(session: Session) -> Any:
            reservation = session.get(Reservation, grant.reservation_id, with_for_update=True)
            if reservation is None or reservation.status != "active":
                log.warning("reservation %s was already closed (%s); its ledger row stands",
                            grant.reservation_id, reservation.status if reservation else "missing")
            else:
                self._close(session, reservation, outcome)
            if also is not None:
                also(session)
            return self._remaining(session, _channel_scope_of(reservation))

        return await self._db.run(work)

    async def expire_stale(self, now: datetime | None = None) -> int:
        """Settle reservations whose process died, at their reserved amount. Returns how many."""
        now = now or self._clock()

        def work(session: Session) -> Any:
            stale = list(session.scalars(
                select(Reservation).where(Reservation.status == "active", Reservation.expires_at < now)
                .order_by(Reservation.id).with_for_update(skip_locked=not self._db.is_sqlite)
            ))
            for reservation in stale:
                self._close(session, reservation, Settlement(
                    status="expired", cost_nanos=reservation.amount_nanos, usage_known=False,
                    error="the process handling this call stopped before it settled",
                ))
            return len(stale)

        expired = await self._db.run(work)
        if expired:
            log.warning("settled %d stale reservations at their reserved amount", expired)
        return expired

    async def remaining(self, scope_key: str) -> Remaining:
        def work(session: Session) -> Any:
            return self._remaining(session, scope_key)

        return await self._db.run(work)

    async def scope_state(self, scope_key: str, at: datetime | None = None) -> ScopeState:
        """A scope's period at `at` (default now), read without taking a reservation."""

        def work(session: Session) -> Any:
            return self._scope_state(session, scope_key, at or self._clock(), lock=False)

        return await self._db.run(work)

    # -- internals --

    def _close(self, session: Session, reservation: Reservation, outcome: Settlement) -> None:
        for key in sorted(reservation.counter_keys.split(";")):
            self._adjust(session, key, reserved=-reservation.amount_nanos, spent=outcome.cost_nanos)
        reservation.status = "released" if outcome.cost_nanos == 0 else "settled"
        if outcome.status == "expired":
            reservation.status = "expired"
        session.add(UsageEntry(
            channel_pk=reservation.channel_pk, thread_pk=reservation.thread_pk, reservation_pk=reservation.id,
            user_id=reservation.user_id, kind=reservation.kind, model=outcome.model,
            prompt_tokens=outcome.prompt_tokens, cached_tokens=outcome.cached_tokens,
            completion_tokens=outcome.completion_tokens, reasoning_tokens=outcome.reasoning_tokens,
            web_searches=outcome.web_searches, cost_nanos=outcome.cost_nanos,
            reserved_nanos=reservation.amount_nanos, usage_known=outcome.usage_known, status=outcome.status,
            error=outcome.error, started_at=reservation.created_at, first_token_ms=outcome.first_token_ms,
            duration_ms=outcome.duration_ms,
        ))

    def _lock_scopes(self, session: Session, scope_keys: list[str], now: datetime) -> list[ScopeState]:
        # A fixed lock order (sorted keys) keeps two reservers from deadlocking on PostgreSQL.
        return [self._scope_state(session, key, now, lock=True) for key in sorted(scope_keys)]

    def _scope_state(self, session: Session, scope_key: str, now: datetime, *, lock: bool) -> ScopeState:
        limit = self.limit_for(session, scope_key)
        start, end = period_bounds(limit.period, now, self._settings.tz)
        query = select(BudgetCounter).where(
            BudgetCounter.scope_key == scope_key, BudgetCounter.period == limit.period.value,
            BudgetCounter.period_start == start,
        ).execution_options(populate_existing=True)
        if lock:
            query = query.with_for_update()
        counter = (session.scalars(query)).one_or_none()
        if counter is None:
            # First use of this period: open its counter from the books, so a budget set or changed
            # mid-period still counts what was already spent.
            session.execute(
                self._db.insert(BudgetCounter).values(
                    scope_key=scope_key, period=limit.period.value, period_start=start,
                    spent_nanos=self.ledger_spent(session, scope_key, start),
                    reserved_nanos=self._active_reserved(session, scope_key, start),
                ).on_conflict_do_nothing()
            )
            counter = (session.scalars(query)).one()
        return ScopeState(scope_key, limit, start, end, counter.spent_nanos, counter.reserved_nanos)

    @staticmethod
    def ledger_spent(session: Session, scope_key: str, since: datetime,
                           until: datetime | None = None) -> int:
        query = select(func.coalesce(func.sum(UsageEntry.cost_nanos), 0)).where(UsageEntry.started_at >= since)
        if until is not None:
            query = query.where(UsageEntry.started_at < until)
        if scope_key != GLOBAL_SCOPE:
            query = query.where(UsageEntry.channel_pk.in_(_channel_pks(scope_key)))
        return int(session.scalar(query) or 0)

    def _active_reserved(self, session: Session, scope_key: str, since: datetime) -> int:
        query = select(func.coalesce(func.sum(Reservation.amount_nanos), 0)).where(
            Reservation.status == "active", Reservation.created_at >= since)
        if scope_key != GLOBAL_SCOPE:
            query = query.where(Reservation.channel_pk.in_(_channel_pks(scope_key)))
        return int(session.scalar(query) or 0)

    def _adjust(self, session: Session, counter_key: str, *, reserved: int = 0, spent: int = 0) -> None:
        scope_key, period, start = _parse_counter_key(counter_key)
        session.execute(
            update(BudgetCounter)
            .where(BudgetCounter.scope_key == scope_key, BudgetCounter.period == period,
                   BudgetCounter.period_start == start)
            .values(reserved_nanos=BudgetCounter.reserved_nanos + reserved,
                    spent_nanos=BudgetCounter.spent_nanos + spent)
        )

    def _remaining(self, session: Session, scope_key: str | None) -> Remaining:
        if scope_key is None:
            return Remaining(None, None)
        state = self._scope_state(session, scope_key, self._clock(), lock=False)
        return Remaining(state.available_nanos, state.limit.limit_nanos, scope_key, state.period_end,
                         state.spent_nanos)


def _channel_scope_of(reservation: Reservation | None) -> str | None:
    if reservation is None:
        return None
    scopes = [_parse_counter_key(key)[0] for key in reservation.counter_keys.split(";")]
    return next((scope for scope in scopes if scope != GLOBAL_SCOPE), None)

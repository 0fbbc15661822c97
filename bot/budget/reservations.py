"""Reserve, settle and release money against channel, person and global budgets.

Every reservation runs in one transaction that locks the counter rows of its scopes (SELECT ... FOR
UPDATE on PostgreSQL; SQLite transactions begin IMMEDIATE, see bot.storage.engine), so concurrent reservers in
any number of processes are serialised and the sum reserved plus spent never passes a limit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from bot.budget.limits import BudgetLimit, Period, parse_budget
from bot.budget.outcomes import Denial, Grant, Remaining, Settlement
from bot.budget.periods import Plan, ScopeState, period_bounds, plan_call, plan_degraded
from bot.budget.pricing import PriceBook
from bot.budget.scopes import EVERYONE, GLOBAL_SCOPE, channel_pks, person_scope, split_person_scope
from bot.config import Settings
from bot.storage.engine import Database
from bot.storage.tables import (
    Budget,
    BudgetChange,
    BudgetCounter,
    Refusal,
    Reservation,
    UsageEntry,
    utcnow,
)

log = logging.getLogger(__name__)


AlsoInTransaction = Callable[[Session], None]

# The reserve/settle path runs Core statements on these tables: rows, not ORM entities, once per call.
_COUNTERS, _RESERVATIONS, _LEDGER = BudgetCounter.__table__, Reservation.__table__, UsageEntry.__table__
_LIMIT = select(Budget.__table__.c.limit_nanos, Budget.__table__.c.period).where(
    Budget.__table__.c.scope_key == bindparam("scope_key"))
# Built once: each runs several times per answer, and building a statement costs more than running it.
_COUNTER_WHERE = (_COUNTERS.c.scope_key == bindparam("c_scope"), _COUNTERS.c.period == bindparam("c_period"),
                  _COUNTERS.c.period_start == bindparam("c_start"))
_COUNTER = select(_COUNTERS.c.spent_nanos, _COUNTERS.c.reserved_nanos).where(*_COUNTER_WHERE)
_COUNTER_LOCKED = _COUNTER.with_for_update()
_RESERVE = insert(_RESERVATIONS).returning(_RESERVATIONS.c.id)
_RESERVATION_LOCKED = select(_RESERVATIONS).where(_RESERVATIONS.c.id == bindparam("r_id")).with_for_update()
_CLOSE = update(_RESERVATIONS).where(_RESERVATIONS.c.id == bindparam("r_id")).values(status=bindparam("r_status"))
_LEDGER_ROW = insert(_LEDGER)
_ADJUST = update(_COUNTERS).where(*_COUNTER_WHERE).values(
    reserved_nanos=_COUNTERS.c.reserved_nanos + bindparam("d_reserved"),
    spent_nanos=_COUNTERS.c.spent_nanos + bindparam("d_spent"))


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
        # Reservations this process holds for calls still running: the heartbeat keeps them alive.
        self._live: set[int] = set()

    # -- limits --

    def limit_for(self, session: Session, scope_key: str) -> BudgetLimit:
        row = session.connection().execute(_LIMIT, {"scope_key": scope_key}).first()
        if row is not None:
            return BudgetLimit(row.limit_nanos, Period(row.period))
        if scope_key == GLOBAL_SCOPE:
            return self._settings.global_budget_limit
        person = split_person_scope(scope_key)
        if person is None:
            return self._settings.default_budget
        if person[0] != EVERYONE:
            channel_default = session.get(Budget, person_scope(person[1], EVERYONE))
            if channel_default is not None:
                return BudgetLimit(channel_default.limit_nanos, Period(channel_default.period))
        return self._settings.default_user_budget

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
            if old.period != limit.period:
                # A counter left from an earlier stint in this period missed what was spent meanwhile:
                # drop it, and the next use reopens it from the ledger (see _scope_state).
                start, _ = period_bounds(limit.period, self._clock(), self._settings.tz)
                session.execute(delete(BudgetCounter).where(
                    BudgetCounter.scope_key == scope_key, BudgetCounter.period == limit.period.value,
                    BudgetCounter.period_start == start))
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
        thinking: bool = True,
    ) -> Grant | Denial:
        """Hold the worst case of one call in the channel's, the person's and the global budget at
        once (one transaction, counter rows locked), degrading the call first if SEEDBOT_DEGRADE."""
        now = self._clock()

        def work(session: Session) -> Any:
            scopes = self._lock_scopes(session, [scope_key, person_scope(scope_key, user_id), GLOBAL_SCOPE], now)
            sizing = dict(estimated_prompt_tokens=estimated_prompt_tokens, wanted_max_tokens=wanted_max_tokens,
                          min_max_tokens=self._settings.min_answer_tokens, web_search=web_search)
            plan: Plan = (plan_degraded(self._prices, scopes, thinking=thinking, **sizing) if self._settings.degrade
                          else plan_call(self._prices, scopes, **sizing))
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
            reservation_id = session.connection().scalar(_RESERVE, dict(
                channel_pk=channel_pk, thread_pk=thread_pk, user_id=user_id, kind=kind,
                counter_keys=";".join(_counter_key(s) for s in scopes), amount_nanos=plan.amount_nanos,
                status="active", created_at=now,
                expires_at=now + timedelta(seconds=self._settings.reservation_ttl_seconds),
            ))
            web, think = (plan.web_search, plan.thinking) if self._settings.degrade else (web_search, thinking)
            return Grant(reservation_id, plan.amount_nanos, plan.max_tokens, plan.max_tokens < wanted_max_tokens,
                         web, think, plan.degraded_by.scope_key if plan.degraded_by is not None else None)

        granted = await self._db.run(work)
        if isinstance(granted, Grant):
            self._live.add(granted.reservation_id)
        return granted

    async def settle(self, grant: Grant, outcome: Settlement, *, also: AlsoInTransaction | None = None) -> Remaining:
        """End a reservation at the call's exact cost (0 releases it) and write its ledger row.

        `also` runs in the same transaction, so an answer and the money it cost are stored together.
        """

        def work(session: Session) -> Any:
            reservation = session.connection().execute(_RESERVATION_LOCKED, {"r_id": grant.reservation_id}).first()
            if reservation is not None and reservation.status == "expired":
                self._correct_expired(session, session.get(Reservation, reservation.id), outcome)
            elif reservation is None or reservation.status != "active":
                log.warning("reservation %s was already closed (%s); its ledger row stands",
                            grant.reservation_id, reservation.status if reservation else "missing")
            else:
                self._close(session, reservation, outcome)
            if also is not None:
                also(session)
            return self._remaining(session, _channel_scope_of(reservation))

        try:
            return await self._db.run(work)
        finally:
            # Settled, or failing to settle: either way the heartbeat stops keeping it, so a
            # reservation nobody can settle expires after the TTL instead of living with the process.
            self._live.discard(grant.reservation_id)

    async def heartbeat(self) -> int:
        """Extend the reservations of this process's running calls to now + the TTL, so that only
        a dead process's reservations ever expire. Returns how many were extended."""
        live = sorted(self._live)
        if not live:
            return 0
        until = self._clock() + timedelta(seconds=self._settings.reservation_ttl_seconds)

        def work(session: Session) -> Any:
            return session.execute(update(Reservation).where(Reservation.id.in_(live), Reservation.status == "active")
                                   .values(expires_at=until)).rowcount

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

    def _correct_expired(self, session: Session, reservation: Reservation, outcome: Settlement) -> None:
        """A settlement that arrives after its reservation expired (charged in full) corrects that
        row and the counters by the difference, instead of booking the call twice."""
        entry = session.scalars(select(UsageEntry).where(UsageEntry.reservation_pk == reservation.id)
                                .with_for_update()).one_or_none()
        if entry is None:  # cannot happen: expiry writes the row; never book without one
            log.error("expired reservation %s has no ledger row; settlement dropped", reservation.id)
            return
        difference = outcome.cost_nanos - entry.cost_nanos
        for key in sorted(reservation.counter_keys.split(";")):
            self._adjust(session, key, spent=difference)
        reservation.status = "released" if outcome.cost_nanos == 0 else "settled"
        for name in ("model", "prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens",
                     "web_searches", "cost_nanos", "usage_known", "status", "first_token_ms", "duration_ms"):
            setattr(entry, name, getattr(outcome, name))
        entry.error = "; ".join(filter(None, [outcome.error, "settled after its reservation had expired"]))
        log.warning("reservation %s settled after it expired; its ledger row corrected by %d nanos",
                    reservation.id, difference)

    def _close(self, session: Session, reservation: Reservation | Row[Any], outcome: Settlement) -> None:
        """Move a reservation's money from reserved to spent and write its ledger row. `reservation` is an
        entity or a row of its table; its status is changed by statement, not on the object."""
        for key in sorted(reservation.counter_keys.split(";")):
            self._adjust(session, key, reserved=-reservation.amount_nanos, spent=outcome.cost_nanos)
        status = "released" if outcome.cost_nanos == 0 else "settled"
        if outcome.status == "expired":
            status = "expired"
        connection = session.connection()
        connection.execute(_CLOSE, {"r_id": reservation.id, "r_status": status})
        connection.execute(_LEDGER_ROW, dict(
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
        query = _COUNTER_LOCKED if lock else _COUNTER
        key = {"c_scope": scope_key, "c_period": limit.period.value, "c_start": start}
        connection = session.connection()
        counter = connection.execute(query, key).one_or_none()
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
            counter = connection.execute(query, key).one()
        return ScopeState(scope_key, limit, start, end, counter.spent_nanos, counter.reserved_nanos)

    @staticmethod
    def ledger_spent(session: Session, scope_key: str, since: datetime,
                           until: datetime | None = None) -> int:
        query = select(func.coalesce(func.sum(UsageEntry.cost_nanos), 0)).where(UsageEntry.started_at >= since)
        if until is not None:
            query = query.where(UsageEntry.started_at < until)
        if scope_key != GLOBAL_SCOPE:
            query = query.where(*_scope_filter(UsageEntry, scope_key))
        return int(session.scalar(query) or 0)

    def _active_reserved(self, session: Session, scope_key: str, since: datetime) -> int:
        query = select(func.coalesce(func.sum(Reservation.amount_nanos), 0)).where(
            Reservation.status == "active", Reservation.created_at >= since)
        if scope_key != GLOBAL_SCOPE:
            query = query.where(*_scope_filter(Reservation, scope_key))
        return int(session.scalar(query) or 0)

    def _adjust(self, session: Session, counter_key: str, *, reserved: int = 0, spent: int = 0) -> None:
        scope_key, period, start = _parse_counter_key(counter_key)
        session.connection().execute(_ADJUST, {"c_scope": scope_key, "c_period": period, "c_start": start,
                                               "d_reserved": reserved, "d_spent": spent})

    def _remaining(self, session: Session, scope_key: str | None) -> Remaining:
        if scope_key is None:
            return Remaining(None, None)
        state = self._scope_state(session, scope_key, self._clock(), lock=False)
        return Remaining(state.available_nanos, state.limit.limit_nanos, scope_key, state.period_end,
                         state.spent_nanos)


def _scope_filter(table: type[UsageEntry] | type[Reservation], scope_key: str) -> list[Any]:
    """The rows of the ledger (or of reservations) that belong to a channel or a person scope."""
    person = split_person_scope(scope_key)
    if person is None:
        return [table.channel_pk.in_(channel_pks(scope_key))]
    return [table.channel_pk.in_(channel_pks(person[1])), table.user_id == person[0]]


def _channel_scope_of(reservation: Reservation | None) -> str | None:
    if reservation is None:
        return None
    scopes = [_parse_counter_key(key)[0] for key in reservation.counter_keys.split(";")]
    return next((scope for scope in scopes if scope != GLOBAL_SCOPE and split_person_scope(scope) is None), None)

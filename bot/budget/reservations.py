"""Reserve, settle and release money against channel, person and global budgets.

A reservation adds its call's worst case to the counter rows of its scopes with one UPDATE that holds only
where every limited row still has room, checked under the row's lock on its latest version (rows locked in
scope-key order on PostgreSQL; SQLite transactions begin IMMEDIATE, see bot.storage.engine), so concurrent
reservers in any number of processes never pass a limit. That UPDATE is the transaction's last statement, as
settling's counter UPDATE is: the rows every answer shares stay locked for one statement and the COMMIT. The hot
path is Core statements on the transaction's `Connection` (`Database.run_core`), each for all of a call's scopes
at once: one read of their limits, one of their counters, the reservation row, one update.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, Unpack

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from bot.budget.counters import (
    active_reserved,
    adjust,
    channel_scope_of,
    counter_key,
    ledger_spent,
    lock_counters,
    move_to_spent,
    read_counters,
    reserve_if_room,
)
from bot.budget.limits import BudgetLimit, Period, parse_budget
from bot.budget.outcomes import CallToReserve, Denial, Grant, Remaining, Settlement
from bot.budget.periods import CallSize, ScopeState, period_bounds, plan_for
from bot.budget.pricing import PriceBook
from bot.budget.scopes import EVERYONE, GLOBAL_SCOPE, person_scope, split_person_scope
from bot.config import Settings
from bot.storage.engine import Database
from bot.storage.precompiled import Precompiled, ResultRow
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


AlsoInTransaction = Callable[[Connection], None]

# Built once: each runs for every call, and building a statement costs more than running it.
_BUDGETS, _COUNTERS, _RESERVATIONS, _LEDGER = (Budget.__table__, BudgetCounter.__table__, Reservation.__table__,
                                               UsageEntry.__table__)
_RESERVE = Precompiled(insert(_RESERVATIONS).returning(_RESERVATIONS.c.id))
_RESERVATION_LOCKED = select(_RESERVATIONS).where(_RESERVATIONS.c.id == bindparam("r_id")).with_for_update()
_CLOSE = update(_RESERVATIONS).where(_RESERVATIONS.c.id == bindparam("r_id")).values(status=bindparam("r_status"))
# Closes a reservation only if still active, and returns it: one statement where a locked read and an
# update were two.
_CLOSE_ACTIVE = Precompiled(_CLOSE.where(_RESERVATIONS.c.status == "active").returning(*_RESERVATIONS.c))
_LEDGER_ROW = Precompiled(insert(_LEDGER))
_REFUSAL = insert(Refusal.__table__)


@functools.cache
def _limits_of(n: int) -> Precompiled:
    """The budget rows of n scope keys (parameters k0, k1, ...): one shape per n, compiled once."""
    return Precompiled(select(_BUDGETS.c.scope_key, _BUDGETS.c.limit_nanos, _BUDGETS.c.period).where(
        _BUDGETS.c.scope_key.in_([bindparam(f"k{i}") for i in range(n)])))


class BudgetManager:
    """Limits, reservations and positions of every budget scope; amounts in nano-dollars."""

    def __init__(self, db: Database, settings: Settings, prices: PriceBook,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._settings = settings
        self._prices = prices
        self._clock = clock
        # Reservations this process holds for calls still running: the heartbeat keeps them alive.
        self._live: set[int] = set()

    # -- limits --

    def limit_for(self, connection: Connection, scope_key: str) -> BudgetLimit:
        """The limit a scope has: its own budget row, else the default for its kind (a person's default
        is the channel's `*` row if an admin set one)."""
        return self._limits(connection, [scope_key])[scope_key]

    def _limits(self, connection: Connection, scope_keys: Iterable[str]) -> dict[str, BudgetLimit]:
        wanted = set(scope_keys)
        everyone = {person_scope(person[1], EVERYONE) for key in wanted
                    if (person := split_person_scope(key)) is not None and person[0] != EVERYONE}
        keys = sorted(wanted | everyone)
        rows = {row.scope_key: BudgetLimit(row.limit_nanos, Period(row.period))
                for row in _limits_of(len(keys)).rows(connection, {f"k{i}": key for i, key in enumerate(keys)})}
        return {key: self._limit_of(key, rows) for key in wanted}

    def _limit_of(self, scope_key: str, rows: dict[str, BudgetLimit]) -> BudgetLimit:
        if scope_key in rows:
            return rows[scope_key]
        if scope_key == GLOBAL_SCOPE:
            return self._settings.global_budget_limit
        person = split_person_scope(scope_key)
        if person is None:
            return self._settings.default_budget
        channel_default = rows.get(person_scope(person[1], EVERYONE))
        return channel_default or self._settings.default_user_budget

    async def limit_for_scope(self, scope_key: str) -> BudgetLimit:
        return await self._db.run_core(lambda connection: self.limit_for(connection, scope_key))

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
            old = self.limit_for(session.connection(), scope_key)
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
                # drop it, and the next use reopens it from the ledger (see _scope_states).
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

    async def reserve(self, **call: Unpack[CallToReserve]) -> Grant | Denial:
        """Hold the worst case of one call in the channel's, the person's and the global budget at
        once (one transaction, counter rows locked), degrading the call first if SEEDBOT_DEGRADE.
        A Grant is kept alive by the heartbeat until settled."""
        granted = await self._db.run_core(lambda connection: self.reserve_in(connection, **call))
        if isinstance(granted, Grant):
            self.hold(granted)
        return granted

    def hold(self, grant: Grant) -> None:
        """Keep a grant reserved (`reserve_in`'s, once its transaction committed) alive until it is settled."""
        self._live.add(grant.reservation_id)

    def reserve_in(self, connection: Connection, *, channel_pk: int, scope_key: str, thread_pk: int | None,
                   user_id: str, kind: str, estimated_prompt_tokens: int, wanted_max_tokens: int, web_search: bool,
                   thinking: bool = True) -> Grant | Denial:
        """`reserve`'s work inside the caller's transaction (tokens for the sizes, nano-dollars for the
        amounts), for a caller that claims a message and reserves its call in one transaction; the caller
        passes a Grant to `hold` once that transaction committed. A Denial writes a refusal row."""
        now = self._clock()
        keys = [scope_key, person_scope(scope_key, user_id), GLOBAL_SCOPE]
        size = CallSize(estimated_prompt_tokens, wanted_max_tokens, self._settings.min_answer_tokens, web_search)
        row = dict(channel_pk=channel_pk, thread_pk=thread_pk, user_id=user_id, kind=kind, status="active",
                   created_at=now, expires_at=now + timedelta(seconds=self._settings.reservation_ttl_seconds))
        # Planned on an unlocked read, the counters locked by the last statement (on PostgreSQL every answer shares
        # the global scope's row). Planned on locked rows: a call that does not fit whole or no longer fits once
        # locked, one with web search (the checked UPDATE has no nearly-spent rule), and a period's first call.
        scopes = [] if web_search else self._scope_states(connection, keys, now, lock=False, open_missing=False)
        plan = plan_for(self._prices, scopes, size, thinking=thinking, degrade=self._settings.degrade)
        if scopes and plan.fits and (plan.max_tokens, plan.thinking) == (wanted_max_tokens, thinking):
            counters = [(s.scope_key, s.limit.period.value, s.period_start) for s in scopes]
            reservation_id = _RESERVE.scalar(connection, row | dict(
                counter_keys=";".join(counter_key(*counter) for counter in counters), amount_nanos=plan.amount_nanos))
            if reserve_if_room(connection, counters, [s.limit.limit_nanos for s in scopes], plan.amount_nanos):
                return Grant(reservation_id, plan.amount_nanos, plan.max_tokens, False, False, thinking, None)
            connection.execute(delete(_RESERVATIONS).where(_RESERVATIONS.c.id == reservation_id))
        scopes = self._scope_states(connection, keys, now, lock=True)
        plan = plan_for(self._prices, scopes, size, thinking=thinking, degrade=self._settings.degrade)
        if not plan.fits:
            binding = plan.binding_scope
            assert binding is not None and binding.limit.limit_nanos is not None
            connection.execute(_REFUSAL, dict(
                channel_pk=channel_pk, user_id=user_id, scope_key=binding.scope_key,
                needed_nanos=plan.amount_nanos, available_nanos=binding.available_nanos or 0, created_at=now))
            return Denial(binding.scope_key, binding.spent_nanos + binding.reserved_nanos,
                          binding.limit.limit_nanos, binding.period_end, plan.amount_nanos)
        counter_keys = [counter_key(s.scope_key, s.limit.period.value, s.period_start) for s in scopes]
        adjust(connection, counter_keys, reserved=plan.amount_nanos, locked=True)
        reservation_id = _RESERVE.scalar(connection, row | dict(counter_keys=";".join(counter_keys),
                                                                amount_nanos=plan.amount_nanos))
        return Grant(reservation_id, plan.amount_nanos, plan.max_tokens, plan.max_tokens < wanted_max_tokens,
                     plan.web_search, plan.thinking, plan.degraded_by and plan.degraded_by.scope_key)

    async def settle(self, grant: Grant, outcome: Settlement, *, also: AlsoInTransaction | None = None) -> Remaining:
        """End a reservation at the call's exact cost (0 releases it) and write its ledger row. Returns the
        channel's position after it, for the footer.

        `also` runs in the same transaction, so an answer and the money it cost are stored together.
        """

        def work(connection: Connection) -> Any:
            reservation = closed = _CLOSE_ACTIVE.first(connection, {"r_id": grant.reservation_id,
                                                                    "r_status": _closed_status(outcome)})
            if closed is not None:
                self._write_ledger_row(connection, closed, outcome)
            elif (reservation := connection.execute(_RESERVATION_LOCKED, {"r_id": grant.reservation_id}).first()) \
                    is not None and reservation.status == "expired":
                self._correct_expired(connection, reservation, outcome)
            else:
                log.warning("reservation %s was already closed (%s); its ledger row stands",
                            grant.reservation_id, reservation.status if reservation else "missing")
            if also is not None:
                also(connection)
            # The shared counters last: on PostgreSQL every answer of the channel, and of the deployment (the
            # global scope), waits for their row locks, which are then held for this statement and COMMIT only.
            counters = {} if closed is None else move_to_spent(connection, closed, outcome.cost_nanos, returning=True)
            return self._remaining_after(connection, reservation, counters)

        try:
            return await self._db.run_core(work)
        finally:
            # Settled, or failing to settle: either way the heartbeat stops keeping it, so a
            # reservation nobody can settle expires after the TTL instead of living with the process.
            self._live.discard(grant.reservation_id)

    async def restate(self, grant: Grant, *, status: str, error: str, also: AlsoInTransaction | None = None) -> None:
        """Give a settled call's ledger row another `status` and `error`; its money stays as booked (the cost
        rule priced it when it settled). For an answer the platform refused after its call was settled.
        `also` runs in the same transaction."""
        statement = (update(_LEDGER).where(_LEDGER.c.reservation_pk == grant.reservation_id)
                     .values(status=status, error=error))

        def work(connection: Connection) -> None:
            connection.execute(statement)
            if also is not None:
                also(connection)

        await self._db.run_core(work)

    async def heartbeat(self) -> int:
        """Extend the reservations of this process's running calls to now + the TTL, so that only
        a dead process's reservations ever expire. Returns how many were extended."""
        live = sorted(self._live)
        if not live:
            return 0
        until = self._clock() + timedelta(seconds=self._settings.reservation_ttl_seconds)
        statement = (update(_RESERVATIONS).where(_RESERVATIONS.c.id.in_(live), _RESERVATIONS.c.status == "active")
                     .values(expires_at=until))
        return await self._db.run_core(lambda connection: connection.execute(statement).rowcount)

    async def expire_stale(self, now: datetime | None = None) -> int:
        """Settle reservations whose process died, at their reserved amount. Returns how many."""
        now = now or self._clock()
        query = (select(_RESERVATIONS).where(_RESERVATIONS.c.status == "active", _RESERVATIONS.c.expires_at < now)
                 .order_by(_RESERVATIONS.c.id).with_for_update(skip_locked=not self._db.is_sqlite))

        def work(connection: Connection) -> Any:
            stale = connection.execute(query).all()
            lock_counters(connection, (key for reservation in stale for key in reservation.counter_keys.split(";")))
            for reservation in stale:
                connection.execute(_CLOSE, {"r_id": reservation.id, "r_status": "expired"})
                self._write_ledger_row(connection, reservation, Settlement(
                    status="expired", cost_nanos=reservation.amount_nanos, usage_known=False,
                    error="the process handling this call stopped before it settled",
                ))
                move_to_spent(connection, reservation, reservation.amount_nanos)
            return len(stale)

        expired = await self._db.run_core(work)
        if expired:
            log.warning("settled %d stale reservations at their reserved amount", expired)
        return expired

    async def remaining(self, scope_key: str) -> Remaining:
        return await self._db.run_core(lambda connection: self._remaining(connection, scope_key))

    async def scope_state(self, scope_key: str, at: datetime | None = None) -> ScopeState:
        """A scope's period at `at` (default now), read without taking a reservation."""
        moment = at or self._clock()
        return await self._db.run_core(
            lambda connection: self._scope_states(connection, [scope_key], moment, lock=False)[0])

    # -- internals --

    def _correct_expired(self, connection: Connection, reservation: ResultRow, outcome: Settlement) -> None:
        """A settlement that arrives after its reservation expired (charged in full) corrects that
        row and the counters by the difference, instead of booking the call twice."""
        entry = connection.execute(select(_LEDGER.c.id, _LEDGER.c.cost_nanos)
                                   .where(_LEDGER.c.reservation_pk == reservation.id).with_for_update()).first()
        if entry is None:  # cannot happen: expiry writes the row; never book without one
            log.error("expired reservation %s has no ledger row; settlement dropped", reservation.id)
            return
        difference = outcome.cost_nanos - entry.cost_nanos
        adjust(connection, reservation.counter_keys.split(";"), spent=difference)
        connection.execute(_CLOSE, {"r_id": reservation.id,
                                    "r_status": _closed_status(outcome)})
        corrected = {name: getattr(outcome, name) for name in (
            "model", "prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens", "web_searches",
            "cost_nanos", "usage_known", "status", "first_token_ms", "duration_ms")}
        corrected["error"] = "; ".join(filter(None, [outcome.error, "settled after its reservation had expired"]))
        connection.execute(update(_LEDGER).where(_LEDGER.c.id == entry.id).values(**corrected))
        log.warning("reservation %s settled after it expired; its ledger row corrected by %d nanos",
                    reservation.id, difference)

    @staticmethod
    def _write_ledger_row(connection: Connection, reservation: ResultRow, outcome: Settlement) -> None:
        """The ledger row of a closed reservation's call (its counters move separately, last)."""
        _LEDGER_ROW.run(connection, dict(
            channel_pk=reservation.channel_pk, thread_pk=reservation.thread_pk, reservation_pk=reservation.id,
            user_id=reservation.user_id, kind=reservation.kind, model=outcome.model,
            prompt_tokens=outcome.prompt_tokens, cached_tokens=outcome.cached_tokens,
            completion_tokens=outcome.completion_tokens, reasoning_tokens=outcome.reasoning_tokens,
            web_searches=outcome.web_searches, cost_nanos=outcome.cost_nanos,
            reserved_nanos=reservation.amount_nanos, usage_known=outcome.usage_known, status=outcome.status,
            error=outcome.error, started_at=reservation.created_at, first_token_ms=outcome.first_token_ms,
            duration_ms=outcome.duration_ms,
        ))

    def _scope_states(self, connection: Connection, scope_keys: list[str], now: datetime, *, lock: bool,
                      open_missing: bool = True) -> list[ScopeState]:
        """The scopes' periods at `now`, in scope-key order, their counter rows locked if `lock`. A counter not
        used yet this period is opened from the books; without `open_missing`, none are returned instead (opened
        before the other counters are locked, it deadlocked with a settlement holding them, on PostgreSQL)."""
        keys = sorted(scope_keys)
        limits = self._limits(connection, keys)
        bounds = {key: period_bounds(limits[key].period, now, self._settings.tz) for key in keys}
        wanted = [(key, limits[key].period.value, bounds[key][0]) for key in keys]
        # One row per scope key at most: the tuple names its period and start.
        counters = read_counters(connection, wanted, lock=lock)
        missing = [counter for counter in wanted if counter[0] not in counters]
        if missing:
            if not open_missing:
                return []
            # First use of this period: open its counter from the books (a budget set mid-period counts it all).
            for scope_key, period, start in missing:
                connection.execute(self._db.insert(_COUNTERS).values(
                    scope_key=scope_key, period=period, period_start=start,
                    spent_nanos=ledger_spent(connection, scope_key, start),
                    reserved_nanos=active_reserved(connection, scope_key, start),
                ).on_conflict_do_nothing())
            counters |= read_counters(connection, missing, lock=lock)
        return [ScopeState(key, limits[key], *bounds[key], counters[key].spent_nanos, counters[key].reserved_nanos)
                for key in keys]

    def _remaining(self, connection: Connection, scope_key: str) -> Remaining:
        return _remaining_of(self._scope_states(connection, [scope_key], self._clock(), lock=False)[0])

    def _remaining_after(self, connection: Connection, reservation: ResultRow | None,
                         counters: dict[str, ResultRow]) -> Remaining:
        """The channel's position after a settlement: from the counter the settlement just updated when
        that is still the channel's counter now, else read again (the period turned, or the limit's
        period changed, while the call ran)."""
        scope_key = channel_scope_of(reservation.counter_keys) if reservation is not None else None
        if scope_key is None or reservation is None:
            return Remaining(None, None)
        counter = counters.get(scope_key)
        if counter is None:
            return self._remaining(connection, scope_key)
        # The settlement's own statement read the channel's budget row (a channel's limit has no other source).
        limit = (BudgetLimit(counter.limit_nanos, Period(counter.limit_period)) if counter.limit_period is not None
                 else self._limit_of(scope_key, {}))
        start, end = period_bounds(limit.period, self._clock(), self._settings.tz)
        if counter_key(scope_key, limit.period.value, start) not in reservation.counter_keys:
            return self._remaining(connection, scope_key)
        return _remaining_of(ScopeState(scope_key, limit, start, end, counter.spent_nanos, counter.reserved_nanos))


def _closed_status(outcome: Settlement) -> str:
    """What a settled reservation's status becomes: nothing charged releases it."""
    return "released" if outcome.cost_nanos == 0 else "settled"


def _remaining_of(state: ScopeState) -> Remaining:
    return Remaining(state.available_nanos, state.limit.limit_nanos, state.scope_key, state.period_end,
                     state.spent_nanos)

"""Reserve, settle and release money against channel, person and global budgets.

A reservation adds its call's worst case to the counter rows of its scopes with one UPDATE that holds only
where every limited row still has room, checked under the row's lock on its latest version (rows locked in
scope-key order on PostgreSQL; SQLite transactions begin IMMEDIATE, see bot.storage.engine), so concurrent
reservers in any number of processes never pass a limit. That UPDATE is the transaction's last statement, as
settling's counter UPDATE is: the rows every answer shares stay locked for one statement and the COMMIT. The hot
path is Core statements on the transaction's `Connection` (`Database.run_core`), each for all of a call's scopes
at once: one read of their limits and counters, then the reservation row and the checked update (one statement
on PostgreSQL); settling closes the reservation and writes its ledger row (one statement on PostgreSQL,
`bot.budget.ledger`), then moves the counters. Limits themselves are `bot.budget.limit_store`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Unpack

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection

from bot.budget.counters import (
    RESERVE,
    active_reserved,
    adjust,
    channel_scope_of,
    counter_key,
    ledger_spent,
    lock_counters,
    move_to_spent,
    read_counters,
    read_limits_and_counters,
    reserve_if_room,
)
from bot.budget.ledger import CLOSE, close_and_book, write_ledger_row
from bot.budget.limit_store import LimitStore, budget_row_keys
from bot.budget.limits import BudgetLimit, Period
from bot.budget.outcomes import CallToReserve, Denial, Grant, Remaining, Settlement
from bot.budget.periods import CallSize, ScopeState, period_bounds, plan_for
from bot.budget.pricing import PriceBook
from bot.budget.scopes import GLOBAL_SCOPE, person_scope
from bot.config import Settings
from bot.storage.engine import Database
from bot.storage.precompiled import ResultRow
from bot.storage.tables import (
    BudgetCounter,
    Refusal,
    Reservation,
    UsageEntry,
    utcnow,
)

log = logging.getLogger(__name__)


AlsoInTransaction = Callable[[Connection], None]

# Built once: each runs for every call, and building a statement costs more than running it.
_COUNTERS, _RESERVATIONS, _LEDGER = BudgetCounter.__table__, Reservation.__table__, UsageEntry.__table__
_RESERVATION_LOCKED = select(_RESERVATIONS).where(_RESERVATIONS.c.id == bindparam("r_id")).with_for_update()
_REFUSAL = insert(Refusal.__table__)


class BudgetManager:
    """Limits, reservations and positions of every budget scope; amounts in nano-dollars."""

    def __init__(self, db: Database, settings: Settings, prices: PriceBook,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._settings = settings
        self._prices = prices
        self._clock = clock
        self.limits = LimitStore(db, settings, clock)
        # Reservations this process holds for calls still running: the heartbeat keeps them alive.
        self._live: set[int] = set()

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
        scopes = [] if web_search else self._unlocked_states(connection, keys, now)
        plan = plan_for(self._prices, scopes, size, thinking=thinking, degrade=self._settings.degrade)
        if scopes and plan.fits and (plan.max_tokens, plan.thinking) == (wanted_max_tokens, thinking):
            counters = [(s.scope_key, s.limit.period.value, s.period_start) for s in scopes]
            reservation_id = reserve_if_room(connection, counters, [s.limit.limit_nanos for s in scopes], row | dict(
                counter_keys=";".join(counter_key(*counter) for counter in counters), amount_nanos=plan.amount_nanos))
            if reservation_id is not None:
                return Grant(reservation_id, plan.amount_nanos, plan.max_tokens, False, False, thinking, None)
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
        reservation_id = RESERVE.scalar(connection, row | dict(counter_keys=";".join(counter_keys),
                                                               amount_nanos=plan.amount_nanos))
        return Grant(reservation_id, plan.amount_nanos, plan.max_tokens, plan.max_tokens < wanted_max_tokens,
                     plan.web_search, plan.thinking, plan.degraded_by and plan.degraded_by.scope_key)

    async def settle(self, grant: Grant, outcome: Settlement, *, also: AlsoInTransaction | None = None) -> Remaining:
        """End a reservation at the call's exact cost (0 releases it) and write its ledger row. Returns the
        channel's position after it, for the footer.

        `also` runs in the same transaction, so an answer and the money it cost are stored together.
        """

        def work(connection: Connection) -> Any:
            reservation = closed = close_and_book(connection, grant.reservation_id, _closed_status(outcome), outcome)
            if closed is None:
                reservation = connection.execute(_RESERVATION_LOCKED, {"r_id": grant.reservation_id}).first()
                if reservation is not None and reservation.status == "expired":
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
                connection.execute(CLOSE, {"r_id": reservation.id, "r_status": "expired"})
                write_ledger_row(connection, reservation, Settlement(
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
        connection.execute(CLOSE, {"r_id": reservation.id, "r_status": _closed_status(outcome)})
        corrected = {name: getattr(outcome, name) for name in (
            "model", "prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens", "web_searches",
            "cost_nanos", "usage_known", "status", "first_token_ms", "duration_ms")}
        corrected["error"] = "; ".join(filter(None, [outcome.error, "settled after its reservation had expired"]))
        connection.execute(update(_LEDGER).where(_LEDGER.c.id == entry.id).values(**corrected))
        log.warning("reservation %s settled after it expired; its ledger row corrected by %d nanos",
                    reservation.id, difference)

    def _unlocked_states(self, connection: Connection, scope_keys: list[str], now: datetime) -> list[ScopeState]:
        """The scopes' periods at `now`, in scope-key order, from one unlocked read of their limits and of every
        period's counter of each; none where a counter is not opened yet (opened before the other counters are
        locked, it deadlocked with a settlement holding them, on PostgreSQL: `_scope_states` opens it)."""
        keys = sorted(scope_keys)
        bounds = {period: period_bounds(period, now, self._settings.tz) for period in Period}
        rows, counters = read_limits_and_counters(connection, budget_row_keys(keys), [
            (key, period.value, start) for key in keys for period, (start, _) in bounds.items()])
        limits = self.limits.from_rows(keys, rows)
        found = {key: counters[key, limits[key].period.value] for key in keys
                 if (key, limits[key].period.value) in counters}
        if len(found) < len(keys):
            return []
        return [ScopeState(key, limits[key], *bounds[limits[key].period], found[key].spent_nanos,
                           found[key].reserved_nanos) for key in keys]

    def _scope_states(self, connection: Connection, scope_keys: list[str], now: datetime, *,
                      lock: bool) -> list[ScopeState]:
        """The scopes' periods at `now`, in scope-key order, their counter rows locked if `lock`. A counter not
        used yet this period is what the books say (the ledger since the period began, and the active
        reservations made in it: a budget set mid-period counts it all). Only a reservation (`lock`) opens it so,
        in key order once the rows that exist are locked: on PostgreSQL an INSERT waits for another transaction's
        INSERT of the same key like a lock, and reads that opened counters (the footer's, after a settlement had
        locked its own) deadlocked with reservers opening the same ones."""
        keys = sorted(scope_keys)
        limits = self.limits.limits(connection, keys)
        bounds = {key: period_bounds(limits[key].period, now, self._settings.tz) for key in keys}
        wanted = [(key, limits[key].period.value, bounds[key][0]) for key in keys]
        # One row per scope key at most: the tuple names its period and start.
        found = read_counters(connection, wanted, lock=lock)
        positions = {key: (row.spent_nanos, row.reserved_nanos) for key, row in found.items()}
        for scope_key, period, start in wanted:
            if scope_key in positions:
                continue
            books = (ledger_spent(connection, scope_key, start, bounds[scope_key][1]),
                     active_reserved(connection, scope_key, start))
            if lock:  # the period's first use: its counter opens from the books
                connection.execute(self._db.insert(_COUNTERS).values(
                    scope_key=scope_key, period=period, period_start=start, spent_nanos=books[0],
                    reserved_nanos=books[1]).on_conflict_do_nothing())
                row = read_counters(connection, [(scope_key, period, start)], lock=True)[scope_key]
                books = row.spent_nanos, row.reserved_nanos
            positions[scope_key] = books
        return [ScopeState(key, limits[key], *bounds[key], *positions[key]) for key in keys]

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
                 else self.limits.resolve(scope_key, {}))
        start, end = period_bounds(limit.period, self._clock(), self._settings.tz)
        if counter_key(scope_key, limit.period.value, start) not in reservation.counter_keys.split(";"):
            return self._remaining(connection, scope_key)
        return _remaining_of(ScopeState(scope_key, limit, start, end, counter.spent_nanos, counter.reserved_nanos))


def _closed_status(outcome: Settlement) -> str:
    """What a settled reservation's status becomes: nothing charged releases it."""
    return "released" if outcome.cost_nanos == 0 else "settled"


def _remaining_of(state: ScopeState) -> Remaining:
    return Remaining(state.available_nanos, state.limit.limit_nanos, state.scope_key, state.period_end,
                     state.spent_nanos)

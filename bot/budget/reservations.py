"""Reserve, settle and release money against channel, person and global budgets.

A reservation adds its call's worst case to the counter rows of its scopes with one UPDATE that holds only
where every limited row still has room, checked under the row's lock on its latest version (rows locked in
key order on PostgreSQL; SQLite transactions begin IMMEDIATE, see bot.storage.engine), so concurrent reservers
in any number of processes never pass a limit. Only limited scopes need a counter (which ones exist, and how
each stays exact, is `bot.budget.counters`'s docstring). That UPDATE is the transaction's last statement, as
settling's counter UPDATE is: the rows every answer of a channel shares stay locked for one statement and the
COMMIT. The hot path is Core statements on the transaction's `Connection` (`Database.run_core`), each for all
of a call's scopes at once: one read of their limits and counters, then the reservation row and the checked
update (one statement on PostgreSQL); settling closes the reservation and writes its ledger row (one statement
on PostgreSQL, `bot.budget.ledger`), then moves the counters. Limits themselves are `bot.budget.limit_store`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, Unpack

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection

from bot.budget.counters import (
    RESERVE,
    Counter,
    CounterNotOpen,
    active_reserved,
    adjust,
    channel_scope_of,
    counter_key,
    ledger_spent,
    lock_counters_of,
    move,
    move_to_spent,
    open_counter,
    parse_counter_key,
    read_counters,
    read_limits_and_counters,
    reserve_if_room,
    scopes_of,
)
from bot.budget.ledger import CLOSE, PRUNE_BATCH, close_and_book, closed_status, prune_closed, write_ledger_row
from bot.budget.limit_store import LimitStore, budget_row_keys
from bot.budget.limits import BudgetLimit, Period
from bot.budget.locks import scopes_shared, share_scopes
from bot.budget.outcomes import CallToReserve, Denial, Grant, Remaining, Settlement
from bot.budget.periods import CallSize, ScopeState, period_bounds, plan_for
from bot.budget.pricing import PriceBook
from bot.budget.scopes import call_scopes
from bot.config import Settings
from bot.storage.engine import Database
from bot.storage.precompiled import Prelude, ResultRow
from bot.storage.tables import Refusal, Reservation, UsageEntry, utcnow

log = logging.getLogger(__name__)


AlsoInTransaction = Callable[[Connection], None]
T = TypeVar("T")
# How often a transaction that reserves runs, opening the counters it found missing in between.
_OPEN_ATTEMPTS = 5
# Stale reservations expired per transaction: their scopes' locks (three each, at most) stay few, where one
# statement can take no more than 1,664 (PostgreSQL's longest select list) and every lock takes a slot of the
# server's shared lock table.
_EXPIRE_BATCH = 50
# How long a closed reservation is kept after its call was last known alive: a settlement that arrives after
# its reservation expired corrects it (`_correct_expired`); nothing else reads a closed one.
CLOSED_KEPT = timedelta(days=7)

# Built once: each runs for every call, and building a statement costs more than running it.
_RESERVATIONS, _LEDGER = Reservation.__table__, UsageEntry.__table__
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
        def work(connection: Connection) -> Grant | Denial:
            share_scopes(connection, call_scopes(call["scope_key"], call["user_id"]))
            return self.reserve_in(connection, **call)

        granted = await self.reserving(lambda: self._db.run_core(work))
        if isinstance(granted, Grant):
            self.hold(granted)
        return granted

    def scope_locks(self, scope_key: str, user_id: str) -> Prelude | None:
        """The shared locks of the books a call of this person (`user_id`) in this channel (`scope_key`) reserves
        in (`call_scopes`), as a one-row select for a transaction that reserves to run inside its first statement
        (`ConversationStore.claim_then(first=…)`; `share_scopes` is the same as a statement of its own). None on
        SQLite, where a write transaction holds the whole database."""
        return None if self._db.is_sqlite else scopes_shared(call_scopes(scope_key, user_id))

    async def reserving(self, transaction: Callable[[], Awaitable[T]]) -> T:
        """Run `transaction`, one that reserves (`reserve_in`), having taken its scopes' books shared first
        (`share_scopes`, or `scope_locks` inside its first statement). Where it met a limited scope whose counter
        for the period is not open yet, it rolled back (`CounterNotOpen`): each counter opens in a transaction of
        its own and it runs again. Raises `CounterNotOpen` if that happens five times running (limits changing
        faster than a call reserves), and whatever `transaction` raises."""
        for _ in range(_OPEN_ATTEMPTS - 1):
            try:
                return await transaction()
            except CounterNotOpen as missing:
                for counter, period_end in missing.counters:
                    await self._db.run_core(lambda connection, counter=counter, end=period_end: open_counter(
                        connection, counter, end))
        return await transaction()

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
        keys = call_scopes(scope_key, user_id)
        size = CallSize(estimated_prompt_tokens, wanted_max_tokens, self._settings.min_answer_tokens, web_search)
        row = dict(channel_pk=channel_pk, thread_pk=thread_pk, user_id=user_id, kind=kind, status="active",
                   created_at=now, expires_at=now + timedelta(seconds=self._settings.reservation_ttl_seconds),
                   scope_keys=";".join(keys))
        # Planned on an unlocked read, the counters locked by the last statement (every answer of a channel with a
        # limit shares its row). Planned on locked rows: a call that does not fit whole or no longer fits once
        # locked, and one with web search (the checked UPDATE has no nearly-spent rule).
        books = None if web_search else self._books(connection, scope_key, keys, now, lock=False)
        plan = None if books is None else plan_for(self._prices, books.states, size, thinking=thinking,
                                                   degrade=self._settings.degrade)
        if books and plan and plan.fits and (plan.max_tokens, plan.thinking) == (wanted_max_tokens, thinking):
            named = ";".join(counter_key(*counter) for counter in books.named)
            reservation_id = reserve_if_room(connection, books.named, books.limits,
                                             row | dict(counter_keys=named, amount_nanos=plan.amount_nanos))
            if reservation_id is not None:
                return Grant(reservation_id, plan.amount_nanos, plan.max_tokens, False, tuple(keys), False, thinking,
                             None, books.channel_unlimited)
        books = self._books(connection, scope_key, keys, now, lock=True)
        plan = plan_for(self._prices, books.states, size, thinking=thinking, degrade=self._settings.degrade)
        if not plan.fits:
            binding = plan.binding_scope
            assert binding is not None and binding.limit.limit_nanos is not None
            connection.execute(_REFUSAL, dict(
                channel_pk=channel_pk, user_id=user_id, scope_key=binding.scope_key,
                needed_nanos=plan.amount_nanos, available_nanos=binding.available_nanos or 0, created_at=now))
            return Denial(binding.scope_key, binding.spent_nanos + binding.reserved_nanos,
                          binding.limit.limit_nanos, binding.period_end, plan.amount_nanos)
        counter_keys = [counter_key(*counter) for counter in books.named]
        if counter_keys:
            adjust(connection, counter_keys, reserved=plan.amount_nanos, locked=True)
        reservation_id = RESERVE.scalar(connection, row | dict(counter_keys=";".join(counter_keys),
                                                               amount_nanos=plan.amount_nanos))
        return Grant(reservation_id, plan.amount_nanos, plan.max_tokens, plan.max_tokens < wanted_max_tokens,
                     tuple(keys), plan.web_search, plan.thinking, plan.degraded_by and plan.degraded_by.scope_key,
                     books.channel_unlimited)

    async def settle(self, grant: Grant, outcome: Settlement, *, also: AlsoInTransaction | None = None) -> Remaining:
        """End a reservation at the call's exact cost (0 releases it) and write its ledger row. Returns the
        channel's position after it, for the footer.

        `also` runs in the same transaction, so an answer and the money it cost are stored together.
        """

        def work(connection: Connection) -> Any:
            reservation = closed = close_and_book(connection, grant.reservation_id, grant.scope_keys,
                                                 closed_status(outcome), outcome)
            if closed is None:
                reservation = connection.execute(_RESERVATION_LOCKED, {"r_id": grant.reservation_id}).first()
                if reservation is not None and reservation.status == "expired":
                    self._correct_expired(connection, reservation, outcome)
                else:
                    log.warning("reservation %s was already closed (%s); its ledger row stands",
                                grant.reservation_id, reservation.status if reservation else "missing")
            if also is not None:
                also(connection)
            # The shared counters last: on PostgreSQL every answer of a limited channel (and of the deployment,
            # where a global limit is set) waits for their row locks, then held for this statement and COMMIT only.
            counters = {} if closed is None else move_to_spent(connection, closed, outcome.cost_nanos, returning=True)
            return self._remaining_after(connection, grant, reservation, counters)

        try:
            return await self._db.run_core(work)
        finally:
            # Settled, or failing to settle: either way the heartbeat stops keeping it, so a
            # reservation nobody can settle expires after the TTL instead of living with the process.
            self._live.discard(grant.reservation_id)

    async def restate(self, rows: Sequence[tuple[Grant, str]], *, status: str,
                      also: AlsoInTransaction | None = None) -> None:
        """Give settled calls' ledger rows another `status`, each (grant, error) its own `error`, in one
        transaction; their money stays as booked (the cost rule priced it when they settled). For an answer
        the platform refused after its calls were settled. `also` runs in the same transaction."""
        statements = [update(_LEDGER).where(_LEDGER.c.reservation_pk == grant.reservation_id)
                      .values(status=status, error=error) for grant, error in rows]

        def work(connection: Connection) -> None:
            for statement in statements:
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
        """Settle reservations whose process died, at their reserved amount, _EXPIRE_BATCH (oldest first) per
        transaction. Returns how many."""
        now = now or self._clock()
        stale_now = (_RESERVATIONS.c.status == "active", _RESERVATIONS.c.expires_at < now)
        seen = (select(_RESERVATIONS.c.id, _RESERVATIONS.c.scope_keys, _RESERVATIONS.c.counter_keys)
                .where(*stale_now).order_by(_RESERVATIONS.c.id).limit(_EXPIRE_BATCH))

        def work(connection: Connection) -> tuple[int, bool]:
            # The books of their scopes shared before any row is locked, as every transaction that settles takes
            # them: a counter that opens after waits, one that opened before is visible to the next statements
            # (PostgreSQL gives each statement its own snapshot).
            found = connection.execute(seen).all()
            if not found:
                return 0, False
            share_scopes(connection, {scope for reservation in found for scope in scopes_of(reservation)})
            stale = connection.execute(
                select(_RESERVATIONS).where(*stale_now, _RESERVATIONS.c.id.in_([r.id for r in found]))
                .order_by(_RESERVATIONS.c.id).with_for_update(skip_locked=not self._db.is_sqlite)).all()
            lock_counters_of(connection, stale)
            for reservation in stale:
                connection.execute(CLOSE, {"r_id": reservation.id, "r_status": "expired"})
                write_ledger_row(connection, reservation, Settlement(
                    status="expired", cost_nanos=reservation.amount_nanos, usage_known=False,
                    error="the process handling this call stopped before it settled",
                ))
                move_to_spent(connection, reservation, reservation.amount_nanos)
            return len(stale), len(found) == _EXPIRE_BATCH

        expired, more = 0, True
        while more:  # until a batch comes short, or another replica holds the oldest (it is expiring them)
            count, more = await self._db.run_core(work)
            expired, more = expired + count, more and count > 0
        if expired:
            log.warning("settled %d stale reservations at their reserved amount", expired)
        return expired

    async def prune_closed(self, *, batches: int = 10) -> int:
        """Delete reservations closed and dead for CLOSED_KEPT (`ledger.prune_closed`), up to `batches`
        transactions of PRUNE_BATCH; the maintenance loop's, every minute. Returns how many."""
        before, pruned = self._clock() - CLOSED_KEPT, 0
        for _ in range(batches):
            pruned += (deleted := await self._db.run_core(lambda connection: prune_closed(connection, before)))
            if deleted < PRUNE_BATCH:
                break
        return pruned

    async def remaining(self, scope_key: str) -> Remaining:
        return await self._db.run_core(lambda connection: self._remaining(connection, scope_key))

    async def scope_state(self, scope_key: str, at: datetime | None = None) -> ScopeState:
        """A scope's period at `at` (default now), read without taking a reservation."""
        moment = at or self._clock()
        return await self._db.run_core(
            lambda connection: self._scope_states(connection, [scope_key], moment)[0])

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
        move(connection, reservation, reserved=0, spent=difference)
        connection.execute(CLOSE, {"r_id": reservation.id, "r_status": closed_status(outcome)})
        corrected = {name: getattr(outcome, name) for name in (
            "model", "prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens", "web_searches",
            "cost_nanos", "usage_known", "status", "first_token_ms", "duration_ms")}
        corrected["error"] = "; ".join(filter(None, [outcome.error, "settled after its reservation had expired"]))
        connection.execute(update(_LEDGER).where(_LEDGER.c.id == entry.id).values(**corrected))
        log.warning("reservation %s settled after it expired; its ledger row corrected by %d nanos",
                    reservation.id, difference)

    def _books(self, connection: Connection, channel_key: str, scope_keys: list[str], now: datetime, *,
               lock: bool) -> _Books:
        """What reserving a call of these scopes (sorted, the channel's among them) at `now` works from: each
        scope's limit and position, and every counter of theirs open for the current periods, with their limits
        (see `_Books`). One read of the budget rows and every period's counter of each scope: unlocked, or with
        the counters locked FOR UPDATE in key order. Raises `CounterNotOpen` for a limited scope whose period has
        no counter yet."""
        bounds = {period: period_bounds(period, now, self._settings.tz) for period in Period}
        candidates = [(key, period.value, start) for key in scope_keys for period, (start, _) in bounds.items()]
        if lock:
            limits = self.limits.limits(connection, scope_keys)
            found = read_counters(connection, candidates, lock=True)
        else:
            rows, found = read_limits_and_counters(connection, budget_row_keys(scope_keys), candidates)
            limits = self.limits.from_rows(scope_keys, rows)
        states, limit_of, missing = [], {}, []
        for key in scope_keys:
            limit = limits[key]
            start, end = bounds[limit.period]
            own = counter_key(key, limit.period.value, start)
            counter = found.get(own)
            if limit.limit_nanos is not None:
                if counter is None:
                    missing.append(((key, limit.period.value, start), end))
                    continue
                limit_of[own] = limit.limit_nanos
            states.append(ScopeState(key, limit, start, end, counter.spent_nanos if counter else 0,
                                     counter.reserved_nanos if counter else 0))
        if missing:
            raise CounterNotOpen(missing)
        named = sorted(parse_counter_key(key) for key in found)
        return _Books(states, named, [limit_of.get(counter_key(*counter)) for counter in named],
                      limits[channel_key].limit_nanos is None)

    def _scope_states(self, connection: Connection, scope_keys: list[str], now: datetime) -> list[ScopeState]:
        """The scopes' positions at `now`, in scope-key order, read without locking or writing: from each one's
        counter, or what the books say where it has none (the ledger since the period began, and the active
        reservations made in it). Only a reservation opens a counter (`open_counter`)."""
        keys = sorted(scope_keys)
        limits = self.limits.limits(connection, keys)
        bounds = {key: period_bounds(limits[key].period, now, self._settings.tz) for key in keys}
        wanted = [(key, limits[key].period.value, bounds[key][0]) for key in keys]
        found = read_counters(connection, wanted, lock=False)
        states = []
        for scope_key, period, start in wanted:
            counter = found.get(counter_key(scope_key, period, start))
            position = ((counter.spent_nanos, counter.reserved_nanos) if counter is not None else
                        (ledger_spent(connection, scope_key, start, bounds[scope_key][1]),
                         active_reserved(connection, scope_key, start)))
            states.append(ScopeState(scope_key, limits[scope_key], *bounds[scope_key], *position))
        return states

    def _remaining(self, connection: Connection, scope_key: str) -> Remaining:
        return self._scope_states(connection, [scope_key], self._clock())[0].remaining()

    def _remaining_after(self, connection: Connection, grant: Grant, reservation: ResultRow | None,
                         counters: dict[str, ResultRow]) -> Remaining:
        """The channel's position after a settlement: from the channel's counter the settlement just moved when
        that is still the channel's counter now, else read again (the period turned, or the limit's period
        changed, while the call ran); nothing where the channel had no limit and still has no counter."""
        scope_key = channel_scope_of(reservation) if reservation is not None else None
        if scope_key is None:
            return Remaining(None, None)
        moved = [row for row in counters.values() if row.scope_key == scope_key]
        if not moved and grant.channel_unlimited:
            return Remaining(None, None, scope_key)
        if not moved:
            return self._remaining(connection, scope_key)
        # The settlement's own statement read the channel's budget row (a channel's limit has no other source).
        limit = (BudgetLimit(moved[0].limit_nanos, Period(moved[0].limit_period))
                 if moved[0].limit_period is not None else self.limits.resolve(scope_key, {}))
        start, end = period_bounds(limit.period, self._clock(), self._settings.tz)
        counter = counters.get(counter_key(scope_key, limit.period.value, start))
        if counter is None:
            return self._remaining(connection, scope_key)
        return ScopeState(scope_key, limit, start, end, counter.spent_nanos, counter.reserved_nanos).remaining()


@dataclass(frozen=True, slots=True)
class _Books:
    """`BudgetManager._books`: each scope's position (limited ones from their counter, the others from theirs or
    none), every counter of the scopes open for the current periods (`named`, in key order: a reservation names
    and moves them all, so that each stays exact whatever its scope's limit becomes), each one's limit (None
    where it is not its limited scope's counter for the limit's period), and whether the channel has no limit."""

    states: list[ScopeState]
    named: list[Counter]
    limits: list[int | None]
    channel_unlimited: bool

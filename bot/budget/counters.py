"""Budget counter rows: one per scope and period, holding what is spent and reserved there (nano-dollars).

A reservation names its counters by key (`counter_key`: `scope|period|start`, start naive UTC). Each function
here works on all of a call's counters at once, on the transaction's `Connection`, in one statement;
`reserve_if_room` also inserts the reservation row (on PostgreSQL in that same statement) and, where a counter
lacked room, undoes both with up to two more. The statements have one fixed shape per number of counters
(parameters s0, p0, t0, s1, ...), so SQLAlchemy compiles each shape once: an expanding IN would be rendered anew
at every execution, which cost more than running it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal_column,
    null,
    or_,
    select,
    true,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.engine import Connection

from bot.budget.scopes import GLOBAL_SCOPE, scope_filter, split_person_scope
from bot.storage.precompiled import Precompiled, ResultRow
from bot.storage.tables import Budget, BudgetCounter, Reservation, UsageEntry

Counter = tuple[str, str, datetime]  # (scope key, period, period start): a counter row's primary key

_COUNTERS, _RESERVATIONS, _LEDGER, _BUDGETS = (BudgetCounter.__table__, Reservation.__table__, UsageEntry.__table__,
                                               Budget.__table__)
RESERVE = Precompiled(insert(_RESERVATIONS).returning(_RESERVATIONS.c.id))


def counter_key(scope_key: str, period: str, period_start: datetime) -> str:
    """A counter's key as a reservation stores it: `scope|period|start` (start naive UTC, ISO)."""
    return f"{scope_key}|{period}|{period_start.isoformat()}"


def parse_counter_key(key: str) -> Counter:
    """`counter_key`'s parts back: (scope key, period, period start)."""
    scope_key, period, start = key.split("|")
    return scope_key, period, datetime.fromisoformat(start)


def channel_scope_of(counter_keys: str) -> str | None:
    """The channel scope among a reservation's counter keys (`;`-joined), if it has one."""
    scopes = [parse_counter_key(key)[0] for key in counter_keys.split(";")]
    return next((scope for scope in scopes if scope != GLOBAL_SCOPE and split_person_scope(scope) is None), None)


def read_counters(connection: Connection, counters: list[Counter], *, lock: bool) -> dict[str, ResultRow]:
    """The rows that exist of `counters` (scope key -> row of scope_key, spent_nanos, reserved_nanos), at most
    one per scope key. With `lock`, locked FOR UPDATE in scope-key order on PostgreSQL (rows are locked in
    the order they are returned, and one order for every transaction keeps two from deadlocking)."""
    statements = _statements(len(counters), lock_first=False)
    rows = (statements.locked if lock else statements.read).rows(connection, _params(counters))
    return {row.scope_key: row for row in rows}


def read_limits_and_counters(connection: Connection, budget_keys: list[str], counters: list[Counter]
                             ) -> tuple[list[ResultRow], dict[tuple[str, str], ResultRow]]:
    """What planning a call reads, unlocked, in one statement: the budget rows that exist of `budget_keys` (rows
    of scope_key, limit_nanos, period) and the counter rows that exist of `counters` (by (scope key, period): rows
    of scope_key, spent_nanos, reserved_nanos). A scope's counter key depends on its limit's period, so the
    caller names every period's counter of each scope and keeps the one its limit picks."""
    rows = _read_both(len(budget_keys), len(counters)).rows(
        connection, _params(counters) | {f"k{i}": key for i, key in enumerate(budget_keys)})
    return ([row for row in rows if row.period_start is None],
            {(row.scope_key, row.period): row for row in rows if row.period_start is not None})


@functools.cache
def _read_both(n_budgets: int, n_counters: int) -> Precompiled:
    c, budget = _COUNTERS.c, _BUDGETS.c
    counters = select(c.scope_key, c.period, c.period_start, c.spent_nanos, c.reserved_nanos,
                      cast(null(), BigInteger).label("limit_nanos")).where(_counter_in(n_counters))
    budgets = select(budget.scope_key, budget.period, cast(null(), c.period_start.type), cast(null(), BigInteger),
                     cast(null(), BigInteger), budget.limit_nanos).where(
        budget.scope_key.in_([bindparam(f"k{i}", type_=budget.scope_key.type) for i in range(n_budgets)]))
    return Precompiled(union_all(counters, budgets))


def adjust(connection: Connection, counter_keys: list[str], *, reserved: int = 0, spent: int = 0,
           returning: bool = False, locked: bool = False) -> dict[str, ResultRow]:
    """Add `reserved` and `spent` (nano-dollars, either may be negative) to each counter of `counter_keys`
    in one statement; on PostgreSQL, rows not yet `locked` are locked by a subquery first, in scope-key
    order (an UPDATE alone locks in whatever order it finds them). With `returning`, the counters after
    the change (as `read_counters` gives them) and, read in the same statement, each scope's own budget row
    (`limit_nanos`, `limit_period`; both None where the scope has none and a default applies)."""
    counters = [parse_counter_key(key) for key in counter_keys]
    statements = _statements(len(counters), lock_first=not locked and connection.dialect.name != "sqlite")
    params = _params(counters) | {"d_reserved": reserved, "d_spent": spent}
    if not returning:
        statements.adjust.run(connection, params)
        return {}
    return {row.scope_key: row for row in statements.adjust_returning.rows(connection, params)}


def reserve_if_room(connection: Connection, counters: list[Counter], limits: list[int | None],
                    reservation: dict[str, Any]) -> int | None:
    """Insert `reservation` (a budget_reservations row by column key, `amount_nanos` and `counter_keys` included)
    and add its `amount_nanos` to every counter's reserved, if each counter with a limit (`limits`, in the
    counters' order, None for none) still has room for it: spent + reserved + amount <= limit. The check runs on
    each row's latest version under its lock (PostgreSQL re-evaluates an UPDATE's WHERE on a row a concurrent
    transaction changed; on PostgreSQL the rows are locked in scope-key order first), so a plan made from an
    unlocked read never passes a limit. On PostgreSQL the INSERT and the UPDATE are one statement (data-modifying
    CTEs). Returns the new reservation's id; or None, with nothing left changed, where a counter lacked room (or
    is missing): the caller then plans again with the rows locked."""
    postgresql = connection.dialect.name == "postgresql"
    statements = _statements(len(counters), lock_first=postgresql)
    params = _params(counters) | {f"c{i}": limit for i, limit in enumerate(limits)} | {
        "d_reserved": reservation["amount_nanos"], "d_spent": 0}
    if postgresql:
        rows = statements.insert_and_reserve.rows(connection, params | {f"r_{key}": value
                                                                        for key, value in reservation.items()})
        reservation_id, reserved = rows[0].id, {row.scope_key for row in rows if row.scope_key is not None}
    else:
        reservation_id = RESERVE.scalar(connection, reservation)
        reserved = {row.scope_key for row in statements.reserve_if_room.rows(connection, params)}
    if len(reserved) == len(counters):
        return reservation_id
    if reserved:  # the rows that had room give it back
        adjust(connection, [counter_key(*counter) for counter in counters if counter[0] in reserved],
               reserved=-reservation["amount_nanos"], locked=True)
    connection.execute(delete(_RESERVATIONS).where(_RESERVATIONS.c.id == reservation_id))
    return None


def lock_counters(connection: Connection, counter_keys: Iterable[str]) -> None:
    """Lock the rows of `counter_keys` (any number, of any scopes and periods) in key order, in one statement.
    Work that moves several reservations' counters takes them all first, in the order every other transaction
    takes its own: one reservation's at a time deadlocked with a settlement on PostgreSQL. A SQLite
    transaction holds the whole database already."""
    counters = sorted({parse_counter_key(key) for key in counter_keys})
    if counters and connection.dialect.name != "sqlite":
        c = _COUNTERS.c
        connection.execute(select(c.scope_key).where(tuple_(c.scope_key, c.period, c.period_start).in_(counters))
                           .order_by(c.scope_key, c.period, c.period_start).with_for_update())


def move_to_spent(connection: Connection, reservation: ResultRow, cost_nanos: int, *,
                  returning: bool = False) -> dict[str, ResultRow]:
    """On a closed reservation's counters (its `counter_keys`), its `amount_nanos` out of reserved and
    `cost_nanos` into spent, in one statement; with `returning`, the counters after (see `adjust`)."""
    return adjust(connection, reservation.counter_keys.split(";"), reserved=-reservation.amount_nanos,
                  spent=cost_nanos, returning=returning)


def ledger_spent(connection: Connection, scope_key: str, since: datetime, until: datetime | None = None) -> int:
    """Nano-dollars the ledger holds for a scope from `since` (to `until`), naive UTC."""
    window = [_LEDGER.c.started_at >= since] + ([_LEDGER.c.started_at < until] if until is not None else [])
    return _scope_sum(connection, _LEDGER.c.cost_nanos, scope_key, *window)


def active_reserved(connection: Connection, scope_key: str, since: datetime) -> int:
    """Nano-dollars held by a scope's active reservations made since `since`, naive UTC."""
    return _scope_sum(connection, _RESERVATIONS.c.amount_nanos, scope_key,
                      _RESERVATIONS.c.status == "active", _RESERVATIONS.c.created_at >= since)


def _scope_sum(connection: Connection, column: Any, scope_key: str, *where: Any) -> int:
    query = select(func.coalesce(func.sum(column), 0)).where(*where)
    if scope_key != GLOBAL_SCOPE:
        query = query.where(*scope_filter(column.table, scope_key))
    return int(connection.scalar(query) or 0)


@dataclass(frozen=True, slots=True)
class _Statements:
    read: Precompiled
    locked: Precompiled
    adjust: Precompiled
    adjust_returning: Precompiled
    reserve_if_room: Precompiled
    insert_and_reserve: Precompiled  # PostgreSQL only: a reservation row and reserve_if_room in one statement


@functools.cache
def _statements(n: int, *, lock_first: bool) -> _Statements:
    c = _COUNTERS.c
    key = tuple_(c.scope_key, c.period, c.period_start)
    where = _counter_in(n)
    read = select(c.scope_key, c.spent_nanos, c.reserved_nanos).where(where).order_by(c.scope_key)
    changed = key.in_(select(c.scope_key, c.period, c.period_start).where(where).order_by(c.scope_key)
                      .with_for_update()) if lock_first else where
    change = update(_COUNTERS).where(changed).values(reserved_nanos=c.reserved_nanos + bindparam("d_reserved"),
                                                   spent_nanos=c.spent_nanos + bindparam("d_spent"))
    limit = case(*((c.scope_key == bindparam(f"s{i}", type_=c.scope_key.type), bindparam(f"c{i}", type_=BigInteger))
                   for i in range(n)))
    has_room = or_(limit.is_(None), c.spent_nanos + c.reserved_nanos + bindparam("d_reserved") <= limit)
    budget = _BUDGETS.c
    # The counter's scope key spelled with its table: SQLite's RETURNING drops the qualifier of a Column, and
    # an unqualified `scope_key` inside the subquery is the budgets' own (every budget row would match).
    outer_key = literal_column(f"{_COUNTERS.name}.{c.scope_key.name}", c.scope_key.type)
    own = _BUDGETS.select().where(budget.scope_key == outer_key)
    raise_if_room = change.where(has_room).returning(c.scope_key)
    raised = raise_if_room.cte("raised")
    # A reservation row is given every column (`reserve_if_room`'s `reservation`) but its id, the database's.
    inserted = insert(_RESERVATIONS).values(
        {column.key: bindparam(f"r_{column.key}", type_=column.type) for column in _RESERVATIONS.c
         if not column.primary_key}).returning(_RESERVATIONS.c.id).cte("inserted")
    return _Statements(Precompiled(read), Precompiled(read.with_for_update()), Precompiled(change),
                       Precompiled(change.returning(
                           c.scope_key, c.spent_nanos, c.reserved_nanos,
                           own.with_only_columns(budget.limit_nanos).scalar_subquery().label("limit_nanos"),
                           own.with_only_columns(budget.period).scalar_subquery().label("limit_period"))),
                       Precompiled(raise_if_room), Precompiled(
                           select(inserted.c.id, raised.c.scope_key).select_from(inserted.outerjoin(raised, true()))))


def _counter_in(n: int) -> Any:
    """The counter rows of n keys (parameters s0, p0, t0, s1, ...)."""
    c = _COUNTERS.c
    return tuple_(c.scope_key, c.period, c.period_start).in_([
        tuple_(bindparam(f"s{i}", type_=c.scope_key.type), bindparam(f"p{i}", type_=c.period.type),
               bindparam(f"t{i}", type_=c.period_start.type)) for i in range(n)])


def _params(counters: list[Counter]) -> dict[str, Any]:
    return {f"{name}{i}": value for i, counter in enumerate(counters)
            for name, value in zip("spt", counter, strict=True)}

"""Budget counter rows: one per scope and period, holding what is spent and reserved there (nano-dollars).

A counter exists only where it is needed: it opens (`open_counter`) when a limited scope is first reserved in
a period, from the books (the ledger since the period began, and the active reservations made in it); a scope
with no limit has none, so that the answers of a deployment without a global limit do not all queue for one row.
Once open, a counter stays exact for its period, whatever its scope's limit becomes meanwhile:

- A reservation names every counter of its scopes that exists for the current periods (`counter_key`:
  `scope|period|start`, start naive UTC), limited or not, and moves them when it settles or expires.
- A counter that opened while a reservation was active counted it from the books without being named by it.
  It records the highest reservation id there was (`opened_through`), and a reservation moves, beside the
  counters it names, every counter of its scopes (`scope_keys`) that opened through its id, in a period the
  reservation was made in (`_moved_by`). A reservation made before reservations kept their scopes moves the
  counters of the scopes it names.
- That needs every reservation made before a counter opened to be committed when it opens, and none made after
  to have planned without it. On PostgreSQL each scope's books have an advisory lock (`bot.budget.locks`):
  each transaction that reserves or settles holds its scopes' shared from its first statement, and opening a
  counter takes its scope's exclusively (`open_counter`), so it waits for that scope's calls only. On SQLite a
  transaction holds the whole database already.

Each function here but `open_counter` works on all of a call's counters at once, on the transaction's
`Connection`, in one statement; `reserve_if_room` also inserts the reservation row (on PostgreSQL in that same
statement) and, where a counter lacked room, undoes both with up to two more. The statements have one fixed
shape per number of counters (parameters s0, p0, t0, s1, ...), so SQLAlchemy compiles each shape once: an
expanding IN would be rendered anew at every execution, which cost more than running it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    and_,
    bindparam,
    case,
    cast,
    delete,
    false,
    func,
    insert,
    literal,
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

from bot.budget.locks import take_scope
from bot.budget.scopes import GLOBAL_SCOPE, scope_filter, split_person_scope
from bot.storage.engine import dialect_insert
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


def channel_scope_of(reservation: ResultRow) -> str | None:
    """The channel scope of a reservation (a budget_reservations row), if it has one: among its `scope_keys`, or
    its counters' for one made before reservations kept their scopes."""
    scopes = scopes_of(reservation)
    return next((scope for scope in scopes if scope != GLOBAL_SCOPE and split_person_scope(scope) is None), None)


class CounterNotOpen(Exception):  # noqa: N818 - a signal to open, not a failure
    """A limited scope's counter for the current period does not exist yet (`counters`: each one's key, and
    its period's end, naive UTC; one per scope). Raised inside a transaction that reserves, which then rolls back:
    opening takes the scope's books exclusively, which a transaction holding them shared cannot
    (`BudgetManager.reserving` opens them and runs the transaction again)."""

    def __init__(self, counters: list[tuple[Counter, datetime]]) -> None:
        super().__init__(f"counters not open yet: {counters}")
        self.counters = counters


def open_counter(connection: Connection, counter: Counter, period_end: datetime) -> None:
    """Open `counter` ((scope key, period, start), its period's end; naive UTC) if it does not exist yet, from
    the books: spent is the scope's ledger in the period, reserved its active reservations made in it (matched by
    their `scope_keys`, as `_moved_by` matches them back), and `opened_through` the highest reservation id there
    is. In a transaction of its own, whose first statement this is: on PostgreSQL it takes the scope's books
    exclusively, so every reservation of the scope up to that id is committed and none after it planned
    without the counter. One counter per transaction: holding one exclusive lock, an opener can be in no cycle of
    waits with the transactions that hold several shared."""
    scope_key, period, start = counter
    take_scope(connection, scope_key)
    r = _RESERVATIONS.c
    reserved = connection.scalar(select(func.coalesce(func.sum(r.amount_nanos), 0)).where(
        r.status == "active", r.created_at >= start, r.created_at < period_end,
        (literal(";") + r.scope_keys + literal(";")).contains(f";{scope_key};", autoescape=True)))
    connection.execute(dialect_insert(connection.dialect.name, _COUNTERS).values(
        scope_key=scope_key, period=period, period_start=start, period_end=period_end,
        spent_nanos=ledger_spent(connection, scope_key, start, period_end), reserved_nanos=int(reserved or 0),
        opened_through=connection.scalar(select(func.max(r.id))),
    ).on_conflict_do_nothing())


def read_counters(connection: Connection, counters: list[Counter], *, lock: bool) -> dict[str, ResultRow]:
    """The rows that exist of `counters` (`counter_key` -> row of scope_key, period, period_start, spent_nanos,
    reserved_nanos). With `lock`, locked FOR UPDATE in key order on PostgreSQL (rows are locked in the order they
    are returned, and one order for every transaction keeps two from deadlocking)."""
    statements = _statements(len(counters), lock_first=False)
    rows = (statements.locked if lock else statements.read).rows(connection, _params(counters))
    return {counter_key(row.scope_key, row.period, row.period_start): row for row in rows}


def read_limits_and_counters(connection: Connection, budget_keys: list[str], counters: list[Counter]
                             ) -> tuple[list[ResultRow], dict[str, ResultRow]]:
    """What planning a call reads, unlocked, in one statement: the budget rows that exist of `budget_keys` (rows
    of scope_key, limit_nanos, period) and the counter rows that exist of `counters` (by `counter_key`: rows of
    scope_key, period, period_start, spent_nanos, reserved_nanos). A scope's counter key depends on its limit's
    period, so the caller names every period's counter of each scope."""
    rows = _read_both(len(budget_keys), len(counters)).rows(
        connection, _params(counters) | {f"k{i}": key for i, key in enumerate(budget_keys)})
    return ([row for row in rows if row.period_start is None],
            {counter_key(row.scope_key, row.period, row.period_start): row
             for row in rows if row.period_start is not None})


@functools.cache
def _read_both(n_budgets: int, n_counters: int) -> Precompiled:
    c, budget = _COUNTERS.c, _BUDGETS.c
    counters = select(c.scope_key, c.period, c.period_start, c.spent_nanos, c.reserved_nanos,
                      cast(null(), BigInteger).label("limit_nanos")).where(_counter_in(n_counters))
    budgets = select(budget.scope_key, budget.period, cast(null(), c.period_start.type), cast(null(), BigInteger),
                     cast(null(), BigInteger), budget.limit_nanos).where(budget_keys_in(n_budgets))
    return Precompiled(union_all(counters, budgets))


def budget_keys_in(n: int) -> Any:
    """The budget rows of n scope keys (parameters k0, k1, ...), as a WHERE clause."""
    return _BUDGETS.c.scope_key.in_([bindparam(f"k{i}", type_=_BUDGETS.c.scope_key.type) for i in range(n)])


def adjust(connection: Connection, counter_keys: list[str], *, reserved: int = 0, spent: int = 0,
           locked: bool = False) -> None:
    """Add `reserved` and `spent` (nano-dollars, either may be negative) to each counter of `counter_keys`
    in one statement; on PostgreSQL, rows not yet `locked` are locked by a subquery first, in key order (an
    UPDATE alone locks in whatever order it finds them)."""
    counters = [parse_counter_key(key) for key in counter_keys]
    statements = _statements(len(counters), lock_first=not locked and connection.dialect.name != "sqlite")
    statements.adjust.run(connection, _params(counters) | {"d_reserved": reserved, "d_spent": spent})


def reserve_if_room(connection: Connection, counters: list[Counter], limits: list[int | None],
                    reservation: dict[str, Any]) -> int | None:
    """Insert `reservation` (a budget_reservations row by column key, `amount_nanos` and `counter_keys` included)
    and add its `amount_nanos` to every counter's reserved, if each counter with a limit (`limits`, in the
    counters' order, None for none) still has room for it: spent + reserved + amount <= limit. The check runs on
    each row's latest version under its lock (PostgreSQL re-evaluates an UPDATE's WHERE on a row a concurrent
    transaction changed; on PostgreSQL the rows are locked in key order first), so a plan made from an unlocked
    read never passes a limit. On PostgreSQL the INSERT and the UPDATE are one statement (data-modifying CTEs).
    Returns the new reservation's id; or None, with nothing left changed, where a counter lacked room (or is
    missing): the caller then plans again with the rows locked."""
    if not counters:
        return RESERVE.scalar(connection, reservation)
    postgresql = connection.dialect.name == "postgresql"
    statements = _statements(len(counters), lock_first=postgresql)
    params = _params(counters) | {f"c{i}": limit for i, limit in enumerate(limits)} | {
        "d_reserved": reservation["amount_nanos"], "d_spent": 0}
    if postgresql:
        rows = statements.insert_and_reserve.rows(connection, params | {f"r_{key}": value
                                                                        for key, value in reservation.items()})
        reservation_id = rows[0].id
        reserved = {counter_key(row.scope_key, row.period, row.period_start) for row in rows if row.scope_key}
    else:
        reservation_id = RESERVE.scalar(connection, reservation)
        reserved = {counter_key(row.scope_key, row.period, row.period_start)
                    for row in statements.reserve_if_room.rows(connection, params)}
    if len(reserved) == len(counters):
        return reservation_id
    if reserved:  # the rows that had room give it back
        adjust(connection, sorted(reserved), reserved=-reservation["amount_nanos"], locked=True)
    connection.execute(delete(_RESERVATIONS).where(_RESERVATIONS.c.id == reservation_id))
    return None


def lock_counters_of(connection: Connection, reservations: list[ResultRow]) -> None:
    """Lock the counters `move` would move for each of `reservations`, all in key order, in one statement. Work
    that moves several reservations' counters takes them all first, in the order every other transaction takes
    its own: one reservation's at a time deadlocked with a settlement on PostgreSQL. A SQLite transaction holds
    the whole database already."""
    if reservations and connection.dialect.name != "sqlite":
        c = _COUNTERS.c
        connection.execute(select(c.scope_key).where(or_(*(_moved_by(r) for r in reservations)))
                           .order_by(*_KEY_ORDER).with_for_update())


def move(connection: Connection, reservation: ResultRow, *, reserved: int, spent: int,
         returning: bool = False) -> dict[str, ResultRow]:
    """Add `reserved` and `spent` (nano-dollars, either may be negative) to the counters a closed `reservation`
    holds money in: those it names, and those that opened counting it (see the module's docstring). Locked in
    key order first on PostgreSQL; one statement. With `returning`, the counters after the change (by
    `counter_key`, rows as `read_counters` gives them) and, read in the same statement, each one's scope's own
    budget row (`limit_nanos`, `limit_period`; both None where the scope has none and a default applies)."""
    named, scopes = _named(reservation), scopes_of(reservation)
    statement = _move_statement(len(named), len(scopes), lock_first=connection.dialect.name != "sqlite",
                                returning=returning)
    params = _params(named) | {f"q{i}": scope for i, scope in enumerate(scopes)} | {
        "r_id": reservation.id, "r_created": reservation.created_at, "d_reserved": reserved, "d_spent": spent}
    if not returning:
        statement.run(connection, params)
        return {}
    return {counter_key(row.scope_key, row.period, row.period_start): row for row in statement.rows(connection, params)}


def move_to_spent(connection: Connection, reservation: ResultRow, cost_nanos: int, *,
                  returning: bool = False) -> dict[str, ResultRow]:
    """`move` of a closed reservation's `amount_nanos` out of reserved and `cost_nanos` into spent."""
    return move(connection, reservation, reserved=-reservation.amount_nanos, spent=cost_nanos, returning=returning)


def _named(reservation: ResultRow) -> list[Counter]:
    return [parse_counter_key(key) for key in reservation.counter_keys.split(";") if key]


def scopes_of(reservation: ResultRow) -> list[str]:
    """A reservation's scopes: its `scope_keys`, or its counters' for one made before reservations kept their
    scopes (each named a counter of every scope then)."""
    return ([key for key in reservation.scope_keys.split(";") if key]
            or sorted({key.split("|")[0] for key in reservation.counter_keys.split(";") if key}))


def _held_in(named: Any, scopes: Any, reservation_id: Any, created: Any) -> Any:
    """The WHERE clause of the counters a reservation holds money in (see the module's docstring): `named`, the
    clause of those it names, or those of its `scopes` (a clause on the scope key) that opened through its id
    in a period it was made in."""
    c = _COUNTERS.c
    return or_(named, and_(scopes, c.opened_through >= reservation_id, c.period_start <= created,
                           c.period_end > created))


def _moved_by(reservation: ResultRow) -> Any:
    """`move`'s counters of a reservation, as a WHERE clause of its values (`_move_statement` binds them)."""
    named, scopes = _named(reservation), scopes_of(reservation)
    return _held_in(tuple_(*_KEY_ORDER).in_(named) if named else false(),
                    _COUNTERS.c.scope_key.in_(scopes) if scopes else false(), reservation.id, reservation.created_at)


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
    reserve_if_room: Precompiled
    insert_and_reserve: Precompiled  # PostgreSQL only: a reservation row and reserve_if_room in one statement


_KEY_ORDER = (_COUNTERS.c.scope_key, _COUNTERS.c.period, _COUNTERS.c.period_start)
# The counter's scope key spelled with its table: SQLite's RETURNING drops the qualifier of a Column, and an
# unqualified `scope_key` inside a subquery of budget rows is the budgets' own (every budget row would match).
_OUTER_SCOPE_KEY = literal_column(f"{_COUNTERS.name}.{_COUNTERS.c.scope_key.name}", _COUNTERS.c.scope_key.type)
# A reservation row is given every column (`reserve_if_room`'s `reservation`) but its id, the database's.
_INSERTED = insert(_RESERVATIONS).values(
    {column.key: bindparam(f"r_{column.key}", type_=column.type) for column in _RESERVATIONS.c
     if not column.primary_key}).returning(_RESERVATIONS.c.id).cte("inserted")


@functools.cache
def _statements(n: int, *, lock_first: bool) -> _Statements:
    c = _COUNTERS.c
    where = _counter_in(n)
    read = select(*_KEY_ORDER, c.spent_nanos, c.reserved_nanos).where(where).order_by(*_KEY_ORDER)
    changed = tuple_(*_KEY_ORDER).in_(select(*_KEY_ORDER).where(where).order_by(*_KEY_ORDER)
                                      .with_for_update()) if lock_first else where
    change = update(_COUNTERS).where(changed).values(reserved_nanos=c.reserved_nanos + bindparam("d_reserved"),
                                                   spent_nanos=c.spent_nanos + bindparam("d_spent"))
    limit = case(*((and_(c.scope_key == bindparam(f"s{i}", type_=c.scope_key.type),
                         c.period == bindparam(f"p{i}", type_=c.period.type)), bindparam(f"c{i}", type_=BigInteger))
                   for i in range(n)))
    has_room = or_(limit.is_(None), c.spent_nanos + c.reserved_nanos + bindparam("d_reserved") <= limit)
    raise_if_room = change.where(has_room).returning(*_KEY_ORDER)
    raised = raise_if_room.cte("raised")
    return _Statements(Precompiled(read), Precompiled(read.with_for_update()), Precompiled(change),
                       Precompiled(raise_if_room), Precompiled(
                           select(_INSERTED.c.id, *raised.c).select_from(_INSERTED.outerjoin(raised, true()))))


@functools.cache
def _move_statement(n_named: int, n_scopes: int, *, lock_first: bool, returning: bool) -> Precompiled:
    """`move`'s UPDATE for a reservation naming n counters (parameters s0, p0, t0, ...) of n_scopes scopes
    (q0, q1, ...; its id r_id, made at r_created), adding d_reserved and d_spent."""
    c = _COUNTERS.c
    moved = _held_in(_counter_in(n_named) if n_named else false(),
                     c.scope_key.in_([bindparam(f"q{i}", type_=c.scope_key.type) for i in range(n_scopes)])
                     if n_scopes else false(),
                     bindparam("r_id", type_=BigInteger), bindparam("r_created", type_=c.period_start.type))
    if lock_first:
        moved = tuple_(*_KEY_ORDER).in_(select(*_KEY_ORDER).where(moved).order_by(*_KEY_ORDER).with_for_update())
    change = update(_COUNTERS).where(moved).values(reserved_nanos=c.reserved_nanos + bindparam("d_reserved"),
                                                   spent_nanos=c.spent_nanos + bindparam("d_spent"))
    if not returning:
        return Precompiled(change)
    budget = _BUDGETS.c
    own = _BUDGETS.select().where(budget.scope_key == _OUTER_SCOPE_KEY)
    return Precompiled(change.returning(
        *_KEY_ORDER, c.spent_nanos, c.reserved_nanos,
        own.with_only_columns(budget.limit_nanos).scalar_subquery().label("limit_nanos"),
        own.with_only_columns(budget.period).scalar_subquery().label("limit_period")))


def _counter_in(n: int) -> Any:
    """The counter rows of n keys (parameters s0, p0, t0, s1, ...)."""
    c = _COUNTERS.c
    return tuple_(*_KEY_ORDER).in_([
        tuple_(bindparam(f"s{i}", type_=c.scope_key.type), bindparam(f"p{i}", type_=c.period.type),
               bindparam(f"t{i}", type_=c.period_start.type)) for i in range(n)])


def _params(counters: list[Counter]) -> dict[str, Any]:
    return {f"{name}{i}": value for i, counter in enumerate(counters)
            for name, value in zip("spt", counter, strict=True)}

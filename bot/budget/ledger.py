"""Closing a reservation and writing its call's ledger row: one row per settled call, its cost in nano-dollars
and the provider's usage (OpenAI's usage fields), whatever happened to the call. Once closed for a week, the
reservation goes (`prune_closed`); the ledger row stays.

On PostgreSQL both are one statement: the reservation's `UPDATE … RETURNING` is a data-modifying CTE that the
ledger's `INSERT … SELECT` reads (postgresql.org/docs/current/queries-with.html#QUERIES-WITH-MODIFYING), so a
settlement costs one round trip fewer; the same statement takes the books of the reservation's scopes shared
(`locks.scopes_shared`), a settlement's first. SQLite has no data-modifying CTEs; there they are two
statements, which cost no round trip (the database is in the process).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import fields
from datetime import datetime

from sqlalchemy import Select, bindparam, delete, func, insert, select, true, update
from sqlalchemy.engine import Connection

from bot.budget.locks import scopes_shared
from bot.budget.outcomes import Settlement
from bot.storage.precompiled import Precompiled, ResultRow
from bot.storage.tables import Reservation, UsageEntry

_RESERVATIONS, _LEDGER = Reservation.__table__, UsageEntry.__table__
CLOSE = update(_RESERVATIONS).where(_RESERVATIONS.c.id == bindparam("r_id")).values(status=bindparam("r_status"))
# Closes a reservation only if still active, and returns it: one statement where a locked read and an
# update were two.
_CLOSE_ACTIVE = CLOSE.where(_RESERVATIONS.c.status == "active").returning(*_RESERVATIONS.c)
_OUTCOME = tuple(field.name for field in fields(Settlement))
# The ledger row's columns taken from its reservation, by the reservation's own column names.
_FROM_RESERVATION = {"channel_pk": "channel_pk", "thread_pk": "thread_pk", "reservation_pk": "id",
                     "user_id": "user_id", "kind": "kind", "reserved_nanos": "amount_nanos", "started_at": "created_at"}


@functools.cache
def _close_and_book(held: Select) -> Precompiled:
    closed = _CLOSE_ACTIVE.cte("closed")
    values = {column: closed.c[source] for column, source in _FROM_RESERVATION.items()} | {
        name: bindparam(f"o_{name}", type_=_LEDGER.c[name].type) for name in _OUTCOME}
    booked = insert(_LEDGER).from_select(list(values), select(*values.values())).cte("booked")
    # The locks' one row on the left of a LEFT JOIN: it is read, and the locks taken, whatever `closed` holds.
    locks = held.cte("held")
    return Precompiled(select(closed).select_from(locks.outerjoin(closed, true())).add_cte(booked))


_CLOSE_ACTIVE_ONLY, _LEDGER_ROW = Precompiled(_CLOSE_ACTIVE), Precompiled(insert(_LEDGER))


def close_and_book(connection: Connection, reservation_id: int, scope_keys: Iterable[str], status: str,
                   outcome: Settlement) -> ResultRow | None:
    """Give an active reservation (of `scope_keys`) its closing `status` and write its call's ledger row from
    `outcome`, in the caller's transaction. Returns the reservation as it was read while closing, or None (and
    nothing written) where it was not active. Raises `sqlalchemy.exc.IntegrityError` where its ledger row exists
    already (the ledger's `reservation_pk` is unique), which cannot happen while only an active reservation is
    booked. On PostgreSQL the same statement takes the books of `scope_keys` shared first
    (`locks.scopes_shared`)."""
    close = {"r_id": reservation_id, "r_status": status}
    if connection.dialect.name == "postgresql":
        held = scopes_shared(scope_keys)
        row = _close_and_book(held.statement).first(connection, close | dict(held.params) | {
            f"o_{name}": getattr(outcome, name) for name in _OUTCOME})
        return None if row is None or row.id is None else row
    closed = _CLOSE_ACTIVE_ONLY.first(connection, close)
    if closed is not None:
        write_ledger_row(connection, closed, outcome)
    return closed


def write_ledger_row(connection: Connection, reservation: ResultRow, outcome: Settlement) -> None:
    """The ledger row of a closed `reservation`'s call (its counters move separately, last)."""
    _LEDGER_ROW.run(connection, {column: getattr(reservation, source) for column, source in _FROM_RESERVATION.items()}
                    | {name: getattr(outcome, name) for name in _OUTCOME})


def closed_status(outcome: Settlement) -> str:
    """What a settled reservation's status becomes: nothing charged releases it."""
    return "released" if outcome.cost_nanos == 0 else "settled"


# Closed reservations deleted per transaction by `prune_closed`: a short hold of SQLite's one writer.
PRUNE_BATCH = 1_000
_CLOSED = ("settled", "released", "expired")  # every status but "active"


def prune_closed(connection: Connection, before: datetime) -> int:
    """Delete up to PRUNE_BATCH closed reservations (settled, released or expired) whose call was last known
    alive (`expires_at`) before `before` (naive UTC), oldest first, in the caller's transaction; each one's
    ledger row keeps its call for good. An index read either way (PostgreSQL, 300,000 rows: 0.05 ms with nothing
    to delete, through the (status, expires_at) index; 2.6 ms for 1,000, oldest ids first). The highest id always
    stays: SQLite gives a new row the highest id + 1, and the ledger's unique `reservation_pk` must never meet
    an id twice. Returns how many were deleted."""
    r = _RESERVATIONS.c
    oldest = (select(r.id).where(r.status.in_(_CLOSED), r.expires_at < before,
                                 r.id < select(func.max(r.id)).scalar_subquery())
              .order_by(r.id).limit(PRUNE_BATCH))
    return connection.execute(delete(_RESERVATIONS).where(r.id.in_(oldest))).rowcount

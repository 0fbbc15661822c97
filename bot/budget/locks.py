"""The budget books' advisory locks on PostgreSQL: one per budget scope, so that a counter opens only when no
call of its scope is between reading the books and committing (the rule is `bot.budget.counters`'s docstring).

A transaction that reserves or settles holds the locks of its scopes shared, from its first statement
(`scopes_shared` inside that statement, or `share_scopes` as a statement of its own); opening a counter holds
its scope's exclusively (`take_scope`). Both are transaction-level locks
(postgresql.org/docs/current/functions-admin.html#FUNCTIONS-ADVISORY-LOCKS), released at COMMIT or ROLLBACK.
An opener holds one lock only, so it can be in no cycle of waits with transactions that hold several shared.
SQLite needs none: a write transaction holds the whole database.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterable

from sqlalchemy import Integer, Select, bindparam, cast, func, literal, select
from sqlalchemy.engine import Connection

from bot.storage.precompiled import Precompiled, Prelude

# Advisory locks in their two-key form: this class (an arbitrary number naming seedbot's budget books among the
# database's advisory locks), then a scope key's hash (`scope_lock`).
_BOOKS_LOCK_CLASS = 0x5EED_B00C


def scope_lock(scope_key: str) -> int:
    """A scope's advisory lock key: the CRC-32 of its key as a signed 32-bit integer (PostgreSQL's int4). Two
    scopes may share one; then opening the counter of one also waits for the other's calls, which costs time, not
    exactness."""
    crc = zlib.crc32(scope_key.encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


@functools.cache
def _scope_locks(n: int, *, shared: bool) -> Select:
    """One row taking the advisory locks of n scopes (parameters l0, l1, ...), shared or exclusive, until the
    transaction ends."""
    take = func.pg_advisory_xact_lock_shared if shared else func.pg_advisory_xact_lock
    return select(*(take(literal(_BOOKS_LOCK_CLASS, Integer), cast(bindparam(f"l{i}"), Integer)).label(f"held{i}")
                    for i in range(n)))


@functools.cache
def _scope_locks_run(n: int, *, shared: bool) -> Precompiled:
    return Precompiled(_scope_locks(n, shared=shared))


def scopes_shared(scope_keys: Iterable[str]) -> Prelude:
    """The shared advisory locks of `scope_keys`' books (`scope_lock`), as a `Prelude` for a transaction's first
    statement: what a transaction that reserves or settles in those scopes takes before anything else, so that
    no counter of theirs opens while it runs (see the module's docstring). PostgreSQL only."""
    locks = sorted({scope_lock(key) for key in scope_keys})
    return Prelude(_scope_locks(len(locks), shared=True), {f"l{i}": lock for i, lock in enumerate(locks)})


def share_scopes(connection: Connection, scope_keys: Iterable[str]) -> None:
    """On PostgreSQL, hold the books of `scope_keys` shared until the transaction ends (`scopes_shared` as a
    statement of its own). Taken first, it waits while holding no row lock another transaction could wait for.
    Nothing on SQLite, where a write transaction holds the whole database."""
    if connection.dialect.name == "postgresql":
        prelude = scopes_shared(scope_keys)
        if prelude.params:
            _scope_locks_run(len(prelude.params), shared=True).run(connection, prelude.params)


def take_scope(connection: Connection, scope_key: str) -> None:
    """On PostgreSQL, hold the books of `scope_key` exclusively until the transaction ends: it waits for every
    transaction holding them shared, and every one that asks meanwhile waits for it. Nothing on SQLite."""
    if connection.dialect.name == "postgresql":
        _scope_locks_run(1, shared=False).run(connection, {"l0": scope_lock(scope_key)})

"""One engine per process. SQLite gets WAL, a busy timeout and immediate write transactions (so a
budget check and its reservation cannot interleave with another writer); PostgreSQL gets row locks
from the queries themselves.

The hot path (claim a message, reserve, settle) runs each transaction as one synchronous function of
Core statements, `Database.run_core(fn)`: on SQLite in a single writer thread that commits what queued up
together (bot.storage.sqlite_writer), so a transaction costs one thread hop instead of one per statement;
on PostgreSQL through `AsyncConnection.run_sync` over asyncpg. `Database.run(fn)` is the same for work
that wants an ORM Session; every write of the running bot goes through one of the two. `Database.read(fn)`
runs reads beside the writer (the console, reports); `Database.session()` (async) serves tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import QueuePool

from bot.domain import first_line
from bot.storage.sqlite_writer import GroupCommitWriter

T = TypeVar("T")

# SQLite result codes (sqlite.org/rescode.html) that say the file cannot be written: READONLY, IOERR,
# CORRUPT, FULL, CANTOPEN. Not BUSY/LOCKED: contention passes, these do not.
_SQLITE_STORAGE_ERRORS = frozenset({8, 10, 11, 13, 14})

SQLITE_BUSY_TIMEOUT_MS = 30_000


class RollbackOnClose(sqlite3.Connection):
    """A sqlite3 connection whose `close()` rolls back an open transaction first (errors of that rollback
    are ignored: the close still happens).

    Why: `sqlite3_close_v2` on a connection that still has an unfinalized statement does not close it but
    leaves a "zombie" that keeps its transaction, and with it SQLite's write lock, until that statement is
    finalized (sqlite.org/c3ref/close.html). SQLAlchemy closes a pooled connection whose task was cancelled
    in the middle of a statement (a shutdown cancelling the retention tick's claim in an async session); the
    cancelled statement's cursor outlives the close, so every later writer of this process, the group-commit
    thread included, waited out busy_timeout and failed. A ROLLBACK with statements pending is allowed
    (SQLite 3.7.11 and later) and ends the transaction at once."""

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # ProgrammingError too: closed already, close is a no-op
            if self.in_transaction:
                self.rollback()
        super().close()


# What every SQLite connection of seedbot's is opened with (sqlite3.connect's arguments).
_SQLITE_CONNECT_ARGS: dict[str, Any] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "factory": RollbackOnClose}


# The async drivers seedbot ships with (asyncpg, aiosqlite), by the bare names people paste.
ASYNC_DRIVERS = {"postgresql": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}


# The query parameters a PostgreSQL URL may carry: those SQLAlchemy hands to asyncpg.connect as they are
# (magicstack.github.io/asyncpg/current/api/index.html#connection); libpq's `sslmode` is taken as asyncpg's `ssl`,
# which has the same values (disable, allow, prefer, require, verify-ca, verify-full).
ASYNCPG_URL_PARAMETERS = frozenset({"ssl", "command_timeout", "target_session_attrs", "prepared_statement_cache_size",
                                    "passfile"})


def normalise_url(url: str) -> str:
    """Accept the URLs people paste (postgres://, postgresql://, sqlite:///, libpq's `sslmode=`) and pick async
    drivers. Raises sqlalchemy's ArgumentError for text that is not a database URL."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    parsed = make_url(url)
    driver = ASYNC_DRIVERS.get(parsed.drivername)
    if driver:
        parsed = parsed.set(drivername=driver)
    if parsed.drivername == ASYNC_DRIVERS["postgresql"] and "sslmode" in parsed.query:
        mode = parsed.query["sslmode"]
        parsed = parsed.difference_update_query(["sslmode"])
        if "ssl" not in parsed.query:
            parsed = parsed.update_query_dict({"ssl": mode})
    return parsed.render_as_string(hide_password=False)


def dialect_insert(dialect_name: str, table: Any) -> Any:
    """The INSERT of a dialect by name ("sqlite", "postgresql"): one that supports ON CONFLICT DO NOTHING."""
    return (sqlite if dialect_name == "sqlite" else postgresql).insert(table)


def is_sqlite(engine_or_url: AsyncEngine | str) -> bool:
    url = engine_or_url if isinstance(engine_or_url, str) else str(engine_or_url.url)
    return url.startswith("sqlite")


# Most PostgreSQL connections one process's pool holds, all kept once made. A pool of 10 with 20 of "overflow"
# (SQLAlchemy's default shape) reaches the same 30, but closes an overflow connection as soon as it comes back
# while 10 wait idle: under load it opened one connection per 5 answers, each a login and every statement
# prepared again (docs/BENCHMARKS.md, ninth session).
POOL_SIZE = 30


def create_engine(url: str, *, pool_size: int = POOL_SIZE, ping_after_idle_seconds: float | None = None,
                  sqlite_query_only: bool = False, **kw: Any) -> AsyncEngine:
    """An async engine for `url` (see `normalise_url`); `kw` goes to SQLAlchemy's `create_async_engine`. A
    PostgreSQL pool keeps up to `pool_size` connections open (none beyond: a transaction past them waits for one,
    up to SQLAlchemy's `pool_timeout`, 30 s) and pings a connection idle `ping_after_idle_seconds` or more
    (default PING_AFTER_IDLE_SECONDS) before handing it out; SQLite has no connection to lose. With
    `sqlite_query_only`, a SQLite engine's connections refuse writes (`PRAGMA query_only`) and begin deferred, so
    WAL lets them read beside the writer."""
    url = normalise_url(url)
    # A failed statement's error names its SQL, not its values: those may be a person's message or an installed
    # workspace's token, and such an error is logged.
    kw.setdefault("hide_parameters", True)
    if is_sqlite(url):
        # A connection goes back to the pool rolled back (SQLAlchemy's default): a session cancelled between
        # its BEGIN IMMEDIATE and SQLAlchemy noting it began (a shutdown cancelling a maintenance tick) would
        # otherwise keep the write lock in the pool, and the writer thread wait out busy_timeout behind it.
        engine = create_async_engine(url, connect_args=_SQLITE_CONNECT_ARGS, **kw)
        _configure_sqlite(engine, query_only=sqlite_query_only)
        return engine
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=0, **kw)
    if not kw.get("pool_pre_ping"):
        _ping_when_idle(engine, PING_AFTER_IDLE_SECONDS if ping_after_idle_seconds is None else ping_after_idle_seconds)
    return engine


# A pooled PostgreSQL connection idle this long (seconds) is pinged before it is handed out: the database may
# have restarted, or a proxy dropped it, meanwhile. One in steady use is not: SQLAlchemy's pool_pre_ping
# pinged at every checkout, three round trips (BEGIN, ";", ROLLBACK on asyncpg) for each of an answer's three
# transactions, a third of its round trips. A connection that breaks in use raises, and then the whole pool
# is renewed (bot.storage.precompiled, as SQLAlchemy's own execution does).
PING_AFTER_IDLE_SECONDS = 5.0


def _ping_when_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """Ping a connection at checkout once it sat in the pool `idle_seconds` or more; a dead one is replaced
    (the pool retries checkout on DisconnectionError, SQLAlchemy's "pessimistic disconnect handling")."""
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("checked_in_at")
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            sync_engine.dialect.do_ping(dbapi_connection)
        except sync_engine.dialect.loaded_dbapi.Error as error:
            if sync_engine.dialect.is_disconnect(error, dbapi_connection, None):
                raise DisconnectionError(f"a pooled connection was lost while idle: {error}") from error
            raise


def create_sqlite_sync_engine(url: str) -> Engine:
    """A synchronous engine (the sqlite3 module itself, no aiosqlite thread) for a SQLite `url`, its connections
    set up as every seedbot SQLite connection is (WAL, busy timeout, writes BEGIN IMMEDIATE): the group-commit
    writer's, and the migrations'."""
    engine = create_sync_engine(make_url(normalise_url(url)).set(drivername="sqlite"),
                                connect_args=_SQLITE_CONNECT_ARGS, pool_reset_on_return=None, hide_parameters=True)
    _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine | Engine, *, query_only: bool = False) -> None:
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        if query_only:
            cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A writing transaction takes the write lock up front: a deferred transaction that reads and then
        # writes can fail with SQLITE_BUSY instead of waiting. One that cannot write has no lock to take.
        connection.exec_driver_sql("BEGIN" if query_only else "BEGIN IMMEDIATE")


def database_unreachable(url: str, error: OSError) -> ConnectionError:
    """What to raise when the first connection to `url` fails with `error` (refused, timed out, no such host):
    a ConnectionError naming DATABASE_URL and where it points (host and port only, never the password), so
    that one line tells an operator which service did not answer."""
    parsed = make_url(normalise_url(url))
    where = f" at {parsed.host}:{parsed.port or 5432}" if parsed.host else ""
    return ConnectionError(f"the database (DATABASE_URL){where} cannot be reached: {first_line(error)}")


class DatabaseUnhealthy(RuntimeError):
    """`Database.ping`'s verdict when the database answers reads but cannot keep what is written: the
    SQLite file was removed or replaced under the process, or its last write failed for lack of space,
    permission or a broken disk (the message says which)."""


class ConnectionCounts(NamedTuple):
    """`Database.connections`: connections in use and idle now, and opened since start."""

    in_use: int
    idle: int
    opened: int


class Database:
    """The engine and its session factory; `session()` is one transaction."""

    def __init__(self, url: str, **engine_kw: Any) -> None:
        self.url = normalise_url(url)
        self.engine = create_engine(self.url, **engine_kw)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # The engine `read` runs on: on SQLite connections of its own that cannot write; on PostgreSQL the same
        # pool, its transactions READ ONLY.
        self.reader = (create_engine(self.url, sqlite_query_only=True) if self.is_sqlite
                        else self.engine.execution_options(postgresql_readonly=True))
        self._read_sessions = async_sessionmaker(self.reader, expire_on_commit=False)
        # SQLite has one writer at a time. Queueing our own transactions here, instead of letting
        # pooled connections poll the file lock (busy_timeout sleeps up to 100 ms a try), keeps the
        # wait in the event loop and fair; other processes still meet busy_timeout.
        self._sqlite_writer = asyncio.Lock() if self.is_sqlite else None
        self._writer: GroupCommitWriter | None = None
        if self.is_sqlite:
            # One thread: SQLite has one writer anyway, and its connections stay in the thread that made them.
            self._writer = GroupCommitWriter(create_sqlite_sync_engine(self.url))
        # SQLite only: the file this process writes (its inode, once seen), and why the last write failed
        # for good (None once a write succeeds again); ping reports both.
        self._sqlite_file: tuple[str, int | None] | None = None
        if self.is_sqlite and (path := make_url(self.url).database) and path != ":memory:":
            self._sqlite_file = (os.path.abspath(path), None)
        self._write_failure: str | None = None
        # Connections the pool made since start (its "connect" events, kept across a dispose), for /metrics.
        self._opened = 0
        event.listen(self.engine.sync_engine, "connect", self._connected)

    def _connected(self, *_: Any) -> None:
        self._opened += 1

    def connections(self) -> ConnectionCounts:
        """The pool's connections now (`in_use` by a transaction, `idle` in the pool) and those it `opened`
        since start. On SQLite, only the async sessions' pool: the readers' engine (`read`) and the
        group-commit writer's one connection are not counted."""
        pool = self.engine.sync_engine.pool
        in_use, idle = ((pool.checkedout(), pool.checkedin())
                        if isinstance(pool, QueuePool) else (0, 0))
        return ConnectionCounts(in_use, idle, self._opened)

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        if self._sqlite_writer is None:
            async with self.sessions() as session, session.begin():
                yield session
            return
        async with self._sqlite_writer, self.sessions() as session, session.begin():
            yield session

    async def run(self, work: Callable[[Session], T]) -> T:
        """Run `work` as one transaction (committed if it returns, rolled back if it raises)."""
        if self._writer is None:
            async with self.sessions() as session, session.begin():
                return await session.run_sync(work)
        return await self._written(self._writer.run(work))

    async def read(self, work: Callable[[Session], T]) -> T:
        """Run `work`, which only reads, as one read-only transaction beside the writer instead of in its
        queue: on SQLite a deferred transaction on a connection that refuses writes (WAL lets it read while
        the writer thread commits), so a slow page of the console holds back no answer's commit; on
        PostgreSQL a READ ONLY transaction. Raises what `work` raised; a write inside it raises the driver's
        error (SQLite: attempt to write a readonly database; PostgreSQL: read-only transaction)."""
        async with self._read_sessions() as session, session.begin():
            return await session.run_sync(work)

    async def run_core(self, work: Callable[[Connection], T]) -> T:
        """Like `run`, for work that needs only Core statements: `work` gets the transaction's `Connection`,
        no ORM Session (no identity map, no unit of work, no nested-transaction bookkeeping). The hot path
        (claim, reserve, settle) runs this way."""
        if self._writer is None:
            async with self.engine.begin() as connection:
                return await connection.run_sync(work)
        return await self._written(self._writer.run(work, on_connection=True))

    async def _written(self, write: Awaitable[T]) -> T:
        """A SQLite write, noting whether the file took it (for `ping`)."""
        try:
            result = await write
        except OperationalError as exc:
            code = getattr(exc.orig, "sqlite_errorcode", None)
            if code is not None and code & 0xFF in _SQLITE_STORAGE_ERRORS:
                self._write_failure = f"the last write failed: {exc.orig}"
            raise
        self._write_failure = None
        if self._sqlite_file is not None and self._sqlite_file[1] is None:
            # The first write made the file exist: remember which it is (a ping compares).
            with contextlib.suppress(OSError):
                self._sqlite_file = (self._sqlite_file[0], os.stat(self._sqlite_file[0]).st_ino)
        return result

    async def ping(self) -> None:
        """Check that the database answers; raises the driver's error if it does not.

        On SQLite every transaction begins IMMEDIATE (takes the write lock), so a ping inside one would
        queue behind every answer being settled; it reads the schema version outside any transaction
        instead (WAL lets a reader in beside the writer)."""
        async with self.engine.connect() as connection:
            if not self.is_sqlite:
                await connection.execute(text("SELECT 1"))
                return
            raw = await connection.get_raw_connection()
            cursor = await raw.driver_connection.execute("PRAGMA schema_version")
            await cursor.close()
        self._check_sqlite_file()

    def _check_sqlite_file(self) -> None:
        """Raises DatabaseUnhealthy if the file was removed or replaced since first seen (an open SQLite
        connection goes on writing into the unlinked file, lost at exit), or the last write failed."""
        if self._sqlite_file is not None:
            path, inode = self._sqlite_file
            try:
                now = os.stat(path).st_ino
            except FileNotFoundError:
                raise DatabaseUnhealthy(f"the database file {path} was removed") from None
            if inode is None:
                self._sqlite_file = (path, now)
            elif now != inode:
                raise DatabaseUnhealthy(f"the database file {path} was replaced")
        if self._write_failure is not None:
            raise DatabaseUnhealthy(self._write_failure)

    def insert(self, table: Any) -> Any:
        """A dialect INSERT supporting ON CONFLICT DO NOTHING on both backends."""
        return dialect_insert("sqlite" if self.is_sqlite else "postgresql", table)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.is_sqlite:
            await self.reader.dispose()
        if self._writer is not None:
            await self._writer.close()

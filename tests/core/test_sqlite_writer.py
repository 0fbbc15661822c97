"""GroupCommitWriter: transactions queued together commit together, yet each stands or falls alone."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from bot.storage.engine import Database, RollbackOnClose
from tests.core.holding import Hold


@pytest.mark.parametrize("runner", ["run", "run_core"])  # an ORM Session's savepoint, or sqlite3's own
async def test_a_failing_transaction_in_a_group_leaves_the_others_committed(tmp_path: Path, runner: str) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    run = getattr(db, runner)
    try:
        await db.run(lambda session: session.execute(text("CREATE TABLE t (x INTEGER)")))

        def insert(x: int):  # noqa: ANN202
            def work(session: Session | Connection) -> int:  # both execute Core statements alike
                if x == 0:
                    time.sleep(0.2)  # hold the writer so the rest queue up behind it as one group
                session.execute(text("INSERT INTO t (x) VALUES (:x)"), {"x": x})
                if x == 7:
                    raise ValueError("refused")
                return x
            return work

        first = asyncio.create_task(run(insert(0)))
        await asyncio.sleep(0.05)
        results = await asyncio.gather(*(run(insert(x)) for x in range(1, 20)), return_exceptions=True)
        assert await first == 0
        assert isinstance(results[6], ValueError)
        assert [r for i, r in enumerate(results) if i != 6] == [x for x in range(1, 20) if x != 7]
        stored = await db.run(lambda session: sorted(session.scalars(text("SELECT x FROM t"))))
        assert stored == [x for x in range(20) if x != 7]
    finally:
        await db.dispose()


async def test_results_arrive_only_once_committed(tmp_path: Path) -> None:
    """What a caller was told was written is in the file for any other connection."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    try:
        await db.run(lambda session: session.execute(text("CREATE TABLE t (x INTEGER)")))
        await asyncio.gather(*(db.run(lambda session, x=x: session.execute(text("INSERT INTO t VALUES (:x)"),
                                                                          {"x": x})) for x in range(30)))
        async with db.engine.connect() as connection:
            assert (await connection.execute(text("SELECT count(*) FROM t"))).scalar() == 30
    finally:
        await db.dispose()


async def test_dispose_finishes_queued_work(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    await db.run(lambda session: session.execute(text("CREATE TABLE t (x INTEGER)")))
    pending = [asyncio.create_task(db.run(lambda session: session.execute(text("INSERT INTO t VALUES (1)"))))
               for _ in range(5)]
    await asyncio.sleep(0)
    await db.dispose()
    await asyncio.gather(*pending)
    with pytest.raises(RuntimeError):
        await db.run(lambda session: session.execute(text("SELECT 1")))
    again = Database(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    try:
        assert await again.run(lambda session: session.scalar(text("SELECT count(*) FROM t"))) == 5
    finally:
        await again.dispose()


async def test_work_cancelled_before_its_group_starts_is_not_run(tmp_path: Path) -> None:
    """A caller cancelled while its transaction waits (a shutdown, a cancelled answer) leaves nothing written
    that nobody knows of: the work is skipped. Work already running commits with its group."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    try:
        await db.run_core(lambda connection: connection.execute(text("CREATE TABLE t (x INTEGER)")))

        def insert(x: int, hold: float = 0.0):  # noqa: ANN202
            def work(connection: Connection) -> None:
                time.sleep(hold)  # keeps the writer busy, so what comes next queues behind it
                connection.execute(text("INSERT INTO t VALUES (:x)"), {"x": x})
            return work

        running = asyncio.create_task(db.run_core(insert(1, hold=0.3)))
        await asyncio.sleep(0.1)
        queued = asyncio.create_task(db.run_core(insert(2)))
        await asyncio.sleep(0.05)
        queued.cancel()
        await running
        with pytest.raises(asyncio.CancelledError):
            await queued
        assert await db.run_core(lambda connection: connection.scalars(text("SELECT x FROM t")).all()) == [1]
    finally:
        await db.dispose()


async def test_a_transaction_left_open_on_a_pooled_connection_does_not_hold_the_writer(tmp_path: Path) -> None:
    """A session cancelled between its BEGIN IMMEDIATE and SQLAlchemy noting it (a shutdown cancelling a
    maintenance tick) returns its connection with the write lock held; the pool rolls it back on return, so
    the writer thread does not wait out busy_timeout (30 s) behind it."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    try:
        await db.run_core(lambda connection: connection.execute(text("CREATE TABLE t (x INTEGER)")))
        async with db.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            await raw.driver_connection.execute("BEGIN IMMEDIATE")  # behind SQLAlchemy's back, as a cancel leaves it
        await asyncio.wait_for(db.run_core(lambda connection: connection.execute(text("INSERT INTO t VALUES (1)"))), 5)
    finally:
        await db.dispose()


async def test_a_session_cancelled_mid_statement_does_not_leave_the_write_lock_held(tmp_path: Path) -> None:
    """A shutdown cancelling a maintenance tick while its INSERT ... RETURNING runs: SQLAlchemy closes that
    connection, and sqlite3 alone would leave it a zombie holding its transaction (the statement is not
    finalized yet), so the writer thread waited out busy_timeout (30 s) and failed. Closing rolls back first."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    hold = Hold(db.engine)

    async def claim() -> None:
        async with db.session() as session:
            await session.execute(text("INSERT INTO t (x) SELECT hold(1) RETURNING x"))

    try:
        await db.run_core(lambda connection: connection.execute(text("CREATE TABLE t (x INTEGER)")))
        task = asyncio.create_task(claim())
        assert await asyncio.to_thread(hold.started.wait, 10)
        task.cancel()
        hold.release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(db.run_core(lambda connection: connection.execute(text("INSERT INTO t VALUES (2)"))), 10)
        assert await db.run_core(lambda connection: connection.scalars(text("SELECT x FROM t")).all()) == [2]
    finally:
        hold.release.set()
        await db.dispose()


def test_a_connection_closed_twice_or_mid_transaction_closes_quietly(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    first = sqlite3.connect(path, factory=RollbackOnClose, isolation_level=None)
    first.execute("CREATE TABLE t (x INTEGER)")
    first.execute("BEGIN IMMEDIATE")
    first.execute("INSERT INTO t VALUES (1)")
    first.close()
    first.close()  # as sqlite3's own: a second close does nothing
    second = sqlite3.connect(path, isolation_level=None, timeout=0)
    second.execute("BEGIN IMMEDIATE")  # the write lock is free; the insert was rolled back
    assert second.execute("SELECT count(*) FROM t").fetchone() == (0,)
    second.close()

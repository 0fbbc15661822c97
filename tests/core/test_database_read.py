"""Database.read: reads run beside the writer, in transactions that cannot write."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bot.storage.engine import Database
from tests.core.holding import Hold


async def test_a_slow_read_holds_back_no_write(tmp_path: Path) -> None:
    """A console page's queries used to take their turn in the SQLite writer's queue, so every answer's commit
    waited for them; a read now runs on its own connection, which WAL lets read while the writer commits."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
    hold = Hold(db.reader)

    try:
        await db.run_core(lambda connection: connection.execute(text("CREATE TABLE t (x INTEGER)")))
        await db.run_core(lambda connection: connection.execute(text("INSERT INTO t VALUES (1)")))
        reading = asyncio.create_task(db.read(lambda session: session.scalars(text("SELECT hold(x) FROM t")).all()))
        assert await asyncio.to_thread(hold.started.wait, 10)
        await asyncio.wait_for(db.run_core(lambda connection: connection.execute(text("INSERT INTO t VALUES (2)"))), 5)
        assert not reading.done()
        hold.release.set()
        assert await reading == [1]  # its snapshot began before the write
        assert await db.read(lambda session: session.scalars(text("SELECT x FROM t ORDER BY x")).all()) == [1, 2]
    finally:
        hold.release.set()
        await db.dispose()


async def test_a_write_inside_a_read_is_refused_and_changes_nothing(database_url: str) -> None:
    db = Database(database_url)
    try:
        await db.run_core(lambda connection: connection.execute(text("CREATE TABLE read_only_probe (x INTEGER)")))
        with pytest.raises(DBAPIError, match="(?i)read-?only"):
            await db.read(lambda session: session.execute(text("INSERT INTO read_only_probe VALUES (1)")))
        assert await db.read(lambda session: session.scalar(text("SELECT count(*) FROM read_only_probe"))) == 0
    finally:
        await db.dispose()


async def test_a_failed_statement_names_its_sql_but_not_its_values(database_url: str) -> None:
    """Errors get logged; a statement's values may be a person's message or a workspace's token
    (SQLAlchemy's hide_parameters, set by bot.storage.engine.create_engine)."""
    db = Database(database_url)
    try:
        with pytest.raises(DBAPIError) as raised:
            await db.run(lambda session: session.execute(text("SELECT x FROM no_such_table WHERE x = :v"),
                                                         {"v": "xoxb-secret-value"}))
        assert "no_such_table" in str(raised.value) and "xoxb-secret-value" not in str(raised.value)
    finally:
        await db.dispose()

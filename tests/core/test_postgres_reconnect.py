"""PostgreSQL connections lost under the pool (a restarted database, a proxy that dropped them): an idle one is
pinged and replaced before use; one lost in use fails that transaction only, and the whole pool is renewed."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import bindparam, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bot.storage.engine import Database
from bot.storage.precompiled import Precompiled
from bot.storage.tables import Channel

pytestmark = pytest.mark.postgres

_CHANNEL = Precompiled(select(Channel.__table__.c.id).where(Channel.__table__.c.id == bindparam("pk")))


async def _fill_pool(db: Database, connections: int) -> None:
    """Leave `connections` connections in the pool (each used at once, so none is reused)."""
    await asyncio.gather(*(db.run_core(lambda connection: connection.execute(text("SELECT pg_sleep(0.05)")))
                           for _ in range(connections)))


async def _kill_connections(url: str) -> int:
    """What a database restart does to our pool: every other session of the database ends."""
    parsed = make_url(url)
    admin = await asyncpg.connect(host=parsed.host, port=parsed.port, user=parsed.username, database=parsed.database)
    try:
        return await admin.fetchval("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                    "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    finally:
        await admin.close()


async def test_an_idle_connection_lost_meanwhile_is_replaced_before_use(postgres_url: str) -> None:
    db = Database(postgres_url, ping_after_idle_seconds=0.2)
    try:
        await _fill_pool(db, 3)
        assert await _kill_connections(postgres_url) == 3
        await asyncio.sleep(0.3)
        for _ in range(4):  # every pooled connection was dead; none fails an answer
            assert await db.run_core(lambda connection: _CHANNEL.rows(connection, {"pk": 1})) == []
    finally:
        await db.dispose()


async def test_a_connection_lost_in_use_fails_once_and_the_pool_is_renewed(postgres_url: str) -> None:
    db = Database(postgres_url, ping_after_idle_seconds=3600)  # no ping: each connection is taken as it is
    try:
        await _fill_pool(db, 3)
        assert await _kill_connections(postgres_url) == 3
        with pytest.raises(DBAPIError) as failed:
            await db.run_core(lambda connection: _CHANNEL.rows(connection, {"pk": 1}))
        assert failed.value.connection_invalidated
        # The two other dead connections are not handed out: made before the loss, they are renewed.
        for _ in range(3):
            assert await db.run_core(lambda connection: _CHANNEL.rows(connection, {"pk": 1})) == []
    finally:
        await db.dispose()


async def test_the_pool_keeps_the_connections_it_made_and_makes_no_more_than_its_size(
        core_for, postgres_url: str) -> None:
    """SEEDBOT_DATABASE_POOL_SIZE connections at most, each kept once made: three bursts of twelve transactions
    through a pool of four open four connections in all. SQLAlchemy's default shape (a few kept, more made for a
    burst and closed as each came back) opened connections for every burst."""
    core = await core_for(postgres_url, SEEDBOT_DATABASE_POOL_SIZE="4")
    db = core.db
    await db.engine.dispose()  # the connections build_core made are closed
    before = db.connections()
    for _ in range(3):
        await _fill_pool(db, 12)
    after = db.connections()  # what /metrics shows (seedbot_database_connections*)
    assert (after.opened - before.opened, after.in_use, after.idle) == (4, 0, 4)

"""Precompiled: a hot-path statement run on the DBAPI cursor stores and returns what SQLAlchemy's own
execution would, on both backends, and fails the way SQLAlchemy's execution fails."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from bot.storage import migrate
from bot.storage.engine import Database
from bot.storage.precompiled import Precompiled
from bot.storage.tables import Channel, Message, Thread

_MESSAGES = Message.__table__
_ADD = Precompiled(insert(_MESSAGES).returning(_MESSAGES.c.id))
_READ = Precompiled(select(_MESSAGES.c.id.label("message_pk"), _MESSAGES.c.status, _MESSAGES.c.created_at,
                           _MESSAGES.c.user_id).where(_MESSAGES.c.thread_pk == bindparam("thread_pk"),
                                                      _MESSAGES.c.role == "user")
                    .order_by(_MESSAGES.c.id))
_SET_STATUS = Precompiled(update(_MESSAGES).where(_MESSAGES.c.id == bindparam("m_id"))
                          .values(status=bindparam("m_status")))
AT = datetime(2026, 11, 30, 9, 5, 7, 123456)


async def _thread(db: Database) -> int:
    def work(connection: Connection) -> int:
        channel_pk = connection.scalar(insert(Channel.__table__).returning(Channel.__table__.c.id),
                                       dict(platform="slack", workspace_id="T1", channel_id="C1", name="",
                                            web_search=False, created_at=AT))
        return connection.scalar(insert(Thread.__table__).returning(Thread.__table__.c.id), dict(
            channel_pk=channel_pk, platform_thread_id="1.0", history_floor_message_pk=0, last_prompt_estimate=0,
            last_prompt_actual=0, created_at=AT, updated_at=AT))

    return await db.run_core(work)


@pytest.fixture
async def db(database_url: str):  # noqa: ANN201
    if database_url.startswith("sqlite"):
        await asyncio.to_thread(migrate.upgrade, database_url)
    database = Database(database_url)
    yield database
    await database.dispose()


async def test_rows_read_back_equal_what_sqlalchemy_reads(db: Database) -> None:
    thread_pk = await _thread(db)
    given = dict(thread_pk=thread_pk, role="user", dedup_key="k1", content="hi", status="pending", created_at=AT)
    message_pk = await db.run_core(lambda connection: _ADD.scalar(connection, given))
    # Left out: user_id and token_estimate take their column defaults ("" and 0), as Connection.execute gives.
    ours = await db.run_core(lambda connection: _READ.one(connection, {"thread_pk": thread_pk}))
    theirs = await db.run_core(lambda connection: connection.execute(
        _READ.statement, {"thread_pk": thread_pk}).one())
    assert ours == tuple(theirs) == (message_pk, "pending", AT, "")
    assert ours.message_pk == message_pk and isinstance(ours.created_at, datetime)
    assert ours._asdict()["status"] == "pending"


async def test_a_row_written_by_sqlalchemy_and_one_written_here_are_stored_alike(db: Database) -> None:
    thread_pk = await _thread(db)
    # Whole seconds: sqlite3's own datetime adapter would drop the ".000000" SQLAlchemy writes.
    on_the_hour = AT.replace(minute=0, second=0, microsecond=0)
    row = dict(thread_pk=thread_pk, role="user", content="x", status="ok", created_at=on_the_hour)
    await db.run_core(lambda connection: connection.execute(insert(_MESSAGES), row | {"dedup_key": "sa"}))
    await db.run_core(lambda connection: _ADD.run(connection, row | {"dedup_key": "ours"}))
    # Compared in SQL, as text where the backend keeps text: a period's counter is found by equality.
    query = select(_MESSAGES.c.dedup_key).where(_MESSAGES.c.created_at == on_the_hour,
                                                _MESSAGES.c.token_estimate == 0)
    found = await db.run_core(lambda connection: sorted(connection.scalars(query)))
    assert found == ["ours", "sa"]


async def test_an_update_changes_only_its_row_and_returns_no_rows(db: Database) -> None:
    thread_pk = await _thread(db)
    first, second = [await db.run_core(lambda connection, key=key: _ADD.scalar(connection, dict(
        thread_pk=thread_pk, role="user", dedup_key=key, status="pending", created_at=AT))) for key in ("a", "b")]
    assert await db.run_core(lambda connection: _SET_STATUS.rows(
        connection, {"m_id": second, "m_status": "ok"})) == []
    rows = await db.run_core(lambda connection: _READ.rows(connection, {"thread_pk": thread_pk}))
    assert [(row.message_pk, row.status) for row in rows] == [(first, "pending"), (second, "ok")]


async def test_a_refused_statement_raises_sqlalchemys_error_and_the_transaction_rolls_back(db: Database) -> None:
    thread_pk = await _thread(db)
    row = dict(thread_pk=thread_pk, role="user", dedup_key="same", status="pending", created_at=AT)
    await db.run_core(lambda connection: _ADD.run(connection, row))

    def twice(connection: Connection) -> None:
        _SET_STATUS.run(connection, {"m_id": 1, "m_status": "ok"})
        _ADD.run(connection, row)

    with pytest.raises(IntegrityError):
        await db.run_core(twice)
    rows = await db.run_core(lambda connection: _READ.rows(connection, {"thread_pk": thread_pk}))
    assert [row.status for row in rows] == ["pending"]


async def test_a_parameter_nobody_gave_is_named(db: Database) -> None:
    with pytest.raises(KeyError, match="m_status"):
        await db.run_core(lambda connection: _SET_STATUS.run(connection, {"m_id": 1}))


async def test_an_expanding_in_is_refused_at_its_first_run(db: Database) -> None:
    # It would be rendered anew for every list: the statement must name one parameter per value.
    statement = Precompiled(select(_MESSAGES.c.id).where(_MESSAGES.c.status.in_(["ok", "cut"])))
    with pytest.raises(ValueError, match="expanding"):
        await db.run_core(lambda connection: statement.rows(connection, {}))

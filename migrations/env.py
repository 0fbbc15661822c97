"""Alembic environment: the URL comes from bot.config (or the caller), migrations run async."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

import adapters.slack.install_tables  # noqa: F401 - slack-sdk's tables join the metadata
from bot.storage.engine import create_engine, create_sqlite_sync_engine, is_sqlite
from bot.storage.tables import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from bot.config import load_settings

    return load_settings().database_url


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def _run_sqlite(url: str) -> None:
    # The sqlite3 module directly: aiosqlite's thread, left with a failed connection's last reply when the
    # event loop had closed, printed a traceback after seedbot's one line.
    engine = create_sqlite_sync_engine(url)
    try:
        with engine.connect() as connection:
            _run(connection)
            connection.commit()
    finally:
        engine.dispose()


url = _url()  # read once: without the main option it loads the settings
if context.is_offline_mode():
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
elif is_sqlite(url):
    _run_sqlite(url)
else:
    asyncio.run(_run_online(url))

"""Which schema revision a database is at, read without Alembic, and the start-up check built on it.

Alembic and its Mako templates stay resident once imported (about 9 MiB of a `seedbot run` process that
never migrates again: `python -m bench.core_bench --messages 10000` shows the RSS), so the check reads
`alembic_version` itself and loads `bot.storage.migrate` only when the database is behind."""

from __future__ import annotations

import asyncio

from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from bot.config import ConfigError
from bot.storage.engine import Database
from migrations import HEAD, REVISIONS

# Alembic's own table (alembic.runtime.migration.MigrationContext): one row per head, its revision id.
VERSION_TABLE = "alembic_version"


def database_revision(connection: Connection) -> str | None:
    """The revision the database says it is at; None for a database Alembic never touched (or whose table is
    empty). Several heads come joined by commas, which names no revision of ours (our history has one head)."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    rows = connection.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").fetchall()
    return ",".join(sorted(str(row[0]) for row in rows)) or None


async def ensure_schema(db: Database, *, upgrade_sqlite: bool = True) -> None:
    """SQLite (one process) is brought up to date on start; PostgreSQL, shared by replicas, is migrated by
    `seedbot db upgrade`, so a replica never races another one's migration. Raises ConfigError for a
    database at a revision this release does not know (a newer release migrated it: upgrading cannot help),
    and, naming that command, for a PostgreSQL database behind `migrations.HEAD`; OSError where the database
    cannot be reached."""
    async with db.engine.connect() as connection:
        revision = await connection.run_sync(database_revision)
    if revision == HEAD:
        return
    if revision is not None and revision not in REVISIONS:
        raise ConfigError(f"DATABASE_URL: the database schema is at {revision}, which this release (schema {HEAD}) "
                          "does not know: a newer seedbot migrated it, or another application shares its "
                          f"{VERSION_TABLE} table")
    if db.is_sqlite and upgrade_sqlite:
        from bot.storage import migrate  # only here: see the module's docstring

        await asyncio.to_thread(migrate.upgrade, db.url)
        return
    raise ConfigError(f"DATABASE_URL: the database schema is at {revision or 'nothing'}, not {HEAD}; "
                      "run `seedbot db upgrade` first")

"""Which schema revision a database is at, read without Alembic, and the start-up check built on it.

Alembic and its Mako templates stay resident once imported (about 9 MiB of a `seedbot run` process, more
with what a migration leaves behind: `python -m bench.core_bench --messages 10000` shows the RSS), so the
check reads `alembic_version` itself, and a SQLite file that is behind is migrated by a child process
(`python -m bot.storage.migrate`) that takes Alembic with it when it exits."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from bot.config import ConfigError
from bot.storage.engine import Database
from migrations import HEAD, REVISIONS

log = logging.getLogger(__name__)

# Alembic's own table (alembic.runtime.migration.MigrationContext): one row per head, its revision id.
VERSION_TABLE = "alembic_version"
# Where `bot` and `migrations` were imported from: the migrating child imports this very copy of seedbot.
SOURCE_ROOT = str(Path(__file__).resolve().parents[2])


def database_revision(connection: Connection) -> str | None:
    """The revision the database says it is at; None for a database Alembic never touched (or whose table is
    empty). Several heads come joined by commas, which names no revision of ours (our history has one head)."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    rows = connection.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").fetchall()
    return ",".join(sorted(str(row[0]) for row in rows)) or None


async def ensure_schema(db: Database, *, upgrade_sqlite: bool = True) -> None:
    """SQLite (one process) is brought up to date on start, by a child process (`upgrade_in_child`); PostgreSQL,
    shared by replicas, is migrated by `seedbot db upgrade`, so a replica never races another one's migration.
    Raises ConfigError for a database at a revision this release does not know (a newer release migrated it:
    upgrading cannot help), for a SQLite file whose migration failed, and, naming that command, for a PostgreSQL
    database behind `migrations.HEAD`; OSError where the database cannot be reached."""
    async with db.engine.connect() as connection:
        revision = await connection.run_sync(database_revision)
    if revision == HEAD:
        return
    if revision is not None and revision not in REVISIONS:
        raise ConfigError(f"DATABASE_URL: the database schema is at {revision}, which this release (schema {HEAD}) "
                          "does not know: a newer seedbot migrated it, or another application shares its "
                          f"{VERSION_TABLE} table")
    if db.is_sqlite and upgrade_sqlite:
        await upgrade_in_child(db.url)
        log.info("SQLite database migrated from schema %s to %s", revision or "nothing", HEAD)
        return
    raise ConfigError(f"DATABASE_URL: the database schema is at {revision or 'nothing'}, not {HEAD}; "
                      "run `seedbot db upgrade` first")


async def upgrade_in_child(url: str) -> None:
    """Migrate the SQLite database at `url` to the head in a child Python (`python -m bot.storage.migrate`),
    so that this process never loads Alembic (the module's docstring). Raises ConfigError with the last line
    the child wrote (its exception: an unwritable file, a full disk) when it fails."""
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, (SOURCE_ROOT, os.environ.get("PYTHONPATH"))))}
    # -P: not the working directory first on the path, where someone's bot.py or migrations/ would be imported.
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-P", "-m", "bot.storage.migrate", url, env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        _, err = await child.communicate()
    except asyncio.CancelledError:  # the start was given up (a signal): the migration is not left running alone
        child.kill()
        await child.wait()
        raise
    if child.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines()
        raise ConfigError(f"DATABASE_URL: migrating the SQLite database to schema {HEAD} failed: "
                          f"{lines[-1] if lines else f'exit status {child.returncode}'}")

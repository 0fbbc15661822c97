"""Schema migrations, run programmatically so an installed seedbot needs no alembic.ini."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

import migrations
from bot.config import ConfigError
from bot.storage.engine import Database

MIGRATIONS_DIR = Path(migrations.__file__).parent


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would eat a % in a password.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def check(url: str) -> None:
    """Raise if the models and the migrations disagree."""
    command.check(alembic_config(url))


async def ensure_schema(db: Database, *, upgrade_sqlite: bool = True) -> None:
    """SQLite (one process) is brought up to date on start; PostgreSQL, shared by replicas, is
    migrated by `seedbot db upgrade`, so a replica never races another one's migration."""
    head = ScriptDirectory.from_config(alembic_config(db.url)).get_current_head()

    def current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with db.engine.connect() as connection:
        revision = await connection.run_sync(current)
    if revision == head:
        return
    if db.is_sqlite and upgrade_sqlite:
        await asyncio.to_thread(upgrade, db.url)
        return
    raise ConfigError(f"DATABASE_URL: the database schema is at {revision or 'nothing'}, not {head}; "
                      "run `seedbot db upgrade` first")

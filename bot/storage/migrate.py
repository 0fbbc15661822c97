"""Schema migrations, run programmatically so an installed seedbot needs no alembic.ini.

`python -m bot.storage.migrate URL` migrates URL to the head: how a starting process brings its SQLite file up
to date without loading Alembic itself (bot.storage.revision.upgrade_in_child)."""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

import migrations
from bot.domain import first_line

MIGRATIONS_DIR = Path(migrations.__file__).parent


def alembic_config(url: str) -> Config:
    """An Alembic configuration for `url` (a SQLAlchemy URL) with migrations/ as its scripts, no alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would eat a % in a password.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision` (blocking: callers on the event loop use a thread).
    Raises Alembic's CommandError for a revision it cannot locate, SQLAlchemy's errors for the database."""
    command.upgrade(alembic_config(url), revision)


def check(url: str) -> None:
    """Raise if the models and the migrations disagree."""
    command.check(alembic_config(url))


if __name__ == "__main__":
    try:
        upgrade(sys.argv[1])
    except Exception as exc:  # noqa: BLE001 - the parent reads one line, not a traceback
        cause = getattr(exc, "orig", None) or exc  # a DBAPIError's driver error says what the database said
        sys.exit(f"{type(cause).__name__}: {first_line(cause)}")

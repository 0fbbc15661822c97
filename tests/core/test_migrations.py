"""The migrations and the models agree, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

import migrations
from bot.config import ConfigError
from bot.storage import migrate
from bot.storage.engine import Database
from bot.storage.revision import ensure_schema
from tests.cli.test_cli_start_errors import seedbot


async def test_alembic_check_reports_no_drift(database_url: str) -> None:
    # The PostgreSQL fixture has already upgraded; upgrading again must be a no-op.
    await asyncio.to_thread(migrate.upgrade, database_url)
    await asyncio.to_thread(migrate.check, database_url)


def test_migrations_revisions_name_alembics_history_oldest_first() -> None:
    # bot.storage.revision compares databases with migrations.REVISIONS, not with Alembic's reading of versions/.
    scripts = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    history = [script.revision for script in scripts.walk_revisions("base", "heads")][::-1]
    assert list(migrations.REVISIONS) == history and migrations.HEAD == scripts.get_current_head()


def test_a_process_whose_database_is_current_never_loads_alembic(tmp_path: Path) -> None:
    """A database already at head is checked by reading alembic_version (bot.storage.revision); one that is
    behind is upgraded by a child process, so Alembic (~9 MiB, resident once imported) never enters this one."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    script = (
        "import asyncio, sys\n"
        "from bot.storage.engine import Database\n"
        "from bot.storage.revision import ensure_schema\n"
        "async def main():\n"
        "    db = Database(sys.argv[1])\n"
        "    await ensure_schema(db)\n"
        "    await db.dispose()\n"
        "asyncio.run(main())\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'alembic', 'mako'}))\n")
    runs = [subprocess.run([sys.executable, "-c", script, url], capture_output=True, text=True, timeout=120)
            for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[-1].stderr
    assert [r.stdout.strip() for r in runs] == ["[]", "[]"]  # a new file upgraded (by a child); then current
    with sqlite3.connect(tmp_path / "bot.db") as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [(migrations.HEAD,)]


async def test_a_sqlite_file_whose_migration_fails_is_one_line_naming_the_cause(tmp_path: Path) -> None:
    """The child that migrates (bot.storage.revision.upgrade_in_child) fails: what it raised reaches the person
    starting the bot as one line, and the file stays at its revision. Here 0008 meets a column already added by
    hand."""
    path = tmp_path / "old.db"
    await asyncio.to_thread(migrate.upgrade, f"sqlite:///{path}", "0007")
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE budget_counters ADD COLUMN opened_through BIGINT")
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        with pytest.raises(ConfigError) as raised:
            await ensure_schema(db)
    finally:
        await db.dispose()
    message = str(raised.value)
    assert "\n" not in message and "duplicate column name: opened_through" in message, message
    assert message.startswith("DATABASE_URL: migrating the SQLite database to schema 0008 failed: ")
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("0007",)]


def test_seedbot_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    env = {**os.environ, "DATABASE_URL": url}
    result = subprocess.run([sys.executable, "-m", "adapters.cli", "db", "upgrade"], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "database is at head" in result.stdout
    with sqlite3.connect(tmp_path / "fresh.db") as conn:
        tables = {row[0] for row in conn.execute("select name from sqlite_master where type='table'")}
    assert {"channels", "threads", "messages", "usage_ledger", "budgets", "budget_reservations",
            "budget_counters", "alembic_version"} <= tables


async def test_an_unmigrated_postgres_database_is_one_clear_error(postgres_url: str) -> None:
    db = Database(postgres_url)
    try:
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql("DELETE FROM alembic_version")
        try:
            await ensure_schema(db)
        except ConfigError as exc:
            assert "seedbot db upgrade" in str(exc)
        else:
            raise AssertionError("an unmigrated PostgreSQL database must not be used")
    finally:
        await db.dispose()


@pytest.mark.parametrize("revision", ["0009", "c3a1f2e9b7d4", "0007,0008"])  # newer; another app's; two heads
def test_a_sqlite_database_at_an_unknown_revision_is_one_line_not_a_traceback(tmp_path: Path, revision: str) -> None:
    """A rollback: a newer release migrated the file, then this one starts on it. Handed to Alembic, it ended
    every command in a ~120-line CommandError ("Can't locate revision"); it is refused in one line, untouched."""
    path = tmp_path / "bot.db"
    migrate.upgrade(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM alembic_version")
        conn.executemany("INSERT INTO alembic_version VALUES (?)", [(r,) for r in revision.split(",")])
    code, stderr = seedbot(tmp_path, f"sqlite+aiosqlite:///{path}", "spend")
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr and len(lines) == 1, stderr[-600:]
    assert code == 2 and revision in lines[0] and "does not know" in lines[0]
    with sqlite3.connect(path) as conn:
        assert sorted(r for (r,) in conn.execute("SELECT version_num FROM alembic_version")) == revision.split(",")


async def test_a_postgres_database_at_a_newer_revision_is_not_told_to_upgrade(postgres_url: str) -> None:
    """`seedbot db upgrade` of this release cannot move a database a newer release migrated (Alembic cannot
    locate the revision), so the error says what happened instead of advising it."""
    db = Database(postgres_url)
    try:
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0009'")
        with pytest.raises(ConfigError) as raised:
            await ensure_schema(db)
        assert "0009" in str(raised.value) and "newer seedbot" in str(raised.value)
        assert "seedbot db upgrade" not in str(raised.value)
    finally:
        await db.dispose()


def test_upgrading_to_0008_gives_running_reservations_the_scopes_of_their_counters(tmp_path: Path) -> None:
    """Before 0008 a reservation named a counter of each of its scopes and did not keep its scopes. A running one
    gets them from its counters, so that a counter opening after the upgrade counts it and it moves that counter
    (bot.budget.counters); without them, a counter opened before it settled missed its cost."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, "0007")
    keys = "global|day|2026-12-01T00:00:00;slack:C1|day|2026-12-01T00:00:00;slack:U1@slack:C1|month|2026-12-01T00:00:00"
    with sqlite3.connect(tmp_path / "old.db") as conn:
        conn.execute("INSERT INTO channels (id, platform, workspace_id, channel_id, name, web_search, created_at) "
                     "VALUES (1, 'slack', '', 'C1', 'c', 0, '2026-12-01 00:00:00')")
        for status in ("active", "settled"):
            conn.execute("INSERT INTO budget_reservations (channel_pk, user_id, kind, counter_keys, amount_nanos, "
                         "status, created_at, expires_at) VALUES (1, 'U1', 'chat', ?, 5, ?, '2026-12-01 10:00:00', "
                         "'2026-12-01 10:10:00')", (keys, status))
    migrate.upgrade(url)
    with sqlite3.connect(tmp_path / "old.db") as conn:
        rows = conn.execute("SELECT status, scope_keys FROM budget_reservations ORDER BY id").fetchall()
    assert rows == [("active", "global;slack:C1;slack:U1@slack:C1"), ("settled", "")]


@pytest.mark.parametrize("layout", ["bot.py", "migrations/__init__.py"])
def test_a_start_from_a_folder_holding_modules_named_like_seedbots_migrates_seedbots_schema(
        tmp_path: Path, layout: str) -> None:
    """The migrating child (python -m bot.storage.migrate) must import the seedbot that started it, not a `bot.py`
    or a `migrations` package in the folder it is started from, which `-m` alone would put first on its path."""
    (tmp_path / layout).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / layout).write_text("raise SystemExit('someone else code was imported')\n")
    # The console script, as a user runs it: unlike `python -m`, it does not put its folder on the path itself.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEED", "DATABASE_URL", "SLACK", "DISCORD"))}
    done = subprocess.run([str(Path(sys.executable).parent / "seedbot"), "spend"], cwd=tmp_path, timeout=120,
                          env=env | {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"},
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(tmp_path / "bot.db") as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [(migrations.HEAD,)]

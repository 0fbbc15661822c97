"""A DATABASE_URL that is malformed, or names a database that cannot be reached: one line, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def seedbot(cwd: Path, database_url: str, *args: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEED", "DATABASE_URL"))}
    env["DATABASE_URL"] = database_url
    done = subprocess.run([sys.executable, "-m", "adapters.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    return done.returncode, done.stderr


@pytest.mark.parametrize(("url", "says"), [
    ("garbage", "DATABASE_URL: is not a database URL"),
    ("mysql://root:hunter2@db/seed", "DATABASE_URL: 'mysql' is not supported"),
])
def test_a_malformed_or_unsupported_url_is_a_usage_error_naming_the_variable(
        tmp_path: Path, url: str, says: str) -> None:
    for args in (("spend",), ("db", "upgrade")):
        code, err = seedbot(tmp_path, url, *args)
        assert code == 2, err
        assert len(err.strip().splitlines()) == 1 and err.startswith(f"seedbot: {says}"), err
        assert "hunter2" not in err


@pytest.mark.parametrize(("url", "says"), [
    ("sqlite+aiosqlite:////nonexistent/dir/x.db", "seedbot: the database (DATABASE_URL) failed: unable to open"),
    ("postgresql://postgres:hunter2@127.0.0.1:1/x", "seedbot: cannot connect: ConnectionRefusedError"),
])
def test_a_database_that_cannot_be_reached_ends_a_command_in_one_line(tmp_path: Path, url: str, says: str) -> None:
    for args in (("spend",), ("budget", "show", "slack:C1")):
        code, err = seedbot(tmp_path, url, *args)
        assert code == 1
        assert len(err.strip().splitlines()) == 1 and err.startswith(says), err
        assert "Traceback" not in err and "hunter2" not in err

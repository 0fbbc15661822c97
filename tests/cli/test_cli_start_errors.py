"""A DATABASE_URL that is malformed, a database or a platform that cannot be reached: one line, no traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def seedbot(cwd: Path, database_url: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEED", "DATABASE_URL", "SLACK", "DISCORD"))
           } | (env or {})
    env["DATABASE_URL"] = database_url
    done = subprocess.run([sys.executable, "-m", "adapters.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    return done.returncode, done.stderr


@pytest.mark.parametrize(("url", "says"), [
    ("garbage", "DATABASE_URL: is not a database URL"),
    ("mysql://root:hunter2@db/seed", "DATABASE_URL: 'mysql' is not supported"),
    # An @ inside the password, not written %40, would put the password's tail in the host the error names.
    ("postgresql://app:hunter2@hunter2@127.0.0.1:1/x", "DATABASE_URL: holds an @ after the password's first one"),
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
    ("postgresql://postgres:hunter2@127.0.0.1:1/x",
     "seedbot: cannot connect: ConnectionError: the database (DATABASE_URL) at 127.0.0.1:1 cannot be reached:"),
])
def test_a_database_that_cannot_be_reached_ends_a_command_in_one_line(tmp_path: Path, url: str, says: str) -> None:
    for args in (("spend",), ("budget", "show", "slack:C1"), ("db", "upgrade")):
        code, err = seedbot(tmp_path, url, *args)
        assert code == 1
        assert len(err.strip().splitlines()) == 1 and err.startswith(says), err
        assert "Traceback" not in err and "hunter2" not in err


def test_slack_out_of_reach_at_start_is_a_connection_failure_not_a_bad_setting(tmp_path: Path) -> None:
    code, err = seedbot(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/s.db", "run",
                        env={"SEED_API_KEY": "k", "SLACK_BOT_TOKEN": "xoxb-1-2-abc", "SLACK_SIGNING_SECRET": "s",
                             "SLACK_API_URL": "http://127.0.0.1:1/api/", "SEEDBOT_HTTP_PORT": "0"})
    assert code == 1, err  # exit 2 would send someone to fix a token that is fine
    assert err.strip().splitlines()[-1].startswith("seedbot: cannot connect: ConnectionError: Slack cannot be reached")
    assert "Traceback" not in err and "xoxb-1-2-abc" not in err


def test_a_taken_http_port_is_named_as_such_not_as_a_connection_failure(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = seedbot(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/s.db", "run",
                            env={"SEED_API_KEY": "k", "SLACK_BOT_TOKEN": "xoxb-1-2-abc", "SLACK_SIGNING_SECRET": "s",
                                 "SLACK_API_URL": "http://127.0.0.1:1/api/", "SEEDBOT_HTTP_HOST": "127.0.0.1",
                                 "SEEDBOT_HTTP_PORT": str(port)})
    assert code == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("seedbot: cannot listen:") and "SEEDBOT_HTTP_PORT" in last, err
    assert "Traceback" not in err


def test_with_json_logs_the_last_words_of_seedbot_run_are_a_json_record(tmp_path: Path) -> None:
    code, err = seedbot(tmp_path, "postgresql://postgres:hunter2@127.0.0.1:1/x", "run",
                        env={"SEED_API_KEY": "k", "SLACK_BOT_TOKEN": "xoxb-1-2-abc", "SLACK_SIGNING_SECRET": "s",
                             "SEEDBOT_HTTP_PORT": "0", "SEEDBOT_LOG_FORMAT": "json"})
    assert code == 1, err
    records = [json.loads(line) for line in err.strip().splitlines()]  # every line parses, or this raises
    assert records[-1]["level"] == "CRITICAL" and records[-1]["message"].startswith(
        "cannot connect: ConnectionError: the database (DATABASE_URL)"), err
    assert "hunter2" not in err and "Traceback" not in err


def test_db_upgrade_of_a_database_that_does_not_exist_says_so_in_one_line(tmp_path: Path) -> None:
    """Found by a new user's trial of the README: it printed SQLAlchemy's type and its "Background on this
    error" link on a second line."""
    code, err = seedbot(tmp_path, "postgresql://postgres:hunter2@127.0.0.1:5432/seedbot_no_such_db", "db", "upgrade")
    assert code == 1
    assert err.strip() == 'seedbot: the database (DATABASE_URL) failed: database "seedbot_no_such_db" does not exist'


def test_libpq_sslmode_in_database_url_is_taken_and_its_other_parameters_refused_in_one_line(
        tmp_path: Path, postgres_url: str) -> None:
    """Managed PostgreSQL hands out URLs with libpq's `?sslmode=`: it is asyncpg's `ssl`, with the same values.
    A libpq parameter asyncpg has no word for (application_name, connect_timeout) is a settings error naming it;
    before, both ended every command in asyncpg's TypeError and a traceback (a break-it review)."""
    code, err = seedbot(tmp_path, f"{postgres_url}?sslmode=disable", "spend")
    assert code == 0, err
    code, err = seedbot(tmp_path, f"{postgres_url}?sslmode=disable&application_name=seedbot&connect_timeout=5",
                        "spend")
    assert code == 2 and "Traceback" not in err, err
    assert err.strip() == ("seedbot: DATABASE_URL: application_name, connect_timeout: seedbot reaches PostgreSQL "
                           "through asyncpg, whose URL takes command_timeout, passfile, prepared_statement_cache_size, "
                           "ssl, target_session_attrs (and libpq's sslmode)"), err

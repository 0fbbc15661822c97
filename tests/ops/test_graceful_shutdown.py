"""Graceful shutdown (point 6 of the failure contract): SIGTERM stops taking events, lets answers
in flight finish within SEEDBOT_SHUTDOWN_GRACE, finishes the rest with the interruption notice and
settles them, and `seedbot run` exits 0."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.runtime import run_until_signalled
from bot.config import Settings
from tests.books import read_books_at
from tests.core.test_crash_recovery import NOTICE, bot_env, mention_over_socket, start_bot
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack
from tests.slack.harness import bot_replies


async def shut_down_while_answering(slack: FakeSlack, fake_seed: FakeSeed, tmp_path: Path, grace: str,
                                    reply: Reply, sig: signal.Signals = signal.SIGTERM) -> tuple[list, object, str]:
    db_path = tmp_path / "shutdown.db"
    env = bot_env(slack, fake_seed, db_path) | {"SEEDBOT_SHUTDOWN_GRACE": grace}
    fake_seed.script(reply)
    process = await start_bot(env, tmp_path)
    try:
        ts = (await mention_over_socket(slack, "explain"))["event"]["ts"]
        await slack.wait_for(lambda: bot_replies(slack, "C1", ts) or None, 60)
    finally:
        process.send_signal(sig)
        _, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0, err.decode()[-2000:]
    books = await read_books_at(f"sqlite+aiosqlite:///{db_path}")
    return bot_replies(slack, "C1", ts), books, err.decode()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
async def test_sigterm_finishes_a_long_answer_with_the_notice_and_settles_it(
        slack: FakeSlack, fake_seed: FakeSeed, tmp_path: Path, sig: signal.Signals) -> None:
    replies, books, _ = await shut_down_while_answering(
        slack, fake_seed, tmp_path, "1", Reply(content="Slowly. " * 500, chunk_chars=10, chunk_delay=0.05), sig)
    assert all(m.stream_state in (None, "stopped") for m in replies)
    assert NOTICE in replies[-1].visible_text
    (row,) = books.ledger
    assert row.status == "interrupted" and row.cost_nanos == row.reserved_nanos and not row.usage_known
    assert not books.active_reservations and books.balanced()
    assert books.user_statuses == ["interrupted"]


async def test_sigterm_lets_an_answer_within_the_grace_finish(
        slack: FakeSlack, fake_seed: FakeSeed, tmp_path: Path) -> None:
    replies, books, _ = await shut_down_while_answering(
        slack, fake_seed, tmp_path, "20",
        Reply(content="Done in time. " * 20, chunk_chars=20, chunk_delay=0.05, prompt_tokens=40, completion_tokens=60))
    assert replies[-1].stream_state == "stopped" and " tokens · $" in replies[-1].visible_text
    assert all(NOTICE not in m.visible_text for m in replies)
    (row,) = books.ledger
    assert row.status == "ok" and row.usage_known and books.balanced()
    assert books.user_statuses == ["ok"]


async def test_a_platform_too_slow_for_the_notice_does_not_hold_shutdown_and_the_books_still_close(
        slack: FakeSlack, fake_seed: FakeSeed, tmp_path: Path) -> None:
    db_path = tmp_path / "slow.db"
    env = bot_env(slack, fake_seed, db_path) | {"SEEDBOT_SHUTDOWN_GRACE": "1"}
    fake_seed.script(Reply(content="Slowly. " * 500, chunk_chars=10, chunk_delay=0.05))
    process = await start_bot(env, tmp_path)
    try:
        ts = (await mention_over_socket(slack, "explain"))["event"]["ts"]
        await slack.wait_for(lambda: bot_replies(slack, "C1", ts) or None, 60)
        slack.set_latency(120.0)  # every Web API call from now on: longer than any client timeout
    finally:
        process.send_signal(signal.SIGTERM)
        # Grace (1 s) + CLOSING_SECONDS (10 s) + closing the connections; it took 90 s and more before.
        _, err = await asyncio.wait_for(process.communicate(), 45)
    assert process.returncode == 0, err.decode()[-2000:]
    books = await read_books_at(f"sqlite+aiosqlite:///{db_path}")
    (row,) = books.ledger
    assert row.status == "interrupted" and not books.active_reservations and books.balanced()


async def test_a_second_sigterm_ends_the_grace_at_once_and_still_settles(
        slack: FakeSlack, fake_seed: FakeSeed, tmp_path: Path) -> None:
    db_path = tmp_path / "hurry.db"
    # A grace no test would wait out: only the second signal can end this shutdown within the bound below.
    env = bot_env(slack, fake_seed, db_path) | {"SEEDBOT_SHUTDOWN_GRACE": "600", "SEEDBOT_LOG_LEVEL": "WARNING"}
    fake_seed.script(Reply(content="Slowly. " * 2000, chunk_chars=10, chunk_delay=0.05))
    process = await start_bot(env, tmp_path)
    try:
        ts = (await mention_over_socket(slack, "explain"))["event"]["ts"]
        await slack.wait_for(lambda: bot_replies(slack, "C1", ts) or None, 60)
        process.send_signal(signal.SIGTERM)
        await slack.wait_for(lambda: slack.socket_connections == 0 or None, 30)  # the first one is being served
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()[-2000:]
    assert err.decode().count("second signal: ending the shutdown grace now") == 1
    replies = bot_replies(slack, "C1", ts)
    assert NOTICE in replies[-1].visible_text and all(m.stream_state in (None, "stopped") for m in replies)
    books = await read_books_at(f"sqlite+aiosqlite:///{db_path}")
    (row,) = books.ledger
    assert row.status == "interrupted" and not books.active_reservations and books.balanced()


async def test_a_signal_while_a_platform_holds_the_start_stops_the_process(
        slack: FakeSlack, fake_seed: FakeSeed, tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (its backlog) and never answers: auth.test hangs
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        env = bot_env(slack, fake_seed, tmp_path / "start.db") | {
            "SLACK_API_URL": f"http://127.0.0.1:{silent.getsockname()[1]}/api/", "SEEDBOT_LOG_LEVEL": "INFO"}
        process = await start_bot(env, tmp_path)
        assert process.stderr is not None
        try:
            while b"event loop:" not in await asyncio.wait_for(process.stderr.readline(), 60):
                pass  # start-up has begun; Slack will not answer it within the bound below
            process.send_signal(signal.SIGTERM)
            # Without the signal, start would wait for the Web API's 30-s timeout and retries.
            _, err = await asyncio.wait_for(process.communicate(), 20)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert process.returncode == 0, err.decode()[-2000:]
    assert "signalled during start-up" in err.decode()


async def test_two_signals_read_in_one_turn_of_the_loop_still_end_the_grace(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """Ctrl-C pressed twice while the loop is busy: both signals are read in one turn of the event loop and
    both go to the handler installed when they were read, which must count them (a handler the first one
    installed for the second came too late). In process, so that both are read in one turn for certain: a
    signal a thread sends itself is delivered before pthread_kill returns, and the loop runs only after."""
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'twice.db'}"
    settings = settings_for(db_url, SLACK_BOT_TOKEN=slack.config.bot_token, SLACK_APP_TOKEN=slack.config.app_token,
                            SLACK_API_URL=slack.api_url, SEEDBOT_HTTP_HOST="127.0.0.1", SEEDBOT_HTTP_PORT=0,
                            SEEDBOT_SHUTDOWN_GRACE=600)
    fake_seed.script(Reply(content="Slowly. " * 2000, chunk_chars=10, chunk_delay=0.05))
    running = asyncio.create_task(run_until_signalled(settings))
    ts = (await mention_over_socket(slack, "explain"))["event"]["ts"]
    await slack.wait_for(lambda: bot_replies(slack, "C1", ts) or None, 60)
    for _ in range(2):
        signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)  # type: ignore[arg-type]
    await asyncio.wait_for(running, 30)  # the grace is 600 s: only the second signal ends it
    assert [r.getMessage() for r in caplog.records].count(
        "second signal: ending the shutdown grace now; answers still running end with the notice") == 1
    books = await read_books_at(db_url)
    (row,) = books.ledger
    assert row.status == "interrupted" and not books.active_reservations and books.balanced()
    assert NOTICE in bot_replies(slack, "C1", ts)[-1].visible_text

"""SEEDBOT_EVENT_LOOP: `seedbot run` serves on uvloop by default and on asyncio's own loop when asked, and
answers a mention on either; a choice that cannot be served is a setting error, not a traceback."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from adapters.runtime import run_on_event_loop
from bot.config import ConfigError
from tests.core.test_crash_recovery import bot_env, mention_over_socket, start_bot
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack
from tests.slack.harness import wait_for_answer


@pytest.mark.parametrize(("choice", "loop_line"), [
    (None, "event loop: uvloop.Loop"),
    ("asyncio", "event loop: asyncio.unix_events._UnixSelectorEventLoop"),
])
async def test_seedbot_run_answers_on_the_event_loop_it_names(
        slack: FakeSlack, fake_seed: FakeSeed, tmp_path: Path, choice: str | None, loop_line: str) -> None:
    env = bot_env(slack, fake_seed, tmp_path / "loop.db") | {"SEEDBOT_LOG_LEVEL": "INFO"}
    if choice is not None:
        env["SEEDBOT_EVENT_LOOP"] = choice
    fake_seed.script(Reply(content="Answered on this loop."))
    process = await start_bot(env, tmp_path)
    try:
        mention = await mention_over_socket(slack, "which loop?")
        [reply] = await wait_for_answer(slack, "C1", mention["event"]["ts"])
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0, err.decode()[-2000:]
    assert "Answered on this loop." in reply.visible_text
    assert [line for line in err.decode().splitlines() if "event loop:" in line][0].endswith(loop_line)


def test_a_loop_that_is_not_installed_is_a_setting_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # what `import uvloop` meets on Windows

    async def never_run() -> None:
        raise AssertionError("the loop must not start")

    with pytest.raises(ConfigError, match="SEEDBOT_EVENT_LOOP=asyncio"):
        run_on_event_loop(never_run(), "uvloop")

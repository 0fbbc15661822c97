"""SEEDBOT_LOG_FORMAT=json: one JSON object per line, carrying the ids of the answer a line belongs to."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.chat.redaction import redact
from bot.config import Settings
from bot.ops.logs import LIBRARY_LEVELS, AnswerContextFilter, configure_logging, json_formatter
from tests.cli.test_cli_ask import run_cli
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack
from tests.slack.harness import running_bot, wait_for_answer


@pytest.fixture
def json_lines() -> Iterator[Callable[[], list[dict[str, object]]]]:
    """The root logger's INFO-and-up records as `SEEDBOT_LOG_FORMAT=json` writes them, parsed back."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(AnswerContextFilter())
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


async def test_log_lines_of_a_slack_answer_carry_its_ids_in_core_and_adapter(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path,
        json_lines: Callable[[], list[dict[str, object]]]) -> None:
    # Words, not one: the splitter holds a word back until it ends, so a one-word answer is never streamed.
    fake_seed.script(Reply(content="Logged in several words."))
    slack.inject_error("chat.startStream", "internal_error")  # the adapter logs its fallback to posting
    async with running_bot(slack, settings_for, tmp_path) as bot:
        mention = slack.events.app_mention("log me", channel="C5")
        ts = mention["event"]["ts"]
        async with slack.sender(bot.events_url) as sender:
            await sender.post_event(mention)
        await wait_for_answer(slack, "C5", ts)
        await bot.idle()
        signed_in = [line for line in json_lines() if str(line["message"]).startswith("Slack: serving")]
    ids = {"platform": "slack", "workspace_id": "T1", "channel_id": "C5", "thread_id": ts, "message_id": ts}
    lines = json_lines()
    finished = [line for line in lines if line["message"] == "message finished: ok"]
    fallback = [line for line in lines if str(line["message"]).startswith("chat.startStream failed")]
    assert len(finished) == 1 and len(fallback) == 1
    for line in (*finished, *fallback):
        assert {key: line.get(key) for key in ids} == ids
        assert line["level"] in ("INFO", "WARNING") and line["logger"] and line["timestamp"]
    assert finished[0]["logger"] == "bot.chat.service" and fallback[0]["logger"] == "adapters.slack.transport"
    # A line outside any answer carries no answer ids.
    assert signed_in and "channel_id" not in signed_in[0]


async def test_seedbot_ask_with_json_log_format_writes_json_lines(fake_seed: FakeSeed, tmp_path: Path) -> None:
    fake_seed.script(Reply(content="Fine."))
    code, out, err = await run_cli(fake_seed, tmp_path, "ask", "--thread", "t42", "hello",
                                   env={"SEEDBOT_LOG_FORMAT": "json", "SEEDBOT_LOG_LEVEL": "INFO"})
    assert code == 0, err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    [finished] = [line for line in lines if line["message"] == "message finished: ok"]
    assert finished["platform"] == "cli" and finished["thread_id"] == "t42" and finished["level"] == "INFO"


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    """What `seedbot run` logs with SEEDBOT_LOG_LEVEL=DEBUG (configure_logging's handler, writing here); the
    root logger and the library levels restored after."""
    root = logging.getLogger()
    saved_level, saved_handlers = root.level, root.handlers[:]
    configure_logging("text", "DEBUG", mask=redact)
    stream = io.StringIO()
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    try:
        yield stream
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name in LIBRARY_LEVELS:
            logging.getLogger(name).setLevel(logging.NOTSET)


async def test_debug_logging_keeps_a_pasted_secret_out_of_the_socket_mode_payload_lines(
        debug_log: io.StringIO, slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings],
        tmp_path: Path) -> None:
    # Bolt's Socket Mode handler logs every envelope it receives at DEBUG, the text as the person typed it.
    secret = "ghp_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"
    fake_seed.script(Reply(content="Masked, thanks."))
    async with running_bot(slack, settings_for, tmp_path, socket_mode=True):
        mention = slack.events.app_mention(f"why does {secret} not work?", channel="C7")
        await slack.wait_for_ack(await slack.socket_send_event(mention))
        await wait_for_answer(slack, "C7", mention["event"]["ts"])
    logging.getLogger("bot.ops").debug("seedbot's own DEBUG lines are written")
    written = debug_log.getvalue()
    assert "DEBUG bot.ops: seedbot's own DEBUG lines are written" in written
    assert secret not in written


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_secret_in_a_log_line_or_its_traceback_is_masked(log_format: str) -> None:
    """An error that quotes what it was given (a provider's refusal, a library's exception) reaches the log masked,
    in the message, its arguments and its traceback (bot.ops.logs.SecretMaskingFilter), in either format."""
    root = logging.getLogger()
    saved_level, saved_handlers = root.level, root.handlers[:]
    configure_logging(log_format, "INFO", mask=redact)
    stream = io.StringIO()
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    token = "ghp_" + "Q7w8E9r0T1y2U3i4O5p6A7s8D9f0G1h2J3k4"
    logger = logging.getLogger("bot.llm.client")
    try:
        logger.warning("seed call failed (%s), retry 1/3", f"Seed API 400: invalid content near '{token}'")
        try:
            raise ValueError(f"bad header Authorization: Bearer {token}")
        except ValueError:
            logger.exception("answering message %s failed", "slack:T1:C1:1.0")
        logger.warning("a format with %s %s and one argument", "x")  # logging reports it; the caller goes on
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name in LIBRARY_LEVELS:
            logging.getLogger(name).setLevel(logging.NOTSET)
    written = stream.getvalue()
    assert token not in written and token[4:] not in written
    assert "seed call failed (Seed API 400: invalid content near '[redacted: GitHub token]'), retry 1/3" in written
    assert "Traceback (most recent call last)" in written and "ValueError: bad header" in written

"""Slack messages are always closed (point 8 of the failure contract): under sustained 429s and on
msg_too_long, every message the bot opened ends stopped and the rest of the answer continues in a
new message."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bot.config import Settings
from tests.books import read_books
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack
from tests.slack.harness import RunningBot, bot_replies, running_bot


async def answered(bot: RunningBot, slack: FakeSlack, text: str) -> list:
    mention = slack.events.app_mention(text)
    async with slack.sender(bot.events_url) as sender:
        assert (await sender.post_event(mention)).status == 200
    await bot.idle(timeout=60)
    return bot_replies(slack, "C1", mention["event"]["ts"])


async def test_an_answer_of_fifty_thousand_backticks_ends_with_every_message_stopped(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    fake_seed.script(Reply(content="`" * 50_000, chunk_chars=2_000, prompt_tokens=10, completion_tokens=4_000))
    async with running_bot(slack, settings_for, tmp_path, SEED_MAX_TOKENS=65_536) as bot:
        replies = await answered(bot, slack, "print many backticks")
        books = await read_books(bot.process.core.db)
    assert replies and all(m.stream_state in (None, "stopped") for m in replies), [m.stream_state for m in replies]
    assert " tokens · $" in replies[-1].visible_text
    assert books.user_statuses == ["ok"] and books.balanced()


async def test_sustained_429s_on_stop_still_stop_the_stream(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(content="A short answer that streams.", prompt_tokens=10, completion_tokens=10))
    slack.inject_rate_limit("chat.stopStream", times=6, retry_after=0)
    replies = await answered(bot, slack, "hello")
    assert replies and all(m.stream_state in (None, "stopped") for m in replies), [m.stream_state for m in replies]
    assert "A short answer that streams." in "".join(m.visible_text for m in replies)
    assert " tokens · $" in replies[-1].visible_text
    assert bot.process.core is not None
    books = await read_books(bot.process.core.db)
    assert books.user_statuses == ["ok"] and books.balanced()


async def test_msg_too_long_at_the_end_stops_the_message_and_continues_in_a_new_one(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    answer = "word " * 400
    fake_seed.script(Reply(content=answer, chunk_chars=50, chunk_delay=0.01, prompt_tokens=10, completion_tokens=400))
    slack.inject_error("chat.stopStream", "msg_too_long", times=1)
    replies = await answered(bot, slack, "talk a lot")
    assert len(replies) >= 2 and all(m.stream_state in (None, "stopped") for m in replies)
    shown = "".join(m.visible_text for m in replies)
    assert shown.count("word") == 400 and " tokens · $" in replies[-1].visible_text
    assert bot.process.core is not None
    books = await read_books(bot.process.core.db)
    assert books.user_statuses == ["ok"] and books.balanced()

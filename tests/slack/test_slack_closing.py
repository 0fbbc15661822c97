"""Slack messages are always closed (point 8 of the failure contract): under sustained 429s and on
msg_too_long, every message the bot opened ends stopped, and the rest of the answer continues in a
new message (msg_too_long) or in the same one, by chat.update (a passing error); no message is left
empty, and none that is finished keeps its Stop button."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from adapters.slack.controls import STOP_ACTION
from bot.config import Settings
from tests.books import read_books
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack, Message
from tests.slack.harness import RunningBot, answer_part, bot_replies, running_bot


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


def stop_buttons(message: Message) -> list[dict]:
    """The Stop buttons a message shows: in its blocks (posted) or in a blocks chunk of its stream."""
    blocks = list(message.blocks or [])
    blocks += [b for c in message.chunks if c.get("type") == "blocks" for b in c.get("blocks", [])]
    elements = [e for b in blocks for e in b.get("elements", []) if isinstance(e, dict)]
    return [e for e in elements if e.get("action_id") == STOP_ACTION]


async def test_a_stop_that_fails_once_on_a_stream_showing_nothing_leaves_no_empty_message(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    """The stream opens with the Stop button alone; its only write, chat.stopStream with the text, fails once:
    the stream is stopped as it is, then takes the text by chat.update, instead of staying empty above a
    second message."""
    fake_seed.script(Reply(content="Yes.", prompt_tokens=10, completion_tokens=2))
    slack.inject_error("chat.stopStream", "internal_error", times=1)
    [reply] = await answered(bot, slack, "is it?")
    assert reply.visible_text.startswith("Yes.") and " tokens · $" in reply.visible_text
    assert reply.stream_state == "stopped"


async def test_a_failure_sentence_after_a_stop_that_fails_once_leaves_no_empty_message(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(fault="context_400"))  # the model refuses before any text: one sentence is due
    slack.inject_error("chat.stopStream", "internal_error", times=1)
    replies = await answered(bot, slack, "hello")
    assert replies and all(m.visible_text.strip() for m in replies), [m.visible_text for m in replies]
    assert all(m.stream_state in (None, "stopped") for m in replies)


async def test_a_message_left_behind_by_a_failed_edit_loses_its_stop_button(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    """Streaming unavailable: the answer is posted with the Stop button under it and edited; one chat.update
    fails, so the rest goes to a new message, and the one left behind is edited once more, without it."""
    slack.config.streaming_enabled = False
    slack.inject_error("chat.update", "internal_error", times=1)
    fake_seed.script(Reply(content=" ".join(f"word{i}" for i in range(300)), chunk_chars=30, chunk_delay=0.02,
                           prompt_tokens=10, completion_tokens=300))
    replies = await answered(bot, slack, "write three hundred words")
    assert len(replies) == 2 and [len(stop_buttons(m)) for m in replies] == [0, 0]
    assert "".join(m.visible_text for m in replies).count("word") == 300


async def test_an_append_that_fails_once_continues_the_same_message_by_edits(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    """chat.appendStream fails once mid-answer: the stream is stopped as it is and the message takes the rest by
    chat.update, which writes the whole text (a write Slack took despite its error would show nothing twice)."""
    slack.inject_error("chat.appendStream", "internal_error", times=1)
    fake_seed.script(Reply(content=" ".join(f"word{i}" for i in range(400)), chunk_chars=20, chunk_delay=0.01,
                           prompt_tokens=10, completion_tokens=400))
    [reply] = await answered(bot, slack, "write four hundred words")
    assert answer_part(reply.visible_text).split() == [f"word{i}" for i in range(400)]
    assert reply.stream_state == "stopped" and " tokens · $" in reply.visible_text
    assert "chat.update" in [c.method for c in slack.calls()]


async def test_a_failure_after_a_step_slack_did_not_take_leaves_no_empty_message(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    """The stream opens with the Stop button; the web search step's append fails once, so the stream is stopped
    showing nothing; then the model fails before any text. The sentence takes that message: no empty message
    with a Stop button stays above it."""
    slack.inject_error("chat.appendStream", "internal_error", times=1)
    fake_seed.script(Reply(fault="server_500", first_token_delay=0.3), Reply(fault="server_500"),
                     Reply(fault="server_500"), Reply(fault="server_500"))
    [reply] = await answered(bot, slack, "what is new? --web")
    assert reply.visible_text == "The model's service is unreachable right now; please try again shortly."
    # The edit gave the message's blocks, the Stop button not among them.
    assert reply.stream_state == "stopped" and reply.blocks and STOP_ACTION not in json.dumps(reply.blocks)


async def test_a_stop_button_slack_keeps_after_the_stream_stops_is_edited_out(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    """Where a stopped stream keeps its blocks chunks (the fake's switch: Slack's pages do not say), the Stop button
    chat.stopStream's response still shows is removed by one chat.update; the text and the feedback buttons stay."""
    slack.config.stream_keeps_chunk_blocks = True
    fake_seed.script(Reply(content="A short answer.", prompt_tokens=10, completion_tokens=4))
    before = len(slack.calls())
    [reply] = await answered(bot, slack, "hello")
    assert reply.blocks and STOP_ACTION not in json.dumps(reply.blocks)
    assert [b["type"] for b in reply.blocks] == ["markdown", "context_actions"]
    assert reply.visible_text.startswith("A short answer.") and " tokens · $" in reply.visible_text
    assert [c.method for c in slack.calls()[before:]][-2:] == ["chat.stopStream", "chat.update"]


async def test_a_stream_whose_stop_takes_its_chunks_along_costs_no_edit(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(content="A short answer.", prompt_tokens=10, completion_tokens=4))
    before = len(slack.calls())
    [reply] = await answered(bot, slack, "hello")
    assert reply.stream_state == "stopped" and " tokens · $" in reply.visible_text
    assert "chat.update" not in [c.method for c in slack.calls()[before:]]


async def test_an_answer_whose_limit_ran_out_while_thinking_says_so(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    """Reasoning until max_tokens runs out (no answer text, finish_reason "length"): the sentence names the limit and
    what helps (--fast), not "rephrase"; the ledger's row says the limit was reached, and the thinking is paid."""
    fake_seed.script(Reply(content="", reasoning="thinking " * 50, finish_reason="length"))
    [reply] = await answered(bot, slack, "prove the Collatz conjecture")
    assert reply.visible_text.startswith("The model used its whole output limit thinking") and "--fast" in \
        reply.visible_text
    books = await read_books(bot.process.core.db)
    [row] = books.ledger
    assert row.status == "empty_answer" and row.error.startswith("the length limit (") and row.cost_nanos > 0
    assert books.balanced()


async def test_an_answer_that_reached_its_limit_without_thinking_is_not_told_to_think_less(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(content="\n" * 200, finish_reason="length", completion_tokens=4096))
    [reply] = await answered(bot, slack, "list every prime --fast")
    assert fake_seed.completions[-1].body.get("enable_thinking") is False
    assert reply.visible_text.strip() == ("The model reached its output limit before writing an answer; please ask "
                                          "a narrower question.")


async def test_an_answer_of_only_white_space_leaves_one_message_with_the_sentence(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    """The stream showed only newlines: to a person that is nothing, so the sentence goes into that message."""
    fake_seed.script(Reply(content="\n" * 40, prompt_tokens=10, completion_tokens=40))
    replies = await answered(bot, slack, "hello")
    assert [r.visible_text.strip() for r in replies] == [
        "The model returned an empty answer; please rephrase and try again."], [r.visible_text for r in replies]


async def test_a_message_left_at_msg_too_long_loses_a_stop_button_slack_kept(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    """The first message is stopped as it stands and the rest goes on in a new message; where Slack keeps the
    stream's blocks chunks, the Stop button the left message still shows is edited out then (it is not edited
    again)."""
    slack.config.stream_keeps_chunk_blocks = True
    fake_seed.script(Reply(content=" ".join(f"word{i}" for i in range(400)), chunk_chars=20, chunk_delay=0.02,
                           prompt_tokens=10, completion_tokens=400))
    mention = slack.events.app_mention("write four hundred words")
    async with slack.sender(bot.events_url) as sender:
        assert (await sender.post_event(mention)).status == 200
        await slack.wait_for(lambda: any("word1" in (m.markdown_text or "")
                                         for m in bot_replies(slack, "C1", mention["event"]["ts"])), 10)
        slack.inject_error("chat.appendStream", "msg_too_long", times=1)
    await bot.idle(timeout=60)
    replies = bot_replies(slack, "C1", mention["event"]["ts"])
    assert len(replies) == 2 and all(m.stream_state in (None, "stopped") for m in replies)
    assert replies[0].blocks and STOP_ACTION not in json.dumps(replies[0].blocks)
    shown = replies[0].visible_text + answer_part(replies[1].visible_text)
    assert shown.split() == [f"word{i}" for i in range(400)]

"""Slack refusing an answer for good, end to end (`seedbot run` against the fake Slack and the fake Seed model):
a channel the bot may not post in, a message deleted while it streams, a diff to review in a refused channel.
Each ends with no model call or a call stopped at once, the books settled by the cost rule, the message failed
with Slack's error code, nothing more posted where Slack refused, and one warning in the log. A transient Slack
error is not a refusal: the answer falls back and arrives."""

from __future__ import annotations

import logging

import pytest

from tests.books import Books, read_books
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack
from tests.slack.harness import RunningBot, answer_part, bot_replies, wait_for_answer
from tests.slack.test_slack_agent import THREE_FILE_DIFF

POSTS = ("chat.postMessage", "chat.startStream", "chat.appendStream", "chat.stopStream", "chat.update")


async def mention(bot: RunningBot, slack: FakeSlack, text: str) -> str:
    """Mentions the bot in C1; returns the mention's ts (the thread the answer goes to)."""
    event = slack.events.app_mention(text)
    async with slack.sender(bot.events_url) as sender:
        assert (await sender.post_event(event)).status == 200
    return str(event["event"]["ts"])


async def settled(bot: RunningBot) -> Books:
    """The books once the answer's task has ended."""
    await bot.idle()
    assert bot.process.core is not None
    return await read_books(bot.process.core.db)


def bot_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """seedbot's own warnings and errors (the fake Seed server logs the connection the bot dropped)."""
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.WARNING and r.name.startswith(("adapters.", "bot."))]


def posts(slack: FakeSlack) -> list[tuple[str, str | None]]:
    """(method, Slack's error or None) of every call that posts or changes a message."""
    return [(c.method, c.error) for c in slack.calls() if c.method in POSTS]


async def test_a_channel_the_bot_is_not_in_costs_no_model_call(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed, caplog: pytest.LogCaptureFixture) -> None:
    slack.refuse_posts("C1", "not_in_channel")
    await mention(bot, slack, "what is a monad?")
    books = await settled(bot)

    assert fake_seed.requests == []  # the model was never asked
    [row] = books.ledger
    assert row.status == "failed" and row.cost_nanos == 0 and row.reserved_nanos > 0 and not row.usage_known
    assert row.error == "SinkBroken: Slack refused chat.startStream in channel C1: not_in_channel"
    assert books.balanced() and books.active_reservations == []  # the reservation was released
    assert [(m.role, m.status) for m in books.messages] == [("user", "failed")]
    # One try, the stream that opens the answer; no post instead, no sentence after it.
    assert posts(slack) == [("chat.startStream", "not_in_channel")]
    (warning,) = bot_warnings(caplog)
    assert "C1" in warning and "not_in_channel" in warning


async def test_an_answer_deleted_while_it_streams_stops_there(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed, caplog: pytest.LogCaptureFixture) -> None:
    fake_seed.script(Reply(content="word " * 600, chunk_chars=20, chunk_delay=0.02))
    ts = await mention(bot, slack, "explain monads at length")
    streamed = await slack.wait_for(
        lambda: next((m for m in bot_replies(slack, "C1", ts) if m.visible_text.strip()), None))
    slack.delete_message("C1", streamed.ts)  # someone deleted the answer mid-stream
    books = await settled(bot)
    await slack.wait_for(lambda: fake_seed.requests[0].client_closed)  # the model's stream was cut, not read out

    assert bot_replies(slack, "C1", ts) == []  # the rest was not posted again
    assert posts(slack)[-1] == ("chat.appendStream", "message_not_found")
    assert not any(method in ("chat.postMessage", "chat.update") for method, _ in posts(slack))
    [row] = books.ledger
    # Sent, no usage reported: the cost rule charges the reservation; nothing claims an ok answer.
    assert row.status == "failed" and not row.usage_known and row.cost_nanos == row.reserved_nanos > 0
    assert row.error == f"SinkBroken: Slack refused chat.appendStream of message {streamed.ts} in channel C1: " \
                        "message_not_found"
    assert books.balanced()
    assert [(m.role, m.status) for m in books.messages] == [("user", "failed"), ("assistant", "failed")]
    (warning,) = bot_warnings(caplog)
    assert "C1" in warning and "message_not_found" in warning


async def test_a_transient_error_on_the_stream_falls_back_to_posting(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(content="Posted instead."))
    slack.inject_error("chat.startStream", "internal_error")
    ts = await mention(bot, slack, "hello?")
    [reply] = await wait_for_answer(slack, "C1", ts)
    books = await settled(bot)

    assert answer_part(reply.visible_text) == "Posted instead."
    assert [m for m, _ in posts(slack)][:2] == ["chat.startStream", "chat.postMessage"]
    [row] = books.ledger
    assert row.status == "ok" and row.error is None and row.usage_known
    assert books.user_statuses == ["ok"]


async def test_a_diff_pasted_in_a_refused_channel_makes_no_review_call(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed, caplog: pytest.LogCaptureFixture) -> None:
    slack.refuse_posts("C1", "restricted_action")  # a workspace setting lets only admins post there
    await mention(bot, slack, f"review this\n```diff\n{THREE_FILE_DIFF}```")
    books = await settled(bot)

    assert fake_seed.requests == []
    assert books.ledger and all(r.kind == "review" and r.status == "failed" and r.cost_nanos == 0
                                for r in books.ledger)
    assert all(r.error is not None and r.error.endswith("in channel C1: restricted_action") for r in books.ledger)
    assert books.balanced() and books.active_reservations == []
    assert books.user_statuses == ["failed"]
    assert posts(slack) == [("chat.startStream", "restricted_action")]
    (warning,) = bot_warnings(caplog)
    assert "C1" in warning and "restricted_action" in warning


async def test_an_assistant_thread_slack_refuses_costs_no_model_call(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed, caplog: pytest.LogCaptureFixture) -> None:
    thread_ts = slack.clock.next()
    started = slack.events.assistant_thread_started(thread_ts)
    async with slack.sender(bot.events_url) as sender:
        await sender.post_event(started)
        await slack.wait_for(lambda: slack.assistant_thread("D1", thread_ts).prompts)
        # The pane's first call for an answer is its "thinking…" status: Slack says the channel is gone.
        slack.inject_error("assistant.threads.setStatus", "channel_not_found", times=None)
        await sender.post_event(slack.events.message("what is a monad?", thread_ts=thread_ts))
    books = await settled(bot)

    assert fake_seed.requests == []  # the model was never asked
    [row] = books.ledger
    assert row.status == "failed" and row.cost_nanos == 0 and row.error is not None
    assert row.error.endswith("Slack refused assistant.threads.setStatus in channel D1: channel_not_found")
    assert books.balanced() and books.active_reservations == [] and books.user_statuses == ["failed"]
    assert posts(slack) == []  # nothing tried where Slack refused
    (warning,) = bot_warnings(caplog)
    assert "D1" in warning and "channel_not_found" in warning

"""A new message Slack does not take this once (internal_error, ratelimited past the client's retries) is not
posted again (Slack may have posted it anyway), but it ends the answer truthfully: the person reads one sentence
saying so, the model is not asked for more, and the books call the answer failed, not ok."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.common.delivery import INCOMPLETE
from adapters.slack.sink import SlackSink
from adapters.slack.transport import StreamingSwitch, Target
from bot.chat.streamed import NOT_POSTED
from bot.domain import Footer, Usage
from bot.ports import SinkBroken
from tests.books import read_books
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack
from tests.review.test_review_service import review_reply, small_diff
from tests.review.test_review_support import GitRepo, added_lines_in_prompt
from tests.slack.harness import RunningBot, bot_replies


async def mention(bot: RunningBot, slack: FakeSlack, text: str) -> str:
    event = slack.events.app_mention(text)
    async with slack.sender(bot.events_url) as sender:
        assert (await sender.post_event(event)).status == 200
    return str(event["event"]["ts"])


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


async def test_the_first_post_of_an_answer_failing_once_ends_in_a_sentence_and_a_failed_answer(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed, caplog: pytest.LogCaptureFixture) -> None:
    slack.config.streaming_enabled = False  # the app posts and edits
    slack.inject_error("chat.postMessage", "internal_error", times=1)
    fake_seed.script(Reply(content="The answer is 42.", prompt_tokens=10, completion_tokens=100))
    ts = await mention(bot, slack, "what is the answer?")
    await bot.idle(timeout=30)
    assert bot.process.core is not None
    books = await read_books(bot.process.core.db)
    assert [m.visible_text for m in bot_replies(slack, "C1", ts)] == [NOT_POSTED]
    assert [r.status for r in books.ledger] == ["failed"] and books.user_statuses == ["failed"]
    assert "internal_error" in (books.ledger[0].error or "")
    assert books.ledger[0].cost_nanos > 0  # the model answered: its usage is paid
    said = [w for w in warnings(caplog) if "did not take" in w]
    assert len(said) == 1 and "chat.postMessage in channel C1 (internal_error)" in said[0], warnings(caplog)


async def test_a_new_message_failing_mid_answer_stops_the_model_and_says_so(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed, caplog: pytest.LogCaptureFixture) -> None:
    """Streaming unavailable: the answer is posted, then an edit fails, and so does the new message the rest
    falls back to. The model's stream is closed there, and the answer ends with a sentence."""
    slack.config.streaming_enabled = False
    fake_seed.script(Reply(content=" ".join(f"word{i}" for i in range(400)), chunk_chars=12, chunk_delay=0.02,
                           prompt_tokens=10, completion_tokens=400))
    ts = await mention(bot, slack, "write four hundred words")
    await slack.wait_for(lambda: bot_replies(slack, "C1", ts) or None, timeout=10)
    slack.inject_error("chat.update", "internal_error", times=1)
    slack.inject_error("chat.postMessage", "internal_error", times=1)
    await bot.idle(timeout=30)
    assert bot.process.core is not None
    books = await read_books(bot.process.core.db)
    replies = bot_replies(slack, "C1", ts)
    assert replies[-1].visible_text == NOT_POSTED and "word399" not in "".join(m.visible_text for m in replies)
    stored = [m.content for m in books.messages if m.role == "assistant"]
    assert stored and "word399" not in stored[0]  # the model was not read to its end
    assert [r.status for r in books.ledger] == ["failed"]
    assert books.active_reservations == [] and books.balanced()
    assert len([w for w in warnings(caplog) if "did not take" in w]) == 1, warnings(caplog)


async def test_the_last_write_failing_once_leaves_the_answer_shown_so_far_and_says_it_is_incomplete(
        slack: FakeSlack, client: AsyncWebClient) -> None:
    """Streaming unavailable: the first text is posted, the final chat.update fails, and so does the post of
    the rest that falls back from it. finish posts INCOMPLETE and raises, so the core books the answer failed."""
    slack.config.streaming_enabled = False
    parent = slack.events.app_mention("q")["event"]["ts"]
    sink = SlackSink(client, Target("C1", parent, "U1", "T1"), switch=StreamingSwitch(), interval=0.2)
    await sink.append("First part.\n")  # the first text is posted at once
    await sink.append("Second part.\n")  # the next write waits for the interval: it is the final one
    slack.inject_error("chat.update", "internal_error")
    slack.inject_error("chat.postMessage", "internal_error")
    with pytest.raises(SinkBroken, match="did not take chat.postMessage"):
        await sink.finish(Footer(usage=Usage(prompt_tokens=1, completion_tokens=1), cost_nanos=1))
    assert [m.visible_text for m in slack.thread("C1", parent) if m.is_bot] == ["First part.\n", INCOMPLETE]


async def test_a_review_whose_post_slack_does_not_take_says_so_and_is_booked_failed(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed, tmp_path: Path) -> None:
    """Streaming unavailable: the review is posted in one chat.postMessage, which Slack does not take once. The
    person reads NOT_POSTED; the review's call and its turn say failed (the money as booked)."""
    slack.config.streaming_enabled = False
    diff = small_diff(GitRepo(tmp_path / "repo"))

    def answer(body: dict) -> Reply:
        (path, line), *_ = added_lines_in_prompt(body["messages"][-1]["content"])
        return review_reply([{"path": path, "line": line, "severity": "major", "title": "Subtraction",
                              "explanation": "`add` subtracts."}])

    fake_seed.responder = answer
    slack.inject_error("chat.postMessage", "internal_error", times=1)
    ts = await mention(bot, slack, f"review please\n```diff\n{diff}```")
    await bot.idle(timeout=30)
    assert bot.process.core is not None
    books = await read_books(bot.process.core.db)
    assert [m.visible_text for m in bot_replies(slack, "C1", ts)] == [NOT_POSTED]
    assert books.user_statuses == ["failed"] and [r.status for r in books.ledger] == ["failed"]
    assert "did not take chat.postMessage" in (books.ledger[0].error or "") and books.balanced()

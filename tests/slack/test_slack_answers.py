"""The Slack adapter end to end: a real BotProcess, the fake Slack, the fake Seed model."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.chat.tokens import count_tokens
from bot.config import Settings
from tests.books import read_books
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack
from tests.slack.harness import (
    RunningBot,
    answer_part,
    bot_replies,
    mention_answered,
    running_bot,
    wait_for_answer,
)

ANSWER = "Use `git rebase -i HEAD~3`, then mark the commits to squash with `s`.\n\n```bash\ngit push -f\n```"


async def test_mention_is_acked_at_once_and_answered_by_a_stream_in_its_thread(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(content=ANSWER, first_token_delay=0.5, chunk_chars=8, chunk_delay=0.01))
    mention = slack.events.app_mention("how do I squash my last three commits?")
    async with slack.sender(bot.events_url) as sender:
        delivery = await sender.post_event(mention)
    assert delivery.status == 200 and not delivery.timed_out
    assert delivery.elapsed < 0.5  # acknowledged before the model even started answering

    ts = mention["event"]["ts"]
    [reply] = await wait_for_answer(slack, "C1", ts)
    assert reply.thread_ts == ts and reply.stream_state == "stopped"
    assert answer_part(slack.final_text("C1", reply.ts)) == ANSWER
    assert reply.visible_text.endswith("_") and " tokens · $" in reply.visible_text.rsplit("\n", 1)[-1]

    start = slack.calls("chat.startStream")[0]
    assert start.params["recipient_user_id"] == "U1" and start.params["recipient_team_id"] == "T1"
    # The stream opens before the model is asked, with the Stop button alone (a blocks chunk); the first text
    # follows in an append, as soon as it comes.
    assert "text" not in start.params and "markdown_text" not in start.params
    assert [c["type"] for c in start.params["chunks"]] == ["blocks"]
    assert start.params["chunks"][0]["blocks"][0]["elements"][0]["action_id"] == "seedbot_stop"
    assert start.at < fake_seed.requests[0].at
    assert slack.calls("chat.appendStream")[0].params["markdown_text"]
    # The finished answer carries the feedback buttons, in the stopStream call made anyway.
    [feedback] = slack.calls("chat.stopStream")[-1].params["blocks"]
    assert feedback["type"] == "context_actions" and feedback["elements"][0]["type"] == "feedback_buttons"
    prompt = fake_seed.completions[-1].body["messages"]
    assert prompt[-1] == {"role": "user", "content": "how do I squash my last three commits?"}
    assert [c.method for c in slack.calls()].count("users.info") == 1


async def test_thread_follow_up_without_mention_continues_the_conversation(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(content="First answer."), Reply(content="Second answer."))
    async with slack.sender(bot.events_url) as sender:
        ts = await mention_answered(sender, slack, "what is a rebase?")
        follow_up = slack.events.message("and how is it different from merge?", channel="C1",
                                         channel_type="channel", thread_ts=ts)
        await sender.post_event(follow_up)
        replies = await wait_for_answer(slack, "C1", ts, count=2)

    assert [answer_part(m.visible_text) for m in replies] == ["First answer.", "Second answer."]
    prompt = fake_seed.completions[-1].body["messages"]
    assert [(m["role"], m["content"]) for m in prompt[1:]] == [
        ("user", "what is a rebase?"), ("assistant", "First answer."),
        ("user", "and how is it different from merge?")]


async def test_thread_messages_the_bot_is_not_part_of_get_no_answer(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(content="Answer."))
    mention = slack.events.app_mention("question")
    ts = mention["event"]["ts"]
    async with slack.sender(bot.events_url) as sender:
        # A thread of people the bot was never asked in, and a top-level message without a mention.
        other = slack.events.message("unrelated", channel="C1", channel_type="channel", thread_ts="1600000000.000100")
        top = slack.events.message("lunch?", channel="C1", channel_type="channel")
        for payload in (other, top):
            assert (await sender.post_event(payload)).status == 200
        await sender.post_event(mention)
        await wait_for_answer(slack, "C1", ts)
        # In the bot's thread: a message to someone else, and another bot's message, are left alone.
        aside = slack.events.message("<@U2> can you check?", channel="C1", channel_type="channel", thread_ts=ts)
        robot = slack.events.message("build passed", channel="C1", channel_type="channel", thread_ts=ts,
                                     bot_id="B0CI", subtype="bot_message")
        for payload in (aside, robot):
            assert (await sender.post_event(payload)).status == 200
    await bot.idle()
    assert len(fake_seed.completions) == 1
    assert len(bot_replies(slack, "C1", ts)) == 1


async def test_mention_inside_a_thread_is_answered_once_although_slack_sends_two_events(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(content="One."), Reply(content="Two."))
    async with slack.sender(bot.events_url) as sender:
        ts = await mention_answered(sender, slack, "first")
        again = slack.events.app_mention("second", thread_ts=ts)
        twin = slack.events.event_callback(dict(again["event"], type="message", channel_type="channel"))
        await sender.post_event(twin)
        await sender.post_event(again)
        await wait_for_answer(slack, "C1", ts, count=2)
    await bot.idle()
    assert len(fake_seed.completions) == 2
    assert [answer_part(m.visible_text) for m in bot_replies(slack, "C1", ts)] == ["One.", "Two."]


async def test_direct_message_is_answered_in_the_dm_and_a_reply_there_continues(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(content="Use `git reset --soft HEAD~1`."), Reply(content="Yes, they stay staged."))
    dm = slack.events.message("how do I undo my last commit?", user="U2")
    ts = dm["event"]["ts"]
    async with slack.sender(bot.events_url) as sender:
        await sender.post_event(dm)
        [reply] = await wait_for_answer(slack, "D2", ts)
        assert answer_part(reply.visible_text) == "Use `git reset --soft HEAD~1`."
        follow = slack.events.message("and my changes stay?", user="U2", thread_ts=ts)
        await sender.post_event(follow)
        await wait_for_answer(slack, "D2", ts, count=2)
    prompt = fake_seed.completions[-1].body["messages"]
    assert [m["content"] for m in prompt[1:]] == [
        "how do I undo my last commit?", "Use `git reset --soft HEAD~1`.", "and my changes stay?"]
    # chat.startStream in a DM is accepted with or without recipients; the bot passes them anyway.
    assert slack.calls("chat.startStream")[0].params["channel"] == "D2"
    await bot.idle()
    assert slack.calls("conversations.info") == []  # a DM has no name to look up


async def test_assistant_pane_suggests_prompts_shows_status_and_answers_in_its_thread(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(content="A KeyError means the key is missing.", first_token_delay=0.3))
    thread_ts = slack.clock.next()
    started = slack.events.assistant_thread_started(
        thread_ts, context={"channel_id": "C1", "team_id": "T1", "enterprise_id": None})
    async with slack.sender(bot.events_url) as sender:
        assert (await sender.post_event(started)).status == 200
        pane = await slack.wait_for(lambda: slack.assistant_thread("D1", thread_ts).prompts)
        assert 2 <= len(pane) <= 4 and all(p["title"] and p["message"] for p in pane)

        question = slack.events.message("what does KeyError: 'id' mean?", thread_ts=thread_ts)
        assert (await sender.post_event(question)).status == 200
        status = await slack.wait_for(lambda: slack.assistant_thread("D1", thread_ts).status)
        assert status == "thinking…"
        [reply] = await wait_for_answer(slack, "D1", thread_ts)
    assert answer_part(reply.visible_text) == "A KeyError means the key is missing."
    assert slack.assistant_thread("D1", thread_ts).status == ""  # cleared once the answer appeared
    set_status = slack.calls("assistant.threads.setStatus")
    assert set_status[0].params["status"] == "thinking…"
    assert set_status[0].at < slack.calls("chat.startStream")[0].at


def thousand_token_answer() -> str:
    words = ("The retry helper backs off exponentially, so transient failures resolve without "
             "hammering the service, while permanent errors surface after the last attempt. ").split(" ")
    text, i = "", 0
    while count_tokens(text) < 1_000:
        text += words[i % len(words)] + " "
        i += 1
    return text.strip()


async def test_a_streamed_1000_token_answer_costs_at_most_five_web_api_calls(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    content = thousand_token_answer()
    assert 995 <= count_tokens(content) <= 1_005
    # About 1,000 tokens a second: the answer streams for ~2 s, so pacing decides the call count.
    fake_seed.script(Reply(content=content, chunk_chars=24, chunk_delay=0.01))
    before = len(slack.calls())
    mention = slack.events.app_mention("explain the retry helper")
    started = time.monotonic()
    async with slack.sender(bot.events_url) as sender:
        await sender.post_event(mention)
        [reply] = await wait_for_answer(slack, "C1", mention["event"]["ts"], timeout=15)
    streamed_for = time.monotonic() - started
    # The channel's name (conversations.info) is looked up once a day per channel, not per answer.
    calls = [c.method for c in slack.calls()[before:] if c.method != "conversations.info"]
    print(f"\nWeb API calls for a streamed {count_tokens(content)}-token answer "
          f"({streamed_for:.1f} s): {len(calls)} {calls}")
    assert answer_part(reply.visible_text) == content
    assert streamed_for > 1.0  # long enough that an unbatched stream would have made many more calls
    assert len(calls) <= 5
    assert calls[0] == "users.info" and calls[1] == "chat.startStream" and calls[-1] == "chat.stopStream"


async def test_a_bot_token_in_the_environment_starts_the_bot_without_bolt_warnings(
        slack: FakeSlack, settings_for: Callable[..., Settings], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # Bolt reads SLACK_BOT_TOKEN from the environment itself and warned that it "will be unused".
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack.config.bot_token)
    caplog.set_level(logging.WARNING)
    async with running_bot(slack, settings_for, tmp_path):
        pass
    assert [r.getMessage() for r in caplog.records if r.name.startswith("slack_bolt")] == []


async def test_two_questions_answered_at_once_keep_each_answer_after_its_question_in_later_prompts(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    """A second question asked in a thread while the first is answered is answered at once, so the answers are
    written in the other order; later prompts still show each answer after its question, as the thread does."""
    fake_seed.script(
        Reply(content="Answer zero."),
        # Q1's answer streams slowly; Q2, asked while it streams, is answered at once.
        Reply(content="ANSWER-ONE is about rebasing. " * 4, chunk_chars=8, chunk_delay=0.05),
        Reply(content="ANSWER-TWO is about merging."),
        Reply(content="Answer three."),
    )
    async with slack.sender(bot.events_url) as sender:
        ts = await mention_answered(sender, slack, "question zero")
        q1 = slack.events.app_mention("QUESTION-ONE: how do I rebase?", thread_ts=ts)
        await sender.post_event(q1)
        await slack.wait_for(lambda: len(fake_seed.completions) >= 2 or None, 5)
        q2 = slack.events.app_mention("QUESTION-TWO: how do I merge?", thread_ts=ts)
        await sender.post_event(q2)
        await bot.idle(15)
        assert len(bot_replies(slack, "C1", ts)) == 3
        q3 = slack.events.message("QUESTION-THREE: which is better?", channel="C1", channel_type="channel",
                                  thread_ts=ts)
        await sender.post_event(q3)
        await wait_for_answer(slack, "C1", ts, count=4)
    await bot.idle()

    books = await read_books(bot.process.core.db)
    assert books.balanced()
    prompt = fake_seed.completions[-1].body["messages"]
    turns = [(m["role"], m["content"].split(" ")[0]) for m in prompt[1:]]
    # Each answer follows the question it answered, as the person saw them in the thread.
    assert turns == [
        ("user", "question"), ("assistant", "Answer"),
        ("user", "QUESTION-ONE:"), ("assistant", "ANSWER-ONE"),
        ("user", "QUESTION-TWO:"), ("assistant", "ANSWER-TWO"),
        ("user", "QUESTION-THREE:"),
    ], turns

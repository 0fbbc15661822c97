"""Issue 14 through the fake Slack: stop, feedback, thinking steps, agent view (a real BotProcess,
the fake Slack, the fake Seed model)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from bot.chat.controls import STOP_TOO_LATE
from bot.storage.tables import AnswerFeedback, UsageEntry
from tests.cli.test_cli_ask import run_cli
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack, Message
from tests.slack.harness import RunningBot, answer_part, bot_replies, wait_for_answer

SLOW = Reply(content=" ".join(f"word{i}" for i in range(600)), chunk_chars=12, chunk_delay=0.02)


def streaming_reply(slack: FakeSlack, channel: str, thread_ts: str) -> Message | None:
    return next((m for m in bot_replies(slack, channel, thread_ts) if m.stream_state == "streaming"
                 and "word1" in (m.markdown_text or "")), None)


async def ledger(bot: RunningBot) -> list[UsageEntry]:
    assert bot.process.core is not None
    async with bot.process.core.db.session() as session:
        return list(await session.scalars(select(UsageEntry).order_by(UsageEntry.id)))


async def test_stop_ends_the_answer_cancels_the_model_call_and_books_less_than_the_reservation(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    fake_seed.script(SLOW)
    mention = slack.events.app_mention("write me six hundred words")
    ts = mention["event"]["ts"]
    async with slack.sender(bot.events_url) as sender:
        await sender.post_event(mention)
        reply = await slack.wait_for(lambda: streaming_reply(slack, "C1", ts), timeout=10)

        # Someone else may not stop it: they are told so, and the answer goes on.
        refused = await sender.post_interaction(slack.click("C1", reply.ts, "seedbot_stop", user="U2"))
        assert refused.status == 200
        note = await slack.wait_for(lambda: slack.response_url_posts, timeout=5)
        assert note[0].body["response_type"] == "ephemeral" and "Only the person who asked" in note[0].body["text"]
        assert reply.stream_state == "streaming"

        before = len(slack.calls())
        clicked_at = time.monotonic()
        clicked = await sender.post_interaction(slack.click("C1", reply.ts, "seedbot_stop", user="U1"))
        assert clicked.status == 200
        # Well within 1 s in practice; the timeout is generous so a loaded machine does not flake.
        await slack.wait_for(lambda: reply.stream_state == "stopped", timeout=5)
        print(f"\nStop click to stopped stream: {time.monotonic() - clicked_at:.3f} s; "
              f"Web API calls after the click: {[c.method for c in slack.calls()[before:]]}")
    assert "stopped by @alice" in reply.visible_text.rsplit("\n", 1)[-1]
    shown = answer_part(reply.visible_text)
    assert shown.startswith("word0 word1") and "word599" not in shown
    await slack.wait_for(lambda: fake_seed.requests[-1].client_closed, timeout=5)
    await bot.idle()
    [row] = await ledger(bot)
    assert row.status == "stopped" and not row.usage_known
    assert 0 < row.cost_nanos < row.reserved_nanos
    # The finished (stopped) answer still carries the feedback buttons.
    assert reply.blocks and reply.blocks[-1]["type"] == "context_actions"


async def test_stop_clicked_while_the_last_words_are_posted_is_told_the_answer_has_finished(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    assert bot.process.core is not None
    fake_seed.script(Reply(content="A complete short answer.", prompt_tokens=10, completion_tokens=5))
    slack.set_latency(2.0, "chat.stopStream")  # the finishing write takes a while
    mention = slack.events.app_mention("hello")
    ts = mention["event"]["ts"]
    async with slack.sender(bot.events_url) as sender:
        await sender.post_event(mention)
        [reply] = await slack.wait_for(lambda: bot_replies(slack, "C1", ts) or None, timeout=10)
        for _ in range(200):  # settled: its ledger row is written just before the last write
            if await ledger(bot):
                break
            await asyncio.sleep(0.05)
        clicked = await sender.post_interaction(slack.click("C1", reply.ts, "seedbot_stop", user="U1"))
        assert clicked.status == 200
        note = await slack.wait_for(lambda: slack.response_url_posts, timeout=5)
        await bot.idle(timeout=15)
    assert note[0].body["text"] == STOP_TOO_LATE
    assert "stopped by" not in reply.visible_text and [r.status for r in await ledger(bot)] == ["ok"]


async def test_the_native_stop_control_of_an_agent_session_stops_the_answer(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    fake_seed.script(SLOW)
    dm = slack.events.message("write me six hundred words", user="U1")
    ts = dm["event"]["ts"]
    async with slack.sender(bot.events_url) as sender:
        await sender.post_event(dm)
        reply = await slack.wait_for(lambda: streaming_reply(slack, "D1", ts), timeout=10)
        stopped = slack.stop_agent_session("D1", ts, user="U1")
        assert stopped["event"]["streaming_message_ts"] == [reply.ts]
        await sender.post_event(stopped)
        # Slack ended the stream itself, so the footer arrives as an edit of the same message.
        await slack.wait_for(lambda: "stopped by @alice" in reply.visible_text, timeout=5)
        await slack.wait_for(lambda: slack.state.sessions.get(("D1", ts)) == "active", timeout=5)
    assert answer_part(reply.visible_text).startswith("word0 word1")
    assert reply.blocks and reply.blocks[-1]["type"] == "context_actions"
    await slack.wait_for(lambda: fake_seed.requests[-1].client_closed, timeout=5)
    # What was said before the stop stays in the conversation: a follow-up's prompt carries it.
    fake_seed.script(Reply(content="Continuing."))
    async with slack.sender(bot.events_url) as sender:
        follow = slack.events.message("go on", user="U1", thread_ts=ts)
        await sender.post_event(follow)
        await wait_for_answer(slack, "D1", ts, count=2)
    prompt = fake_seed.completions[-1].body["messages"]
    assert [m["role"] for m in prompt[1:]] == ["user", "assistant", "user"]
    assert prompt[2]["content"].startswith("word0 word1") and prompt[3]["content"] == "go on"


async def test_feedback_click_is_stored_last_click_wins_and_counted_in_seedbot_report(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed, tmp_path: Path) -> None:
    fake_seed.script(Reply(content="Use a set."), Reply(content="Use a dict."))
    first, second = slack.events.app_mention("dedupe a list?"), slack.events.app_mention("count words?")
    async with slack.sender(bot.events_url) as sender:
        for mention in (first, second):
            await sender.post_event(mention)
        [one] = await wait_for_answer(slack, "C1", first["event"]["ts"])
        [two] = await wait_for_answer(slack, "C1", second["event"]["ts"])
        clicks = [(one, "U1", False), (one, "U1", True), (two, "U2", False)]
        for count, (answer, user, positive) in enumerate(clicks, start=1):
            await sender.post_interaction(slack.click("C1", answer.ts, "seedbot_feedback", user=user,
                                                      positive=positive))
            posts = await slack.wait_for(lambda n=count: len(slack.response_url_posts) >= n
                                         and slack.response_url_posts)
    assert all(p.body["response_type"] == "ephemeral" and p.body["text"].startswith("Thanks") for p in posts)
    await bot.idle()
    assert bot.process.core is not None
    async with bot.process.core.db.session() as session:
        rows = list(await session.scalars(select(AnswerFeedback).order_by(AnswerFeedback.id)))
    assert [(r.user_id, r.helpful) for r in rows] == [("U1", True), ("U2", False)]  # U1's last click won
    assert rows[0].answer_key == f"slack:T1:C1:{first['event']['ts']}"

    env = {"DATABASE_URL": bot.process.settings.database_url}
    today = datetime.now(UTC).date().isoformat()
    code, out, err = await run_cli(fake_seed, tmp_path, "report", "--date", today, env=env)
    assert code == 0, err
    assert "2 answers rated: 1 helpful, 1 not" in out


async def test_web_search_answer_shows_its_step_as_task_updates_in_the_stream(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(content="Python 3.13 is the newest.", first_token_delay=0.3))
    mention = slack.events.app_mention("what is the newest Python? --web")
    before = len(slack.calls())
    async with slack.sender(bot.events_url) as sender:
        await sender.post_event(mention)
        [reply] = await wait_for_answer(slack, "C1", mention["event"]["ts"])
    assert fake_seed.completions[-1].body["enable_web_search"] is True
    tasks = [(c["id"], c["title"], c["status"]) for c in reply.chunks if c["type"] == "task_update"]
    assert tasks == [("web", "Searching the web", "in_progress"), ("web", "Searching the web", "complete")]
    calls = [c.method for c in slack.calls()[before:]]
    print(f"\nWeb API calls for a web-search answer with its task updates: {len(calls)} {calls}")
    assert len(calls) <= 6
    # The stream opens with the Stop button alone, before the model is asked; the step goes at once after it,
    # before any text.
    start = slack.calls("chat.startStream")[-1].params
    assert [c["type"] for c in start["chunks"]] == ["blocks"]
    first = slack.calls("chat.appendStream")[0].params
    assert first["chunks"][0]["type"] == "task_update" and "markdown_text" not in first
    assert answer_part(reply.visible_text) == "Python 3.13 is the newest."


THREE_FILE_DIFF = "\n".join([
    "diff --git a/src/app.py b/src/app.py", "--- a/src/app.py", "+++ b/src/app.py", "@@ -1,2 +1,2 @@",
    " import os", "-DEBUG = True", "+DEBUG = False",
    "diff --git a/src/db.py b/src/db.py", "--- a/src/db.py", "+++ b/src/db.py", "@@ -1,2 +1,2 @@",
    " import sqlite3", "-TIMEOUT = 5", "+TIMEOUT = 30",
    "diff --git a/src/web.py b/src/web.py", "--- a/src/web.py", "+++ b/src/web.py", "@@ -1,2 +1,2 @@",
    " import http", "-PORT = 80", "+PORT = 8080", ""])


async def test_a_three_file_review_shows_one_task_per_file_moving_to_complete(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    fake_seed.default_reply = Reply(content=json.dumps({"summary": "Config changes.", "risk": "low",
                                                        "findings": []}), first_token_delay=1.0)
    mention = slack.events.app_mention(f"review this\n```diff\n{THREE_FILE_DIFF}```")
    ts = mention["event"]["ts"]
    async with slack.sender(bot.events_url) as sender:
        await sender.post_event(mention)
        started = await slack.wait_for(lambda: next((m for m in bot_replies(slack, "C1", ts) if m.chunks), None))
        # A review's calls are not cancelled: the asker is told so, and the review finishes.
        await sender.post_interaction(slack.click("C1", started.ts, "seedbot_stop", user="U1"))
        [note] = await slack.wait_for(lambda: slack.response_url_posts)
        assert note.body["text"].startswith("A review cannot be stopped")
        [reply] = await wait_for_answer(slack, "C1", ts, timeout=15)
    tasks = [(c["title"], c["status"]) for c in reply.chunks if c["type"] == "task_update"]
    titles = [f"Reviewing src/{name}.py ({i} of 3)" for i, name in enumerate(("app", "db", "web"), start=1)]
    assert [t for t, s in tasks if s == "in_progress"] == titles
    assert [t for t, s in tasks if s == "complete"] == titles
    assert answer_part(reply.visible_text).startswith("**Code review**")


async def test_agent_view_dm_gets_prompts_and_the_viewed_channel_reaches_the_model(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(content="That channel discusses deploys."))
    async with slack.sender(bot.events_url) as sender:
        assert (await sender.post_event(slack.events.app_home_opened("U1", tab="home"))).status == 200
        assert (await sender.post_event(slack.events.app_home_opened("U1", tab="messages"))).status == 200
        prompts = await slack.wait_for(lambda: slack.dm_prompts("U1"))
        assert 2 <= len(prompts) <= 4 and all(p["title"] and p["message"] for p in prompts)
        call = slack.calls("assistant.threads.setSuggestedPrompts")[-1]
        assert "thread_ts" not in call.params  # agent view: thread_ts would make the call fail silently
        assert len(slack.calls("assistant.threads.setSuggestedPrompts")) == 1  # the Home tab gets none

        changed = slack.events.app_context_changed("U1", [{"type": "slack#/types/channel_id", "value": "C0DEPLOY",
                                                           "team_id": "T1"}])
        assert (await sender.post_event(changed)).status == 200
        dm = slack.events.message("what is this channel about?", user="U1")
        await sender.post_event(dm)
        [reply] = await wait_for_answer(slack, "D1", dm["event"]["ts"])
    assert reply.thread_ts == dm["event"]["ts"]  # the DM message starts a conversation in its thread
    question = fake_seed.completions[-1].body["messages"][-1]["content"]
    assert question.startswith("what is this channel about?")
    assert "The user is viewing Slack channel <#C0DEPLOY>." in question


async def test_where_streaming_is_unavailable_a_step_falls_back_to_the_assistant_status(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    slack.config.streaming_enabled = False
    fake_seed.script(Reply(content="Python 3.13.", first_token_delay=0.3))
    thread_ts = slack.clock.next()
    started = slack.events.assistant_thread_started(thread_ts)
    async with slack.sender(bot.events_url) as sender:
        await sender.post_event(started)
        await slack.wait_for(lambda: slack.assistant_thread("D1", thread_ts).prompts)
        question = slack.events.message("newest Python? --web", thread_ts=thread_ts)
        await sender.post_event(question)
        [reply] = await wait_for_answer(slack, "D1", thread_ts)
    statuses = [c.params["status"] for c in slack.calls("assistant.threads.setStatus")]
    assert statuses[:2] == ["searching the web…", "Searching the web"]
    assert not reply.chunks and answer_part(reply.visible_text) == "Python 3.13."
    assert reply.blocks and reply.blocks[-1]["type"] == "context_actions"  # feedback on a posted answer too


async def test_where_streaming_is_unavailable_the_posted_answer_carries_the_stop_button(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    slack.config.streaming_enabled = False
    fake_seed.script(SLOW)
    mention = slack.events.app_mention("write me six hundred words")
    ts = mention["event"]["ts"]

    def posted() -> Message | None:
        return next((m for m in bot_replies(slack, "C1", ts) if m.blocks and "word1" in m.visible_text), None)

    async with slack.sender(bot.events_url) as sender:
        await sender.post_event(mention)
        reply = await slack.wait_for(posted, timeout=10)
        assert [b["type"] for b in reply.blocks] == ["markdown", "actions"]
        await sender.post_interaction(slack.click("C1", reply.ts, "seedbot_stop", user="U1"))
        await slack.wait_for(lambda: "stopped by @alice" in reply.visible_text, timeout=5)
    await slack.wait_for(lambda: fake_seed.requests[-1].client_closed, timeout=5)
    # The final edit replaced the Stop button with the feedback buttons, under the whole text.
    assert [b["type"] for b in reply.blocks] == ["markdown", "context_actions"]
    assert reply.blocks[0]["text"] == reply.visible_text
    assert not slack.calls("chat.appendStream")

"""Getting events in: signatures, Slack's retries over HTTP and Socket Mode, the /seed command."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.runtime import BotProcess
from bot.config import ConfigError, Settings
from tests.books import read_books
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack
from tests.slack.harness import answer_part, bot_replies, running_bot, wait_for_answer


async def test_an_event_delivered_four_times_over_http_is_answered_once(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    fake_seed.default_reply = Reply(content="Only once.", chunk_delay=0.01)
    async with running_bot(slack, settings_for, tmp_path) as bot:
        mention = slack.events.app_mention("are you there?")
        ts = mention["event"]["ts"]
        async with slack.sender(bot.events_url) as sender:
            first = await sender.post_event(mention)
            # Slack's retries: the same body again, marked X-Slack-Retry-Num 1..3, some of them concurrent.
            retries = await asyncio.gather(*(sender.post_event(mention, retry_num=n, retry_reason="http_timeout")
                                             for n in (1, 2, 3)))
        assert [d.status for d in (first, *retries)] == [200, 200, 200, 200]
        assert all(d.elapsed < 3 for d in (first, *retries))
        await wait_for_answer(slack, "C1", ts)
        await bot.idle()
        await asyncio.sleep(0.1)
    assert len(fake_seed.completions) == 1
    [reply] = bot_replies(slack, "C1", ts)
    assert answer_part(reply.visible_text) == "Only once."


async def test_socket_mode_answers_retried_envelopes_once_and_acks_each_at_once(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    fake_seed.default_reply = Reply(content="Over the socket.", first_token_delay=0.3)
    async with running_bot(slack, settings_for, tmp_path, socket_mode=True) as bot:
        assert bot.process.server is not None
        mention = slack.events.app_mention("socket?", channel="C7")
        ts = mention["event"]["ts"]
        envelopes = [await slack.socket_send_event(mention, retry_attempt=n, retry_reason="timeout" if n else "")
                     for n in range(4)]
        acks = [await slack.wait_for_ack(e) for e in envelopes]
        assert all(a.latency < 0.3 for a in acks)  # acked before the model's first token
        [reply] = await wait_for_answer(slack, "C7", ts)
        await bot.idle()
        assert answer_part(reply.visible_text) == "Over the socket."

        command = slack.events.slash_command("budget", channel_id="C7")
        envelope = await slack.socket_send_slash_command(command)
        assert (await slack.wait_for_ack(envelope)).latency < 1.0
        post = (await slack.wait_for(lambda: slack.response_url_posts))[0]
        assert post.url == command["response_url"] and post.body["response_type"] == "ephemeral"
        assert post.body["text"].startswith("Budget for slack:C7")
    assert len(fake_seed.completions) == 1
    assert len(bot_replies(slack, "C7", ts)) == 1
    assert slack.socket_connections == 0  # stop() closed the socket


async def test_forged_and_stale_requests_are_refused_before_any_handler(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    async with running_bot(slack, settings_for, tmp_path) as bot:
        async with slack.sender(bot.events_url) as sender:
            forged = await sender.post_event(slack.events.app_mention("forged"), signature="v0=" + "0" * 64)
            stale = await sender.post_event(slack.events.app_mention("stale"), timestamp=int(time.time()) - 310)
            unsigned_command = await sender.post_slash_command(slack.events.slash_command("spend"),
                                                               signature="v0=" + "1" * 64)
            assert (forged.status, stale.status, unsigned_command.status) == (401, 401, 401)
            # A properly signed, fresh request is accepted: the refusals were about the signature and age.
            challenge = await sender.post_event(slack.events.url_verification("c-42"))
            assert challenge.status == 200 and "c-42" in challenge.body
        await asyncio.sleep(0.2)
        await bot.idle()
    assert fake_seed.requests == []
    assert [m for m in slack.messages("C1") if m.is_bot] == []
    assert slack.response_url_posts == []


async def test_a_signed_event_is_acknowledged_before_bolt_dispatches_it_and_still_answered(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake_seed.default_reply = Reply(content="After the ack.")
    async with running_bot(slack, settings_for, tmp_path) as bot:
        dispatch = bot.adapter.app.async_dispatch
        released = asyncio.Event()

        async def held_dispatch(request: object) -> object:
            await released.wait()  # Bolt's middleware and listeners cannot run until the ack is back
            return await dispatch(request)

        monkeypatch.setattr(bot.adapter.app, "async_dispatch", held_dispatch)
        mention = slack.events.app_mention("early?")
        async with slack.sender(bot.events_url) as sender:
            delivery = await sender.post_event(mention)
        assert delivery.status == 200 and not delivery.timed_out
        released.set()
        await wait_for_answer(slack, "C1", mention["event"]["ts"])
    [reply] = bot_replies(slack, "C1", mention["event"]["ts"])
    assert answer_part(reply.visible_text) == "After the ack."


async def test_slash_command_over_http_answers_ephemerally(
        slack: FakeSlack, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    async with running_bot(slack, settings_for, tmp_path, SEEDBOT_ADMINS="slack:U1") as bot:
        async with slack.sender(bot.events_url) as sender:
            form = slack.events.slash_command("budget 2/day", user_id="U1", channel_id="C3")
            delivery = await sender.post_slash_command(form)
            assert delivery.status == 200 and delivery.elapsed < 1.0
            post = (await slack.wait_for(lambda: slack.response_url_posts))[0]
            assert post.body["response_type"] == "ephemeral"
            assert post.body["text"] == ("Budget for slack:C3 changed from $5/day to $2/day. "
                                         "It applies from the next message.")
            denied = slack.events.slash_command("budget 9/day", user_id="U2", channel_id="C3")
            await sender.post_slash_command(denied)
            second = (await slack.wait_for(lambda: slack.response_url_posts[1:]))[0]
            assert second.body["text"].startswith("Only seedbot admins can change budgets")


async def test_events_the_bot_does_not_handle_are_still_acknowledged(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    async with running_bot(slack, settings_for, tmp_path) as bot:
        async with slack.sender(bot.events_url) as sender:
            reaction = slack.events.event_callback({"type": "reaction_added", "user": "U1", "reaction": "eyes",
                                                    "item": {"type": "message", "channel": "C1", "ts": "1.2"},
                                                    "event_ts": slack.clock.next()})
            edited = slack.events.message("typo fixed", channel="C1", channel_type="channel",
                                          subtype="message_changed")
            for payload in (reaction, edited):
                delivery = await sender.post_event(payload)
                assert delivery.status == 200  # never 404, which Slack would retry
        await bot.idle()
    assert fake_seed.requests == []


async def test_after_stop_http_events_are_refused_for_redelivery(
        slack: FakeSlack, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    async with running_bot(slack, settings_for, tmp_path) as bot:
        await bot.adapter.stop()
        async with slack.sender(bot.events_url) as sender:
            assert (await sender.post_event(slack.events.app_mention("late"))).status == 503


async def test_a_retry_that_arrives_first_is_answered(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    """The first delivery may have gone to a replica that died: its retry must not be dropped."""
    fake_seed.default_reply = Reply(content="Answered on the retry.")
    async with running_bot(slack, settings_for, tmp_path) as bot:
        mention = slack.events.app_mention("anyone?")
        async with slack.sender(bot.events_url) as sender:
            assert (await sender.post_event(mention, retry_num=2, retry_reason="http_error")).status == 200
        [reply] = await wait_for_answer(slack, "C1", mention["event"]["ts"])
    assert answer_part(reply.visible_text) == "Answered on the retry."


async def test_stop_reaches_an_answer_whose_retry_overtook_the_first_delivery(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    """The first delivery waits out a rate-limited users.info while Slack's retry of the event prepares faster and
    claims the message; the first then finds it taken and drops out. The asker's Stop still stops the answer."""
    fake_seed.script(Reply(content=" ".join(f"word{i}" for i in range(600)), chunk_chars=12, chunk_delay=0.02))
    slack.inject_rate_limit("users.info", times=1, retry_after=1)
    async with running_bot(slack, settings_for, tmp_path) as bot:
        mention = slack.events.app_mention("write me six hundred words")
        ts = mention["event"]["ts"]
        async with slack.sender(bot.events_url) as sender:
            assert (await sender.post_event(mention)).status == 200
            await asyncio.sleep(0.3)
            assert (await sender.post_event(mention, retry_num=1, retry_reason="http_timeout")).status == 200
            reply = await slack.wait_for(lambda: next(
                (m for m in bot_replies(slack, "C1", ts) if "word1" in (m.markdown_text or "")), None), 10)
            await asyncio.sleep(1.2)  # the first delivery has found the message taken by now
            assert reply.stream_state == "streaming"
            assert (await sender.post_interaction(slack.click("C1", reply.ts, "seedbot_stop", user="U1"))).status == 200
        await bot.idle(20)
        books = await read_books(bot.process.core.db)
    assert "stopped by" in reply.visible_text.rsplit("\n", 1)[-1], reply.visible_text[-80:]
    assert not any("already finished" in str(n.body.get("text")) for n in slack.response_url_posts)
    assert [r.status for r in books.ledger] == ["stopped"] and books.balanced()


async def test_a_display_name_makes_no_link_or_mention_in_the_slash_commands_reply(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    """/seed's reply is mrkdwn, where a backslash escapes nothing and `<` starts a link or a mention whatever
    precedes it: a display name `<https://…|…>` in "Top users" must arrive as &lt;…&gt; (Slack's own escapes)."""
    slack.add_user("U7", "mallory", display_name="<https://evil.example/login|Session expired: sign in again>")
    fake_seed.default_reply = Reply(content="ok", prompt_tokens=1_000, completion_tokens=100)
    async with running_bot(slack, settings_for, tmp_path, SEEDBOT_ADMINS="slack:U1") as bot:
        async with slack.sender(bot.events_url) as sender:
            mention = slack.events.app_mention("question", user="U7")
            await sender.post_event(mention)
            await wait_for_answer(slack, "C1", mention["event"]["ts"])
            await bot.idle()
            await sender.post_slash_command(slack.events.slash_command("spend", user_id="U1", channel_id="C1"))
            [post] = await slack.wait_for(lambda: slack.response_url_posts)
    text = post.body["text"]
    assert "Top users: \\&lt;https://evil.example/login\\|Session expired: sign in again\\&gt;" in text, text
    assert not re.search(r"<(https?://|!|@)", text), text


async def test_tokens_and_the_signing_secret_never_reach_the_logs(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake_seed.default_reply = Reply(content="Quiet.")
    file = slack.add_file("notes.txt", b"hello\n")
    async with running_bot(slack, settings_for, tmp_path) as bot:
        mention = slack.events.app_mention("read this", files=[file])
        async with slack.sender(bot.events_url) as sender:
            await sender.post_event(mention)
            await sender.post_event(slack.events.app_mention("forged"), signature="v0=" + "0" * 64)
        await wait_for_answer(slack, "C1", mention["event"]["ts"])
        slack.inject_error("users.info", "invalid_auth")
        await bot.adapter.users.name("U2")
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "chat.startStream" in logged or "Sending a request" in logged  # debug logging did happen
    for secret in (slack.config.bot_token, slack.config.signing_secret, fake_seed.api_key):
        assert secret not in logged


@pytest.mark.parametrize(("overrides", "variable"), [
    ({"SLACK_BOT_TOKEN": "xoxb-revoked"}, "SLACK_BOT_TOKEN"),
    ({"SLACK_APP_TOKEN": "xapp-revoked"}, "SLACK_APP_TOKEN"),
])
async def test_tokens_slack_refuses_stop_the_start_with_one_clear_line(
        slack: FakeSlack, settings_for: Callable[..., Settings], tmp_path: Path, overrides: dict[str, str],
        variable: str) -> None:
    values = {"SLACK_API_URL": slack.api_url, "SLACK_BOT_TOKEN": slack.config.bot_token,
              "SLACK_SIGNING_SECRET": slack.config.signing_secret, "SEEDBOT_HTTP_HOST": "127.0.0.1",
              "SEEDBOT_HTTP_PORT": 0} | overrides
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'bad.db'}", **values)
    process = BotProcess(settings)
    try:
        with pytest.raises(ConfigError) as info:
            await process.start()
    finally:
        await process.stop()
    assert str(info.value).startswith(f"{variable}: ") and "invalid_auth" in str(info.value)
    assert "revoked" not in str(info.value)

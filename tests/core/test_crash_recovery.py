"""Recovery after a crash (point 4 of the failure contract): `seedbot run` as a real process is
killed with SIGKILL while an answer streams, then started again. The half message ends with the
interruption notice, the books equal the ledger, no reservation stays active, and Slack's retry of
the interrupted message is answered anew."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from adapters.common.recovery import INTERRUPTED_NOTICE
from adapters.discord.controls import stop_view
from adapters.slack.controls import STOP_ACTION
from bot.config import Settings
from bot.domain import Platform
from bot.storage.claimants import INTERRUPTED, Claimants
from bot.storage.conversations import ConversationStore
from bot.storage.tables import utcnow
from tests.books import read_books, read_books_at
from tests.discord import harness as discord_harness
from tests.factories import incoming
from tests.fakes.discord_fake import FakeDiscord
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack, Message
from tests.slack.harness import bot_replies

NOTICE = "I was interrupted while answering this (the bot restarted)."


def bot_env(slack: FakeSlack, fake_seed: FakeSeed, db_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEED", "SLACK", "DISCORD", "DATABASE_URL"))}
    return env | {
        "SEED_API_KEY": fake_seed.api_key, "SEED_BASE_URL": fake_seed.base_url, "SEED_MAX_RETRIES": "0",
        "DATABASE_URL": f"sqlite+aiosqlite:///{db_path}", "SLACK_BOT_TOKEN": slack.config.bot_token,
        "SLACK_APP_TOKEN": slack.config.app_token, "SLACK_API_URL": slack.api_url,
        "SEEDBOT_HTTP_HOST": "127.0.0.1", "SEEDBOT_HTTP_PORT": "0", "SEEDBOT_RESERVATION_TTL": "2",
    }


async def start_bot(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "adapters.cli", "run", env=env, cwd=cwd,
                                                stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)


async def mention_over_socket(slack: FakeSlack, text: str) -> dict[str, Any]:
    """Mentions the bot in C1 once its process has opened Socket Mode; returns the event_callback sent."""
    await slack.wait_for_socket(timeout=60)
    mention = slack.events.app_mention(text)
    await slack.socket_send_event(mention)
    return mention


async def killed_mid_answer(slack: FakeSlack, env: dict[str, str], cwd: Path) -> tuple[dict[str, Any], Message]:
    """Starts the bot, mentions it in C1, SIGKILLs it once its reply shows 100 characters: (the mention, the reply
    left half written). The fake model's script must hold a long, slow answer."""
    first = await start_bot(env, cwd)
    try:
        mention = await mention_over_socket(slack, "explain everything")
        (half,) = await slack.wait_for(lambda: [m for m in bot_replies(slack, "C1", mention["event"]["ts"])
                                                if len(m.visible_text) > 100] or None, 60)
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    return mention, half


async def test_sigkill_mid_stream_then_restart_finishes_the_half_message_and_balances_the_books(
        slack: FakeSlack, fake_seed: FakeSeed, tmp_path: Path) -> None:
    db_path = tmp_path / "crash.db"
    env = bot_env(slack, fake_seed, db_path)
    slack.config.stream_keeps_chunk_blocks = True  # so the Stop button the stream opened with must be edited out
    fake_seed.script(Reply(content="A long answer, streamed slowly. " * 200, chunk_chars=20, chunk_delay=0.05))
    mention, half = await killed_mid_answer(slack, env, tmp_path)
    ts = mention["event"]["ts"]
    assert half.stream_state == "streaming"

    fake_seed.script(Reply(content="The full answer, this time.", prompt_tokens=50, completion_tokens=7))
    second = await start_bot(env, tmp_path)
    try:
        await slack.wait_for(lambda: slack.socket_connections >= 1, 60)
        # After the dead process's TTL, the maintenance loop finishes its answer with the notice.
        await slack.wait_for(lambda: NOTICE in half.visible_text, 60)
        assert half.stream_state == "stopped"
        await slack.wait_for(lambda: half.blocks and STOP_ACTION not in json.dumps(half.blocks), 10)
        assert (await read_books_at(f"sqlite+aiosqlite:///{db_path}")).user_statuses == [INTERRUPTED]
        # Slack retries the event: the interrupted message is answered again, in a new message.
        await slack.socket_send_event(mention, retry_attempt=1, retry_reason="timeout")
        replies = await slack.wait_for(
            lambda: (r := bot_replies(slack, "C1", ts)) and len(r) == 2 and "tokens" in r[-1].visible_text and r,
            60)
        assert replies[-1].visible_text.startswith("The full answer, this time.")
        assert replies[0] is half and NOTICE in replies[0].visible_text
        # The reservation of the dead call expires at its TTL; give the maintenance loop its tick.
        for _ in range(300):
            books = await read_books_at(f"sqlite+aiosqlite:///{db_path}")
            if not books.active_reservations and len(books.ledger) == 2:
                break
            await asyncio.sleep(0.1)
    finally:
        second.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(second.communicate(), 60)
    assert second.returncode == 0, err.decode()[-2000:]

    books = await read_books_at(f"sqlite+aiosqlite:///{db_path}")
    counters = books.counters
    assert not books.active_reservations
    dead, retried = books.ledger
    assert dead.status == "expired" and dead.cost_nanos == dead.reserved_nanos and not dead.usage_known
    assert retried.status == "ok" and retried.usage_known
    total = dead.cost_nanos + retried.cost_nanos
    # Only the channel has a limit (the default $5/day), so only it has a counter.
    assert {c.scope_key: (c.spent_nanos, c.reserved_nanos) for c in counters} == {"slack:C1": (total, 0)}
    assert books.user_statuses == ["ok"]  # the retry answered it


async def test_a_posted_half_answer_of_a_dead_process_loses_its_stop_button_and_gets_the_notice(
        slack: FakeSlack, fake_seed: FakeSeed, tmp_path: Path) -> None:
    """Streaming unavailable: the answer is posted with the Stop button under it and edited as it grows. After a
    SIGKILL and a restart, recovery posts the notice in the thread and reads the half message back
    (conversations.replies) to edit its Stop button out, its text kept."""
    db_path = tmp_path / "crash.db"
    env = bot_env(slack, fake_seed, db_path)
    slack.config.streaming_enabled = False
    fake_seed.script(Reply(content="A long answer, posted slowly. " * 200, chunk_chars=20, chunk_delay=0.05))
    mention, half = await killed_mid_answer(slack, env, tmp_path)
    ts = mention["event"]["ts"]
    assert STOP_ACTION in json.dumps(half.blocks)
    shown = half.visible_text

    second = await start_bot(env, tmp_path)
    try:
        notice = await slack.wait_for(
            lambda: next((m for m in bot_replies(slack, "C1", ts) if NOTICE in m.visible_text), None), 60)
        await slack.wait_for(lambda: half.blocks and STOP_ACTION not in json.dumps(half.blocks), 10)
        assert half.visible_text == shown and notice is not half
        assert "conversations.replies" in [c.method for c in slack.calls()]
    finally:
        second.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(second.communicate(), 60)
    assert second.returncode == 0, err.decode()[-2000:]


async def test_discord_an_answer_of_a_dead_process_gets_the_notice_in_its_conversation(
        fake: FakeDiscord, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    async with discord_harness.running_bot(fake, settings_for, tmp_path, SEEDBOT_RESERVATION_TTL=2) as bot:
        core = discord_harness.core_of(bot)
        dead = Claimants(core.db, 2, clock=lambda: utcnow() - timedelta(seconds=60))
        message = incoming("half answered", platform=Platform.DISCORD, channel=str(fake.channel.id),
                           thread="1234")  # a conversation keyed by a message, not a channel
        store = ConversationStore(core.db, claimant=dead.id)
        claimed = await store.claim(message, message.text, 5)
        assert claimed is not None
        # It had posted half an answer with its Stop button, and the sink had said where.
        channel = bot.adapter.client.get_channel(fake.channel.id)
        half = await channel.send("Half an answer", view=stop_view(message.dedup_key))  # type: ignore[union-attr]
        await store.set_reply_location(claimed.message_pk, json.dumps(
            {"channel": str(fake.channel.id), "message": str(half.id), "controls": True}))
        await dead.register()  # then died: its last heartbeat was a minute ago (recovery may take it from here)
        assert bot.process.recovery is not None
        await bot.process.recovery.run_once()  # or the keep-alive loop's tick does it first
        await fake.wait_until(lambda: len(bot.bot_messages(fake.channel)) == 2, seconds=30)
        assert await bot.process.recovery.run_once() == 0  # exactly once
        shown, notice = bot.bot_messages(fake.channel)
        assert notice["content"] == INTERRUPTED_NOTICE
        assert shown["content"] == "Half an answer" and not shown.get("components")
        books = await read_books(core.db)
        assert books.user_statuses == [INTERRUPTED]

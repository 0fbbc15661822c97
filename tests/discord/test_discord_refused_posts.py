"""Discord refusing an answer for good, end to end (`seedbot run` against the fake Discord and the fake Seed
model): a channel the bot may not post in, a message deleted while it streams. Each ends with no model call
or a call stopped at once, the books settled by the cost rule, the message failed with Discord's reason, no
second post where Discord refused, and one warning in the log."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import select

from bot.storage.tables import BudgetCounter, Message, UsageEntry
from tests.discord.harness import RunningBot, core_of, prose
from tests.fakes.discord_fake import FakeDiscord
from tests.fakes.discord_fake.rest_common import MISSING_ACCESS, MISSING_PERMISSIONS
from tests.fakes.seed import FakeSeed, Reply


async def settled_call(bot: RunningBot) -> UsageEntry:
    """The one ledger row, once the call is settled and the answer's task has ended."""
    core = core_of(bot)
    for _ in range(1000):
        async with core.db.session() as session:
            rows = list(await session.scalars(select(UsageEntry)))
        if rows:
            await bot.idle()
            (row,) = rows
            return row
        await asyncio.sleep(0.01)
    raise AssertionError("no call was settled")


async def stored_statuses(bot: RunningBot) -> list[tuple[str, str]]:
    async with core_of(bot).db.session() as session:
        return [tuple(r) for r in await session.execute(select(Message.role, Message.status).order_by(Message.id))]


async def counters(bot: RunningBot) -> list[tuple[int, int]]:
    """(reserved, spent) nano-dollars of every budget counter."""
    async with core_of(bot).db.session() as session:
        rows = await session.execute(select(BudgetCounter.reserved_nanos, BudgetCounter.spent_nanos))
        return [tuple(r) for r in rows]


def bot_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """seedbot's own warnings and errors (the fake Seed server logs the connection the bot dropped)."""
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.WARNING and r.name.startswith(("adapters.", "bot."))]


def posts_to(fake: FakeDiscord, channel_id: int) -> list[int]:
    """The statuses of the bot's attempts to create a message in a channel (threads and typing aside)."""
    return [c.status for c in fake.records.calls if c.method == "POST" and c.path == f"/channels/{channel_id}/messages"]


async def test_a_channel_without_access_costs_no_model_call(
        fake: FakeDiscord, fake_seed: FakeSeed, bot: RunningBot, caplog: pytest.LogCaptureFixture) -> None:
    fake.refuse_posts(fake.channel, code=MISSING_ACCESS)
    question = await fake.dispatch_message_create(fake.channel, fake.alice, f"{fake.bot.mention} what is a monad?")
    row = await settled_call(bot)

    assert fake_seed.requests == []  # the model was never asked
    assert row.status == "failed" and row.cost_nanos == 0 and row.reserved_nanos > 0 and not row.usage_known
    assert row.error is not None and "403 Missing Access (error code 50001)" in row.error
    assert f"channel {fake.channel.id}" in row.error
    assert await counters(bot) and all(c == (0, 0) for c in await counters(bot))  # reservation released
    assert await stored_statuses(bot) == [("user", "failed")]
    # One try, the thread; no reply in the channel, no sentence, no typing after it.
    assert [(c.method, c.status) for c in fake.records.calls_to("POST", f"/channels/{fake.channel.id}/")] == [
        ("POST", 403)]
    assert fake.thread(question["id"]) is None and fake.messages_in(fake.channel, author=fake.bot) == []
    (warning,) = bot_warnings(caplog)
    assert str(fake.channel.id) in warning and "50001" in warning


async def test_a_channel_refusing_posts_stops_the_model_at_the_first_message(
        fake: FakeDiscord, fake_seed: FakeSeed, bot: RunningBot, caplog: pytest.LogCaptureFixture) -> None:
    fake.refuse_posts(fake.channel, code=MISSING_PERMISSIONS)  # no thread, and no reply in the channel either
    fake_seed.script(Reply(content=prose(400), chunk_chars=20, chunk_delay=0.02))
    await fake.dispatch_message_create(fake.channel, fake.alice, f"{fake.bot.mention} explain monads at length")
    row = await settled_call(bot)
    await fake.wait_until(lambda: fake_seed.requests[0].client_closed)  # the stream was cut, not read out

    (request,) = fake_seed.requests
    assert request.status == 200
    # Sent without usage: the cost rule charges the reservation; nothing claims an ok answer.
    assert row.status == "failed" and not row.usage_known and row.cost_nanos == row.reserved_nanos > 0
    assert row.error is not None and "403 Missing Permissions (error code 50013)" in row.error
    assert f"channel {fake.channel.id}" in row.error
    statuses = await stored_statuses(bot)
    assert statuses[0] == ("user", "failed") and {status for _, status in statuses} == {"failed"}
    assert posts_to(fake, fake.channel.id) == [403]  # the first message only; no sentence after it
    assert fake.messages_in(fake.channel, author=fake.bot) == []
    (warning,) = bot_warnings(caplog)
    assert str(fake.channel.id) in warning and "50013" in warning


async def test_an_answer_deleted_while_it_streams_stops_there(
        fake: FakeDiscord, fake_seed: FakeSeed, bot: RunningBot, caplog: pytest.LogCaptureFixture) -> None:
    fake_seed.script(Reply(content=prose(400, seed=5), chunk_chars=20, chunk_delay=0.03))
    dm = fake.open_dm(fake.alice)
    await fake.dispatch_message_create(dm, fake.alice, "stream please")
    await fake.wait_until(lambda: bool(bot.bot_messages(dm)))
    first = bot.bot_messages(dm)[0]
    del fake.world.messages[int(first["id"])]  # a moderator deleted it mid-stream
    row = await settled_call(bot)
    await fake.wait_until(lambda: fake_seed.requests[0].client_closed)

    assert bot.bot_messages(dm) == []  # the rest was not posted again
    assert posts_to(fake, dm.id) == [200]
    assert fake.records.calls_to("PATCH", f"/channels/{dm.id}/")[-1].status == 404
    assert row.status == "failed" and not row.usage_known and row.cost_nanos == row.reserved_nanos > 0
    assert row.error is not None and f"message {first['id']} in channel {dm.id}" in row.error
    assert "404 Unknown Message (error code 10008)" in row.error
    assert await stored_statuses(bot) == [("user", "failed"), ("assistant", "failed")]
    (warning,) = bot_warnings(caplog)
    assert str(dm.id) in warning and "10008" in warning


async def test_an_interaction_token_expiring_mid_answer_stops_it_there(
        fake: FakeDiscord, fake_seed: FakeSeed, bot: RunningBot) -> None:
    """Past Discord's 15 minutes every call through an interaction's token is 401 Invalid Webhook Token (50027),
    as final as a 404. It was taken for a passing error: the model kept streaming into nothing and the answer
    was booked as delivered."""
    fake_seed.script(Reply(content=prose(600, seed=3), chunk_chars=20, chunk_delay=0.02))
    await fake.dispatch_interaction_create("ask", options={"question": "explain monads at length"})
    await fake.wait_until(lambda: any(e.via == "interaction" and e.kind == "edit" for e in fake.records.message_events))
    fake.inject_error(None, "/webhooks/", status=401, code=50027, message="Invalid Webhook Token")
    row = await settled_call(bot)
    await fake.wait_until(lambda: fake_seed.requests[0].client_closed)  # the model is stopped
    assert row.status == "failed" and row.error is not None and "50027" in row.error, row.error
    assert (await stored_statuses(bot))[0] == ("user", "failed")


async def test_a_thread_archived_mid_answer_stops_it_there(
        fake: FakeDiscord, fake_seed: FakeSeed, bot: RunningBot) -> None:
    """A moderator archives and locks the answer's thread: every edit and post in it is 400 (50083)."""
    fake_seed.script(Reply(content=prose(600, seed=4), chunk_chars=20, chunk_delay=0.02))
    question = await fake.dispatch_message_create(fake.channel, fake.alice, f"{fake.bot.mention} explain monads")
    thread_id = int(question["id"])
    await fake.wait_until(lambda: bool(bot.bot_messages(thread_id)))
    fake.inject_error(None, f"/channels/{thread_id}/", status=400, code=50083, message="Thread is archived")
    row = await settled_call(bot)
    await fake.wait_until(lambda: fake_seed.requests[0].client_closed)  # the model is stopped
    assert row.status == "failed" and row.error is not None and "50083" in row.error, row.error
    assert (await stored_statuses(bot))[0] == ("user", "failed")

"""Every Discord answer ends in a final, truthful state when Discord does not take a post this once (a 429 or
5xx past discord.py's retries), when a message is frozen at a cut, and when a shutdown comes while the last edit
waits out a rate limit: end to end, the bot process against the fake Discord and the fake model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from adapters.common.delivery import INCOMPLETE
from bot.chat.streamed import NOT_POSTED
from bot.config import Settings
from bot.storage.tables import Message as StoredMessage
from tests.books import read_books
from tests.discord.harness import RunningBot, core_of, prose, running_bot
from tests.fakes.discord_fake import JSON, FakeDiscord
from tests.fakes.seed import FakeSeed, Reply

LOADING = 1 << 7  # Discord's message flag for a deferred interaction response: "<bot> is thinking…"


def custom_ids(message: JSON) -> list[str]:
    return [c["custom_id"] for row in message.get("components") or () for c in row["components"]]


def has_stop(message: JSON) -> bool:
    return any(cid.startswith("seedbot:stop:") for cid in custom_ids(message))


async def settled(bot: RunningBot) -> None:
    """Until the one call is in the ledger and the answer's task ended."""
    for _ in range(1000):
        books = await read_books(core_of(bot).db)
        if books.ledger and not len(bot.process.tasks):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the answer never settled")


async def test_ask_whose_first_response_edit_is_rate_limited_past_retries_ends_in_a_sentence(
        fake: FakeDiscord, fake_seed: FakeSeed, discord_bot: RunningBot) -> None:
    """/ask: the first text replaces "thinking…" by PATCH /webhooks/{app}/{token}/messages/@original. Discord
    answers it 429 five times: discord.py's webhook adapter then raises HTTPException(429). The model's stream is
    closed there, the answer is booked failed, and the sentence replaces "thinking…" (the next PATCH is taken)."""
    bot = discord_bot
    fake_seed.script(Reply(content=prose(120, seed=7), chunk_chars=30, chunk_delay=0.02))
    fake.inject_rate_limit("PATCH", "/webhooks/", times=5, retry_after=0.2)
    await fake.dispatch_interaction_create("ask", options={"question": "what is a monad?"})
    await settled(bot)

    books = await read_books(core_of(bot).db)
    assert books.balanced() and not books.active_reservations
    shown = bot.bot_messages(fake.channel)
    assert not any(m["flags"] & LOADING for m in shown), "the deferred 'thinking…' response was never replaced"
    # NOT_POSTED if the model was still streaming when Discord gave up, INCOMPLETE if it had finished.
    assert [m["content"] for m in shown] in ([NOT_POSTED], [INCOMPLETE])
    assert [r.status for r in books.ledger] == ["failed"] and "did not take" in (books.ledger[0].error or "")


async def test_a_dm_whose_first_message_gets_a_503_ends_in_a_sentence_booked_failed(
        fake: FakeDiscord, fake_seed: FakeSeed, discord_bot: RunningBot) -> None:
    """A DM: the answer's first POST /channels/{dm}/messages is answered 503 once (discord.py does not retry it,
    and it is not posted again here: Discord may have taken it). The person reads one sentence; the books say
    failed."""
    bot = discord_bot
    dm = fake.open_dm(fake.alice)
    fake_seed.script(Reply(content=prose(120, seed=8), chunk_chars=30, chunk_delay=0.02))
    fake.inject_error("POST", f"/channels/{dm.id}/messages", status=503, code=0, message="Service Unavailable",
                      times=1)
    await fake.dispatch_message_create(dm, fake.alice, "what is a monad?")
    await settled(bot)

    books = await read_books(core_of(bot).db)
    assert books.balanced() and not books.active_reservations
    assert [m["content"] for m in bot.bot_messages(dm)] == [NOT_POSTED]
    assert [r.status for r in books.ledger] == ["failed"] and books.user_statuses == ["failed"]


async def test_a_message_frozen_at_a_cut_without_new_text_loses_its_stop_button(
        fake: FakeDiscord, fake_seed: FakeSeed, discord_bot: RunningBot) -> None:
    """An answer over one message, streamed slower than the edit interval (0.3 s here): the first message
    shows its last paragraph, then the splitter holds the next text back and cuts there. The frozen message's
    text is unchanged, but its buttons are not: it is edited once more, without its Stop button."""
    bot = discord_bot
    lines = "".join(("word " * 20)[:99] + "\n" for _ in range(15))  # 1,500 characters, a break at the end
    answer = lines + prose(60, seed=9)
    fake_seed.script(Reply(content=answer, chunk_chars=100, chunk_delay=0.45))
    dm = fake.open_dm(fake.alice)
    await fake.dispatch_message_create(dm, fake.alice, "a long answer please")
    first, *rest = await bot.answer_in(dm, timeout=30)
    assert rest, "the answer took more than one message"
    await settled(bot)
    books = await read_books(core_of(bot).db)
    assert books.balanced() and books.ledger[0].status == "ok"
    assert not has_stop(first), "a Stop button is left on the finished answer's first message"
    assert custom_ids(rest[-1]) and not has_stop(rest[-1])  # the last message has the feedback buttons


async def test_a_shutdown_while_the_last_edit_waits_out_a_rate_limit_still_ends_the_message(
        fake: FakeDiscord, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    """The model has finished and the answer is settled; `finish` waits for the pump, whose edit waits out
    Discord's 429 (Retry-After 2 s, three times). SIGTERM with a 0.5 s grace cancels the answer: the supervisor's
    `sink.fail(INTERRUPTED_NOTICE)` still gives the text its last edit (no Stop button), then the notice."""
    dm = fake.open_dm(fake.alice)
    answer = prose(150, seed=10)
    fake_seed.script(Reply(content=answer, chunk_chars=40, chunk_delay=0.05))
    async with running_bot(fake, settings_for, tmp_path, SEEDBOT_SHUTDOWN_GRACE=0.5) as bot:
        await fake.dispatch_message_create(dm, fake.alice, "explain monads")
        await fake.wait_until(lambda: bool(bot.bot_messages(dm)), seconds=10)
        fake.inject_rate_limit("PATCH", f"/channels/{dm.id}/messages", times=3, retry_after=2.0)
        for _ in range(1000):  # the call is settled: the core is in sink.finish now
            if (await read_books(core_of(bot).db)).ledger:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        books = await read_books(core_of(bot).db)
        await bot.process.stop()  # what SIGTERM runs
        bot.process.stop = _noop  # type: ignore[method-assign]  # the harness's own stop: already done

    shown = [fake.message(m["id"]) for m in fake.messages_in(dm, author=fake.bot)]
    assert books.balanced() and books.ledger[0].status == "ok"
    assert not any(has_stop(m) for m in shown if m), "the half answer keeps its Stop button after shutdown"
    assert any("interrupted" in (m or {}).get("content", "") for m in shown), "no notice was posted"


async def _noop() -> None:
    return None


async def test_a_message_during_the_shutdown_grace_is_told_to_ask_again(
        fake: FakeDiscord, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    """`seedbot run` stops accepting, then gives answers in flight their grace. Discord never delivers a gateway
    event twice, so a mention or a DM arriving then gets the sentence /ask gets, not silence; chatter the bot
    would not answer gets nothing."""
    fake_seed.script(Reply(content="answered"))
    async with running_bot(fake, settings_for, tmp_path) as bot:
        dm = fake.open_dm(fake.alice)
        await bot.adapter.stop_accepting()  # what BotProcess.stop does first, for the whole grace period
        question = await fake.dispatch_message_create(fake.channel, fake.alice, f"{fake.bot.mention} still there?")
        await fake.dispatch_message_create(dm, fake.alice, "are you there?")
        await fake.dispatch_message_create(fake.channel, fake.alice, "lunch anyone?")
        await fake.wait_until(lambda: len(bot.bot_messages(fake.channel)) + len(bot.bot_messages(dm)) >= 2,
                              seconds=10)
        await bot.idle()
        [in_channel], [in_dm] = bot.bot_messages(fake.channel), bot.bot_messages(dm)
    assert in_channel["content"] == in_dm["content"] == "seedbot is restarting; please ask again in a moment."
    assert in_channel["message_reference"]["message_id"] == question["id"]
    assert not fake_seed.completions



async def test_an_answer_records_where_its_reply_and_stop_button_live_for_crash_recovery(
        fake: FakeDiscord, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    fake_seed.script(Reply(content="A short answer."))
    async with running_bot(fake, settings_for, tmp_path) as bot:
        dm = fake.open_dm(fake.alice)
        await fake.dispatch_message_create(dm, fake.alice, "what is a monad?")
        [reply] = await bot.answer_in(dm)
        async with core_of(bot).db.session() as session:
            locations = list(await session.scalars(select(StoredMessage.reply_location)
                                                   .where(StoredMessage.role == "user")))
    assert [json.loads(w) for w in locations] == [{"channel": str(dm.id), "message": reply["id"], "controls": True}]

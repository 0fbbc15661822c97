"""Issue 14 through the fake Discord: a Stop button on the message being edited, feedback buttons on the
finished answer (a real BotProcess, the fake Discord gateway and REST API, the fake Seed model)."""

from __future__ import annotations

from sqlalchemy import select

from bot.storage.tables import AnswerFeedback, UsageEntry
from tests.discord.harness import RunningBot, core_of, split_footer
from tests.fakes.discord_fake import FakeDiscord
from tests.fakes.seed import FakeSeed, Reply


def custom_ids(message: dict) -> list[str]:
    return [c["custom_id"] for row in message.get("components") or () for c in row["components"]]


async def test_stop_button_ends_the_answer_and_cancels_the_model_call(
        fake: FakeDiscord, fake_seed: FakeSeed, bot: RunningBot) -> None:
    fake_seed.script(Reply(content=" ".join(f"word{i}" for i in range(600)), chunk_chars=12, chunk_delay=0.02))
    question = await fake.dispatch_message_create(fake.channel, fake.alice, f"{fake.bot.mention} write a lot")
    thread_id = int(question["id"])
    key = f"discord:{fake.guild.id}:{fake.channel.id}:{thread_id}"

    def streaming() -> bool:
        found = bot.bot_messages(thread_id)
        return bool(found) and f"seedbot:stop:{key}" in custom_ids(found[0])

    await fake.wait_until(streaming, seconds=10)
    [message] = bot.bot_messages(thread_id)
    stranger = fake.add_user("mallory", guild=fake.guild)
    await fake.click(message["id"], f"seedbot:stop:{key}", user=stranger)
    await fake.wait_until(lambda: any(c.type == 4 for c in fake.records.interaction_callbacks), seconds=5)
    refusal = next(c for c in fake.records.interaction_callbacks if c.type == 4)
    assert "Only the person who asked" in refusal.data["content"] and refusal.data["flags"] & 64

    await fake.click(message["id"], f"seedbot:stop:{key}", user=fake.alice)
    await fake.wait_until(lambda: "stopped by @alice" in (fake.message(message["id"]) or {}).get("content", ""),
                          seconds=5)
    await fake.wait_until(lambda: fake_seed.requests[-1].client_closed, seconds=5)
    await bot.idle()
    final = fake.message(message["id"])
    assert final is not None
    text, footer = split_footer(final["content"])
    assert text.startswith("word0") and "word599" not in text and "stopped by @alice" in footer
    assert custom_ids(final) == [f"seedbot:rate:+:{key}", f"seedbot:rate:-:{key}"]  # Stop gave way to feedback
    async with core_of(bot).db.session() as session:
        [row] = list(await session.scalars(select(UsageEntry)))
    assert row.status == "stopped" and 0 < row.cost_nanos < row.reserved_nanos


async def test_feedback_buttons_on_the_last_message_store_the_last_click(
        fake: FakeDiscord, fake_seed: FakeSeed, bot: RunningBot) -> None:
    fake_seed.script(Reply(content="Use `git bisect`."))
    question = await fake.dispatch_message_create(fake.channel, fake.alice, f"{fake.bot.mention} find a bad commit?")
    thread_id = int(question["id"])
    [message] = await bot.answer_in(thread_id)
    key = f"discord:{fake.guild.id}:{fake.channel.id}:{thread_id}"
    assert custom_ids(message) == [f"seedbot:rate:+:{key}", f"seedbot:rate:-:{key}"]
    for custom_id in (f"seedbot:rate:-:{key}", f"seedbot:rate:+:{key}"):
        before = len(fake.records.interaction_callbacks)
        await fake.click(message["id"], custom_id, user=fake.alice)
        await fake.wait_until(lambda n=before: len(fake.records.interaction_callbacks) > n, seconds=5)
    acks = fake.records.interaction_callbacks[-2:]
    assert all(a.type == 4 and a.data["flags"] & 64 and a.data["content"].startswith("Thanks") for a in acks)
    async with core_of(bot).db.session() as session:
        rows = list(await session.scalars(select(AnswerFeedback)))
    assert [(r.answer_key, r.user_id, r.helpful) for r in rows] == [(key, str(fake.alice.id), True)]
    report = await core_of(bot).reports.feedback.counts(rows[0].updated_at, rows[0].updated_at.replace(year=3000))
    assert report.sentence() == "1 answer rated: 1 helpful, 0 not"

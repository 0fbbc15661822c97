"""Sharded Discord as operators run it: two `seedbot run` processes, each with half the shards, against
one PostgreSQL database. Discord routes a guild's events to shard (guild_id >> 22) % shard_count and
DMs to shard 0 (https://discord.com/developers/docs/events/gateway#sharding); the fake does the same."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.storage.engine import Database
from bot.storage.tables import Channel, UsageEntry
from tests.discord.harness import split_footer
from tests.fakes.discord_fake import FakeDiscord
from tests.fakes.seed import FakeSeed, Reply

pytestmark = pytest.mark.postgres

SHARDS = 2


@asynccontextmanager
async def seedbot_run(fake: FakeDiscord, seed: FakeSeed, database_url: str, shard_id: int,
                      log_path: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """`seedbot run` in its own process with DISCORD_SHARD_IDS=shard_id; returns once its adapter started."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEED", "DATABASE_URL", "SLACK", "DISCORD"))}
    env |= {"SEED_API_KEY": seed.api_key, "SEED_BASE_URL": seed.base_url, "DATABASE_URL": database_url,
            "DISCORD_BOT_TOKEN": fake.token, "DISCORD_API_URL": fake.api_base,
            "DISCORD_GATEWAY_URL": fake.gateway_url, "DISCORD_SHARD_COUNT": str(SHARDS),
            "DISCORD_SHARD_IDS": str(shard_id), "DISCORD_EDIT_INTERVAL": "0.3",
            "SEEDBOT_HTTP_HOST": "127.0.0.1", "SEEDBOT_HTTP_PORT": "0",
            "SEEDBOT_LOG_FORMAT": "json", "SEEDBOT_LOG_LEVEL": "INFO"}
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "adapters.cli", "run", env=env,
                                                       stdout=log_file, stderr=log_file)
    try:
        await fake.wait_until(
            lambda: process.returncode is not None or "discord adapter started" in _messages(log_path), seconds=60)
        assert process.returncode is None, _messages(log_path)
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=60)


def _messages(log_path: Path) -> list[str]:
    lines = log_path.read_text(errors="replace").splitlines()
    return [json.loads(line).get("message", "") for line in lines if line.startswith("{")]


async def test_two_processes_each_answer_only_their_shards_guilds(postgres_url: str, tmp_path: Path) -> None:
    async with FakeDiscord() as fake, FakeSeed() as seed_0, FakeSeed() as seed_1:
        guild_a = fake.guild
        # A second guild on the other shard: the shard is the snowflake's timestamp part modulo the count.
        guild_b = fake.add_guild("Other Guild", guild_id=((guild_a.id >> 22) + 1) << 22 | (guild_a.id & 0x3FFFFF))
        channel_b = fake.channels_of(guild_b)[0]
        shard_of = {guild.id: (guild.id >> 22) % SHARDS for guild in (guild_a, guild_b)}
        assert sorted(shard_of.values()) == [0, 1]
        seeds = {0: seed_0, 1: seed_1}
        for shard, seed in seeds.items():
            seed.default_reply = Reply(content=f"From shard {shard}.")
        async with seedbot_run(fake, seed_0, postgres_url, 0, tmp_path / "shard0.log") as first, \
                seedbot_run(fake, seed_1, postgres_url, 1, tmp_path / "shard1.log") as second:
            assert sorted(i["shard"] for i in fake.records.identifies) == [[0, SHARDS], [1, SHARDS]]
            question_a = await fake.dispatch_message_create(fake.channel, fake.alice, f"{fake.bot.mention} in A")
            question_b = await fake.dispatch_message_create(channel_b, fake.alice, f"{fake.bot.mention} in B")
            dm = fake.open_dm(fake.alice)
            await fake.dispatch_message_create(dm, fake.alice, "a direct message")
            for place in (int(question_a["id"]), int(question_b["id"]), dm.id):
                await fake.wait_until(lambda p=place: _final(fake, p), seconds=60)
            assert first.returncode is None and second.returncode is None

        answers = {place: split_footer(_final(fake, place) or "")[0]
                   for place in (int(question_a["id"]), int(question_b["id"]), dm.id)}
    assert answers == {int(question_a["id"]): f"From shard {shard_of[guild_a.id]}.",
                       int(question_b["id"]): f"From shard {shard_of[guild_b.id]}.",
                       dm.id: "From shard 0."}  # DMs belong to shard 0
    asked = {shard: sorted(c.body["messages"][-1]["content"] for c in seed.completions)
             for shard, seed in seeds.items()}
    expected = {shard_of[guild_a.id]: ["in A"], shard_of[guild_b.id]: ["in B"]}
    expected[0].append("a direct message")
    assert asked == {shard: sorted(questions) for shard, questions in expected.items()}
    # One database holds both processes' books.
    db = Database(postgres_url)
    try:
        async with db.session() as session:
            rows = (await session.execute(select(Channel.workspace_id, UsageEntry.status)
                                          .join(Channel, UsageEntry.channel_pk == Channel.id))).all()
    finally:
        await db.dispose()
    assert sorted(w for w, _ in rows if w != "dm") == sorted([str(guild_a.id), str(guild_b.id)])
    assert len(rows) == 3 and {s for _, s in rows} == {"ok"}


def _final(fake: FakeDiscord, channel_id: int) -> str | None:
    """The bot's last message in a channel or thread once it carries the footer (the answer is final)."""
    mine = sorted(fake.messages_in(channel_id, author=fake.bot), key=lambda m: int(m["id"]))
    if mine and "tokens · $" in mine[-1]["content"]:
        return mine[-1]["content"]
    return None

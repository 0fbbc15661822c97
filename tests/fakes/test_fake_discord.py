"""The fake Discord, checked with the real, unmodified discord.py client."""

from __future__ import annotations

import asyncio
import io
import struct
import time
import zlib
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar

import discord
import pytest
from discord import app_commands

from tests.fakes.discord_fake import Close, FakeDiscord, Guild, running_fake_discord

WAIT = 5.0
T = TypeVar("T")


def chat_intents(*, message_content: bool = True) -> discord.Intents:
    intents = discord.Intents.none()
    intents.guilds = intents.guild_messages = intents.dm_messages = True
    intents.message_content = message_content
    return intents


def tiny_png(width: int = 3, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + b"\x80" * width for _ in range(height)))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


class Recording:
    """Event handlers that keep what the client saw, for a discord.Client subclass to mix in."""

    def _start_recording(self) -> None:
        self.ready = asyncio.Event()
        self.messages: asyncio.Queue[discord.Message] = asyncio.Queue()
        self.threads: asyncio.Queue[discord.Thread] = asyncio.Queue()
        self.resumed = asyncio.Event()

    async def on_ready(self) -> None:
        self.ready.set()

    async def on_message(self, message: discord.Message) -> None:
        self.messages.put_nowait(message)

    async def on_thread_create(self, thread: discord.Thread) -> None:
        self.threads.put_nowait(thread)

    async def on_resumed(self) -> None:
        self.resumed.set()


class RecordingClient(Recording, discord.Client):
    def __init__(self, **options: Any) -> None:
        options.setdefault("intents", chat_intents())
        # discord.py waits this long after the last GUILD_CREATE before on_ready; 2 s by default.
        super().__init__(guild_ready_timeout=0.05, **options)
        self._start_recording()


class RecordingShardedClient(Recording, discord.AutoShardedClient):
    def __init__(self, **options: Any) -> None:
        super().__init__(intents=chat_intents(), guild_ready_timeout=0.05, **options)
        self._start_recording()

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # The default sleeps 5 s between shards for Discord's max_concurrency; the fake needs no spacing.
        return None


async def within(awaitable: Awaitable[T], seconds: float = WAIT) -> T:
    return await asyncio.wait_for(awaitable, seconds)


@asynccontextmanager
async def connected(
    client: RecordingClient | RecordingShardedClient, fake: FakeDiscord
) -> AsyncIterator[None]:
    """Runs client.start() until on_ready; surfaces a startup failure instead of timing out on it."""
    task = asyncio.create_task(client.start(fake.token))
    try:
        ready = asyncio.create_task(client.ready.wait())
        done, _ = await asyncio.wait({task, ready}, timeout=WAIT, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if task in done:
            task.result()
            raise AssertionError("client.start() returned before on_ready")
        assert done, "no on_ready within the wait"
        yield
    finally:
        await client.close()
        with suppress(asyncio.CancelledError, discord.DiscordException):
            await within(task)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with running_fake_discord(heartbeat_interval_ms=100) as fake:
        yield fake


@pytest.fixture
async def client(fake: FakeDiscord) -> AsyncIterator[RecordingClient]:
    client = RecordingClient()
    async with connected(client, fake):
        yield client


async def test_login_ready_guild_and_gateway_handshake(fake: FakeDiscord, client: RecordingClient) -> None:
    assert client.user is not None and client.user.id == fake.bot.id and client.user.bot
    assert client.application_id == fake.application_id
    guild = client.get_guild(fake.guild.id)
    assert guild is not None and guild.name == "Seed Test Guild"
    assert [c.name for c in guild.text_channels] == ["general"]
    assert guild.me is not None and guild.me.id == fake.bot.id
    (identify,) = fake.records.identifies
    assert identify["intents"] == chat_intents().value
    # discord.py asked for zlib-stream and decoded the compressed frames the fake sent.
    assert fake.records.connections[0].compression == "zlib-stream"
    await fake.wait_until(lambda: fake.records.heartbeats >= 3)
    assert client.latency < 1.0


async def test_wrong_token_is_refused(fake: FakeDiscord) -> None:
    client = RecordingClient()
    try:
        with pytest.raises(discord.LoginFailure):
            await client.login("not-the-token")
    finally:
        await client.close()
    assert fake.records.calls[0].status == 401


async def test_message_create_reaches_on_message_with_mentions(
    fake: FakeDiscord, client: RecordingClient
) -> None:
    sent = await fake.dispatch_message_create(
        fake.channel, fake.alice, f"{fake.bot.mention} what is a monad?"
    )
    message = await within(client.messages.get())
    assert message.id == int(sent["id"])
    assert message.content.endswith("what is a monad?")
    assert message.author.id == fake.alice.id and isinstance(message.author, discord.Member)
    assert client.user is not None and client.user.mentioned_in(message)
    assert message.guild is not None and message.guild.id == fake.guild.id
    assert isinstance(message.channel, discord.TextChannel) and message.channel.id == fake.channel.id


async def test_direct_message_arrives_and_can_be_answered(fake: FakeDiscord, client: RecordingClient) -> None:
    dm = fake.open_dm(fake.alice)
    await fake.dispatch_message_create(dm, fake.alice, "hello in private")
    message = await within(client.messages.get())
    assert message.guild is None and isinstance(message.channel, discord.DMChannel)
    assert message.content == "hello in private"
    await message.channel.send("hello back")
    assert [m["content"] for m in fake.messages_in(dm, author=fake.bot)] == ["hello back"]


async def test_without_message_content_intent_only_mentions_keep_their_text(fake: FakeDiscord) -> None:
    client = RecordingClient(intents=chat_intents(message_content=False))
    async with connected(client, fake):
        await fake.dispatch_message_create(fake.channel, fake.alice, "just chatting")
        await fake.dispatch_message_create(fake.channel, fake.alice, f"{fake.bot.mention} a question")
        plain, mention = await within(client.messages.get()), await within(client.messages.get())
    assert plain.content == ""
    assert mention.content.endswith("a question")


async def test_send_reply_and_edit_are_stored_and_echoed(fake: FakeDiscord, client: RecordingClient) -> None:
    await fake.dispatch_message_create(fake.channel, fake.alice, "question")
    question = await within(client.messages.get())
    answer = await question.reply("first draft", mention_author=False)
    echo = await within(client.messages.get())
    assert echo.id == answer.id and echo.author == client.user  # Discord echoes the bot's own messages
    await answer.edit(content="final answer")
    stored = fake.message(answer.id)
    assert stored is not None and stored["content"] == "final answer"
    assert stored["message_reference"]["message_id"] == str(question.id)
    assert stored["mentions"] == []  # mention_author=False
    create, edit = fake.records.events("create")[0], fake.records.events("edit")[0]
    assert create.message_id == edit.message_id == answer.id
    assert create.payload["allowed_mentions"]["replied_user"] is False
    assert 0 <= edit.at - create.at < 1.0


async def test_discord_errors_for_long_and_unknown_messages(
    fake: FakeDiscord, client: RecordingClient
) -> None:
    channel = client.get_channel(fake.channel.id)
    assert isinstance(channel, discord.TextChannel)
    with pytest.raises(discord.HTTPException) as too_long:
        await channel.send("x" * 2001)
    assert (too_long.value.status, too_long.value.code) == (400, 50035)
    limit_ok = await channel.send("x" * 2000)
    await limit_ok.delete()
    with pytest.raises(discord.NotFound) as gone:
        await limit_ok.edit(content="too late")
    assert gone.value.code == 10008
    assert fake.message(limit_ok.id) is None


async def test_thread_from_message(fake: FakeDiscord, client: RecordingClient) -> None:
    await fake.dispatch_message_create(fake.channel, fake.alice, "start a thread here")
    question = await within(client.messages.get())
    thread = await question.create_thread(name="monads", auto_archive_duration=60)
    assert thread.id == question.id and thread.parent_id == fake.channel.id
    announced = await within(client.threads.get())
    assert announced.id == thread.id and announced.owner_id == fake.bot.id
    await thread.send("answer in the thread")
    stored = fake.thread(thread.id)
    assert stored is not None and stored.name == "monads" and stored.auto_archive_duration == 60
    assert [m["content"] for m in fake.messages_in(thread.id)] == ["answer in the thread"]
    assert (await within(client.messages.get())).author == client.user  # the echo of the bot's answer
    await fake.dispatch_message_create(thread.id, fake.alice, "follow-up question")
    follow_up = await within(client.messages.get())
    assert isinstance(follow_up.channel, discord.Thread) and follow_up.channel.parent_id == fake.channel.id
    with pytest.raises(discord.HTTPException) as twice:
        await question.create_thread(name="again")
    assert twice.value.code == 160004


async def test_typing_and_attachments_both_ways(fake: FakeDiscord, client: RecordingClient) -> None:
    png = tiny_png()
    attachment = fake.add_attachment("diagram.png", png)
    await fake.dispatch_message_create(fake.channel, fake.alice, "see attached", attachments=[attachment])
    message = await within(client.messages.get())
    (received,) = message.attachments
    assert await received.read() == png
    assert (received.content_type, received.width, received.height) == ("image/png", 3, 2)

    await message.channel.typing()
    assert [t.channel_id for t in fake.records.typing] == [fake.channel.id]

    sent = await message.channel.send("chart", file=discord.File(io.BytesIO(png), "spend.png"))
    stored = fake.message(sent.id)
    assert stored is not None
    (uploaded,) = stored["attachments"]
    assert uploaded["filename"] == "spend.png" and uploaded["content_type"] == "image/png"
    assert fake.file_bytes(uploaded) == png


async def test_forced_disconnect_resumes_and_replays(fake: FakeDiscord, client: RecordingClient) -> None:
    await fake.dispatch_message_create(fake.channel, fake.alice, "before the drop")
    assert (await within(client.messages.get())).content == "before the drop"
    session_id = client.ws.session_id
    async with fake.hold_gateway():
        await fake.force_disconnect(Close.UNKNOWN_ERROR, replay_last=1)
        await fake.dispatch_message_create(fake.channel, fake.alice, "while away")
    await within(client.resumed.wait())
    replayed, missed = await within(client.messages.get()), await within(client.messages.get())
    assert (replayed.content, missed.content) == ("before the drop", "while away")
    assert fake.identify_count == 1 and fake.resume_count == 1
    assert fake.records.resumes[0]["session_id"] == session_id
    assert fake.records.connections[-1].path == "/gateway-resume"
    # The client keeps working on the resumed connection.
    await fake.dispatch_message_create(fake.channel, fake.alice, "after")
    assert (await within(client.messages.get())).content == "after"


async def test_rate_limited_edit_is_retried(fake: FakeDiscord, client: RecordingClient) -> None:
    channel = client.get_channel(fake.channel.id)
    assert isinstance(channel, discord.TextChannel)
    message = await channel.send("draft")
    fake.inject_rate_limit(method="PATCH", path_prefix="/channels/", times=1, retry_after=0.3)
    started = time.monotonic()
    await message.edit(content="edited after a 429")
    assert time.monotonic() - started >= 0.3
    assert [c.status for c in fake.records.calls_to("PATCH", "/channels/")] == [429, 200]
    stored = fake.message(message.id)
    assert stored is not None and stored["content"] == "edited after a 429"


async def test_refused_calls_get_discords_json_errors(fake: FakeDiscord, client: RecordingClient) -> None:
    channel = client.get_channel(fake.channel.id)
    assert isinstance(channel, discord.TextChannel)
    fake.refuse_posts(fake.channel)
    with pytest.raises(discord.Forbidden) as refused:
        await channel.send("hello")
    assert (refused.value.status, refused.value.code, refused.value.text) == (403, 50013, "Missing Permissions")
    assert (await client.fetch_channel(fake.channel.id)).id == fake.channel.id  # reading is not posting
    fake.inject_error("GET", f"/channels/{fake.channel.id}", status=404, code=10003, message="Unknown Channel", times=1)
    with pytest.raises(discord.NotFound):
        await client.fetch_channel(fake.channel.id)
    await client.fetch_channel(fake.channel.id)  # `times` ran out
    assert fake.messages_in(fake.channel) == []


async def test_synced_app_command_gets_an_ephemeral_answer(fake: FakeDiscord) -> None:
    client = RecordingClient()
    tree = app_commands.CommandTree(client)
    asked: asyncio.Queue[str] = asyncio.Queue()

    @tree.command(name="ask", description="Ask seed-2-0-code")
    async def ask(interaction: discord.Interaction, question: str) -> None:
        await interaction.response.send_message(f"thinking about {question}", ephemeral=True)
        asked.put_nowait(question)

    async with connected(client, fake):
        synced = await tree.sync()
        assert [c.name for c in synced] == ["ask"] and [c["name"] for c in fake.commands()] == ["ask"]
        assert fake.commands()[0]["options"][0]["type"] == 3  # a string option
        interaction = await fake.dispatch_interaction_create("ask", options={"question": "why?"})
        assert await within(asked.get()) == "why?"
    (callback,) = fake.records.interaction_callbacks
    assert callback.interaction_id == int(interaction["id"]) and callback.type == 4
    assert callback.data["content"] == "thinking about why?"
    assert callback.data["flags"] & 64  # ephemeral


async def test_deferred_guild_command_is_completed_by_followup(fake: FakeDiscord) -> None:
    client = RecordingClient()
    tree = app_commands.CommandTree(client)
    done: asyncio.Queue[discord.WebhookMessage] = asyncio.Queue()

    @tree.command(name="review", description="Review a diff")
    async def review(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        done.put_nowait(await interaction.followup.send("looks good", wait=True))

    guild = discord.Object(fake.guild.id)
    tree.copy_global_to(guild=guild)
    async with connected(client, fake):
        await tree.sync(guild=guild)
        assert [c["name"] for c in fake.commands(fake.guild)] == ["review"] and fake.commands() == []
        await fake.dispatch_interaction_create("review")
        followup = await within(done.get())
    assert [c.type for c in fake.records.interaction_callbacks] == [5]
    stored = fake.message(followup.id)
    # The first followup after a deferral replaces the "thinking..." message.
    assert stored is not None and stored["content"] == "looks good" and stored["flags"] & 128 == 0
    assert [e.kind for e in fake.records.message_events] == ["create", "edit"]


async def test_late_interaction_answer_is_unknown_interaction() -> None:
    async with running_fake_discord(interaction_ack_deadline=0.1) as fake:
        client = RecordingClient()
        tree = app_commands.CommandTree(client)
        errors: asyncio.Queue[discord.NotFound] = asyncio.Queue()

        @tree.command(name="slow", description="Answers too late")
        async def slow(interaction: discord.Interaction) -> None:
            await asyncio.sleep(0.2)
            try:
                await interaction.response.send_message("late")
            except discord.NotFound as exc:
                errors.put_nowait(exc)

        async with connected(client, fake):
            await tree.sync()
            await fake.dispatch_interaction_create("slow")
            assert (await within(errors.get())).code == 10062
        assert fake.records.interaction_callbacks == []


@pytest.mark.parametrize("shard_count", [2, None], ids=["explicit", "from-gateway-bot"])
async def test_auto_sharded_client_identifies_each_shard(shard_count: int | None) -> None:
    async with running_fake_discord(heartbeat_interval_ms=100, recommended_shards=2) as fake:
        # Shard = (guild_id >> 22) % shard_count: pick past timestamps of each parity.
        past = (fake.guild.id >> 22) - 1000
        on_shard: dict[int, Guild] = {
            shard: fake.add_guild(f"guild {shard}", guild_id=((past & ~1) | shard) << 22) for shard in (0, 1)
        }
        client = RecordingShardedClient(shard_count=shard_count)
        async with connected(client, fake):
            assert sorted(i["shard"] for i in fake.records.identifies) == [[0, 2], [1, 2]]
            for shard, guild in on_shard.items():
                seen = client.get_guild(guild.id)
                assert seen is not None and seen.shard_id == shard
            channel = fake.channels_of(on_shard[1])[0]
            await fake.dispatch_message_create(channel, fake.alice, "to shard one")
            message = await within(client.messages.get())
            assert message.guild is not None and message.guild.id == on_shard[1].id
            last_event = {s.shard_id: s.history[-1].event for s in fake.gateway.sessions.values()}
            assert last_event[1] == "MESSAGE_CREATE" and last_event[0] != "MESSAGE_CREATE"
        asked_gateway_bot = any(c.path == "/gateway/bot" for c in fake.records.calls)
        assert asked_gateway_bot == (shard_count is None)


async def test_disallowed_intents_stop_the_client() -> None:
    async with running_fake_discord(enabled_privileged_intents=0) as fake:
        client = RecordingClient()
        try:
            with pytest.raises(discord.PrivilegedIntentsRequired):
                await within(client.start(fake.token))
        finally:
            await client.close()
        assert client.ready.is_set() is False and fake.identify_count == 1

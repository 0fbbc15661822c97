"""The Discord adapter end to end: `seedbot run`'s BotProcess, discord.py against the fake Discord,
the core against the fake Seed model, SQLite in a temporary directory. (Slash commands:
test_discord_commands.py.)"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import discord
import pytest

from bot.config import ConfigError, Settings
from tests.discord.harness import RunningBot, core_of, prose, running_bot, split_footer, user_turns
from tests.fakes.discord_fake import FakeDiscord
from tests.fakes.seed import FakeSeed, Reply


async def test_mention_opens_a_thread_and_streams_by_paced_edits(
        fake: FakeDiscord, fake_seed: FakeSeed, bot: RunningBot) -> None:
    answer = prose(220)
    fake_seed.script(Reply(content=answer, chunk_chars=40, chunk_delay=0.05, first_token_delay=0.3))
    question = await fake.dispatch_message_create(fake.channel, fake.alice, f"{fake.bot.mention} what is a monad?")
    thread_id = int(question["id"])
    (message,) = await bot.answer_in(thread_id)

    thread = fake.thread(thread_id)
    assert thread is not None and thread.parent_id == fake.channel.id and thread.name == "what is a monad?"
    text, footer = split_footer(message["content"])
    assert text == answer and footer.startswith("-# ")
    assert user_turns(fake_seed, 0) == [("user", "what is a monad?")]
    events = [e for e in fake.records.message_events if e.message_id == int(message["id"])]
    assert events[0].kind == "create" and len(events) >= 4
    gaps = [b.at - a.at for a, b in zip(events, events[1:], strict=False)]
    # DISCORD_EDIT_INTERVAL per message, paced from when each edit is sent: the fake sees them one
    # request later, so allow that hop's jitter.
    assert min(gaps) >= 0.3 - 0.05, gaps
    assert all(e.payload["allowed_mentions"]["parse"] == [] for e in events)  # the model never pings
    typing = [t for t in fake.records.typing if t.channel_id == thread_id]
    assert typing and typing[0].at < events[0].at  # typing while the model thought
    assert fake.messages_in(fake.channel, author=fake.bot) == []  # nothing in the channel itself


async def test_follow_up_in_the_thread_needs_no_mention_and_carries_the_history(
        fake: FakeDiscord, fake_seed: FakeSeed, bot: RunningBot) -> None:
    fake_seed.script(Reply(content="A monad wraps values."), Reply(content="Bind chains them."))
    question = await fake.dispatch_message_create(fake.channel, fake.alice, f"{fake.bot.mention} what is a monad?")
    thread_id = int(question["id"])
    first = await bot.answer_in(thread_id)
    await fake.dispatch_message_create(fake.channel, fake.alice, "unrelated chatter in the channel")
    other = await fake.dispatch_thread_create(fake.channel, "someone else's thread", fake.alice)
    await fake.dispatch_message_create(other, fake.alice, "not for the bot")
    edited = dict(question, content=f"{fake.bot.mention} what is a monad, really?",
                  edited_timestamp=question["timestamp"])
    await fake.dispatch("MESSAGE_UPDATE", edited, guild_id=fake.guild.id)  # edits are not new questions
    await fake.dispatch_message_create(thread_id, fake.alice, "and bind?")
    (second,) = await bot.answer_in(thread_id, after=int(first[-1]["id"]))

    assert split_footer(second["content"])[0] == "Bind chains them."
    assert len(fake_seed.completions) == 2  # the chatter, the edit and the other thread got nothing
    assert user_turns(fake_seed, 1) == [("user", "what is a monad?"), ("assistant", "A monad wraps values."),
                                        ("user", "and bind?")]
    assert fake.messages_in(other, author=fake.bot) == []


async def test_direct_messages_are_one_continuing_conversation(
        fake: FakeDiscord, fake_seed: FakeSeed, bot: RunningBot) -> None:
    fake_seed.script(Reply(content="It rewrites history."), Reply(content="Use --autosquash."))
    dm = fake.open_dm(fake.alice)
    await fake.dispatch_message_create(dm, fake.alice, "what does git rebase -i do?")
    first = await bot.answer_in(dm)
    await fake.dispatch_message_create(dm, fake.alice, "and fixups?")
    (second,) = await bot.answer_in(dm, after=int(first[-1]["id"]))
    assert split_footer(first[0]["content"])[0] == "It rewrites history."
    assert split_footer(second["content"])[0] == "Use --autosquash."
    assert user_turns(fake_seed, 1)[:2] == [("user", "what does git rebase -i do?"),
                                            ("assistant", "It rewrites history.")]


FENCE_LANGS = ["python", "ts", "rust", "bash"]


def long_answer(target: int) -> str:
    """Prose and code blocks (some longer than a message) until `target` characters are passed."""
    rng = random.Random(9)
    parts: list[str] = []
    while sum(len(p) + 2 for p in parts) < target:
        parts.append(prose(rng.randint(20, 60), seed=rng.randint(0, 999)))
        lang = rng.choice(FENCE_LANGS)
        body = "\n".join(f"    step_{i} = run({i}, {lang!r})" for i in range(rng.randint(5, 90)))
        parts.append(f"```{lang}\n{body}\n```")
    return "\n\n".join(parts)


async def test_a_9000_character_answer_arrives_in_balanced_messages_of_at_most_2000(
        fake: FakeDiscord, fake_seed: FakeSeed, bot: RunningBot) -> None:
    answer = long_answer(9000)
    assert 9000 <= len(answer) < 12000 and answer.count("```") % 2 == 0
    fake_seed.script(Reply(content=answer, chunk_chars=300, chunk_delay=0.01))
    question = await fake.dispatch_message_create(fake.channel, fake.alice, f"{fake.bot.mention} show me steps")
    messages = [m["content"] for m in await bot.answer_in(int(question["id"]))]
    assert len(messages) >= 5
    assert all(len(m) <= 2000 for m in messages)
    assert all(m.count("```") % 2 == 0 for m in messages)  # every fence balanced in every message
    messages[-1], _footer = split_footer(messages[-1])
    # Take the added fence lines away again: a message closed for a cut ends with ``` and the next
    # one starts by reopening it with its language. (The cuts here fall at line ends, and the line
    # break or space at a cut stays in the message before it.)
    for i in range(len(messages) - 1):
        if messages[i].endswith("\n```") and messages[i + 1].startswith("```"):
            messages[i] = messages[i].removesuffix("```")
            messages[i + 1] = messages[i + 1].split("\n", 1)[1]
    assert "".join(messages) == answer
    assert all(len(e.content) <= 2000 for e in fake.records.message_events)


async def test_attachments_by_name_and_size_and_refusals_the_user_can_read(
        fake: FakeDiscord, fake_seed: FakeSeed, bot: RunningBot, monkeypatch: pytest.MonkeyPatch) -> None:
    downloaded: list[str] = []
    original_read = discord.Attachment.read

    async def spying_read(self: discord.Attachment, *, use_cached: bool = False) -> bytes:
        downloaded.append(self.filename)
        return await original_read(self, use_cached=use_cached)

    monkeypatch.setattr(discord.Attachment, "read", spying_read)
    source = "".join(f"def handler_{i}(event):\n    return event.get({i})\n\n" for i in range(7000)).encode()
    assert len(source) > 300_000
    files = [fake.add_attachment("handlers.py", source, "text/x-python"),
             fake.add_attachment("dump.log", b"x" * (5 * 1024 * 1024), "text/plain"),
             fake.add_attachment("tool.py", b"\x7fELF\x02\x01\x00\x00binary", "text/x-python")]
    fake_seed.script(Reply(content="Looks fine."))
    question = await fake.dispatch_message_create(fake.channel, fake.alice, f"{fake.bot.mention} any bugs?",
                                                  attachments=files)
    (message,) = await bot.answer_in(int(question["id"]))
    prompt = fake_seed.completions[0].body["messages"][-1]["content"]
    assert "File `handlers.py`" in prompt and "def handler_6999(event):" in prompt
    assert "dump.log" not in prompt and "ELF" not in prompt
    text, footer = split_footer(message["content"])
    assert text == "Looks fine."
    assert "dump.log was skipped: it is 5 MB, over the 1 MB limit for text files" in footer
    assert "tool.py was skipped: it looks like a binary file, not text" in footer
    assert sorted(downloaded) == ["handlers.py", "tool.py"]  # the 5 MB file was never fetched

    only_refused = await fake.dispatch_message_create(
        fake.channel, fake.alice, fake.bot.mention, attachments=[fake.add_attachment("setup.exe", b"MZ\x90")])
    (help_message,) = await bot.answer_in(int(only_refused["id"]))
    assert help_message["content"].startswith("Ask me a code question")
    assert "setup.exe was skipped: a .exe file is not something I can read" in help_message["content"]
    assert len(fake_seed.completions) == 1


async def test_a_replayed_message_after_resume_is_answered_once(
        fake: FakeDiscord, fake_seed: FakeSeed, bot: RunningBot) -> None:
    fake_seed.script(Reply(content="Exactly once.", first_token_delay=0.8))
    dm = fake.open_dm(fake.alice)
    await fake.dispatch_message_create(dm, fake.alice, "answer me once")
    await fake.wait_until(lambda: len(fake_seed.requests) == 1)  # received; the model is still thinking
    await fake.force_disconnect(4000, replay_last=1)
    await fake.wait_until(lambda: fake.resume_count == 1 and bool(fake.records.replayed))
    messages = await bot.answer_in(dm)
    await bot.idle()
    assert [event for event, _ in fake.records.replayed] == ["MESSAGE_CREATE"]
    assert fake.identify_count == 1
    assert [split_footer(m["content"])[0] for m in messages] == ["Exactly once."]
    assert len(fake_seed.requests) == 1
    duplicates = core_of(bot).metrics.messages.labels("discord", "duplicate")._value.get()
    assert duplicates == 1  # the replay reached the core, which recognised it


@pytest.mark.usefixtures("discord_urls_restored")  # it starts its own fake Discord, not `fake`
async def test_missing_message_content_intent_is_one_clear_config_error(
        settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    async with FakeDiscord(enabled_privileged_intents=0) as fake:
        with pytest.raises(ConfigError) as error:
            async with running_bot(fake, settings_for, tmp_path):
                pass
    message = str(error.value)
    assert "\n" not in message and message.startswith("DISCORD_BOT_TOKEN:")
    assert "Message Content Intent" in message and "Developer Portal" in message


async def test_wrong_token_is_a_config_error(fake: FakeDiscord, settings_for: Callable[..., Settings],
                                             tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="^DISCORD_BOT_TOKEN: Discord refused the token"):
        async with running_bot(fake, settings_for, tmp_path, DISCORD_BOT_TOKEN="wrong"):
            pass


async def test_sharded_client_runs_the_configured_shard(
        fake: FakeDiscord, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    shard = (fake.guild.id >> 22) % 2
    async with running_bot(fake, settings_for, tmp_path, DISCORD_SHARD_COUNT=2, DISCORD_SHARD_IDS=str(shard)) as bot:
        assert isinstance(bot.adapter.client, discord.AutoShardedClient)
        assert [i["shard"] for i in fake.records.identifies] == [[shard, 2]]
        fake_seed.script(Reply(content="From a shard."))
        question = await fake.dispatch_message_create(fake.channel, fake.alice, f"{fake.bot.mention} hello")
        (message,) = await bot.answer_in(int(question["id"]))
        assert split_footer(message["content"])[0] == "From a shard."


async def test_api_calls_for_a_20_second_answer_at_one_tenth_scale(
        fake: FakeDiscord, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    """DISCORD_EDIT_INTERVAL 1 s (the default) and an answer streaming for 20 s after 3 s of thinking, scaled
    by 1/10 (0.1 s, 2 s, 0.3 s): every Discord API call from the mention to the footer, thread and typing
    included, at most llmcord's count for the same answer (26)."""
    answer = prose(560, seed=3)  # about 3,000 characters: it overflows into a second message
    pieces = 100
    fake_seed.script(Reply(content=answer, chunk_chars=len(answer) // pieces + 1, chunk_delay=2.0 / pieces,
                           first_token_delay=0.3))
    async with running_bot(fake, settings_for, tmp_path, DISCORD_EDIT_INTERVAL=0.1) as bot:
        before = len(fake.records.calls)
        question = await fake.dispatch_message_create(fake.channel, fake.alice, f"{fake.bot.mention} explain")
        messages = await bot.answer_in(int(question["id"]))
        calls = fake.records.calls[before:]
    messages[-1]["content"], _ = split_footer(messages[-1]["content"])
    assert len(messages) == 2 and "".join(m["content"] for m in messages) == answer
    kinds = Counter(f"{c.method} {re.sub(r'/[0-9]+', '/…', c.path)}" for c in calls)
    print(f"\nDiscord API calls for a 20-second streamed answer (at 1/10 scale): {len(calls)} {dict(kinds)}")
    assert len(calls) <= 26


async def test_without_thread_permission_answers_are_replies_and_reply_chains_continue(
        fake: FakeDiscord, fake_seed: FakeSeed, bot: RunningBot, monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(self: discord.Message, **_: Any) -> discord.Thread:
        raise discord.Forbidden(SimpleNamespace(status=403, reason="Forbidden"),  # type: ignore[arg-type]
                                {"code": 50013, "message": "Missing Permissions"})

    monkeypatch.setattr(discord.Message, "create_thread", refuse)
    fake_seed.script(Reply(content="First."), Reply(content="Second."), Reply(content="Third."))
    question = await fake.dispatch_message_create(fake.channel, fake.alice, f"{fake.bot.mention} one")
    (first,) = await bot.answer_in(fake.channel)
    assert first["message_reference"]["message_id"] == question["id"] and fake.thread(question["id"]) is None
    reply = await fake.dispatch_message_create(fake.channel, fake.alice, "two", message_reference=int(first["id"]))
    (second,) = await bot.answer_in(fake.channel, after=int(first["id"]))
    assert second["message_reference"]["message_id"] == reply["id"]
    # A reply to the bot's reply to a reply: still the conversation the first question started.
    await fake.dispatch_message_create(fake.channel, fake.alice, "three", message_reference=int(second["id"]))
    await bot.answer_in(fake.channel, after=int(second["id"]))
    assert user_turns(fake_seed, 2) == [("user", "one"), ("assistant", "First."), ("user", "two"),
                                        ("assistant", "Second."), ("user", "three")]


async def test_channel_and_member_names_from_the_event_are_kept_for_reports(
        fake: FakeDiscord, fake_seed: FakeSeed, bot: RunningBot) -> None:
    question = await fake.dispatch_message_create(fake.channel, fake.alice, f"{fake.bot.mention} what is a monad?")
    await bot.answer_in(int(question["id"]))
    await bot.idle()
    core = core_of(bot)
    names = await core.names.names([("discord", "channel", str(fake.channel.id)),
                                    ("discord", "user", str(fake.alice.id))])
    assert names == {("discord", "channel", str(fake.channel.id)): fake.channel.name,
                     ("discord", "user", str(fake.alice.id)): "alice"}
    assert (await core.reports.channel_labels([f"discord:{fake.channel.id}"])) == {
        f"discord:{fake.channel.id}": f"#{fake.channel.name}"}

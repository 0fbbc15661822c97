"""The slash commands end to end: /ask and /review answer through the core into the interaction's
response, /budget and /spend answer privately with bot.ops.admin's text, and the notifier delivers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.chat.service import Answer
from bot.config import Settings
from bot.domain import AttachmentKind, Footer, Incoming, Usage
from bot.ops.admin import BUDGETS, not_admin
from bot.ports import ReplySink
from tests.discord.harness import RunningBot, core_of, prose, running_bot, split_footer, user_turns
from tests.fakes.discord_fake import JSON, FakeDiscord
from tests.fakes.seed import FakeSeed, Reply


async def test_ask_command_streams_into_its_response_and_a_reply_continues_it(
        fake: FakeDiscord, fake_seed: FakeSeed, bot: RunningBot) -> None:
    assert {c["name"] for c in fake.commands()} == {"ask", "review", "budget", "spend"}
    answer = prose(450, seed=2)  # over 2,000 characters: the response, then a followup
    fake_seed.script(Reply(content=answer, chunk_chars=60, chunk_delay=0.03), Reply(content="Wrap it in try."))
    await fake.dispatch_interaction_create("ask", options={"question": "how does asyncio.gather work?"})
    response, followup = await bot.answer_in(fake.channel)
    assert [c.type for c in fake.records.interaction_callbacks] == [5]  # deferred: "seedbot is thinking…"
    assert response["content"] + split_footer(followup["content"])[0] == answer
    edits = [e for e in fake.records.message_events if e.message_id == int(response["id"]) and e.kind == "edit"]
    assert len(edits) >= 2 and all(e.via == "interaction" for e in edits)

    # A reply to any message of the answer continues the /ask's conversation.
    reply_to = await fake.dispatch_message_create(fake.channel, fake.alice, "what about exceptions?",
                                                  message_reference=int(followup["id"]))
    (reply,) = await bot.answer_in(fake.channel, after=int(followup["id"]))
    assert reply["message_reference"]["message_id"] == reply_to["id"]  # it answers the user's reply
    assert split_footer(reply["content"])[0] == "Wrap it in try."
    assert user_turns(fake_seed, 1) == [("user", "how does asyncio.gather work?"), ("assistant", answer),
                                        ("user", "what about exceptions?")]


def ephemeral_texts(fake: FakeDiscord, interaction: JSON) -> list[str]:
    """What only the user who ran the command sees: the deferred response, once filled in."""
    return [m["content"] for m in fake.messages_in(fake.channel)
            if (m.get("interaction_metadata") or {}).get("id") == interaction["id"] and m["flags"] & 64
            and not m["flags"] & 128]


async def test_budget_set_is_for_admins_and_answers_privately(
        fake: FakeDiscord, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    bob = fake.add_user("bob")
    async with running_bot(fake, settings_for, tmp_path, SEEDBOT_ADMINS=f"discord:{fake.alice.id}") as bot:
        scope = f"discord:{fake.channel.id}"
        set_by_bob = await fake.dispatch_interaction_create(
            "budget", user=bob, options=[{"name": "set", "type": 1, "options": [
                {"name": "value", "type": 3, "value": "0.01/day"}]}])
        await fake.wait_until(lambda: bool(ephemeral_texts(fake, set_by_bob)))
        assert ephemeral_texts(fake, set_by_bob) == [not_admin(BUDGETS)]
        assert core_of(bot).settings.default_budget.describe() in await core_of(bot).admin.budget_show(scope)

        set_by_alice = await fake.dispatch_interaction_create(
            "budget", options=[{"name": "set", "type": 1, "options": [{"name": "value", "type": 3,
                                                                       "value": "12.50/week"}]}])
        await fake.wait_until(lambda: bool(ephemeral_texts(fake, set_by_alice)))
        assert "changed" in ephemeral_texts(fake, set_by_alice)[0]
        shown = await fake.dispatch_interaction_create("budget", options=[{"name": "show", "type": 1}])
        await fake.wait_until(lambda: bool(ephemeral_texts(fake, shown)))
        assert f"Budget for {scope}: $12.5/week" in ephemeral_texts(fake, shown)[0]
        spend = await fake.dispatch_interaction_create("spend")
        await fake.wait_until(lambda: bool(ephemeral_texts(fake, spend)))
        assert ephemeral_texts(fake, spend)[0].startswith("Spend over the last 7 days")
        # The admin's daily summary went out through the notifier at start: a DM with the chart.
        dm = fake.open_dm(fake.alice)
        await fake.wait_until(lambda: any(m["attachments"] for m in bot.bot_messages(dm)), seconds=10)
        (chart,) = [a for m in bot.bot_messages(dm) for a in m["attachments"]]
        assert chart["filename"].endswith(".png") and fake.file_bytes(chart).startswith(b"\x89PNG")


async def test_review_command_hands_the_core_a_forced_review_with_the_attached_diff(
        fake: FakeDiscord, bot: RunningBot, monkeypatch: pytest.MonkeyPatch) -> None:
    received: list[Incoming] = []

    async def handle(incoming: Incoming, sink: ReplySink, _inflight: object = None, *, stop: object = None) -> Answer:
        received.append(incoming)
        await sink.start()
        await sink.append("Reviewed.")
        await sink.finish(Footer(usage=Usage(prompt_tokens=10, completion_tokens=2), cost_nanos=1000))
        return Answer("ok", "Reviewed.")

    monkeypatch.setattr(core_of(bot).service, "handle", handle)
    diff = b"--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n"
    attachment = fake.add_attachment("fix.diff", diff, "text/x-diff")
    # Attachment options carry their file in the interaction's resolved data, which the fake's
    # {"name": value} shortcut cannot express: build the event by hand.
    _, payload = fake.interactions.application_command(
        "review", fake.alice, fake.channel, [{"name": "file", "type": 11, "value": attachment["id"]}])
    payload["data"]["resolved"] = {"attachments": {attachment["id"]: attachment}}
    await fake.dispatch("INTERACTION_CREATE", payload, guild_id=fake.guild.id)
    # The interaction's deferral is in the channel before the core is handed the review: wait for the hand-over
    # first, or a slow machine finds that message with no task running yet and reads the answer too early.
    await fake.wait_until(lambda: bool(received))
    (response,) = await bot.answer_in(fake.channel)

    (incoming,) = received
    assert incoming.force_review and incoming.text == "" and incoming.message_id == payload["id"]
    assert incoming.thread.thread_id == payload["id"] and incoming.thread.channel_id == str(fake.channel.id)
    (file,) = incoming.attachments
    assert (file.filename, file.kind, file.data) == ("fix.diff", AttachmentKind.TEXT, diff)
    assert split_footer(response["content"])[0] == "Reviewed."


async def test_commands_are_synced_to_the_listed_guilds_only(
        fake: FakeDiscord, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    async with running_bot(fake, settings_for, tmp_path, DISCORD_GUILD_IDS=str(fake.guild.id)):
        assert {c["name"] for c in fake.commands(fake.guild)} == {"ask", "review", "budget", "spend"}
        assert fake.commands() == []
        (budget,) = [c for c in fake.commands(fake.guild) if c["name"] == "budget"]
        assert {o["name"] for o in budget["options"]} == {"show", "set"}


async def test_notifier_splits_long_texts_and_attaches_the_chart_to_the_last_message(
        fake: FakeDiscord, bot: RunningBot) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    notifier = bot.adapter.notifier
    await notifier.send_direct(str(fake.alice.id), "line of the summary\n" * 150, png=png, filename="spend.png")
    dm = fake.open_dm(fake.alice)
    sent = bot.bot_messages(dm)
    assert len(sent) == 2 and all(len(m["content"]) <= 2000 for m in sent)
    assert sent[0]["attachments"] == [] and [a["filename"] for a in sent[1]["attachments"]] == ["spend.png"]
    await notifier.send_channel(str(fake.guild.id), str(fake.channel.id), "@everyone paused " * 150)
    posted = bot.bot_messages(fake.channel)
    assert len(posted) == 2 and not any(m["mention_everyone"] for m in posted)


async def test_budget_set_for_each_person_and_one_person(
        fake: FakeDiscord, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    bob = fake.add_user("bob")
    async with running_bot(fake, settings_for, tmp_path, SEEDBOT_ADMINS=f"discord:{fake.alice.id}") as bot:
        everyone = await fake.dispatch_interaction_create(
            "budget", options=[{"name": "set", "type": 1, "options": [
                {"name": "value", "type": 3, "value": "1/day"}, {"name": "each_person", "type": 5, "value": True}]}])
        one = await fake.dispatch_interaction_create(
            "budget", options=[{"name": "set", "type": 1, "options": [
                {"name": "value", "type": 3, "value": "3/day"}, {"name": "person", "type": 6, "value": str(bob.id)}]}])
        await fake.wait_until(lambda: bool(ephemeral_texts(fake, everyone) and ephemeral_texts(fake, one)))
        channel = f"discord:{fake.channel.id}"
        assert ephemeral_texts(fake, everyone)[0].startswith(f"Budget for each person in {channel} changed")
        assert ephemeral_texts(fake, one)[0].startswith(f"Budget for discord:{bob.id} in {channel} changed")
        budget = core_of(bot).budget
        assert (await budget.limits.limit_for_scope(f"discord:*@{channel}")).describe() == "$1/day"
        assert (await budget.limits.limit_for_scope(f"discord:{bob.id}@{channel}")).describe() == "$3/day"
        assert (await budget.limits.limit_for_scope(f"discord:{fake.alice.id}@{channel}")).describe() == "$1/day"

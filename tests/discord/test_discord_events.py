"""adapters.discord.routing and the pure half of files: who gets an answer, where, under which key, from recorded
gateway payloads (tests/discord/payloads, read by the listener's facts_from_message) and plain data."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import discord
import pytest
from discord.state import ConnectionState

from adapters.discord.listeners import facts_from_message
from adapters.discord.routing import (
    DM_WORKSPACE,
    Ignore,
    MessageFacts,
    Place,
    Placement,
    Referenced,
    Reply,
    conversation_anchor,
    interaction_key,
    route,
    strip_mentions,
    thread_name,
)
from bot.domain import Platform, ThreadKey

FIXTURES = Path(__file__).parent / "payloads"
THREAD_TYPES = (discord.ChannelType.public_thread, discord.ChannelType.private_thread, discord.ChannelType.news_thread)


def facts_from_payload(message: dict[str, Any], channel: dict[str, Any]) -> MessageFacts | None:
    """The listener's facts for a MESSAGE_CREATE payload, which discord.py reads as it would the gateway's,
    in the channel object it was posted in (a message event does not say whether its channel is a thread)."""
    state = ConnectionState(dispatch=lambda *_: None, handlers={}, hooks={}, http=None, intents=discord.Intents.all())
    guild_id = message.get("guild_id") or channel.get("guild_id")
    if guild_id is None:
        where = discord.DMChannel(me=None, state=state, data=channel)
    else:
        guild = discord.Guild(data={"id": guild_id}, state=state)
        is_thread = discord.ChannelType(channel["type"]) in THREAD_TYPES
        where = (discord.Thread if is_thread else discord.TextChannel)(guild=guild, state=state, data=channel)
    return facts_from_message(discord.Message(state=state, channel=where, data=message))


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def decide(name: str) -> tuple[Ignore | Reply, dict[str, Any]]:
    data = fixture(name)
    facts = facts_from_payload(data["message"], data["channel"])
    assert facts is not None
    return route(facts, bot_id=int(data["bot_user_id"])), data


def test_every_fixture_is_a_message_create_with_its_channel() -> None:
    names = sorted(p.stem for p in FIXTURES.glob("*.json"))
    assert len(names) >= 10
    for name in names:
        data = fixture(name)
        assert {"description", "bot_user_id", "channel", "message"} <= data.keys(), name
        assert data["message"]["channel_id"] == data["channel"]["id"], name


def test_mention_in_a_channel_opens_a_thread_keyed_by_the_message_under_the_channel() -> None:
    decision, data = decide("guild_mention")
    message = data["message"]
    assert isinstance(decision, Reply)
    assert decision.placement is Placement.NEW_THREAD
    assert decision.key == ThreadKey(Platform.DISCORD, message["guild_id"], message["channel_id"], message["id"])
    assert decision.text == "how do I reverse a list in Python?"  # the mention is gone
    assert decision.thread_name == "how do I reverse a list in Python?"
    assert not decision.needs_thread_check and not decision.is_direct


def test_plain_channel_chatter_and_replies_to_people_are_ignored() -> None:
    assert isinstance(decide("guild_plain")[0], Ignore)
    assert isinstance(decide("reply_to_person")[0], Ignore)


def test_follow_up_in_a_thread_is_answered_only_if_the_database_knows_the_thread() -> None:
    decision, data = decide("thread_followup")
    channel = data["channel"]
    assert isinstance(decision, Reply) and decision.needs_thread_check
    assert decision.placement is Placement.IN_THREAD
    # Budgets are per parent channel: the key names the parent, the thread is the thread.
    assert decision.key == ThreadKey(Platform.DISCORD, channel["guild_id"], channel["parent_id"], channel["id"])
    assert decision.text == "and in place?"
    other, _ = decide("other_thread")
    assert isinstance(other, Reply) and other.needs_thread_check  # the database says no for it


def test_a_mention_in_any_thread_is_answered_there() -> None:
    decision, data = decide("thread_mention")
    assert isinstance(decision, Reply) and not decision.needs_thread_check
    assert decision.key.thread_id == data["channel"]["id"] and decision.text == "and for tuples?"


def test_direct_message_is_one_continuing_conversation_per_dm_channel() -> None:
    decision, data = decide("dm")
    channel_id = data["channel"]["id"]
    assert isinstance(decision, Reply) and decision.is_direct and decision.placement is Placement.IN_DM
    assert decision.key == ThreadKey(Platform.DISCORD, DM_WORKSPACE, channel_id, channel_id)
    assert decision.text == "what does `git rebase -i` do?"


def test_reply_to_the_bots_channel_answer_continues_the_question_it_answered() -> None:
    decision, data = decide("reply_to_bot")
    referenced = data["message"]["referenced_message"]
    question_id = referenced["message_reference"]["message_id"]
    assert isinstance(decision, Reply) and decision.placement is Placement.REPLY_IN_CHANNEL
    # The reply pings the bot (so it is in mentions), but it continues, it does not open a new thread.
    assert decision.conversation_anchor == question_id == decision.key.thread_id
    assert decision.key.channel_id == data["channel"]["id"]


def test_reply_to_an_ask_response_continues_the_interactions_conversation() -> None:
    decision, data = decide("reply_to_ask")
    interaction_id = data["message"]["referenced_message"]["interaction_metadata"]["id"]
    assert isinstance(decision, Reply) and decision.conversation_anchor == interaction_id


@pytest.mark.parametrize("name", ["other_bot", "own_message", "system_join"])
def test_bots_our_own_echo_and_system_messages_are_ignored(name: str) -> None:
    decision, _ = decide(name)
    assert isinstance(decision, Ignore), decision


def base_facts(**changes: Any) -> MessageFacts:
    facts = MessageFacts(message_id=50, channel_id=40, guild_id=30, place=Place.CHANNEL, author_id=20,
                         author_is_bot=False, message_type=0, content="<@10> hello", mention_ids=frozenset({10}))
    return replace(facts, **changes)


def test_role_mention_of_the_bots_role_counts_and_is_stripped() -> None:
    facts = base_facts(content="<@&77> explain this", mention_ids=frozenset(), role_mention_ids=frozenset({77}))
    assert isinstance(route(facts, bot_id=10), Ignore)
    decision = route(facts, bot_id=10, bot_role_ids=frozenset({77}))
    assert isinstance(decision, Reply) and decision.text == "explain this"


def test_reply_to_a_deleted_or_unresolved_message_falls_back_to_the_mention_rule() -> None:
    facts = base_facts(referenced=Referenced(message_id=49), mention_ids=frozenset())
    assert isinstance(route(facts, bot_id=10), Ignore)
    decision = route(replace(facts, mention_ids=frozenset({10})), bot_id=10)
    assert isinstance(decision, Reply) and decision.placement is Placement.NEW_THREAD


def test_thread_without_known_parent_is_not_answered() -> None:
    assert isinstance(route(base_facts(place=Place.THREAD, parent_id=None), bot_id=10), Ignore)


def test_conversation_anchor_prefers_interaction_then_reply_target_then_itself() -> None:
    assert conversation_anchor(Referenced(1, 10, replied_to_id=2, interaction_id=3)) == 3
    assert conversation_anchor(Referenced(1, 10, replied_to_id=2)) == 2
    assert conversation_anchor(Referenced(1, 10)) == 1


def test_interaction_keys() -> None:
    dm = interaction_key(interaction_id=9, guild_id=None, channel_id=5, place=Place.DM, parent_id=None)
    assert dm == ThreadKey(Platform.DISCORD, DM_WORKSPACE, "5", "5")
    thread = interaction_key(interaction_id=9, guild_id=1, channel_id=5, place=Place.THREAD, parent_id=4)
    assert thread == ThreadKey(Platform.DISCORD, "1", "4", "5")
    channel = interaction_key(interaction_id=9, guild_id=1, channel_id=5, place=Place.CHANNEL, parent_id=None)
    assert channel == ThreadKey(Platform.DISCORD, "1", "5", "9")


def test_strip_mentions_keeps_code_spacing_and_other_mentions() -> None:
    text = "<@10>  fix this:\n```py\nx  =  1\n```\ncc <@11> <@!10>"
    assert strip_mentions(text, 10) == "fix this:\n```py\nx  =  1\n```\ncc <@11>"


@pytest.mark.parametrize(("text", "expected"), [
    ("**Why** does `a < b` fail?\nmore", "Why does a < b fail?"),
    ("```py\nprint(1)\n```\nexplain", "print(1)"),
    ("", "Question from alice"),
    ("```\n```", "Question from alice"),
    ("rtl \u202egnp.exe\u202c", "rtl gnp.exe"),  # no override to show it as "exe.png"
    ("\u202e\u202e\u200b\nnul\x00here", "nulhere"),
    # Discord shows no mention, channel, role or timestamp in a thread's name rendered: only their raw ids.
    ("<@123> says <#456> races <:blob:789> at <t:1700000000:R>, why? <@&12> <@!5>", "says races :blob: at, why?"),
    ("<@123>\nthe real question", "the real question"),
])
def test_thread_name_is_the_first_words_without_markdown(text: str, expected: str) -> None:
    assert thread_name(text, "alice") == expected


def test_thread_name_is_cut_between_words_within_100_characters() -> None:
    name = thread_name("word " * 60)
    assert len(name) <= 100 and name.endswith("word…") and "wor…" not in name



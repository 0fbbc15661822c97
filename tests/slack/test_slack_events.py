"""adapters.slack.routing: which Slack payloads the bot answers, and the Incoming each becomes (pure, from the
JSON fixtures in tests/slack/payloads)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.slack.routing import (
    ASSISTANT_PROMPTS,
    Addressed,
    BotIdentity,
    Ignored,
    assistant_thread_started,
    clean_text,
    decide,
)
from bot.domain import Platform, ThreadKey

FIXTURES = Path(__file__).parent / "payloads"
ME = BotIdentity(user_id="U07SEEDB0T", bot_id="B07SEEDB0T", team_id="T0ABC12345")


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def addressed(name: str, **kw: Any) -> Addressed:
    decision = decide(fixture(name), ME, **kw)
    assert isinstance(decision, Addressed), decision
    return decision


def test_mention_in_a_channel_starts_a_thread_under_it() -> None:
    d = addressed("app_mention")
    assert d.incoming.thread == ThreadKey(Platform.SLACK, "T0ABC12345", "C0LAN2Q65", "1700000100.000200")
    assert (d.reply_channel, d.reply_thread_ts) == ("C0LAN2Q65", "1700000100.000200")
    assert d.incoming.message_id == "1700000100.000200"
    assert d.incoming.user_id == "U061F7AUR" and not d.incoming.is_direct
    assert not d.needs_thread_check and not d.assistant and d.recipient_team_id == "T0ABC12345"
    assert d.incoming.dedup_key == "slack:T0ABC12345:C0LAN2Q65:1700000100.000200"
    # The mention is gone; Slack's escapes, links and channel references read as a person wrote them.
    assert d.incoming.text == ("why does `a < b` raise for None? "
                               "[the docs](https://docs.python.org/3/reference/expressions.html) say nothing & "
                               "#general is stuck")


def test_mention_inside_a_thread_answers_in_that_thread() -> None:
    d = addressed("app_mention_in_thread")
    assert d.incoming.thread.thread_id == d.reply_thread_ts == "1700000100.000200"
    assert d.incoming.message_id == "1700000160.000300"
    assert d.incoming.text == "and what about sorting a list with None in it?"


def test_the_message_twin_of_a_mention_is_left_to_app_mention_and_shares_its_dedup_key() -> None:
    twin = decide(fixture("thread_reply_with_mention"), ME)
    assert isinstance(twin, Ignored) and "app_mention" in twin.reason
    # Even if both were handled, the core would see one message: the same dedup key.
    mention = addressed("app_mention_in_thread")
    as_message = fixture("thread_reply_with_mention")
    as_message["event"]["text"] = "no mention this time"
    reply = decide(as_message, ME)
    assert isinstance(reply, Addressed) and reply.incoming.dedup_key == mention.incoming.dedup_key


def test_thread_reply_without_mention_needs_the_database_to_decide() -> None:
    d = addressed("thread_reply")
    assert d.needs_thread_check
    assert d.incoming.thread.thread_id == "1700000100.000200" and d.incoming.message_id == "1700000200.000400"
    assert d.incoming.text == "thanks! and if the list holds strings & ints?"


def test_a_reply_in_a_group_dms_thread_is_a_thread_reply_not_a_dm() -> None:
    d = addressed("thread_reply_mpim")  # message.mpim, which the manifest subscribes to for exactly this
    assert d.needs_thread_check and not d.incoming.is_direct
    assert d.incoming.thread == ThreadKey(Platform.SLACK, "T0ABC12345", "G0MPIM7Q2", "1700000110.000300")


def test_direct_message_is_its_own_thread() -> None:
    d = addressed("message_im")
    assert d.incoming.is_direct and not d.needs_thread_check
    assert d.incoming.thread == ThreadKey(Platform.SLACK, "T0ABC12345", "D0LAN2Q65", "1700000300.000600")
    assert d.reply_thread_ts == "1700000300.000600"
    assert not d.assistant  # only the Assistant middleware's route marks it


def test_file_share_is_answered_with_its_files() -> None:
    d = addressed("file_share")
    assert d.incoming.is_direct and d.incoming.text == "can you review this?"
    assert [f["name"] for f in d.files] == ["retry.py"]
    assert d.files[0]["url_private_download"].endswith("/download/retry.py")


def test_assistant_pane_message_is_marked_and_keyed_by_its_thread() -> None:
    d = addressed("assistant_message", assistant=True)
    assert d.assistant and d.incoming.is_direct
    assert d.incoming.thread.thread_id == d.reply_thread_ts == "1700000800.001100"
    assert d.incoming.text.startswith("Explain this error")
    # The flag never leaks into channels.
    assert not addressed("app_mention", assistant=True).assistant


@pytest.mark.parametrize(("name", "reason"), [
    ("bot_message", "subtype bot_message"),
    ("own_message", "own message"),
    ("message_changed", "subtype message_changed"),
    ("message_deleted", "subtype message_deleted"),
    ("message_channel", "not addressed to the bot"),
    ("thread_reply_to_someone_else", "addressed to someone else"),
    ("assistant_thread_started", "event type assistant_thread_started"),
])
def test_ignored_events(name: str, reason: str) -> None:
    decision = decide(fixture(name), ME)
    assert decision == Ignored(reason)


def test_other_bots_are_ignored_even_without_the_bot_message_subtype() -> None:
    body = fixture("thread_reply")
    body["event"]["bot_id"] = "B0OTHER01"
    assert decide(body, ME) == Ignored("from another bot")
    body = fixture("message_im")
    body["event"]["user"] = ME.user_id
    assert decide(body, ME) == Ignored("own message")


def test_mentions_in_dms_are_left_to_the_message_event() -> None:
    body = fixture("app_mention")
    body["event"]["channel"] = "D0LAN2Q65"
    assert decide(body, ME) == Ignored("mention in a DM: the message event answers it")


def test_thread_broadcast_counts_as_a_reply_but_other_subtypes_do_not() -> None:
    body = fixture("thread_reply")
    body["event"]["subtype"] = "thread_broadcast"
    assert isinstance(decide(body, ME), Addressed)
    body["event"]["subtype"] = "channel_join"
    assert decide(body, ME) == Ignored("subtype channel_join")


def test_assistant_thread_started_names_the_thread() -> None:
    thread = assistant_thread_started(fixture("assistant_thread_started"))
    assert thread is not None
    assert (thread.channel_id, thread.thread_ts, thread.user_id) == ("D0LAN2Q65", "1700000800.001100", "U061F7AUR")
    assert assistant_thread_started(fixture("message_im")) is None
    assert 2 <= len(ASSISTANT_PROMPTS) <= 4 and all(p["title"] and p["message"] for p in ASSISTANT_PROMPTS)


def test_clean_text() -> None:
    bot = ME.user_id
    assert clean_text(f"<@{bot}> hi", bot) == "hi"
    assert clean_text(f"hey <@{bot}|seedbot> can you help", bot) == "hey can you help"
    assert clean_text("ask <@U0G9QF9C6|bob> or <@U061F7AUR>", bot) == "ask @bob or <@U061F7AUR>"
    assert clean_text("<!here> see <https://example.com> and <mailto:a@b.io|a@b.io>", bot) == (
        "@here see https://example.com and a@b.io")
    assert clean_text("<!subteam^S0123|@oncall> x &lt;= y &amp;&amp; z &gt; 0", bot) == "@oncall x <= y && z > 0"
    code = f"<@{bot}>\n```\ndef f():\n    return 1\n```"
    assert clean_text(code, bot) == "```\ndef f():\n    return 1\n```"


def test_malformed_bodies_are_ignored() -> None:
    assert isinstance(decide({"type": "url_verification", "challenge": "x"}, ME), Ignored)
    assert isinstance(decide({"type": "event_callback", "event": {"type": "message"}}, ME), Ignored)

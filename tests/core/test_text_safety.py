"""Text is made safe at the edge (point 3): lone surrogates and NULs in what people send, in files
and in what the model answers are replaced before anything is stored or sent, on SQLite and
PostgreSQL."""

from __future__ import annotations

import dataclasses

from bot.domain import Attachment, AttachmentKind
from bot.text_safety import REPLACEMENT, clean_name, clean_text
from tests.books import read_books
from tests.factories import incoming
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack
from tests.sinks import RecordingSink
from tests.slack.harness import RunningBot, answer_part, answers_to


def test_clean_text_replaces_only_what_cannot_be_stored() -> None:
    assert clean_text("plain") == "plain"
    assert clean_text("a\x00b\ud800c\udfffd") == f"a{REPLACEMENT}b{REPLACEMENT}c{REPLACEMENT}d"
    assert clean_text("emoji 😀 and ü stay") == "emoji 😀 and ü stay"
    assert clean_text("a\x00b\ud800").encode("utf-8")  # now encodable


async def test_surrogates_and_nuls_in_question_file_and_answer_are_stored_replaced(
        core_for, database_url: str, fake_seed: FakeSeed) -> None:
    core = await core_for(database_url)
    fake_seed.script(Reply(content="Answer with a NUL\x00 and a lone \udc80 surrogate."))
    file = Attachment("notes.txt", AttachmentKind.TEXT, 12, data=b"file \x00 body")
    sink = RecordingSink()
    message = dataclasses.replace(incoming("Why \ud800 does this\x00 fail?", attachments=(file,)),
                                  user_name="A\x00d\ud800a")
    answer = await core.service.handle(message, sink)
    assert answer is not None and answer.status == "ok"
    assert sink.text == f"Answer with a NUL{REPLACEMENT} and a lone {REPLACEMENT} surrogate."
    books = await read_books(core.db)
    user, assistant = books.messages
    assert user.content.startswith(f"Why {REPLACEMENT} does this{REPLACEMENT} fail?")
    # A name drops the NUL (it steers nothing and shows as nothing); the lone surrogate is marked.
    assert f"file {REPLACEMENT} body" in user.content and user.user_name == f"Ad{REPLACEMENT}a"
    assert assistant.content == sink.text and books.user_statuses == ["ok"]
    sent = fake_seed.completions[-1].body["messages"][-1]["content"]
    assert "\x00" not in sent and REPLACEMENT in sent
    (row,) = books.ledger
    assert row.usage_known and books.balanced()


async def test_slack_a_lone_surrogate_in_an_event_is_answered(
        slack_bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(content="Here \ud800 you go\x00."))
    (reply,) = await answers_to(slack_bot, slack, "what is \ud800 this?\x00")
    assert answer_part(reply.visible_text) == f"Here {REPLACEMENT} you go{REPLACEMENT}."
    await slack_bot.idle()
    assert slack_bot.process.core is not None
    books = await read_books(slack_bot.process.core.db)
    assert books.user_statuses == ["ok"] and books.balanced()
    assert books.messages[0].content.endswith(f"what is {REPLACEMENT} this?{REPLACEMENT}")


def test_clean_name_keeps_letters_of_any_script_and_drops_what_only_steers_the_display() -> None:
    assert clean_name("日本語\u00a0名前") == "日本語 名前"
    assert clean_name("ev\u202eil\u2066 \u200bname\t\r\n") == "evil name"
    assert clean_name("x\ud800y") == f"x{REPLACEMENT}y"
    assert clean_name("\u202e\x00") == ""
    assert clean_name("👩\u200d💻 Priya") == "👩\u200d💻 Priya"  # a joiner inside an emoji stays

"""The answer supervisor: whatever escapes an answer, on every surface, the message ends in a final,
truthful state (point 1 of the failure contract)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.cli.asking import answer_in_terminal
from adapters.common.supervisor import FAILED_SENTENCE, AnswerSupervisor
from adapters.terminal.sink import TerminalSink
from bot.config import Settings
from bot.domain import Platform
from bot.llm import SeedUnavailable
from bot.storage.conversations import ConversationStore
from tests.books import read_books, read_books_at
from tests.discord import harness as discord_harness
from tests.factories import incoming
from tests.fakes.discord_fake import FakeDiscord
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack
from tests.sinks import RecordingSink
from tests.slack.harness import RunningBot, bot_replies


def break_answer_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected bug at the worst moment: the answer streamed, then storing it raises."""

    def broken(*_args: object, **_kw: object) -> None:
        raise RuntimeError("bug: cannot store the answer")

    monkeypatch.setattr(ConversationStore, "record_answer", staticmethod(broken))


async def test_an_exception_after_streaming_settles_at_the_reservation_and_says_so(
        core_for, database_url: str, fake_seed: FakeSeed, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    core = await core_for(database_url)
    fake_seed.script(Reply(content="Half of an answer that will never be stored."))
    break_answer_storage(monkeypatch)
    sink = RecordingSink()
    message = incoming("Explain monads")
    answer = await AnswerSupervisor(core.service).answer(message, sink)
    assert answer is not None and answer.status == "failed"
    assert sink.text and sink.failure == FAILED_SENTENCE  # what was shown, then one plain sentence
    books = await read_books(core.db)
    (row,) = books.ledger
    # The request reached the provider and no usage can be trusted now: the reservation is charged.
    assert row.status == "failed" and not row.usage_known and row.cost_nanos == row.reserved_nanos > 0
    assert "RuntimeError" in (row.error or "")
    assert books.counter("slack:C1").reserved_nanos == 0
    assert books.counter("slack:C1").spent_nanos == row.cost_nanos
    assert books.user_statuses == ["failed"] and not books.active_reservations
    tracebacks = [r for r in caplog.records if r.exc_info and message.dedup_key in r.getMessage()]
    assert len(tracebacks) == 1


async def test_an_exception_before_the_request_releases_the_reservation(
        core_for, sqlite_url: str, fake_seed: FakeSeed, monkeypatch: pytest.MonkeyPatch) -> None:
    core = await core_for(sqlite_url)

    monkeypatch.setattr(core.service, "_stream", lambda request, sink, opened: _raise(KeyError("bug")))
    sink = RecordingSink()
    answer = await AnswerSupervisor(core.service).answer(incoming("Hi"), sink)
    assert answer is not None and answer.status == "failed" and sink.failure == FAILED_SENTENCE
    books = await read_books(core.db)
    (row,) = books.ledger
    assert row.cost_nanos == 0 and row.status == "failed" and books.balanced()
    assert books.reservations[0].status == "released" and books.user_statuses == ["failed"]
    assert fake_seed.requests == []


async def _raise(exc: Exception) -> None:
    raise exc


async def test_a_connection_closed_without_a_response_is_unavailable_and_released(
        core_for, database_url: str, fake_seed: FakeSeed) -> None:
    core = await core_for(database_url)  # SEED_MAX_RETRIES=2: three attempts, all dropped
    fake_seed.script(*[Reply(fault="drop")] * 3)
    sink = RecordingSink()
    answer = await AnswerSupervisor(core.service).answer(incoming("Hi"), sink)
    assert answer is not None and answer.status == "failed"
    assert sink.failure == SeedUnavailable.user_message
    books = await read_books(core.db)
    (row,) = books.ledger
    assert row.cost_nanos == 0 and (row.error or "").startswith("SeedUnavailable") and books.balanced()
    assert books.user_statuses == ["failed"] and len(fake_seed.requests) == 3


async def test_slack_an_exception_mid_answer_stops_the_stream_and_tells_the_user(
        slack_bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_seed.script(Reply(content="Rebasing rewrites history; " * 20, chunk_chars=16, chunk_delay=0.005))
    break_answer_storage(monkeypatch)
    mention = slack.events.app_mention("what does rebase do?")
    ts = mention["event"]["ts"]
    async with slack.sender(slack_bot.events_url) as sender:
        await sender.post_event(mention)

    def two_replies() -> list | None:
        replies = bot_replies(slack, "C1", ts)
        return replies if len(replies) == 2 else None

    half, notice = await slack.wait_for(two_replies, 10.0)
    await slack_bot.idle()
    assert half.stream_state == "stopped" and half.visible_text.startswith("Rebasing rewrites history;")
    assert notice.visible_text == FAILED_SENTENCE
    assert slack_bot.process.core is not None
    books = await read_books(slack_bot.process.core.db)
    (row,) = books.ledger
    assert row.status == "failed" and row.cost_nanos == row.reserved_nanos and books.balanced()
    assert books.user_statuses == ["failed"]


async def test_slack_a_dropped_model_connection_is_answered_not_silent(
        slack_bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    fake_seed.script(*[Reply(fault="drop")] * 3)
    mention = slack.events.app_mention("are you there?")
    ts = mention["event"]["ts"]
    async with slack.sender(slack_bot.events_url) as sender:
        await sender.post_event(mention)
    (reply,) = await slack.wait_for(lambda: bot_replies(slack, "C1", ts) or None, 10.0)
    await slack_bot.idle()
    assert reply.visible_text == SeedUnavailable.user_message and reply.stream_state != "streaming"
    assert slack_bot.process.core is not None
    books = await read_books(slack_bot.process.core.db)
    assert books.user_statuses == ["failed"] and books.ledger[0].cost_nanos == 0 and books.balanced()


async def test_cli_an_exception_is_one_plain_sentence_and_the_books_close(
        settings_for: Callable[..., Settings], tmp_path: Path, fake_seed: FakeSeed,
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    fake_seed.script(Reply(content="An answer the terminal shows before the failure."))
    break_answer_storage(monkeypatch)
    out, err = io.StringIO(), io.StringIO()
    answer = await answer_in_terminal(settings, incoming("Hi", platform=Platform.CLI), TerminalSink(out, err),
                                      continuing=False)
    assert answer is not None and answer.status == "failed"
    assert out.getvalue().startswith("An answer the terminal shows")
    assert err.getvalue() == f"seedbot: {FAILED_SENTENCE}\n"
    books = await read_books_at(settings.database_url)
    assert books.user_statuses == ["failed"] and books.ledger[0].cost_nanos == books.ledger[0].reserved_nanos
    assert books.balanced()


async def test_discord_an_exception_mid_answer_is_closed_by_the_same_supervisor(
        fake: FakeDiscord, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake_seed.script(Reply(content="A monad wraps a value. " * 10, chunk_chars=20, chunk_delay=0.01))
    break_answer_storage(monkeypatch)
    async with discord_harness.running_bot(fake, settings_for, tmp_path) as running:
        question = await fake.dispatch_message_create(fake.channel, fake.alice, f"{fake.bot.mention} monads?")
        messages = await running.answer_in(int(question["id"]))
        await running.idle()
        assert messages[-1]["content"] == FAILED_SENTENCE
        assert messages[0]["content"] == "A monad wraps a value. " * 10  # its last edit: all produced
        books = await read_books(discord_harness.core_of(running).db)
    (row,) = books.ledger
    assert row.status == "failed" and row.cost_nanos == row.reserved_nanos and books.balanced()
    assert books.user_statuses == ["failed"]

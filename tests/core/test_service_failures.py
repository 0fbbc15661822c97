"""Every failure kind: what the user reads, what the ledger says, what the budget holds."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from adapters.core import Core
from bot.budget.outcomes import Grant
from bot.budget.scopes import channel_scope
from bot.chat.streamed import NOT_POSTED
from bot.llm import SeedContentFiltered, SeedContextTooLong, SeedQuotaExhausted, SeedUnavailable
from bot.storage.tables import BudgetCounter, Message, Reservation, UsageEntry, utcnow
from tests.factories import incoming
from tests.fakes.seed import FakeSeed, Reply
from tests.sinks import REFUSAL, RecordingSink, RefusingSink


async def only_ledger_row(core: Core) -> UsageEntry:
    async with core.db.session() as session:
        (row,) = list(await session.scalars(select(UsageEntry)))
        return row


async def channel_counter(core: Core) -> BudgetCounter:
    async with core.db.session() as session:
        return (await session.scalars(select(BudgetCounter).where(
            BudgetCounter.scope_key == channel_scope("slack", "C1")))).one()


async def stored_messages(core: Core) -> list[tuple[str, str, str]]:
    async with core.db.session() as session:
        rows = await session.execute(select(Message.role, Message.status, Message.content).order_by(Message.id))
        return [tuple(r) for r in rows]


async def failed_at_no_cost(core: Core, question: str) -> UsageEntry:
    """The one call's ledger row, once asserted failed at no cost with the channel's counter back at zero and
    `question` the only stored message (failed, so it stays out of the thread's history)."""
    row = await only_ledger_row(core)
    assert row.status == "failed" and row.cost_nanos == 0
    counter = await channel_counter(core)
    assert counter.reserved_nanos == 0 and counter.spent_nanos == 0
    assert await stored_messages(core) == [("user", "failed", question)]
    return row


@pytest.mark.parametrize(
    ("replies", "sentence"),
    [
        ([Reply(fault="server_500")] * 3, SeedUnavailable.user_message),
        ([Reply(fault="quota_429")], SeedQuotaExhausted.user_message),
        ([Reply(fault="context_400")], SeedContextTooLong.user_message),
    ],
    ids=["unavailable", "quota", "context_too_long"],
)
async def test_errors_before_the_first_token_release_the_reservation(
        core_for, database_url: str, fake_seed: FakeSeed, replies: list[Reply], sentence: str) -> None:
    core = await core_for(database_url)
    fake_seed.script(*replies)
    sink = RecordingSink()
    answer = await core.service.handle(incoming("Why is my build slow?"), sink)
    assert answer is not None and answer.status == "failed"
    assert sink.failure == sentence and sink.text == ""
    row = await failed_at_no_cost(core, "Why is my build slow?")
    assert row.reserved_nanos > 0
    assert row.error and row.error.startswith(("SeedUnavailable", "SeedQuotaExhausted", "SeedContextTooLong"))


async def test_a_cut_stream_keeps_the_partial_answer_and_bills_the_reservation(
        core_for, database_url: str, fake_seed: FakeSeed) -> None:
    core = await core_for(database_url)
    fake_seed.script(Reply(content="Part one. Part two. Part three.", chunk_chars=10, fault="cut",
                           cut_after_chunks=2))
    sink = RecordingSink()
    answer = await core.service.handle(incoming("Explain"), sink)
    assert answer is not None and answer.status == "cut"
    assert sink.text == "Part one. Part two. "
    assert sink.footer is not None
    assert "the answer was cut off: the connection to the model broke." in sink.footer.notes
    row = await only_ledger_row(core)
    assert row.status == "cut" and not row.usage_known
    assert row.cost_nanos == row.reserved_nanos > 0  # usage unknown: the worst case is what it may have cost
    counter = await channel_counter(core)
    assert counter.reserved_nanos == 0 and counter.spent_nanos == row.cost_nanos
    assert await stored_messages(core) == [("user", "ok", "Explain"), ("assistant", "cut", "Part one. Part two. ")]


async def test_content_filter_with_partial_text_is_kept_and_billed_by_usage(
        core_for, database_url: str, fake_seed: FakeSeed) -> None:
    core = await core_for(database_url)
    fake_seed.script(Reply(content="I can explain part", fault="content_filter"))
    sink = RecordingSink()
    answer = await core.service.handle(incoming("Explain"), sink)
    assert answer is not None and answer.status == "filtered"
    assert sink.footer is not None and "stopped by the model's content filter" in sink.footer.notes
    row = await only_ledger_row(core)
    assert row.status == "filtered" and row.usage_known
    assert row.cost_nanos == core.prices.cost_nanos(answer.usage) < row.reserved_nanos


async def test_content_filter_with_no_text_is_a_plain_refusal(core_for, sqlite_url: str, fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url)
    fake_seed.script(Reply(content="", fault="content_filter"))
    sink = RecordingSink()
    answer = await core.service.handle(incoming("Something"), sink)
    assert answer is not None and answer.status == "filtered"
    assert sink.failure == SeedContentFiltered.user_message
    row = await only_ledger_row(core)
    assert row.status == "filtered" and row.cost_nanos == core.prices.cost_nanos(answer.usage)


async def test_an_answer_of_only_white_space_ends_with_a_sentence_not_a_bare_footer(
        core_for, sqlite_url: str, fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url)
    fake_seed.script(Reply(content="   \n\n  \n", completion_tokens=111))
    sink = RecordingSink()
    answer = await core.service.handle(incoming("Something"), sink)
    assert answer is not None and answer.status == "empty_answer" and sink.footer is None
    assert sink.failure is not None and "empty answer" in sink.failure
    row = await only_ledger_row(core)
    assert row.cost_nanos == core.prices.cost_nanos(answer.usage) > 0  # the model's tokens are still paid
    # Booked as what the person saw, and counted as a failure, not an answer (a new user's trial found "ok").
    assert row.status == "empty_answer"
    report = await core.reports.spend(utcnow() - timedelta(days=1), utcnow() + timedelta(days=1))
    assert (report.answers, report.failures) == (0, 1)


async def test_a_reservation_whose_process_died_is_settled_after_the_ttl(core_for, database_url: str,
                                                                         fake_seed: FakeSeed) -> None:
    core = await core_for(database_url)
    claimed = await core.store.claim(incoming("create channel", message_id="warm"), "", 0)
    assert claimed is not None
    grant = await core.budget.reserve(channel_pk=claimed.channel.pk, scope_key=claimed.channel.scope_key,
                                      thread_pk=claimed.thread.pk, user_id="U1",
                                      kind="chat", estimated_prompt_tokens=1_000, wanted_max_tokens=4_096,
                                      web_search=False)
    assert isinstance(grant, Grant)
    assert await core.budget.expire_stale() == 0  # not yet stale
    later = utcnow() + timedelta(seconds=core.settings.reservation_ttl_seconds + 1)
    assert await core.budget.expire_stale(now=later) == 1
    assert await core.budget.expire_stale(now=later) == 0  # exactly once
    row = await only_ledger_row(core)
    assert row.status == "expired" and row.cost_nanos == grant.amount_nanos and not row.usage_known
    counter = await channel_counter(core)
    assert counter.reserved_nanos == 0 and counter.spent_nanos == grant.amount_nanos
    async with core.db.session() as session:
        reservation = await session.get(Reservation, grant.reservation_id)
        assert reservation is not None and reservation.status == "expired"


class BrokenSink(RecordingSink):
    """A platform that fails mid-answer (a deleted channel, an expired token)."""

    async def append(self, delta: str) -> None:
        if self.deltas:
            raise ConnectionError("platform went away")
        await super().append(delta)


async def test_a_failing_platform_never_costs_the_books(core_for, sqlite_url: str, fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url)
    fake_seed.script(Reply(content="one\ntwo\nthree four five six", chunk_chars=4))
    sink = BrokenSink()
    answer = await core.service.handle(incoming("Explain"), sink)
    assert answer is not None and answer.status == "ok"
    assert sink.text == "one\n"  # the first append got through, the rest was skipped after the failure
    row = await only_ledger_row(core)
    assert row.status == "ok" and row.cost_nanos == core.prices.cost_nanos(answer.usage)
    counter = await channel_counter(core)
    assert counter.reserved_nanos == 0 and counter.spent_nanos == row.cost_nanos
    assert ("assistant", "ok", "one\ntwo\nthree four five six") in await stored_messages(core)


async def test_a_platform_refusing_the_answer_before_the_call_costs_no_call(
        core_for, sqlite_url: str, fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url)
    sink = RefusingSink(refuse_at="start")
    answer = await core.service.handle(incoming("Explain"), sink)
    assert answer is not None and answer.status == "failed" and answer.reason == NOT_POSTED
    assert fake_seed.requests == [] and sink.failure == NOT_POSTED  # fail() only closes such a sink
    row = await failed_at_no_cost(core, "Explain")
    assert row.error == f"SinkBroken: {REFUSAL}"


async def test_a_platform_refusing_the_answer_mid_stream_stops_the_call_at_once(
        core_for, sqlite_url: str, fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url)
    fake_seed.script(Reply(content="word " * 400, chunk_chars=10, chunk_delay=0.01))
    sink = RefusingSink(refuse_at="append")
    answer = await core.service.handle(incoming("Explain"), sink)
    assert answer is not None and answer.status == "failed"
    for _ in range(500):  # the fake notices the closed connection at its next write
        if fake_seed.requests[0].client_closed:
            break
        await asyncio.sleep(0.01)
    assert fake_seed.requests[0].client_closed
    assert len(sink.deltas) == 1 and len(answer.text) < 2000  # stopped at the append that was refused
    row = await only_ledger_row(core)
    # Sent, no usage: the cost rule charges the reservation.
    assert row.status == "failed" and not row.usage_known and row.cost_nanos == row.reserved_nanos > 0
    assert row.error == f"SinkBroken: {REFUSAL}"
    assert [(role, status) for role, status, _ in await stored_messages(core)] == [
        ("user", "failed"), ("assistant", "failed")]


async def test_a_platform_refusing_the_last_post_restates_the_settled_answer(
        core_for, database_url: str, fake_seed: FakeSeed) -> None:
    core = await core_for(database_url)
    fake_seed.script(Reply(content="Short."))
    sink = RefusingSink(refuse_at="finish")
    answer = await core.service.handle(incoming("Explain"), sink)
    assert answer is not None and answer.status == "failed" and answer.reason == NOT_POSTED
    row = await only_ledger_row(core)
    assert row.status == "failed" and row.usage_known and row.error == f"SinkBroken: {REFUSAL}"
    assert row.cost_nanos == core.prices.cost_nanos(answer.usage) > 0  # the call completed: its exact price
    counter = await channel_counter(core)
    assert counter.reserved_nanos == 0 and counter.spent_nanos == row.cost_nanos
    assert await stored_messages(core) == [("user", "failed", "Explain"), ("assistant", "failed", "Short.")]

"""A question's message is claimed and its call reserved in one transaction (bot.chat.planning): two
transactions per answer (that one, then the settlement), and a reservation that fails leaves no claim."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bot.budget import reservations
from bot.budget.reservations import BudgetManager
from bot.storage.conversations import ConversationStore
from bot.storage.engine import Database
from tests.books import read_books
from tests.factories import incoming
from tests.fakes.seed import FakeSeed, Reply
from tests.sinks import RecordingSink


async def test_an_answer_takes_two_transactions_and_its_reservation_is_kept_alive(
        core_for, database_url: str, fake_seed: FakeSeed, monkeypatch: pytest.MonkeyPatch) -> None:
    core = await core_for(database_url)
    fake_seed.script(Reply(content="Sorted.", chunk_chars=3))
    transactions: list[str] = []
    run_core = Database.run_core

    async def counted(db: Database, work: Callable[[Any], Any]) -> Any:
        transactions.append(getattr(work, "__qualname__", ""))
        return await run_core(db, work)

    monkeypatch.setattr(Database, "run_core", counted)
    held: list[int] = []
    hold = BudgetManager.hold
    monkeypatch.setattr(BudgetManager, "hold", lambda budget, grant: (held.append(grant.reservation_id),
                                                                       hold(budget, grant)))
    answer = await core.service.handle(incoming("how do I sort a dict?"), RecordingSink())
    assert answer is not None and answer.status == "ok"
    assert [name.split(".")[0] for name in transactions] == ["ConversationStore", "BudgetManager"]
    books = await read_books(core.db)
    assert [r.id for r in books.reservations] == held and [r.status for r in books.reservations] == ["settled"]
    assert books.user_statuses == ["ok"] and books.balanced()


async def test_a_reservation_that_fails_leaves_the_message_unclaimed(
        core_for, database_url: str, fake_seed: FakeSeed, monkeypatch: pytest.MonkeyPatch) -> None:
    core = await core_for(database_url)
    fake_seed.script(Reply(content="Answered the second time."))
    reserve_in = BudgetManager.reserve_in

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("counter rows unreadable")

    monkeypatch.setattr(BudgetManager, "reserve_in", broken)
    with pytest.raises(RuntimeError):
        await core.service.handle(incoming("question", message_id="m1"), RecordingSink())
    books = await read_books(core.db)
    assert books.messages == [] and books.reservations == [] and fake_seed.completions == []
    # Nothing was claimed, so the same message (a redelivery) is answered rather than taken for a duplicate.
    monkeypatch.setattr(BudgetManager, "reserve_in", reserve_in)
    sink = RecordingSink()
    answer = await core.service.handle(incoming("question", message_id="m1"), sink)
    assert answer is not None and answer.status == "ok" and sink.text == "Answered the second time."


async def test_a_settlement_moves_the_shared_counters_last(
        core_for, database_url: str, fake_seed: FakeSeed, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every answer of a channel, and of the deployment (the global scope), waits on PostgreSQL for the same
    counter rows' locks. Settle takes them with its last statement, after the ledger row and the answer are
    written, so they are held for that statement and the COMMIT only."""
    core = await core_for(database_url)
    fake_seed.script(Reply(content="Sorted."))
    steps: list[str] = []

    def noting(step: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def noted(*args: Any, **kwargs: Any) -> Any:
            steps.append(step)
            return call(*args, **kwargs)
        return noted

    monkeypatch.setattr(reservations, "adjust", noting("counters", reservations.adjust))  # the reservation's
    monkeypatch.setattr(reservations, "move_to_spent", noting("counters", reservations.move_to_spent))
    monkeypatch.setattr(BudgetManager, "_write_ledger_row",
                        staticmethod(noting("ledger", BudgetManager._write_ledger_row)))
    monkeypatch.setattr(ConversationStore, "record_answer",
                        staticmethod(noting("answer", ConversationStore.record_answer)))
    answer = await core.service.handle(incoming("how do I sort a dict?"), RecordingSink())
    assert answer is not None and answer.status == "ok"
    # The reservation's counters, then the settlement's: ledger row, answer, counters.
    assert steps == ["counters", "ledger", "answer", "counters"]
    assert (await read_books(core.db)).balanced()

"""A question's message is claimed and its call reserved in one transaction (bot.chat.planning): two
transactions per answer (that one, then the settlement), and a reservation that fails leaves no claim."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from bot.budget import reservations
from bot.budget.reservations import BudgetManager
from bot.storage.conversations import ConversationStore
from bot.storage.engine import Database
from bot.storage.precompiled import Precompiled
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
    # The channel's first answer of the day finds its counter not open: the claim rolls back, the counter opens
    # in a transaction of its own, and the claim runs again.
    first = await core.service.handle(incoming("how do I sort a dict?", message_id="m1"), RecordingSink())
    assert first is not None and first.status == "ok"
    assert [name.split(".", 2)[:2] for name in transactions] == [
        ["ConversationStore", "claim_then"], ["BudgetManager", "reserving"], ["ConversationStore", "claim_then"],
        ["BudgetManager", "settle"]]
    transactions.clear()
    answer = await core.service.handle(incoming("and a list?", message_id="m2"), RecordingSink())
    assert answer is not None and answer.status == "ok"
    assert [name.split(".")[0] for name in transactions] == ["ConversationStore", "BudgetManager"]
    books = await read_books(core.db)
    assert [r.id for r in books.reservations] == held and [r.status for r in books.reservations] == ["settled"] * 2
    assert books.user_statuses == ["ok", "ok"] and books.balanced()


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


async def test_an_answer_locks_the_shared_counters_with_the_last_statement_of_each_transaction(
        core_for, database_url: str, fake_seed: FakeSeed, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every answer of a channel, and of the deployment (the global scope), waits on PostgreSQL for the same
    counter rows' locks. A call that fits is reserved with its counters last (planned on an unlocked read,
    checked under the lock), and settle moves them after the ledger row and the answer are written, so the
    locks are held for one statement and the COMMIT."""
    core = await core_for(database_url)
    fake_seed.script(Reply(content="Opened."), Reply(content="Sorted."))
    # The day's first answer opens its counters, on locked rows (see the next test); the second is the usual one.
    assert (await core.service.handle(incoming("first of the day"), RecordingSink())) is not None
    steps: list[str] = []

    def noting(step: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def noted(*args: Any, **kwargs: Any) -> Any:
            steps.append(step)
            return call(*args, **kwargs)
        return noted

    reserve_if_room = reservations.reserve_if_room

    def reserving(connection: Any, *args: Any) -> int | None:
        reservation_id = reserve_if_room(connection, *args)
        made = connection.scalar(text("SELECT count(*) FROM budget_reservations"))
        steps.append(f"reservation row and counters, {made} rows after")  # this call's and the first answer's
        return reservation_id

    monkeypatch.setattr(reservations, "reserve_if_room", reserving)
    monkeypatch.setattr(reservations, "adjust", noting("counters, planned on locked rows", reservations.adjust))
    monkeypatch.setattr(reservations, "move_to_spent", noting("counters", reservations.move_to_spent))
    monkeypatch.setattr(reservations, "close_and_book", noting("ledger", reservations.close_and_book))
    monkeypatch.setattr(ConversationStore, "record_answer",
                        staticmethod(noting("answer", ConversationStore.record_answer)))
    answer = await core.service.handle(incoming("how do I sort a dict?"), RecordingSink())
    assert answer is not None and answer.status == "ok"
    # Reserving: the reservation row and its counters (one statement on PostgreSQL); settling: the reservation
    # closed and its ledger row (likewise), the answer, then the counters.
    assert steps == ["reservation row and counters, 2 rows after", "ledger", "answer", "counters"]
    assert (await read_books(core.db)).balanced()


async def test_a_call_that_no_longer_fits_once_locked_is_planned_again_and_leaves_no_trace(
        core_for, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reservation is planned on an unlocked read; if another transaction took the room before the counters
    were locked, the checked UPDATE changes nothing (the counters without a limit, which had room, give theirs
    back), the reservation row goes, and the call is planned again on locked rows: here refused."""
    core = await core_for(database_url, SEEDBOT_DEFAULT_CHANNEL_BUDGET="1/day")
    await core.store.claim(incoming("creates channel 1", message_id="warm"), "", 0)
    call: Any = dict(channel_pk=1, scope_key="slack:C1", thread_pk=None, user_id="U1", kind="chat",
                     estimated_prompt_tokens=1_000, wanted_max_tokens=1_000, web_search=False)
    first = await core.budget.reserve(**call)
    assert isinstance(first, reservations.Grant)
    reserve_if_room = reservations.reserve_if_room

    def raced(connection: Any, *args: Any) -> int | None:
        # Another replica's reservation commits between this one's read and its checked UPDATE.
        connection.execute(text("UPDATE budget_counters SET reserved_nanos = reserved_nanos + 1000000000 "
                                "WHERE scope_key = 'slack:C1'"))
        return reserve_if_room(connection, *args)

    monkeypatch.setattr(reservations, "reserve_if_room", raced)
    second = await core.budget.reserve(**call)
    assert isinstance(second, reservations.Denial) and second.scope_key == "slack:C1"
    books = await read_books(core.db)
    assert [r.id for r in books.reservations] == [first.reservation_id]
    # Only the channel has a limit, so only the channel has a counter.
    reserved = {c.scope_key: c.reserved_nanos for c in books.counters}
    assert reserved == {"slack:C1": first.amount_nanos + 1_000_000_000}
    assert await core.db.run(lambda session: session.scalar(text("SELECT count(*) FROM budget_refusals"))) == 1


async def test_a_periods_first_call_opens_its_counter_first_and_a_web_search_call_is_planned_on_locked_rows(
        core_for, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A period's first call finds its counter not open: its transaction rolls back, the counter opens in one
    of its own, and the call is then planned like any other. A call with web search skips the unlocked plan: the
    checked UPDATE knows the hard limit, not the nearly-spent rule that turns web search off, so a settlement
    committed between the read and the UPDATE (here: the channel going from 89% to 95% spent) must still turn
    it off."""
    core = await core_for(database_url, SEEDBOT_DEFAULT_CHANNEL_BUDGET="10/day")
    await core.store.claim(incoming("creates channel 1", message_id="warm"), "", 0)
    checked: list[int] = []
    reserve_if_room = reservations.reserve_if_room
    monkeypatch.setattr(reservations, "reserve_if_room",
                        lambda *args: (checked.append(args[3]["amount_nanos"]), reserve_if_room(*args))[1])
    call: Any = dict(channel_pk=1, scope_key="slack:C1", thread_pk=None, user_id="U1", kind="chat",
                     estimated_prompt_tokens=1_000, wanted_max_tokens=1_000, web_search=False)
    first = await core.budget.reserve(**call)
    second = await core.budget.reserve(**call)
    assert isinstance(first, reservations.Grant) and isinstance(second, reservations.Grant)
    assert checked == [first.amount_nanos, second.amount_nanos]

    await core.db.run(lambda session: session.execute(text(
        "UPDATE budget_counters SET spent_nanos = 8900000000 WHERE scope_key = 'slack:C1'")))
    read_books_of = BudgetManager._books

    def settled_meanwhile(budget: BudgetManager, connection: Any, *args: Any, **kwargs: Any) -> Any:
        # Another replica's settlement commits while this call plans: a locked read waits for its row lock and
        # sees it, an unlocked read does not.
        def commit_settlement() -> None:
            connection.execute(text("UPDATE budget_counters SET spent_nanos = 9500000000 WHERE scope_key = 'slack:C1'"))

        if kwargs["lock"]:
            commit_settlement()
            return read_books_of(budget, connection, *args, **kwargs)
        books = read_books_of(budget, connection, *args, **kwargs)
        commit_settlement()
        return books

    monkeypatch.setattr(BudgetManager, "_books", settled_meanwhile)
    searching = await core.budget.reserve(**call | {"web_search": True})
    assert isinstance(searching, reservations.Grant)
    assert not searching.web_search and searching.degraded_by == "slack:C1"
    assert checked == [first.amount_nanos, second.amount_nanos]


async def test_an_answer_runs_twelve_statements_on_sqlite_and_ten_on_postgresql(
        core_for, database_url: str, fake_seed: FakeSeed, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each statement is a round trip to PostgreSQL. Claim 3 (channel and thread, the message, the history; on
    PostgreSQL the first also takes the books of the call's scopes shared, `BudgetManager.scope_locks`), reserve
    2 (limits and counters in one read, then the reservation row and its counters' UPDATE: two statements on
    SQLite, one data-modifying CTE on PostgreSQL), settle 5 (the reservation closed with its ledger row, likewise
    two on SQLite and on PostgreSQL one that also takes those books shared, the answer's three statements, the
    counters); BEGIN and COMMIT aside."""
    core = await core_for(database_url)
    fake_seed.script(Reply(content="Opened."), Reply(content="Sorted."))
    # The day's first answer opens its counters; the second is the usual one.
    assert (await core.service.handle(incoming("first of the day"), RecordingSink())) is not None
    statements: list[str] = []
    execute = Precompiled._execute
    monkeypatch.setattr(Precompiled, "_execute", lambda self, connection, rendered, params: (
        statements.append(rendered.sql), execute(self, connection, rendered, params))[1])

    def noted(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.split()[0] not in ("BEGIN", "COMMIT"):  # SQLite's writer begins IMMEDIATE by statement
            statements.append(statement)

    event.listen(Engine, "before_cursor_execute", noted)
    try:
        answer = await core.service.handle(incoming("how do I sort a dict?"), RecordingSink())
    finally:
        event.remove(Engine, "before_cursor_execute", noted)
    assert answer is not None and answer.status == "ok"
    assert len(statements) == (12 if core.db.is_sqlite else 10), [sql.split()[0] for sql in statements]
    if not core.db.is_sqlite:
        assert [sql.split()[0] for sql in statements].count("WITH") == 3
        # Each transaction takes the books shared with its first statement: the claim's and the settlement's.
        locking = [i for i, sql in enumerate(statements) if "pg_advisory_xact_lock_shared" in sql]
        assert len(locking) == 2 and locking[0] == 0 and "UPDATE budget_reservations" in statements[locking[1]]

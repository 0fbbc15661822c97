"""A conversation being answered is not deleted under its answer (the console's delete, `seedbot forget
--thread`): deleted mid-stream, the answer could not be stored, its settlement failed, the person saw an error
instead of the text they were reading, and the reservation, still naming the deleted thread, made every later
expiry (and so every start) fail on the ledger's foreign key. Both delete by `Retention.forget_thread`."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from adapters.common.supervisor import AnswerSupervisor
from adapters.web.console.queries import ConsoleQueries
from bot.ops.retention import Retention, ThreadBeingAnswered
from bot.storage.tables import Thread
from tests.books import read_books
from tests.factories import incoming
from tests.fakes.seed import FakeSeed, Reply
from tests.sinks import RecordingSink


async def streaming(core, fake_seed: FakeSeed) -> tuple[asyncio.Task, RecordingSink]:  # noqa: ANN001
    """An answer to U1's question in slack:C1, once the model is streaming it."""
    fake_seed.script(Reply(content="word " * 200, chunk_chars=10, chunk_delay=0.01))
    sink = RecordingSink()
    answering = asyncio.create_task(AnswerSupervisor(core.service).answer(incoming("explain monads"), sink))
    for _ in range(500):
        if sink.deltas:
            break
        await asyncio.sleep(0.01)
    assert sink.deltas and not answering.done()
    return answering, sink


async def test_a_conversation_is_not_deleted_while_it_is_answered_and_is_once_it_is_not(
        core_for, database_url: str, fake_seed: FakeSeed, caplog: pytest.LogCaptureFixture) -> None:
    core = await core_for(database_url)
    answering, sink = await streaming(core, fake_seed)
    async with core.db.session() as session:
        (thread_pk,) = list(await session.scalars(select(Thread.id)))
    queries = ConsoleQueries(core.db, core.reports, core.settings.workspace_scoped_platforms)
    with pytest.raises(ThreadBeingAnswered, match="being answered right now"):
        await queries.delete_thread(thread_pk)  # the admin's click

    answer = await answering
    assert answer is not None and answer.status == "ok" and sink.failure is None and sink.footer is not None
    assert not [r for r in caplog.records if r.exc_info]
    assert await queries.delete_thread(thread_pk) == 2  # the question and its answer, now that it is done
    assert await queries.delete_thread(thread_pk) is None
    books = await read_books(core.db)
    assert [row.status for row in books.ledger] == ["ok"] and books.balanced()


async def test_a_person_is_not_forgotten_while_their_question_is_answered(
        core_for, database_url: str, fake_seed: FakeSeed) -> None:
    core = await core_for(database_url)
    answering, sink = await streaming(core, fake_seed)
    retention = Retention(core.db)
    with pytest.raises(ThreadBeingAnswered):
        await retention.forget_user("slack", None, "U1")
    answer = await answering
    assert answer is not None and answer.status == "ok" and sink.footer is not None
    removed = await retention.forget_user("slack", None, "U1")
    assert (removed.user_messages, removed.answers, removed.threads) == (1, 1, 1)
    books = await read_books(core.db)
    assert [row.status for row in books.ledger] == ["ok"] and books.balanced()

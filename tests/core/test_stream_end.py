"""An answer stream that reached `data: [DONE]` is complete, whatever its finish_reason said."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.storage.tables import UsageEntry
from tests.factories import incoming
from tests.fakes.seed import FakeSeed, Reply
from tests.sinks import RecordingSink

ANSWER = "Use `sorted(xs, key=len)`; it returns a new list."


async def ledger_statuses(core) -> list[str]:  # noqa: ANN001
    async with core.db.session() as session:
        return list((await session.scalars(select(UsageEntry.status).order_by(UsageEntry.id))).all())


@pytest.mark.parametrize("include_usage", [True, False], ids=["usage-then-done", "no-usage-then-done"])
async def test_null_finish_reasons_then_done_is_ok(core_for, sqlite_url: str, fake_seed: FakeSeed,
                                                   include_usage: bool) -> None:
    core = await core_for(sqlite_url)
    fake_seed.script(Reply(content=ANSWER, chunk_chars=8, finish_reason=None, include_usage=include_usage))
    sink = RecordingSink()
    answer = await core.service.handle(incoming(), sink)
    assert answer is not None and (answer.status, answer.text) == ("ok", ANSWER)
    assert sink.footer is not None and not any("cut off" in note for note in sink.footer.notes)
    assert await ledger_statuses(core) == ["ok"]


async def test_a_body_ending_without_done_or_reason_is_still_cut(core_for, sqlite_url: str,
                                                                 fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url)
    fake_seed.script(Reply(content=ANSWER, finish_reason=None, send_done=False))
    sink = RecordingSink()
    answer = await core.service.handle(incoming(), sink)
    assert answer is not None and answer.status == "cut"
    assert sink.footer is not None and any("cut off" in note for note in sink.footer.notes)

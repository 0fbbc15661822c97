"""The daily summary and budget alerts delivered through the real adapters to the fake platforms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from bot.domain import format_usd
from bot.ops.scheduler import Scheduler
from bot.storage.tables import UsageEntry
from tests.factories import incoming
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack
from tests.sinks import RecordingSink
from tests.slack.harness import running_bot

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


async def test_slack_admins_get_one_summary_with_a_png_at_report_time(settings_for, fake_seed: FakeSeed,
                                                                      tmp_path: Path) -> None:
    fake_seed.default_reply = Reply(content="An answer.")
    async with FakeSlack() as slack, running_bot(slack, settings_for, tmp_path,
                                                 SEEDBOT_ADMINS="slack:U1,slack:U2") as bot:
        core = bot.process.core
        assert core is not None and bot.process.scheduler is not None
        for i in range(3):
            await core.service.handle(incoming(f"question {i}", channel="C7"), RecordingSink())
        async with core.db.session() as session:
            cost, calls = (await session.execute(select(func.sum(UsageEntry.cost_nanos),
                                                        func.count(UsageEntry.id)))).one()
        today = datetime.now(UTC).date()
        at_report_time = datetime(today.year, today.month, today.day, 9, 0) + timedelta(days=1)
        scheduler = Scheduler(core.settings, core.db, core.reports, {"slack": bot.adapter.notifier},
                              clock=lambda: at_report_time)
        assert await scheduler.tick() == 2
        assert await scheduler.tick() == 0  # a second tick (or replica) sends nothing more
        for user in ("U1", "U2"):
            dm = slack.dm_channel(user)
            # The process sends the summary due when it started from its first maintenance tick, which
            # runs concurrently with this test (and lost the race under load): wait for it.
            await slack.wait_for(lambda dm=dm: sum("seedbot spend for" in (m.markdown_text or m.text or "")
                                                   for m in slack.messages(dm) if m.is_bot) >= 2, timeout=30)
            texts = [m.markdown_text or m.text for m in slack.messages(dm) if m.is_bot]
            headings = [t.splitlines()[0] for t in texts if "seedbot spend for" in (t or "")]
            # The process itself sent the summary that was due when it started (yesterday's), once.
            assert len(headings) == len(set(headings)) == 2
            todays = [t for t in texts if today.strftime("%d %B %Y") in (t or "")]
            assert len(todays) == 1 and f"{calls} model calls" in todays[0]
            assert f"Total **{format_usd(cost)}**" in todays[0]
            uploads = [f for m in slack.messages(dm) for f in (m.files or [])]
            assert len(uploads) == 2
            assert all(slack.file(u["id"]).content.startswith(PNG_SIGNATURE) for u in uploads)
        assert cost > 0

"""Month-end forecasts of monthly budgets in the daily summary and `seedbot spend`."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from bot.budget.periods import project_month_end
from bot.domain import format_usd, usd_string
from bot.ops.reports import render_summary
from bot.storage.tables import UsageEntry
from tests.factories import incoming
from tests.ops.test_admin import ledger_totals, run_cli
from tests.sinks import RecordingSink


async def test_the_summary_forecasts_the_month_to_the_cent_in_the_local_time_zone(core_for, database_url: str) -> None:
    core = await core_for(database_url, SEEDBOT_TIMEZONE="Europe/Berlin")
    claimed = await core.store.claim(incoming("create", channel="C0BACKEND", message_id="c"), "", 0)
    assert claimed is not None
    await core.names.remember("slack", "channel", "C0BACKEND", "backend")
    await core.budget.limits.set_limit("slack:C0BACKEND", "10/month", "test")
    # Naive UTC. Berlin is UTC+2 until 25 Oct: 9 Oct 23:30 UTC is already the 10th there.
    spends = [(datetime(2026, 9, 30, 21, 0), 7_000_000_000),  # 30 Sep 23:00 Berlin: last month
              (datetime(2026, 9, 30, 22, 30), 1_000_000_000),  # 1 Oct 00:30 Berlin
              (datetime(2026, 10, 5, 12, 0), 2_000_000_000),
              (datetime(2026, 10, 9, 21, 59), 1),
              (datetime(2026, 10, 9, 23, 30), 500_000_000)]  # the 10th in Berlin: after the summary's day
    async with core.db.session() as session:
        session.add_all(UsageEntry(channel_pk=claimed.channel.pk, user_id="U1", status="ok", cost_nanos=cost,
                                   started_at=started) for started, cost in spends)
    day = date(2026, 10, 9)
    since, until = core.reports.day_bounds(day)
    report = await core.reports.spend(since, until)
    [backend] = report.channels
    month_so_far = 3_000_000_001
    assert backend.position.forecast_nanos == project_month_end(month_so_far, day) == 10_333_333_336
    assert backend.position.runs_out
    text = render_summary(report, day)
    assert "| #backend | $0.000000 | $10/month | 30% | $10.33 |" in text
    assert "⚠ #backend is projected to spend $10.33 this month, more than its $10/month" in text
    assert report.as_json()["channels"][0]["forecast_usd"] == usd_string(10_333_333_336)  # type: ignore[index]
    assert report.as_json()["channels"][0]["channel"] == "slack:C0BACKEND"  # type: ignore[index]


async def test_seedbot_spend_shows_the_forecast_and_names(core_for, sqlite_url: str, tmp_path: Path) -> None:
    core = await core_for(sqlite_url)
    for i in range(3):
        await core.service.handle(incoming(f"question {i}", channel="C0BACKEND"), RecordingSink())
    await core.names.remember("slack", "channel", "C0BACKEND", "backend")
    await core.budget.limits.set_limit("slack:C0BACKEND", "100/month", "test")
    spent, _, _ = await ledger_totals(core)
    code, out, err = await run_cli(tmp_path, sqlite_url, "spend")
    assert code == 0, err
    today = datetime.now(core.settings.tz).date()
    expected = format_usd(project_month_end(spent, today))
    assert f"month-end forecast {expected} of $100/month" in out
    assert "#backend" in out and "slack:C0BACKEND" not in out
    code, out, err = await run_cli(tmp_path, sqlite_url, "spend", "--json")
    assert code == 0 and '"channel": "slack:C0BACKEND"' in out and '"name": "backend"' in out

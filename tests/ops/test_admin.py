"""Issue 7 in the core: reports from the ledger, once-only summaries and alerts, budget commands."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from bot.budget.scopes import channel_scope
from bot.ops.admin import BUDGETS, WEB_SEARCH, not_admin
from bot.ops.reports import render_summary
from bot.ops.scheduler import Scheduler
from bot.storage.engine import Database
from bot.storage.tables import UsageEntry
from tests.factories import incoming
from tests.fakes.seed import FakeSeed, Reply
from tests.sinks import RecordingNotifier, RecordingSink

ADMINS = "slack:UADMIN,discord:42"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm)


async def seed_ledger(core, count: int = 5) -> None:  # noqa: ANN001
    for i in range(count):
        await core.service.handle(incoming(f"Question {i} " + "more " * (i * 30), channel=f"C{i % 2}",
                                           user=f"U{i % 3}"), RecordingSink())


async def ledger_totals(core) -> tuple[int, int, int]:  # noqa: ANN001
    async with core.db.session() as session:
        cost, calls, prompt = (await session.execute(select(
            func.sum(UsageEntry.cost_nanos), func.count(UsageEntry.id), func.sum(UsageEntry.prompt_tokens)))).one()
    return int(cost), int(calls), int(prompt)


async def test_summary_figures_equal_the_ledger(core_for, database_url: str) -> None:
    core = await core_for(database_url)
    await seed_ledger(core)
    cost, calls, prompt = await ledger_totals(core)
    now = datetime.now(UTC).replace(tzinfo=None)
    report = await core.reports.spend(now - timedelta(days=1), now + timedelta(minutes=1))
    assert (report.cost_nanos, report.requests, report.prompt_tokens) == (cost, calls, prompt)
    assert sum(c.cost_nanos for c in report.channels) == cost
    assert {c.address for c in report.channels} == {"slack:C0", "slack:C1"}
    assert all(c.position.budget == "$5/day" and c.position.utilisation is not None for c in report.channels)
    text = render_summary(report, now.date())
    assert f"{calls} model calls" in text and "slack:C0" in text and "Top users" in text


async def test_daily_summary_once_per_admin_with_a_png(core_for, database_url: str) -> None:
    core = await core_for(database_url, SEEDBOT_ADMINS=ADMINS)
    await seed_ledger(core)
    today = datetime.now(UTC).date()
    slack, discord = RecordingNotifier(), RecordingNotifier()
    clock = [at(today, 8, 59)]
    scheduler = Scheduler(core.settings, core.db, core.reports, {"slack": slack, "discord": discord},
                          clock=lambda: clock[0])
    before = await scheduler.tick()  # before report time: the summary of the day before yesterday is due
    clock[0] = at(today + timedelta(days=1), 9, 0)  # report time for "today"'s figures
    assert await scheduler.tick() == 2
    assert await scheduler.tick() == 0
    summaries = [s for s in slack.sent + discord.sent if today.strftime("%d %B %Y") in s.text]
    assert [s.to for s in summaries] == ["UADMIN", "42"] or sorted(s.to for s in summaries) == ["42", "UADMIN"]
    assert all(s.png and s.png.startswith(PNG_SIGNATURE) for s in summaries)
    cost, calls, _ = await ledger_totals(core)
    assert all(f"{calls} model calls" in s.text for s in summaries)
    assert before == 2  # each admin also got the one earlier summary that was due, once


async def test_failed_send_is_retried_and_missed_summary_sent_on_return(core_for, sqlite_url: str) -> None:
    core = await core_for(sqlite_url, SEEDBOT_ADMINS="slack:UADMIN")
    day = date(2026, 11, 20)
    slack = RecordingNotifier(fail_times=1)
    # The bot was down at 09:00; it comes back at 15:30 and the first send fails.
    scheduler = Scheduler(core.settings, core.db, core.reports, {"slack": slack},
                          clock=lambda: at(day + timedelta(days=1), 15, 30))
    assert await scheduler.tick() == 0
    assert slack.sent == []
    assert await scheduler.tick() == 1
    assert await scheduler.tick() == 0
    assert len(slack.sent) == 1 and "20 November 2026" in slack.sent[0].text


async def test_two_schedulers_racing_on_postgres_deliver_once(core_for, postgres_url: str) -> None:
    core = await core_for(postgres_url, SEEDBOT_ADMINS=ADMINS)
    await seed_ledger(core, 2)
    day = datetime.now(UTC).date()
    notifier = RecordingNotifier()
    second_db = Database(postgres_url)
    try:
        schedulers = [Scheduler(core.settings, db, core.reports, {"slack": notifier, "discord": notifier},
                                clock=lambda: at(day + timedelta(days=1), 9, 1)) for db in (core.db, second_db)]
        results = await asyncio.gather(*(s.send_summary(day) for s in schedulers for _ in range(3)))
    finally:
        await second_db.dispose()
    assert sum(results) == 2
    assert sorted(s.to for s in notifier.sent) == ["42", "UADMIN"]


async def test_alerts_at_80_and_100_percent_once_per_period(core_for, database_url: str,
                                                            fake_seed: FakeSeed) -> None:
    slack, discord = RecordingNotifier(), RecordingNotifier()
    core = await core_for(database_url, notifiers={"slack": slack, "discord": discord}, SEEDBOT_ADMINS=ADMINS)
    # Each answer costs exactly 1,000,000 nano-dollars; the budget holds 10 of them.
    fake_seed.default_reply = Reply(content="ok", prompt_tokens=1_000, completion_tokens=250)
    await core.budget.limits.set_limit(channel_scope("slack", "C1"), "0.01/day", "test")
    await core.service.handle(incoming("warm", message_id="warm"), RecordingSink())
    statuses = []
    for i in range(40):
        answer = await core.service.handle(incoming(f"q{i}", thread=f"t{i}"), RecordingSink())
        statuses.append(answer.status if answer else None)
    assert "refused" in statuses
    admin_alerts = [s for s in slack.sent + discord.sent if s.kind == "direct"]
    assert sorted((s.to, s.text.split(" has used ")[1][:4]) for s in admin_alerts) == [
        ("42", "100%"), ("42", "80% "), ("UADMIN", "100%"), ("UADMIN", "80% ")]
    paused = [s for s in slack.sent if s.kind == "channel"]
    assert len(paused) == 1 and paused[0].to == "W1/C1" and "paused" in paused[0].text

    # The next period: nothing until the threshold is crossed again.
    later = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1)
    core.budget._clock = lambda: later  # the budget's notion of "now" moves to tomorrow
    slack.sent.clear()
    discord.sent.clear()
    answer = await core.service.handle(incoming("new day", thread="nd"), RecordingSink())
    assert answer is not None and answer.status == "ok"
    assert slack.sent == [] and discord.sent == []


async def test_budget_commands_need_an_admin_and_take_effect_next_message(core_for, sqlite_url: str,
                                                                          fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url, SEEDBOT_ADMINS="slack:UADMIN")
    reply = await core.admin.slash_command("slack", "UNOBODY", "C1", "budget 100/day")
    assert reply == not_admin(BUDGETS)
    assert (await core.budget.limits.limit_for_scope("slack:C1")).describe() == "$5/day"

    reply = await core.admin.slash_command("slack", "UADMIN", "C1", "budget 0.000001/day")
    assert "changed from $5/day to $0.000001/day" in reply
    sink = RecordingSink()
    answer = await core.service.handle(incoming("now refused?"), sink)
    assert answer is not None and answer.status == "refused"
    shown = await core.admin.slash_command("slack", "UNOBODY", "C1", "budget")
    assert "Budget for slack:C1: $0.000001/day" in shown and "slack:UADMIN: $5/day → $0.000001/day" in shown
    assert "Usage" in await core.admin.slash_command("slack", "U1", "C1", "frobnicate")


async def run_cli(cwd: Path, database_url: str, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEED", "DATABASE_URL"))}
    env["DATABASE_URL"] = database_url
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "adapters.cli", *args, cwd=cwd, env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode or 0, out.decode(), err.decode()


async def test_cli_spend_json_and_report_equal_the_ledger(core_for, database_url: str, tmp_path: Path) -> None:
    core = await core_for(database_url)
    await seed_ledger(core)
    cost, calls, prompt = await ledger_totals(core)
    code, out, err = await run_cli(tmp_path, database_url, "spend", "--json")
    assert code == 0, err
    figures = json.loads(out)
    assert figures["requests"] == calls and figures["tokens"]["prompt"] == prompt
    assert int(round(float(figures["cost_usd"]) * 1e9)) == cost
    code, out, err = await run_cli(tmp_path, database_url, "report", "--date", str(datetime.now(UTC).date()))
    assert code == 0, err
    assert f"{calls} model calls" in out

    code, out, err = await run_cli(tmp_path, database_url, "budget", "set", "slack:C0", "2.50/week")
    assert code == 0, err
    assert "slack:C0: $5/day → $2.5/week" in out
    code, out, err = await run_cli(tmp_path, database_url, "budget", "show", "slack:C0")
    assert code == 0 and "$2.5/week" in out and "cli:" in out
    code, out, err = await run_cli(tmp_path, database_url, "budget", "set", "global", "100/month")
    assert code == 0, err
    code, out, err = await run_cli(tmp_path, database_url, "budget", "show")
    assert code == 0, err  # every budget, the global cap once (a new user's trial found it listed twice)
    assert [line for line in out.splitlines() if "global" in line] == ["global cap: $100/month"]
    assert "slack:C0: $2.5/week" in out.splitlines()
    code, _, err = await run_cli(tmp_path, database_url, "budget", "set", "C0", "5/day")
    assert code == 2 and "platform:channel" in err


async def test_admins_set_channel_web_search_and_effort(core_for, sqlite_url: str, fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url, SEEDBOT_ADMINS="slack:UADMIN")
    assert "not answered in this channel" in await core.admin.slash_command("slack", "UADMIN", "C1", "web on")
    await core.service.handle(incoming("first"), RecordingSink())
    assert await core.admin.slash_command("slack", "UNOBODY", "C1", "web on") == not_admin(WEB_SEARCH)
    assert await core.admin.slash_command("slack", "UADMIN", "C1", "web on") == "This channel's web is now on."
    assert await core.admin.slash_command("slack", "UADMIN", "C1", "effort high") == \
        "This channel's effort is now high."
    assert "Usage" in await core.admin.slash_command("slack", "UADMIN", "C1", "effort extreme")
    await core.service.handle(incoming("second"), RecordingSink())
    body = fake_seed.completions[-1].body
    assert body["enable_web_search"] is True and body["reasoning_effort"] == "high"
    assert fake_seed.completions[0].body["reasoning_effort"] == "medium"


async def test_a_full_global_cap_alerts_admins_once_without_pausing_channels(core_for, sqlite_url: str,
                                                                             fake_seed: FakeSeed) -> None:
    slack = RecordingNotifier()
    core = await core_for(sqlite_url, notifiers={"slack": slack}, SEEDBOT_ADMINS="slack:UADMIN",
                          SEEDBOT_GLOBAL_BUDGET="0.000001/day")
    for i in range(3):
        answer = await core.service.handle(incoming(f"q{i}", channel=f"C{i}"), RecordingSink())
        assert answer is not None and answer.status == "refused"
    assert [(s.kind, s.to) for s in slack.sent] == [("direct", "UADMIN"), ("direct", "UADMIN")]
    assert all(s.text.startswith("Budget alert: the global cap has used") for s in slack.sent)


async def test_two_admins_setting_one_new_scope_at_once_are_taken_in_turn(core_for, database_url: str) -> None:
    """On PostgreSQL both saw no row and the second insert failed on the key (the console said the database was
    away; /budget set, a traceback), and each change recorded the same "old" value."""
    core = await core_for(database_url, SEEDBOT_ADMINS="slack:U1,slack:U9")
    for n in range(10):  # a new scope each round: no budgets row yet
        scope = f"slack:CRACE{n}"
        replies = await asyncio.gather(core.admin.budget_set("slack", "U1", scope, "5/day"),
                                       core.admin.budget_set("slack", "U9", scope, "7/day"), return_exceptions=True)
        assert not [r for r in replies if isinstance(r, BaseException)], (n, replies)
        changes = await core.budget.limits.changes(scope)
        assert len(changes) == 2 and changes[0].old_value == changes[1].new_value, n  # A -> X, then X -> Y

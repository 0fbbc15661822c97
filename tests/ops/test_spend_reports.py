"""What admins read of spend: names anyone chooses (a display name, a channel's name) go into the Markdown messages
and the summary's chart as the text they are (no link, mention or table cell of their making, no math text that
stops the chart), and every surface counts the same days."""

from __future__ import annotations

import re
from datetime import timedelta

from bot.budget.periods import local_midnight_utc
from bot.domain import Platform, format_usd
from bot.ops.scheduler import Scheduler
from bot.storage.tables import UsageEntry, utcnow
from bot.text_safety import markdown_literal
from tests.factories import incoming
from tests.fakes.seed import FakeSeed, Reply
from tests.ops.console_harness import now_local, seed_ledger
from tests.sinks import RecordingNotifier, RecordingSink

LINK = "[seedbot: session expired, sign in again](https://evil.example/admin)"
# An inline link whose brackets are not escaped: Slack's markdown and Discord render it as a link.
LIVE_LINK = re.compile(r"(?<!\\)\[[^\]]*(?<!\\)\]\(https?://[^)]*\)")


def test_markdown_literal_escapes_what_makes_links_mentions_and_cells() -> None:
    assert markdown_literal(LINK) == r"\[seedbot: session expired, sign in again\](https://evil.example/admin)"
    assert markdown_literal("<!channel> a|b \\") == r"\<!channel\> a\|b \\"
    assert markdown_literal("john_doe.smith-jones #backend") == "john_doe.smith-jones #backend"


async def test_a_display_name_or_channel_name_puts_no_link_into_the_summary_or_spend(
        core_for, sqlite_url: str, fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url, SEEDBOT_ADMINS="slack:UADMIN")
    fake_seed.default_reply = Reply(content="ok", prompt_tokens=1_000, completion_tokens=100)
    await core.names.note("slack", "user", "U7", LINK)
    await core.names.note("slack", "channel", "C1", "ops|[login](https://evil.example)")
    answer = await core.service.handle(incoming("question", user="U7"), RecordingSink())
    assert answer is not None and answer.status == "ok"

    scheduler = Scheduler(core.settings, core.db, core.reports, {"slack": RecordingNotifier()})
    summary, _png = await scheduler.build_summary(utcnow().date())
    spend = await core.admin.slash_command("slack", "UADMIN", "C1", "spend")
    for text in (summary, spend):
        assert "Top users: \\[seedbot" in text and not LIVE_LINK.findall(text), text
    row = next(line for line in summary.splitlines() if "login" in line)
    assert row.count("|") - row.count("\\|") == 6, row  # five cells, the name's own bar escaped


async def test_a_channel_named_with_dollar_signs_does_not_stop_the_daily_summary(
        core_for, sqlite_url: str, fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url, SEEDBOT_ADMINS="discord:42")
    fake_seed.default_reply = Reply(content="ok", prompt_tokens=1_000, completion_tokens=100)
    await core.names.note("discord", "channel", "4567", "money-$$")
    answer = await core.service.handle(incoming("question", platform=Platform.DISCORD, channel="4567", user="7"),
                                       RecordingSink())
    assert answer is not None and answer.status == "ok"
    notifier = RecordingNotifier()
    scheduler = Scheduler(core.settings, core.db, core.reports, {"discord": notifier})
    assert await scheduler.send_summary(utcnow().date()) == 1
    assert notifier.sent and notifier.sent[0].png and "money-$$" in notifier.sent[0].text


async def test_seed_spend_counts_the_same_calendar_days_as_seedbot_spend_and_the_console(
        core_for, sqlite_url: str, fake_seed: FakeSeed) -> None:
    """`/seed spend` said "the last 7 days" of a rolling 168 hours, where `seedbot spend` and the console's week
    count today and the six days before it in SEEDBOT_TIMEZONE: a row late on the eighth day back was in one
    total and not the others."""
    core = await core_for(sqlite_url, SEEDBOT_ADMINS="slack:UADMIN", SEEDBOT_TIMEZONE="Asia/Tokyo")
    await seed_ledger(core, now_local(core))  # rows 0 to 12 days back, each just after its local midnight
    eighth_day_late = local_midnight_utc(now_local(core) - timedelta(days=6), core.settings.tz) - timedelta(minutes=1)
    async with core.db.session() as session:
        session.add(UsageEntry(channel_pk=1, user_id="U9", kind="chat", model="seed-2-0-code", prompt_tokens=1,
                               cached_tokens=0, completion_tokens=1, cost_nanos=7_000_000_000, status="ok",
                               started_at=eighth_day_late))
    week = await core.reports.spend_days(now_local(core) - timedelta(days=6), now_local(core))
    spend = await core.admin.slash_command("slack", "UADMIN", "C1", "spend")
    assert spend.startswith(f"Spend over the last 7 days: {format_usd(week.cost_nanos)} in "), (spend, week.cost_nanos)

"""Names anyone chooses (a display name, a channel's name) go into the admins' Markdown messages and the summary's
chart as the text they are: no link, mention or table cell of their making, no math text that stops the chart."""

from __future__ import annotations

import re

from bot.domain import Platform
from bot.ops.scheduler import Scheduler
from bot.storage.tables import utcnow
from bot.text_safety import markdown_literal
from tests.factories import incoming
from tests.fakes.seed import FakeSeed, Reply
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

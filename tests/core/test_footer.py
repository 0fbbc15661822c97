"""The footer: one rendering for Slack and Discord, and the truth when the provider reports no usage."""

from __future__ import annotations

import json

from sqlalchemy import select

from adapters.common.footer import DISCORD_FOOTER, SLACK_FOOTER, render_footer
from bot.domain import Footer, Usage, format_usd
from bot.storage.tables import UsageEntry
from tests.discord.harness import RunningBot, core_of
from tests.factories import incoming
from tests.fakes.discord_fake import FakeDiscord
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack
from tests.sinks import RecordingSink
from tests.slack.harness import running_bot, wait_for_answer

FOOTER = Footer(usage=Usage(prompt_tokens=1000, completion_tokens=234), cost_nanos=1_200_000,
                notes=("my_file.py was skipped: *big*",))


def test_one_escaped_line_in_each_platforms_style() -> None:
    assert render_footer(FOOTER, SLACK_FOOTER) == (
        "\n\n_1,234 tokens · $0.0012 · my\\_file.py was skipped: \\*big\\*_")
    assert render_footer(FOOTER, DISCORD_FOOTER) == "\n-# 1,234 tokens · $0.0012 · my\\_file.py was skipped: \\*big\\*"
    assert render_footer(FOOTER, DISCORD_FOOTER, separated=False).startswith("-# 1,234 tokens")
    assert "\n" not in render_footer(Footer(Usage(), 0, notes=("a\nb",)), SLACK_FOOTER).strip("\n")


def test_a_long_footer_is_clipped_to_the_room_between_characters() -> None:
    long = Footer(Usage(), 0, notes=("👩\u200d💻" * 2_000,))
    for style in (SLACK_FOOTER, DISCORD_FOOTER):
        text = render_footer(long, style)
        assert len(text) <= style.room and text.endswith("…" + style.closer)
        assert "\u200d…" not in text and "👩…" not in text  # the last emoji is whole or gone
    escapes = Footer(Usage(), 0, notes=("_" * 2_000,))
    assert render_footer(escapes, SLACK_FOOTER).endswith("\\_…_")  # never half an escape


def test_no_usage_reported_says_so_and_what_was_charged() -> None:
    footer = Footer(Usage(), 9_900_000, usage_known=False)
    assert footer.text() == "usage not reported; charged the reserved $0.0099"
    assert "0 tokens" not in footer.text()
    low = Footer(Usage(), 9_900_000, budget_left_fraction=0.1, budget_left_nanos=50_000_000, usage_known=False)
    assert low.text() == ("usage not reported; charged the reserved $0.0099 · $0.0500 left in this channel's "
                          "budget")


async def charged(core) -> int:  # noqa: ANN001
    async with core.db.session() as session:
        entry = (await session.scalars(select(UsageEntry))).one()
    assert entry.cost_nanos == entry.reserved_nanos and not entry.usage_known
    return entry.cost_nanos


async def test_discord_footer_without_usage(fake: FakeDiscord, fake_seed: FakeSeed, discord_bot: RunningBot) -> None:
    fake_seed.script(Reply(content="Use `git stash`.", include_usage=False))
    question = await fake.dispatch_message_create(fake.channel, fake.alice, f"{fake.bot.mention} stash?")
    (message,) = await discord_bot.answer_in(int(question["id"]))
    cost = await charged(core_of(discord_bot))
    assert message["content"] == f"Use `git stash`.\n-# usage not reported; charged the reserved {format_usd(cost)}"


async def test_slack_footer_without_usage(slack: FakeSlack, fake_seed: FakeSeed, settings_for, tmp_path) -> None:  # noqa: ANN001
    fake_seed.script(Reply(content="Use `git stash`.", include_usage=False))
    async with running_bot(slack, settings_for, tmp_path) as running:
        mention = slack.events.app_mention("stash?")
        async with slack.sender(running.events_url) as sender:
            await sender.post_event(mention)
        (reply,) = await wait_for_answer(slack, "C1", mention["event"]["ts"])
        assert running.process.core is not None
        cost = await charged(running.process.core)
    assert slack.final_text("C1", reply.ts) == (
        f"Use `git stash`.\n\n_usage not reported; charged the reserved {format_usd(cost)}_")


async def test_a_review_without_usage_is_charged_its_reservation_and_says_so(core_for, sqlite_url: str,
                                                                             fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url)
    reply = json.dumps({"summary": "Fine.", "risk": "low", "findings": []})
    fake_seed.script(Reply(content=reply, include_usage=False))
    diff = "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a + b\n+    return a - b\n"
    sink = RecordingSink()
    result = await core.service.handle(incoming(f"review please\n```diff\n{diff}```"), sink)
    assert result is not None and result.status == "ok"
    cost = await charged(core)
    assert cost > 0 and sink.footer is not None
    assert sink.footer.text().startswith(f"usage not reported; charged the reserved {format_usd(cost)}")

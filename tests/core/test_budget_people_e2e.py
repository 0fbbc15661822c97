"""People, names and who-sees-what through the real Slack adapter, the fake Slack and the fake Seed model."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bot.config import Settings
from bot.ops.chart import chart_figure
from bot.ops.scheduler import Scheduler
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack
from tests.slack.harness import answer_part, bot_replies, running_bot, wait_for_answer


async def test_two_people_in_backend_one_refused_by_her_limit_and_both_named_in_the_summary(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    slack.add_channel("C0BACKEND", "backend")
    slack.add_user("U1", "ada", real_name="Ada Lovelace", display_name="Ada")
    slack.add_user("U2", "grace", real_name="Grace Hopper", display_name="Grace Hopper")
    slack.add_user("UADMIN", "admin")
    # Ada's first answer costs $0.0096 of her $0.01 a day; what is left cannot pay for a minimal answer.
    fake_seed.script(Reply(content="Ada's answer.", prompt_tokens=0, completion_tokens=4_000),
                     Reply(content="Grace's answer."))
    async with running_bot(slack, settings_for, tmp_path, SEEDBOT_DEFAULT_USER_BUDGET="0.01/day",
                           SEEDBOT_ADMINS="slack:UADMIN") as bot, slack.sender(bot.events_url) as sender:
        first = slack.events.app_mention("how do I rebase?", user="U1", channel="C0BACKEND")
        await sender.post_event(first)
        await wait_for_answer(slack, "C0BACKEND", first["event"]["ts"])
        again = slack.events.app_mention("and squash?", user="U1", channel="C0BACKEND")
        await sender.post_event(again)
        [refusal] = await slack.wait_for(lambda: bot_replies(slack, "C0BACKEND", again["event"]["ts"]) or None)
        grace = slack.events.app_mention("what is a monad?", user="U2", channel="C0BACKEND")
        await sender.post_event(grace)
        [answer] = await wait_for_answer(slack, "C0BACKEND", grace["event"]["ts"])
        await bot.idle()

        assert refusal.visible_text.startswith("Your personal budget in this channel has too little left")
        assert "$0.0096 of $0.0100" in refusal.visible_text and "It resets" in refusal.visible_text
        assert answer_part(answer.visible_text) == "Grace's answer."
        assert len(fake_seed.completions) == 2
        assert [c.params["channel"] for c in slack.calls("conversations.info")] == ["C0BACKEND"]

        core = bot.process.core
        assert core is not None
        today = datetime.now(UTC).date()
        text, png = await Scheduler(core.settings, core.db, core.reports, {}).build_summary(today)
        assert "| #backend |" in text and "C0BACKEND" not in text
        assert "Top users: Ada $0.0096" in text and "Grace Hopper $" in text
        series, labels = await core.reports.chart_data(today)
        legend = chart_figure(series, today, labels).axes[0].get_legend()
        assert [t.get_text() for t in legend.get_texts()] == ["#backend"]
        assert png.startswith(b"\x89PNG")

        spend = await core.admin.spend_view("slack", "UADMIN", "slack:C1")
        assert "• #backend: $" in spend and "Top users: Ada $0.0096, Grace Hopper $" in spend


async def test_a_non_admins_seed_spend_shows_only_their_channel(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    slack.add_channel("C0BACKEND", "backend")
    slack.add_channel("C0FRONT", "frontend")
    slack.add_user("UADMIN", "admin")
    fake_seed.script(Reply(content="one", prompt_tokens=1_000, completion_tokens=1_000),
                     Reply(content="two", prompt_tokens=2_000, completion_tokens=3_000))
    async with running_bot(slack, settings_for, tmp_path, SEEDBOT_ADMINS="slack:UADMIN") as bot, \
            slack.sender(bot.events_url) as sender:
        for channel in ("C0BACKEND", "C0FRONT"):
            mention = slack.events.app_mention("question", user="U1", channel=channel)
            await sender.post_event(mention)
            await wait_for_answer(slack, channel, mention["event"]["ts"])
        await bot.idle()
        replies = []
        for user in ("U1", "UADMIN"):
            await sender.post_slash_command(slack.events.slash_command("spend", user_id=user, channel_id="C0FRONT"))
            replies.append((await slack.wait_for(lambda n=len(replies): slack.response_url_posts[n:] or None))[0])
        mine, admins = (r.body["text"] for r in replies)
        await sender.post_slash_command(slack.events.slash_command("budget slack:C0BACKEND", user_id="U1",
                                                                   channel_id="C0FRONT"))
        other = (await slack.wait_for(lambda: slack.response_url_posts[2:] or None))[0].body["text"]

    assert mine.startswith("Spend in #frontend over the last 7 days: $0.0080 in 1 model call ")
    assert "#frontend" in mine and "#backend" not in mine
    assert admins.startswith("Spend over the last 7 days: $0.0108 in 2 model calls")
    assert "• #frontend: $0.0080" in admins and "• #backend: $0.0028" in admins
    assert other.startswith("You can see the budget of the channel you are in")


async def test_a_channel_at_95_percent_answers_in_slack_without_web_search_and_says_so(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    # $0.95 of a $1 day: five answers of 237,500 long-context prompt tokens at $0.80/M (one of 1,187,500
    # would be above the context window, its usage rejected).
    fake_seed.script(*[Reply(content="First.", prompt_tokens=237_500, completion_tokens=0)] * 5,
                     Reply(content="Second, without searching."))
    async with running_bot(slack, settings_for, tmp_path) as bot, slack.sender(bot.events_url) as sender:
        core = bot.process.core
        assert core is not None
        await core.budget.limits.set_limit("slack:C1", "1/day", "test")
        for n in range(5):
            first = slack.events.app_mention(f"question {n}")
            await sender.post_event(first)
            await wait_for_answer(slack, "C1", first["event"]["ts"])
        second = slack.events.app_mention("what is new in Python 3.14? --web")
        await sender.post_event(second)
        [reply] = await wait_for_answer(slack, "C1", second["event"]["ts"])
    assert answer_part(reply.visible_text) == "Second, without searching."
    assert "web search off: channel budget nearly spent" in reply.visible_text.rsplit("\n", 1)[-1]
    assert fake_seed.completions[-1].body["enable_web_search"] is False

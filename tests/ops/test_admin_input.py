"""Admin command input: an amount out of range says what is accepted, and a refusal names the setting."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.budget.limits import MAX_BUDGET_USD, parse_budget
from bot.config import Settings
from bot.ops.admin import BUDGETS, EFFORT, WEB_SEARCH, not_admin
from tests.discord.harness import running_bot as running_discord_bot
from tests.discord.test_discord_commands import ephemeral_texts
from tests.fakes.discord_fake import FakeDiscord
from tests.fakes.slack import FakeSlack
from tests.ops.test_admin import run_cli
from tests.slack.harness import running_bot as running_slack_bot

HUGE = "99999999999999999999/day"


@pytest.mark.parametrize("value", [HUGE, f"{MAX_BUDGET_USD + 1}/month", "0.0000000001/day"])
def test_amounts_out_of_range_are_refused_with_the_range(value: str) -> None:
    with pytest.raises(ValueError, match=r"out of range: a budget is \$0 to \$1,000,000 per"):
        parse_budget(value)


def test_the_edges_of_the_range_are_accepted() -> None:
    assert parse_budget(f"{MAX_BUDGET_USD}/month").limit_nanos == MAX_BUDGET_USD * 1_000_000_000
    assert parse_budget("0.000000001/day").limit_nanos == 1


def test_each_refusal_names_its_setting() -> None:
    assert {not_admin(s).split(",")[0] for s in (BUDGETS, WEB_SEARCH, EFFORT)} == {
        "Only seedbot admins can change budgets",
        "Only seedbot admins can change this channel's web search setting (/seed web on|off)",
        "Only seedbot admins can change this channel's reasoning effort (/seed effort low|medium|high)",
    }


async def test_slack_admin_gets_the_range_and_non_admin_the_setting_named(
        slack: FakeSlack, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    async with running_slack_bot(slack, settings_for, tmp_path, SEEDBOT_ADMINS="slack:U1") as bot:
        async with slack.sender(bot.events_url) as sender:
            for number, (text, user) in enumerate([(f"budget {HUGE}", "U1"), ("web on", "U2"),
                                                   ("effort high", "U2")], start=1):
                await sender.post_slash_command(slack.events.slash_command(text, user_id=user, channel_id="C3"))
                await slack.wait_for(lambda n=number: len(slack.response_url_posts) >= n)
        huge, web, effort = [post.body["text"] for post in slack.response_url_posts]
        assert huge.startswith(f"'{HUGE}' is out of range: a budget is $0 to $1,000,000 per day")
        assert web == not_admin(WEB_SEARCH) and "web search" in web
        assert effort == not_admin(EFFORT) and "reasoning effort" in effort
        assert "budget" not in web + effort


async def test_discord_budget_set_out_of_range_says_the_range(
        fake: FakeDiscord, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    async with running_discord_bot(fake, settings_for, tmp_path, SEEDBOT_ADMINS=f"discord:{fake.alice.id}"):
        command = await fake.dispatch_interaction_create(
            "budget", options=[{"name": "set", "type": 1, "options": [{"name": "value", "type": 3, "value": HUGE}]}])
        await fake.wait_until(lambda: bool(ephemeral_texts(fake, command)))
        (text,) = ephemeral_texts(fake, command)
        assert "out of range: a budget is $0 to $1,000,000 per day" in text


@pytest.mark.parametrize(("args", "option"), [
    (("spend", "--until", "9999-12-31"), "--until"),
    (("spend", "--until", "0001-01-03"), "--until"),  # the default --since is six days before it
    (("spend", "--since", "0001-01-01", "--until", "2026-01-01"), "--since"),
    (("report", "--date", "9999-12-31"), "--date"),
])
async def test_a_date_outside_the_reports_range_is_one_line_not_a_traceback(sqlite_url: str, tmp_path: Path,
                                                                           args: tuple[str, ...], option: str) -> None:
    code, _out, err = await run_cli(tmp_path, sqlite_url, *args)
    assert code == 2 and err.strip().splitlines() == [
        f"seedbot: {option} must be a date like 2026-11-26, from 1970-01-01 to 9000-12-31"], err

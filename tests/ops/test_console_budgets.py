"""The Channels page's budget forms set the budget the bot enforces: where several Slack workspaces share the
deployment (SLACK_CLIENT_ID/SECRET/SCOPES, no bot token) a channel's key carries its workspace
(`slack:T1:C5`), and a person's limit inside a channel (`slack:*@slack:C1`) is a budget its form can change."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from bot.budget.scopes import is_budget_key
from bot.domain import Incoming, Platform, ThreadKey
from tests.fakes.seed import FakeSeed, Reply
from tests.ops.console_harness import csrf, mounted_console
from tests.sinks import RecordingSink

INSTALLS = {"SLACK_CLIENT_ID": "1111.2222", "SLACK_CLIENT_SECRET": "secret", "SLACK_SCOPES": "chat:write"}


def in_workspace(team: str, channel: str, text: str, user: str = "U1") -> Incoming:
    return Incoming(ThreadKey(Platform.SLACK, team, channel, f"{team}-{channel}-{text}"), message_id=f"{team}{text}",
                    user_id=user, text=text)


async def test_a_budget_set_on_a_workspace_channels_card_is_the_one_the_bot_enforces(
        core_for: Callable[..., Any], sqlite_url: str, fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url, SEEDBOT_ADMINS="slack:UADMIN", **INSTALLS)
    fake_seed.default_reply = Reply(content="ok", prompt_tokens=1_000, completion_tokens=100)
    answer = await core.service.handle(in_workspace("T1", "C5", "question"), RecordingSink())
    assert answer is not None and answer.status == "ok"

    async with mounted_console(core, "slack:UADMIN") as (client, base):
        page = await (await client.get(base + "/admin/channels")).text()
        offered = [s for s in re.findall(r'name="scope" value="([^"]+)"', page) if s.endswith("C5")]
        assert offered == ["slack:T1:C5"], page
        cards = dict(re.findall(r'<section class="card channel" id="channel-([^"]+)">(.*?)</section>', page, re.S))
        # 1,000 prompt + 100 completion tokens: the card shows the channel's spend, not nothing.
        assert "<dt>This month</dt><dd>$0.0000</dd>" not in cards["slack-T1-C5"]
        token = await csrf(client, base + "/admin/channels")
        response = await client.post(base + "/admin/channels",
                                     data={"csrf_token": token, "scope": "slack:T1:C5", "value": "1/day"})
        assert response.status == 200 and "changed" in await response.text()
        ledger = await (await client.get(base + "/admin/ledger", params={"channel": "slack:T1:C5"})).text()
        assert ledger.count("<td>slack:T1:C5</td>") == 1, ledger

    assert (await core.budget.limits.limit_for_scope("slack:T1:C5")).describe() == "$1/day"


async def test_every_budget_form_the_console_offers_can_be_used(core_for: Callable[..., Any], sqlite_url: str) -> None:
    core = await core_for(sqlite_url, SEEDBOT_ADMINS="slack:UADMIN")
    changed = await core.admin.slash_command("slack", "UADMIN", "C1", "budget user 1/day")
    assert changed.startswith("Budget for each person in")
    async with mounted_console(core, "slack:UADMIN") as (client, base):
        page = await (await client.get(base + "/admin/channels")).text()
        offered = re.findall(r'name="scope" value="([^"]+)"', page)
        assert "slack:*@slack:C1" in offered
        token = await csrf(client, base + "/admin/channels")
        for scope in offered:
            answer = await (await client.post(base + "/admin/channels", data={
                "csrf_token": token, "scope": scope, "value": "2/day"})).text()
            assert "Give a channel and a budget like" not in answer, scope
    assert (await core.budget.limits.limit_for_scope("slack:*@slack:C1")).describe() == "$2/day"


def test_budget_keys_are_scopes_or_a_person_inside_a_channel_of_the_same_platform() -> None:
    for key in ("global", "slack:C1", "slack:T1:C5", "discord:4567", "slack:U1@slack:C1", "slack:*@slack:T1:C5"):
        assert is_budget_key(key), key
    for key in ("", "slack", "slack:", "email:C1", "slack:U1@global", "discord:U1@slack:C1", "slack:U 1@slack:C1",
                "slack:U1@slack:C1@slack:C2", "slack:@slack:C1", "slack:T1:C5:X"):
        assert not is_budget_key(key), key

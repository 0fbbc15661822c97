"""Many Slack workspaces, one deployment: Slack's OAuth install flow through the fake Slack, installations
in our database (slack-sdk's SQLAlchemy stores), each workspace answered with its own bot token."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Callable
from pathlib import Path

import aiohttp
from sqlalchemy import select

from adapters.slack.install_tables import SLACK_INSTALLATIONS
from adapters.slack.workspaces import authorize_url
from bot.config import Settings
from bot.ops.scheduler import Scheduler
from bot.storage.tables import utcnow
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack
from tests.fakes.slack.oauth import workspace_event
from tests.slack.harness import FOOTER_RE, RunningBot, answer_part, running_bot

SCOPES = "app_mentions:read,chat:write,users:read"


def install_settings(slack: FakeSlack) -> dict[str, object]:
    return {"SLACK_BOT_TOKEN": None, "SLACK_CLIENT_ID": slack.config.client_id,
            "SLACK_CLIENT_SECRET": slack.config.client_secret, "SLACK_SCOPES": SCOPES}


async def install(bot: RunningBot, team_id: str) -> tuple[int, str]:
    """A person opens /slack/install, follows its Add to Slack link to Slack, allows, and is sent back:
    the status and page of the redirect's answer. Bolt's state cookie is marked Secure (real installs
    run over https), so this browser on plain http carries it back by hand."""
    assert bot.process.server is not None
    base = f"http://127.0.0.1:{bot.process.server.port}"
    bot.slack.oauth.redirect_url = f"{base}/slack/oauth_redirect"
    async with aiohttp.ClientSession() as browser:
        async with browser.get(f"{base}/slack/install", params={"team": team_id}) as page:
            assert page.status == 200
            cookie = page.headers["Set-Cookie"].split(";", 1)[0]
            found = re.search(r'href="(http[^"]+/oauth/v2/authorize[^"]*)"', await page.text())
        assert found is not None and found.group(1).startswith(authorize_url(bot.slack.api_url))
        async with browser.get(html.unescape(found.group(1)), allow_redirects=False) as at_slack:
            assert at_slack.status == 302
            back = at_slack.headers["Location"]
        async with browser.get(back, headers={"Cookie": cookie}) as landed:
            return landed.status, await landed.text()


async def answered(bot: RunningBot, channel: str, thread_ts: str) -> str:
    def final() -> str | None:
        replies = [m for m in bot.slack.thread(channel, thread_ts) if m.is_bot]
        if replies and FOOTER_RE.search(replies[-1].visible_text) and replies[-1].stream_state != "streaming":
            return replies[-1].visible_text
        return None

    return await bot.slack.wait_for(final, 10.0)


async def test_installs_into_two_workspaces_and_answers_each_with_its_own_token(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    second = slack.oauth.add_workspace("T2", "Second Team", "UBOT2", "BBOT2")
    fake_seed.script(Reply(content="Hello, first workspace."), Reply(content="Hello, second workspace."))
    async with running_bot(slack, settings_for, tmp_path, SEEDBOT_ADMINS="slack:T2:U2",
                           **install_settings(slack)) as bot:
        assert bot.adapter.identity is None  # no token of its own: nothing to sign in with
        for team in ("T1", "T2"):
            status, page = await install(bot, team)
            assert status == 200 and "Thank you!" in page, page
        assert [e.team_id for e in slack.oauth.exchanges] == ["T1", "T2"]
        assert all(r["scope"] == SCOPES for r in slack.oauth.authorize_requests)
        core = bot.process.core
        assert core is not None
        async with core.db.session() as session:
            rows = (await session.execute(select(SLACK_INSTALLATIONS.c.team_id, SLACK_INSTALLATIONS.c.bot_token,
                                                 SLACK_INSTALLATIONS.c.bot_user_id, SLACK_INSTALLATIONS.c.bot_id,
                                                 SLACK_INSTALLATIONS.c.user_id))).all()
        assert sorted(tuple(r) for r in rows) == [("T1", slack.config.bot_token, "UBOT", "BBOT", "U1"),
                                                  ("T2", second.bot_token, "UBOT2", "BBOT2", "U1")]

        first_mention = slack.events.app_mention("hi from one", channel="C1")
        second_mention = workspace_event(slack.events.app_mention("hi from two", channel="C2"), second,
                                         slack.config.bot_user_id)
        async with slack.sender(bot.events_url) as sender:
            assert (await sender.post_event(first_mention)).status == 200
            first = await answered(bot, "C1", first_mention["event"]["ts"])
            assert (await sender.post_event(second_mention)).status == 200
            second_answer = await answered(bot, "C2", second_mention["event"]["ts"])
        await bot.idle()
        # The second workspace's admin gets that workspace's summary, sent with its token.
        scheduler = Scheduler(core.settings, core.db, core.reports, {"slack": bot.adapter.notifier})
        assert await scheduler.send_summary(utcnow().date()) == 1

    assert answer_part(first) == "Hello, first workspace." and answer_part(second_answer) == "Hello, second workspace."
    # The prompt holds the question without the workspace's own bot mention.
    assert fake_seed.completions[1].body["messages"][-1]["content"] == "hi from two"
    tokens = {call.params["channel"]: call.headers["Authorization"] for call in slack.calls("chat.startStream")}
    assert tokens == {"C1": f"Bearer {slack.config.bot_token}", "C2": f"Bearer {second.bot_token}"}
    [reply_2] = [m for m in slack.thread("C2", second_mention["event"]["ts"]) if m.is_bot]
    assert reply_2.user == "UBOT2"
    opened = slack.calls("conversations.open")[-1]
    assert opened.params["users"] == "U2" and opened.headers["Authorization"] == f"Bearer {second.bot_token}"
    heading = f"seedbot spend for {utcnow().date():%A %d %B %Y}"
    [summary] = [m.markdown_text or "" for m in slack.messages(slack.dm_channel("U2"))
                 if m.is_bot and heading in (m.markdown_text or "")]
    assert "slack:T2:C2" in summary and "slack:T1" not in summary


async def test_a_callback_without_the_issued_state_installs_nothing(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    async with running_bot(slack, settings_for, tmp_path, **install_settings(slack)) as bot:
        assert bot.process.server is not None
        forged = f"http://127.0.0.1:{bot.process.server.port}/slack/oauth_redirect?code=123.abc&state=made-up"
        async with aiohttp.ClientSession() as browser, browser.get(forged) as landed:
            assert landed.status == 400
        core = bot.process.core
        assert core is not None
        async with core.db.session() as session:
            assert (await session.execute(select(SLACK_INSTALLATIONS.c.id))).all() == []
    assert slack.oauth.exchanges == []


async def test_uninstalling_deletes_the_workspace_tokens(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    second = slack.oauth.add_workspace("T2", "Second Team", "UBOT2", "BBOT2")
    async with running_bot(slack, settings_for, tmp_path, **install_settings(slack)) as bot:
        for team in ("T1", "T2"):
            assert (await install(bot, team))[0] == 200
        # https://api.slack.com/events/app_uninstalled
        uninstalled = workspace_event(slack.events.event_callback({"type": "app_uninstalled",
                                                                    "event_ts": slack.clock.next()}),
                                      second, slack.config.bot_user_id)
        async with slack.sender(bot.events_url) as sender:
            assert (await sender.post_event(uninstalled)).status == 200
        core = bot.process.core
        assert core is not None

        async def teams() -> list[str]:
            async with core.db.session() as session:
                return sorted(await session.scalars(select(SLACK_INSTALLATIONS.c.team_id)))

        # Bolt runs the listener after acknowledging the event.
        for _ in range(200):
            if await teams() == ["T1"]:
                break
            await asyncio.sleep(0.05)
        assert await teams() == ["T1"]


def test_the_authorize_page_sits_beside_the_web_api() -> None:
    assert authorize_url("https://slack.com/api/") == "https://slack.com/oauth/v2/authorize"
    assert authorize_url("http://127.0.0.1:8080/api") == "http://127.0.0.1:8080/oauth/v2/authorize"


async def test_installation_and_state_stores_work_on_both_databases(database_url: str) -> None:
    from slack_sdk.oauth.installation_store import Installation
    from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
    from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore

    from bot.storage import migrate
    from bot.storage.engine import Database

    await asyncio.to_thread(migrate.upgrade, database_url)
    db = Database(database_url)
    try:
        store = AsyncSQLAlchemyInstallationStore("1111.2222", db.engine)
        await store.async_save(Installation(app_id="A1", team_id="T7", team_name="Seven", bot_token="xoxb-7",
                                            bot_id="B7", bot_user_id="U7BOT", bot_scopes=SCOPES, user_id="U7"))
        bot = await store.async_find_bot(enterprise_id=None, team_id="T7")
        assert bot is not None and (bot.bot_token, bot.bot_user_id) == ("xoxb-7", "U7BOT")
        assert await store.async_find_bot(enterprise_id=None, team_id="T8") is None
        states = AsyncSQLAlchemyOAuthStateStore(expiration_seconds=600, engine=db.engine)
        state = await states.async_issue()
        assert await states.async_consume(state) is True
        assert await states.async_consume(state) is False  # one use only
    finally:
        await db.dispose()

"""The bot process with its admin console, seeded ledger rows, and the real `seedbot` CLI beside it."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from adapters.core import Core
from adapters.web.console import mount_console
from adapters.web.console.auth import SESSION_COOKIE, ConsoleAuth, signing_key
from bot.budget.periods import local_midnight_utc
from bot.config import Settings
from bot.storage.tables import Channel, UsageEntry
from tests.factories import incoming
from tests.fakes.slack import FakeSlack
from tests.sinks import RecordingSink
from tests.slack.harness import RunningBot, running_bot

ADMINS = "slack:U1,slack:U9"
CLI_TIMEOUT = 120.0
CACHED_PRICE = "0.08"  # USD per 1M cached prompt tokens, so that the cache saves something
CONSOLE_PAGES = ("/admin", "/admin/", "/admin/channels", "/admin/people", "/admin/ledger", "/admin/ledger.csv",
                 "/admin/conversations", "/admin/conversations/1", "/admin/health", "/admin/chart.png")
CONSOLE_FORMS = ("/admin/channels", "/admin/conversations/1/delete", "/admin/logout")


@dataclass
class ConsoleBot:
    bot: RunningBot
    database_url: str
    cwd: Path

    @property
    def core(self) -> Core:
        assert self.bot.process.core is not None
        return self.bot.process.core

    @property
    def base_url(self) -> str:
        assert self.bot.process.server is not None
        return f"http://127.0.0.1:{self.bot.process.server.port}"

    async def cli(self, *args: str) -> str:
        """Run `seedbot ARGS` in a child process on the bot's database; its standard output."""
        env = {**os.environ, "DATABASE_URL": self.database_url, "SEEDBOT_ADMINS": ADMINS,
               "SEEDBOT_PUBLIC_URL": self.base_url, "SEEDBOT_TIMEZONE": self.core.settings.tz.key,
               "SEED_PRICE_CACHED_INPUT_PER_M": CACHED_PRICE}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "adapters.cli", *args, env=env, cwd=self.cwd,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT)
        assert process.returncode == 0, err.decode()
        return out.decode()

    async def link(self, *args: str) -> str:
        """A sign-in URL printed by `seedbot admin link ARGS`."""
        return (await self.cli("admin", "link", *args)).strip().splitlines()[-1]

    async def sign_in(self, client: aiohttp.ClientSession, *args: str) -> aiohttp.ClientResponse:
        """Open a printed link in `client` and press its Sign in button; the button's answer, unfollowed."""
        return await press_sign_in(client, await self.link(*args))


async def press_sign_in(client: aiohttp.ClientSession, link: str,
                        headers: dict[str, str] | None = None) -> aiohttp.ClientResponse:
    """What a person does with a printed link: open it (the page spends nothing), press Sign in (it POSTs
    the link's token, with `headers`). The POST's answer, redirects not followed."""
    page = await (await client.get(link)).text()
    marker = 'name="token" value="'
    start = page.index(marker) + len(marker)
    token = page[start:page.index('"', start)]
    return await client.post(link.split("?", 1)[0], data={"token": token}, allow_redirects=False, headers=headers)


@asynccontextmanager
async def running_console(slack: FakeSlack, settings_for: Callable[..., Settings], tmp_path: Path,
                          **overrides: Any) -> AsyncIterator[ConsoleBot]:
    values: dict[str, Any] = {"SEEDBOT_ADMINS": ADMINS, "SLACK_CLIENT_ID": slack.openid.client_id,
                              "SLACK_CLIENT_SECRET": slack.openid.client_secret,
                              "SEED_PRICE_CACHED_INPUT_PER_M": CACHED_PRICE}
    values.update(overrides)
    slack.add_user("U9", "carol", real_name="Carol Admin")
    async with running_bot(slack, settings_for, tmp_path, **values) as bot:
        yield ConsoleBot(bot, f"sqlite+aiosqlite:///{tmp_path / 'slack.db'}", tmp_path)


async def seed_ledger(core: Core, today: date) -> None:
    """Ledger rows spread over channels, people, days and statuses (some today, some earlier this week,
    some before it), written before any budget counter opens so the counters start from them; then a
    real answered conversation in slack:C1."""
    tz = core.settings.tz
    rows = [  # (days ago, channel, user, status, nano-dollars)
        (0, "C1", "U2", "ok", 1_234_567), (0, "C2", "U1", "failed", 0), (0, "C2", "U2", "ok", 250_000_000),
        (1, "C2", "U1", "ok", 3_000_000_000), (2, "4567", "777", "ok", 1_500_000_000),
        (3, "C1", "U1", "cut", 45_600_000), (4, "4567", "777", "ok", 640_000_000),
        (5, "C2", "U2", "ok", 987_654_321), (6, "C1", "U2", "ok", 820_000_000),
        (10, "C1", "U1", "ok", 2_000_000_000), (12, "4567", "778", "ok", 1_100_000_000),
    ]
    async with core.db.session() as session:
        channels = {"C1": Channel(platform="slack", workspace_id="W1", channel_id="C1", name="general"),
                    "C2": Channel(platform="slack", workspace_id="W1", channel_id="C2", name="dev"),
                    "4567": Channel(platform="discord", workspace_id="G1", channel_id="4567", name="reviews")}
        session.add_all(channels.values())
        await session.flush()
        for i, (ago, channel, user, status, cost) in enumerate(rows):
            day = today - timedelta(days=ago)
            started = local_midnight_utc(day, tz) + timedelta(minutes=1 + i)
            session.add(UsageEntry(channel_pk=channels[channel].id, user_id=user, kind="chat", model="seed-2-0-code",
                                   prompt_tokens=1000 + i, cached_tokens=500, completion_tokens=200,
                                   cost_nanos=cost, status=status, started_at=started))
    await core.service.handle(incoming("How do I reverse a list?", channel="C1", thread="t-seed"), RecordingSink())
    await core.service.handle(incoming("And a tuple?", channel="C1", thread="t-seed"), RecordingSink())


def now_local(core: Core) -> date:
    return datetime.now(core.settings.tz).date()


@asynccontextmanager
async def mounted_console(core: Core, admin_id: str) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    """`core`'s console alone on a test server, and a client signed in as `admin_id`: (client, base URL)."""
    app = web.Application()
    await mount_console(app, core, lambda: [])
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    base = f"http://127.0.0.1:{server.port}"
    auth = ConsoleAuth(core.db, await signing_key(core.db), core.settings.admin_ids)
    cookie = await auth.start_session(admin_id)
    client = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    client.cookie_jar.update_cookies({SESSION_COOKIE: cookie}, URL(base + "/admin/"))
    try:
        yield client, base
    finally:
        await client.close()
        await server.close()


async def csrf(client: aiohttp.ClientSession, url: str) -> str:
    """The CSRF token of the form on the console page at `url`."""
    page = await (await client.get(url)).text()
    marker = 'name="csrf_token" value="'
    start = page.index(marker) + len(marker)
    return page[start:page.index('"', start)]

"""The admin console driven in a real headless browser: Debian's chromium, driven by Playwright with
its own browser downloads never used, against the bot process with seeded ledger rows and the real
`seedbot` CLI beside it. Skipped when chromium is missing, unless SEEDBOT_REQUIRE_BROWSER is set (CI)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.web.console.auth import LINK_MAX_AGE_SECONDS, SESSION_COOKIE, ConsoleAuth, signing_key
from bot.domain import format_usd
from tests.fakes.slack import FakeSlack
from tests.ops.console_harness import CONSOLE_FORMS, CONSOLE_PAGES, now_local, running_console, seed_ledger

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
REQUIRE_BROWSER_ENV = "SEEDBOT_REQUIRE_BROWSER"
# Set to a directory to save the README's screenshots there.
SCREENSHOTS_ENV = "SEEDBOT_CONSOLE_SCREENSHOTS"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 60_000
HAVE_CHROMIUM = os.path.exists(CHROMIUM)


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    if not HAVE_CHROMIUM:
        if os.environ.get(REQUIRE_BROWSER_ENV):
            pytest.fail(f"{CHROMIUM} is missing but {REQUIRE_BROWSER_ENV} is set: apt-get install chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium chromium-driver)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def _sign_in(page, base_url: str, link: str) -> None:  # noqa: ANN001 - a Playwright page
    """Open a printed link and press its Sign in button, as a person does; on the overview after."""
    await page.goto(link)
    await page.click("#confirm-sign-in")
    await page.wait_for_url(f"{base_url}/admin/")


async def _context(browser, **options):  # noqa: ANN001, ANN202 - Playwright objects
    context = await browser.new_context(accept_downloads=True, **options)
    context.set_default_timeout(TIMEOUT_MS)
    return context


async def test_an_admin_signs_in_and_the_console_agrees_with_the_cli(browser, slack: FakeSlack, settings_for,
                                                                     tmp_path: Path) -> None:
    async with running_console(slack, settings_for, tmp_path) as console:
        today = now_local(console.core)
        await seed_ledger(console.core, today)
        context = await _context(browser, viewport={"width": 1280, "height": 900})
        page = await context.new_page()

        await _sign_in(page, console.base_url, await console.link())
        assert page.url == f"{console.base_url}/admin/"
        assert await page.inner_text("header .who") == "slack:U1"
        week = json.loads(await console.cli("spend", "--json"))
        assert await page.get_attribute("#week-total", "data-usd") == week["cost_usd"]
        assert await page.inner_text("#week-total") == format_usd(int(Decimal(week["cost_usd"]) * 10**9))
        month = json.loads(await console.cli("spend", "--json", "--since", today.replace(day=1).isoformat()))
        assert await page.get_attribute("#month-total", "data-usd") == month["cost_usd"]
        assert await page.get_attribute("#cache-savings", "data-usd") == month["cache_savings_usd"] != "0"
        assert await page.inner_text("#failures") == f"{month['failures']} / {month['refusals']}"
        chart = await page.evaluate("document.querySelector('img.chart').naturalWidth")
        assert chart > 0
        await _screenshot(page, "console-overview.png")

        await page.click("nav >> text=Channels")
        card = page.locator("#channel-slack-C2")
        await card.locator("input[name=value]").fill("12.50/week")
        await card.locator("button[type=submit]").click()
        assert "changed from $5/day to $12.5/week" in await page.inner_text("#message")
        assert await page.locator("#channel-slack-C2 .budget").inner_text() == "$12.5/week"
        shown = await console.cli("budget", "show", "slack:C2")
        assert "Budget for slack:C2: $12.5/week" in shown and "slack:U1: $5/day → $12.5/week" in shown
        await _screenshot(page, "console-channels.png")

        await page.click("nav >> text=People")
        people = await page.eval_on_selector_all(
            "tr.person", "rows => rows.map(r => [r.dataset.user, r.dataset.usd])")
        # On the first of a month only today's rows are in it: two people (more later in the month).
        assert people == [[u["user"], u["cost_usd"]] for u in month["users"]] and len(people) >= 2

        await page.click("nav >> text=Ledger")
        await page.select_option("select[name=channel]", "slack:C2")
        await page.select_option("select[name=status]", "ok")
        await page.click("form.filters button[type=submit]")
        total = Decimal(await page.get_attribute("#ledger-total", "data-usd") or "")
        count = int(await page.inner_text("#ledger-count"))
        async with page.expect_download() as download_info:
            await page.click("#csv")
        download = await download_info.value
        text = await asyncio.to_thread(Path(await download.path()).read_text)
        rows = list(csv.DictReader(io.StringIO(text)))
        assert len(rows) == count == 3
        assert {(r["channel"], r["status"]) for r in rows} == {("slack:C2", "ok")}
        assert sum(Decimal(r["cost_usd"]) for r in rows) == total == Decimal("4.237654321")

        await page.click("nav >> text=Conversations")
        await page.click("text=t-seed")
        assert "How do I reverse a list?" in await page.inner_text("main")
        await page.click("#delete-conversation")
        assert "t-seed" not in await page.inner_text("main")
        after = json.loads(await console.cli("spend", "--json"))
        assert (after["cost_usd"], after["requests"]) == (week["cost_usd"], week["requests"])

        # The process delivers the summary that was due when it started; the health page says when.
        await slack.wait_for(lambda: any(m.is_bot for m in slack.messages(slack.dm_channel("U9"))), timeout=60)
        await page.click("nav >> text=Health")
        for _ in range(100):  # the delivery is marked sent just after the message is posted
            if await page.inner_text("#last-summary") != "never":
                break
            await asyncio.sleep(0.1)
            await page.reload()
        assert await page.inner_text("#last-summary") != "never"
        assert await page.inner_text("#reservations") == "0 holding $0.0000"
        assert await page.inner_text("#platforms") == "slack"
        assert await page.inner_text("#database") == "reachable"
        await context.close()


async def test_links_sessions_and_csrf_are_enforced_in_the_browser(browser, slack: FakeSlack, settings_for,
                                                                   tmp_path: Path) -> None:
    async with running_console(slack, settings_for, tmp_path) as console:
        anonymous = await _context(browser)
        for path in CONSOLE_PAGES:
            response = await anonymous.request.get(console.base_url + path, max_redirects=0)
            assert response.status == 302 and response.headers["location"] == "/admin/login", path
        for path in CONSOLE_FORMS:
            response = await anonymous.request.post(console.base_url + path, form={"value": "1/day"}, max_redirects=0)
            assert response.status == 401, path
        page = await anonymous.new_page()
        await page.goto(console.base_url + "/admin/ledger")
        assert page.url == f"{console.base_url}/admin/login"

        link = await console.link()
        signed_in = await _context(browser)
        first = await signed_in.new_page()
        await _sign_in(first, console.base_url, link)
        assert first.url == f"{console.base_url}/admin/"

        reused = await page.goto(link)
        assert reused is not None and reused.status == 403
        assert "already used" in await page.inner_text(".error")
        auth = ConsoleAuth(console.core.db, await signing_key(console.core.db), console.core.settings.admin_ids)
        stale = auth.link_token("slack:U1", issued_at=int(time.time()) - LINK_MAX_AGE_SECONDS - 5)
        expired = await page.goto(f"{console.base_url}/admin/login?token={stale}")
        assert expired is not None and expired.status == 403
        assert "expired" in await page.inner_text(".error")
        await page.goto(console.base_url + "/admin/")
        assert page.url == f"{console.base_url}/admin/login"

        # The signed-in browser posting the budget form without its hidden token is refused.
        forged = await signed_in.request.post(console.base_url + "/admin/channels",
                                              form={"scope": "slack:C1", "value": "99/day"})
        assert forged.status == 403
        assert "$99/day" not in await console.cli("budget", "show")

        # Sign out: a copy of the cookie taken before, put in another browser, signs nobody in.
        copied = [c for c in await signed_in.cookies() if c["name"] == SESSION_COOKIE]
        assert len(copied) == 1
        await first.click("form.signout button[type=submit]")
        await first.wait_for_url(f"{console.base_url}/admin/login")
        replaying = await _context(browser)
        await replaying.add_cookies(copied)
        replayed = await replaying.new_page()
        await replayed.goto(console.base_url + "/admin/ledger")
        assert replayed.url == f"{console.base_url}/admin/login"
        await replaying.close()
        await anonymous.close()
        await signed_in.close()


async def test_sign_in_with_slack_in_the_browser(browser, slack: FakeSlack, settings_for, tmp_path: Path) -> None:
    async with running_console(slack, settings_for, tmp_path) as console:
        context = await _context(browser, viewport={"width": 390, "height": 844})  # a phone
        page = await context.new_page()
        await page.goto(console.base_url + "/admin/")
        await page.click("#slack-sign-in")
        await page.wait_for_url(f"{console.base_url}/admin/")
        assert await page.inner_text("header .who") == "slack:U1"
        await seed_ledger(console.core, now_local(console.core))
        for path in ("/admin/", "/admin/channels", "/admin/people", "/admin/ledger", "/admin/conversations",
                     "/admin/conversations/1", "/admin/health"):
            await page.goto(console.base_url + path)
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, path  # nothing wider than the phone's screen (wide tables scroll inside)
        await context.close()


async def _screenshot(page, name: str) -> None:  # noqa: ANN001 - a Playwright page
    folder = os.environ.get(SCREENSHOTS_ENV)
    if folder:
        await page.screenshot(path=str(Path(folder) / name), full_page=True)

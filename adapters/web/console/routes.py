"""The admin console's pages under /admin: server-rendered Jinja2 templates, one handler per page.

Every figure comes from bot.ops.reports (the queries behind `seedbot spend` and the daily summary) or
the budget manager; budget edits go through bot.ops.admin's verb, so they are recorded like a chat change.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime, timedelta
from importlib.resources import files
from urllib.parse import urlencode, urljoin

import jinja2
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth import OpenIDConnectAuthorizeUrlGenerator
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.exc import SQLAlchemyError

from adapters.core import Core
from adapters.web.console import export
from adapters.web.console.auth import (
    SESSION_COOKIE,
    SESSION_MAX_AGE_SECONDS,
    STATE_COOKIE,
    STATE_MAX_AGE_SECONDS,
    ConsoleAuth,
    ConsoleSession,
    LinkRefused,
)
from adapters.web.console.queries import ConsoleQueries, LedgerFilter
from bot.budget.periods import project_month_end
from bot.budget.scopes import GLOBAL_SCOPE, is_budget_key, split_person_scope
from bot.domain import format_usd, usd_string
from bot.ops.chart import render_chart
from bot.ops.retention import ThreadBeingAnswered

log = logging.getLogger(__name__)

PREFIX = "/admin"
CHART_DAYS = 30
# The range `seedbot spend` shows when given no dates: the last 7 local days, today included.
SPEND_DAYS = 7
OPEN_PATHS = frozenset({f"{PREFIX}/login", f"{PREFIX}/login/slack", f"{PREFIX}/login/slack/callback"})

SESSION_KEY = web.RequestKey("console_session", ConsoleSession)
DATABASE_AWAY = "The console cannot reach its database right now. Try again in a minute."
Platforms = Callable[[], list[str]]


# Conversation ids in a path: at most 18 digits, always inside a 64-bit row id.
_PK = "{pk:\\d{1,18}}"
# Every console response, redirects and errors included: not cached, not framed, no MIME sniffing, no
# script or style from anywhere but this server, and a sign-in token in the address never leaves in a
# Referer header.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "Referrer-Policy": "no-referrer",
}


def _secure(response: web.StreamResponse) -> None:
    """SECURITY_HEADERS on `response`, where it does not set its own."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


async def _form(request: web.Request) -> Mapping[str, object]:
    """A POSTed form; 400 for a charset or a multipart body it cannot be read as."""
    try:
        return await request.post()
    except (ValueError, LookupError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text="send the form as application/x-www-form-urlencoded") from None


class Console:
    """The console's handlers, bound to one Core. `platforms` names the adapters this process runs."""

    def __init__(self, core: Core, auth: ConsoleAuth, platforms: Platforms) -> None:
        self._core = core
        self._settings = core.settings
        self._auth = auth
        self._platforms = platforms
        self._queries = ConsoleQueries(core.db, core.reports, core.settings.workspace_scoped_platforms)
        self._templates = jinja2.Environment(
            loader=jinja2.PackageLoader("adapters.web.console", "templates"),
            autoescape=jinja2.select_autoescape(default=True), undefined=jinja2.StrictUndefined)
        self._templates.filters["usd"] = format_usd
        self._templates.filters["usd_exact"] = usd_string

    # -- plumbing --

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(PREFIX, self.overview), web.get(f"{PREFIX}/", self.overview),
            web.get(f"{PREFIX}/chart.png", self.chart),
            web.get(f"{PREFIX}/channels", self.channels), web.post(f"{PREFIX}/channels", self.set_budget),
            web.get(f"{PREFIX}/people", self.people),
            web.get(f"{PREFIX}/ledger", self.ledger), web.get(f"{PREFIX}/ledger.csv", self.ledger_csv),
            web.get(f"{PREFIX}/conversations", self.conversations),
            web.get(f"{PREFIX}/conversations/{_PK}", self.conversation),
            web.post(f"{PREFIX}/conversations/{_PK}/delete", self.delete_conversation),
            web.get(f"{PREFIX}/health", self.health),
            web.get(f"{PREFIX}/login", self.login), web.post(f"{PREFIX}/login", self.confirm_login),
            web.post(f"{PREFIX}/logout", self.logout),
            web.get(f"{PREFIX}/login/slack", self.slack_login),
            web.get(f"{PREFIX}/login/slack/callback", self.slack_callback),
            web.static(f"{PREFIX}/static", str(files("adapters.web.console") / "static")),
        ]

    @web.middleware
    async def guard(self, request: web.Request,
                    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        """No console page without a session (GET: 302 to sign-in, anything else: 401); every POST
        carries the session's CSRF token."""
        path = request.path
        if not (path == PREFIX or path.startswith(f"{PREFIX}/")) or path.startswith(f"{PREFIX}/static/"):
            return await handler(request)
        try:
            response = await self._guarded(request, handler)
        except web.HTTPException as exc:  # redirects and error pages carry the headers too
            _secure(exc)
            raise
        except (SQLAlchemyError, OSError) as exc:
            # Every page reads its session row: with the database away, say so plainly (no session is let in).
            log.warning("console %s: the database did not answer (%s)", path, type(exc).__name__)
            response = web.Response(status=503, text=DATABASE_AWAY, headers={"Retry-After": "30"})
        _secure(response)
        return response

    async def _guarded(self, request: web.Request,
                       handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if request.path not in OPEN_PATHS:
            session = await self._auth.read_session(request.cookies.get(SESSION_COOKIE))
            if session is None:
                if request.method in ("GET", "HEAD"):
                    raise web.HTTPFound(f"{PREFIX}/login")
                raise web.HTTPUnauthorized(text="sign in first")
            if request.method == "POST":
                token = (await _form(request)).get("csrf_token")
                if not session.csrf_ok(token if isinstance(token, str) else None):
                    raise web.HTTPForbidden(text="missing or wrong CSRF token: reload the page and try again")
            request[SESSION_KEY] = session
        return await handler(request)

    def _render(self, request: web.Request, template: str, status: int = 200, **context: object) -> web.Response:
        session = request.get(SESSION_KEY)
        page = self._templates.get_template(template).render(
            session=session, csrf_token=session.csrf_token if session else "", page=template.removesuffix(".html"),
            **context)
        return web.Response(text=page, content_type="text/html", status=status)

    def _set_cookie(self, response: web.StreamResponse, request: web.Request, name: str, value: str,
                    max_age: int) -> None:
        # Secure whenever browsers reach us over HTTPS: directly, behind a proxy that says so, or
        # as SEEDBOT_PUBLIC_URL declares. Lax, not Strict: the browser must send the state cookie on
        # the top-level redirect back from Slack.
        secure = request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https" \
            or (self._settings.public_url or "").startswith("https://")
        response.set_cookie(name, value, max_age=max_age, path=PREFIX, httponly=True, samesite="Lax", secure=secure)

    def _today(self) -> date:
        return datetime.now(self._settings.tz).date()

    def _public_base(self, request: web.Request) -> str:
        if self._settings.public_url:
            return self._settings.public_url.rstrip("/")
        return f"{request.scheme}://{request.host}"

    # -- pages --

    async def overview(self, request: web.Request) -> web.Response:
        today = self._today()
        reports = self._core.reports
        # Only the 7-day table shows budgets; their per-channel look-ups are skipped for the other two.
        day = await reports.spend_days(today, today, with_budgets=False)
        week = await reports.spend_days(today - timedelta(days=SPEND_DAYS - 1), today)
        month = await reports.spend_days(today.replace(day=1), today, with_budgets=False)
        return self._render(request, "overview.html", today=today, day=day, week=week, month=month,
                            week_first=today - timedelta(days=SPEND_DAYS - 1),
                            forecast=project_month_end(month.cost_nanos, today))

    async def chart(self, _request: web.Request) -> web.Response:
        today = self._today()
        series = await self._core.reports.daily_series(today, days=CHART_DAYS)
        png = await asyncio.to_thread(render_chart, series, today)
        return web.Response(body=png, content_type="image/png")

    async def channels(self, request: web.Request, message: str | None = None) -> web.Response:
        today = self._today()
        budget = self._core.budget
        month = await self._core.reports.spend_days(today.replace(day=1), today, with_budgets=False)
        month_spend = {c.address: c.cost_nanos for c in month.channels}
        known = await self._queries.channels()
        names = dict(known)
        explicit = {scope for scope, _ in await budget.limits.explicit_limits()}
        scopes = [GLOBAL_SCOPE] + sorted({address for address, _ in known} | explicit - {GLOBAL_SCOPE})
        rows = []
        for scope in scopes:
            state = await budget.scope_state(scope)
            # A person's limit has no month figure here: the month's report sums channels, not people in them.
            spent = month.cost_nanos if scope == GLOBAL_SCOPE else month_spend.get(scope, 0)
            person = split_person_scope(scope) is not None
            rows.append({"scope": scope, "name": names.get(scope, ""), "budget": state.limit.describe(),
                         "period": state.limit.period.value, "used": state.spent_nanos + state.reserved_nanos,
                         "limit": state.limit.limit_nanos, "month": None if person else spent,
                         "forecast": None if person else project_month_end(spent, today),
                         "changes": await budget.limits.changes(scope, limit=5)})
        return self._render(request, "channels.html", rows=rows, message=message,
                            default_budget=self._settings.default_budget.describe())

    async def set_budget(self, request: web.Request) -> web.Response:
        form = await request.post()
        scope = str(form.get("scope", ""))
        value = str(form.get("value", "")).strip()
        if not is_budget_key(scope) or not value:
            return await self.channels(request, "Give a channel and a budget like 5/day, 12.50/week or none.")
        platform, _, user_id = request[SESSION_KEY].admin_id.partition(":")
        return await self.channels(request, await self._core.admin.budget_set(platform, user_id, scope, value))

    async def people(self, request: web.Request) -> web.Response:
        today = self._today()
        month = await self._core.reports.spend_days(today.replace(day=1), today, with_budgets=False,
                                                    top_users=None)
        week = await self._core.reports.spend_days(today - timedelta(days=SPEND_DAYS - 1), today,
                                                   with_budgets=False, top_users=None)
        weekly = {u.user_id: u for u in week.users}
        return self._render(request, "people.html", month=month, weekly=weekly, today=today)

    def _ledger_filter(self, request: web.Request) -> LedgerFilter:
        try:
            return LedgerFilter.parse(request.query)
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None

    async def ledger(self, request: web.Request) -> web.Response:
        filters = self._ledger_filter(request)
        rows = await self._queries.ledger(filters)
        count, total = await self._queries.ledger_totals(filters)
        statuses, people = await self._queries.ledger_choices()
        channels = [address for address, _ in await self._queries.channels()]
        return self._render(request, "ledger.html", rows=rows, count=count, total=total, filters=filters,
                            statuses=statuses, people=people, channels=channels,
                            csv_query=urlencode(filters.query_string()))

    async def ledger_csv(self, request: web.Request) -> web.StreamResponse:
        """The whole filtered ledger as CSV, read and sent export.CSV_PAGE_ROWS rows at a time: built in one piece,
        a year of ledger held the event loop (Slack's acks, every answer) for seconds. A database failure
        after the first page cuts the download short (the browser reports it failed); it cannot turn into
        an error page once the 200 is sent."""
        filters = self._ledger_filter(request)
        first = await self._queries.ledger(filters, limit=export.CSV_PAGE_ROWS)  # before the 200: may still be a 503
        response = web.StreamResponse(headers={"Content-Type": "text/csv; charset=utf-8",
                                               "Content-Disposition": 'attachment; filename="seedbot-ledger.csv"'})
        _secure(response)
        await response.prepare(request)
        try:
            async for part in export.ledger_csv_parts(first, functools.partial(self._queries.ledger, filters)):
                await response.write(part)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("console ledger.csv cut short: the database did not answer (%s)", type(exc).__name__)
            if request.transport is not None:
                request.transport.close()
            return response
        await response.write_eof()
        return response

    async def conversations(self, request: web.Request) -> web.Response:
        deleted = request.query.get("deleted")
        return self._render(request, "conversations.html", threads=await self._queries.threads(), deleted=deleted)

    async def conversation(self, request: web.Request) -> web.Response:
        found = await self._queries.thread(int(request.match_info["pk"]))
        if found is None:
            raise web.HTTPNotFound(text="no such conversation (it may have been deleted)")
        thread, messages = found
        return self._render(request, "conversation.html", thread=thread, messages=messages)

    async def delete_conversation(self, request: web.Request) -> web.Response:
        pk = int(request.match_info["pk"])
        try:
            deleted = await self._queries.delete_thread(pk)
        except ThreadBeingAnswered as exc:
            raise web.HTTPConflict(text=str(exc)) from None
        if deleted is None:
            raise web.HTTPNotFound(text="no such conversation (it may have been deleted already)")
        raise web.HTTPSeeOther(f"{PREFIX}/conversations?{urlencode({'deleted': f'{pk}:{deleted}'})}")

    async def health(self, request: web.Request) -> web.Response:
        return self._render(request, "health.html", health=await self._queries.health(),
                            platforms=self._platforms())

    # -- sign-in --

    def _slack_sign_in(self) -> bool:
        return bool(self._settings.slack_client_id and self._settings.slack_client_secret)

    async def login(self, request: web.Request) -> web.Response:
        """The sign-in page; opened from a printed link, a button that signs in with it. Opening the link
        spends nothing: a chat app's link preview fetches the address, and must not use up the link."""
        token = request.query.get("token")
        if not token:
            return self._render(request, "login.html", error=None, slack=self._slack_sign_in(), confirm=None)
        try:
            admin_id = await self._auth.check_link(token)
        except LinkRefused as exc:
            return self._refused(request, str(exc))
        return self._render(request, "login.html", error=None, slack=False, confirm={"admin": admin_id, "token": token})

    async def confirm_login(self, request: web.Request) -> web.Response:
        """The sign-in button: spends the link and starts the session."""
        token = (await _form(request)).get("token")
        try:
            admin_id = await self._auth.redeem_link(token if isinstance(token, str) else "")
        except LinkRefused as exc:
            return self._refused(request, str(exc))
        return await self._signed_in(request, admin_id)

    async def _signed_in(self, request: web.Request, admin_id: str) -> web.Response:
        response = web.HTTPSeeOther(f"{PREFIX}/")
        # The browser's earlier session, if it sends one, ends: its cookie is replaced here anyway.
        cookie = await self._auth.start_session(admin_id, replacing=request.cookies.get(SESSION_COOKIE))
        self._set_cookie(response, request, SESSION_COOKIE, cookie, SESSION_MAX_AGE_SECONDS)
        response.del_cookie(STATE_COOKIE, path=PREFIX)
        raise response

    async def logout(self, request: web.Request) -> web.Response:
        """Sign out: the session ends on the server (a copy of the cookie is refused too), then the
        browser forgets the cookie."""
        await self._auth.end_session(request[SESSION_KEY])
        response = web.HTTPSeeOther(f"{PREFIX}/login")
        response.del_cookie(SESSION_COOKIE, path=PREFIX)
        raise response

    def _slack_url(self, path: str) -> str:
        # Sign in with Slack lives on the same host as the Web API: slack.com/api/ -> slack.com/openid/...
        return urljoin(self._settings.slack_api_url, path)

    async def slack_login(self, request: web.Request) -> web.Response:
        if not self._slack_sign_in():
            raise web.HTTPNotFound(text="Sign in with Slack needs SLACK_CLIENT_ID and SLACK_CLIENT_SECRET")
        state = secrets.token_urlsafe(24)
        generator = OpenIDConnectAuthorizeUrlGenerator(
            client_id=str(self._settings.slack_client_id), scopes=["openid", "profile"],
            redirect_uri=f"{self._public_base(request)}{PREFIX}/login/slack/callback",
            authorization_url=self._slack_url("/openid/connect/authorize"))
        response = web.HTTPFound(generator.generate(state))
        self._set_cookie(response, request, STATE_COOKIE, self._auth.state_cookie(state), STATE_MAX_AGE_SECONDS)
        raise response

    async def slack_callback(self, request: web.Request) -> web.Response:
        """Slack's redirect back: check `state`, trade the code for a user token (openid.connect.token),
        ask who it is (openid.connect.userInfo), and sign in if that Slack user is an admin."""
        if not self._slack_sign_in():
            raise web.HTTPNotFound()
        query = request.query
        if not self._auth.state_matches(request.cookies.get(STATE_COOKIE), query.get("state")):
            return self._refused(request, "This sign-in did not start here or took too long; try again.")
        if "code" not in query:
            return self._refused(request, f"Slack did not sign you in ({query.get('error', 'no code')}).")
        secret = self._settings.slack_client_secret
        client = AsyncWebClient(base_url=self._settings.slack_api_url)
        try:
            token = await client.openid_connect_token(
                client_id=str(self._settings.slack_client_id),
                client_secret=secret.get_secret_value() if secret else "", code=query["code"],
                redirect_uri=f"{self._public_base(request)}{PREFIX}/login/slack/callback")
            access_token = token.get("access_token")
            if not isinstance(access_token, str):
                return self._refused(request, "Slack answered without an access token.")
            info = await AsyncWebClient(token=access_token, base_url=self._settings.slack_api_url) \
                .openid_connect_userInfo()
        except SlackApiError as exc:
            return self._refused(request, f"Slack refused the sign-in: {exc.response.get('error', 'error')}.")
        user_id = info.get("https://slack.com/user_id")
        if not isinstance(user_id, str) or not user_id:
            return self._refused(request, "Slack did not say who you are.")
        admin_id = f"slack:{user_id}"
        if not self._auth.is_admin(admin_id):
            return self._refused(request, f"{admin_id} is not in SEEDBOT_ADMINS.")
        return await self._signed_in(request, admin_id)

    def _refused(self, request: web.Request, error: str) -> web.Response:
        return self._render(request, "login.html", status=403, error=error, slack=self._slack_sign_in(), confirm=None)


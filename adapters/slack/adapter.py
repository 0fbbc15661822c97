"""SlackAdapter: a Bolt AsyncApp receiving events over HTTP (`POST /slack/events` on the process's
aiohttp server, signatures checked with SLACK_SIGNING_SECRET) and/or Socket Mode (when
SLACK_APP_TOKEN is set), answering through the core.

One aiohttp session serves the Web API clients and file downloads. The Web API client retries a 429
after its Retry-After and a dropped connection. auth.test runs once, at start, and its answer is
what Bolt's authorisation returns for every request, so nothing but the signature check stands
between an event and its acknowledgement. Tokens and the signing secret are never logged.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from adapters.common.tasks import BackgroundTasks
from adapters.core import Core
from adapters.slack.errors import error_code
from adapters.slack.files import FileFetcher
from adapters.slack.http_edge import decode_body, event_callback_problem, examine_payload, header_problem, needs_bolt
from adapters.slack.listeners import SlackHandlers
from adapters.slack.notifier import SlackNotifier
from adapters.slack.recovery import finish_interrupted
from adapters.slack.routing import BotIdentity
from adapters.slack.transport import StreamingSwitch
from adapters.slack.users import UserNames
from adapters.slack.workspaces import InstalledNotifier, SlackWorkspace, Workspaces, oauth_settings
from bot.config import ConfigError, Settings
from bot.ports import Notifier
from bot.storage.claimants import InterruptedAnswer

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
# How long an acknowledged event's dispatch may wait for a burst of Slack requests to end (AckFirst).
ACK_FIRST_HOLD_SECONDS = 0.02
WEB_API_TIMEOUT_SECONDS = 30
RATE_LIMIT_RETRIES = 3
CONNECTION_RETRIES = 2


def web_client(base_url: str, token: str | None) -> AsyncWebClient:
    """A Web API client that waits out 429s (Retry-After) and retries dropped connections."""
    return AsyncWebClient(
        token=token,
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        timeout=WEB_API_TIMEOUT_SECONDS,
        retry_handlers=[AsyncConnectionErrorRetryHandler(max_retry_count=CONNECTION_RETRIES),
                        AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES)],
    )


def _secret(value: Any) -> str | None:
    return value.get_secret_value() or None if value is not None else None


class SlackAdapter:
    name = "slack"

    def __init__(self, settings: Settings, core: Core, tasks: BackgroundTasks) -> None:
        token = _secret(settings.slack_bot_token)
        if token is None and not settings.slack_installs:
            raise ConfigError("SLACK_BOT_TOKEN: required for the Slack adapter (an xoxb- bot token), or "
                              "SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and SLACK_SCOPES to install into workspaces")
        self._token = token
        self._settings = settings
        self._signing_secret = _secret(settings.slack_signing_secret)
        self._app_token = _secret(settings.slack_app_token)
        self._verifier = SignatureVerifier(self._signing_secret) if self._signing_secret else None
        self._tasks = tasks
        self._session: aiohttp.ClientSession | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._accepting = False
        self._ack_first = AckFirst(tasks)
        self.identity: BotIdentity | None = None
        # Bolt's own client carries no token: each request gets it from the authorization below.
        self._bolt_client = web_client(settings.slack_api_url, None)
        self.switch = StreamingSwitch()
        self.workspaces = Workspaces(self._workspace_objects)
        self.notifier: Notifier
        if token is not None:
            self.client, self.users, self.files = self._workspace_objects(token)
            self.notifier = SlackNotifier(self.client)

            async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
                # Bolt passes arguments by parameter name; auth.test ran once, in start().
                identity = self._require_identity()
                return AuthorizeResult(enterprise_id=enterprise_id, team_id=identity.team_id or team_id,
                                       bot_user_id=identity.user_id, bot_id=identity.bot_id, bot_token=token)

            self.app = _bolt_app(client=self._bolt_client, signing_secret=self._signing_secret or "",
                                 authorize=authorize)
        else:
            # Installed through OAuth: Bolt authorizes each event from slack-sdk's installation store.
            installations = AsyncSQLAlchemyInstallationStore(settings.slack_client_id or "", core.db.engine)
            self.notifier = InstalledNotifier(installations, self.workspaces)
            self.app = _bolt_app(client=self._bolt_client, signing_secret=self._signing_secret or "",
                                 oauth_settings=oauth_settings(settings, installations, core.db.engine))
            # app_uninstalled and tokens_revoked delete the workspace's tokens from the store (before
            # the handlers' catch-all listener, which would otherwise take these events).
            self.app.enable_token_revocation_listeners()
        self.handlers = SlackHandlers(core=core, tasks=tasks, workspaces=self.workspaces.for_context,
                                      switch=self.switch)
        self.handlers.register(self.app)

    # -- PlatformAdapter --

    def mount(self, app: web.Application) -> None:
        if self._signing_secret is not None:
            app.router.add_post(EVENTS_PATH, self.handle_http)
        if self.app.oauth_flow is not None:
            app.router.add_get(self.app.oauth_flow.install_path, self.handle_oauth)
            app.router.add_get(self.app.oauth_flow.redirect_uri_path, self.handle_oauth)

    async def start(self) -> None:
        self._shared_session()
        if self._token is not None:
            await self._sign_in(self._token)
        self._accepting = True
        if self._app_token is not None:
            await self._connect_socket(self._app_token)
        where = f"as {self.identity.user_id} in {self.identity.team_id}" if self.identity else "installed workspaces"
        modes = [mode for mode, on in (("HTTP events", self._signing_secret is not None),
                                       ("Socket Mode", self._socket is not None)) if on]
        log.info("Slack: serving %s (%s)", where, " and ".join(modes))

    async def _sign_in(self, token: str) -> None:
        try:
            auth = await self.client.auth_test()
        except Exception as exc:
            await self._close_session()
            if isinstance(exc, SlackApiError):  # Slack answered, and refused the token: a setting to fix
                raise ConfigError(f"SLACK_BOT_TOKEN: Slack's auth.test failed ({error_code(exc)})") from None
            raise ConnectionError(f"Slack cannot be reached: auth.test failed ({error_code(exc)})") from None
        self.identity = BotIdentity(str(auth.get("user_id") or ""), str(auth.get("bot_id") or ""),
                                    str(auth.get("team_id") or ""))
        self.workspaces.single = SlackWorkspace(self.identity, token, self.client, self.users, self.files)

    async def _connect_socket(self, app_token: str) -> None:
        # slack_sdk retries a failed connection forever; a token Slack refuses is a setting to fix.
        try:
            await self._bolt_client.apps_connections_open(app_token=app_token)
        except Exception as exc:
            await self.stop()
            raise ConfigError(f"SLACK_APP_TOKEN: Slack refused to open a Socket Mode connection "
                              f"({error_code(exc)})") from None
        self._socket = AsyncSocketModeHandler(self.app, app_token=app_token)
        await self._socket.connect_async()

    async def stop_accepting(self) -> None:
        """HTTP events get 503 (so Slack redelivers them elsewhere) and Socket Mode disconnects; the
        Web API session stays open for the answers in flight."""
        self._accepting = False
        # No request is acknowledged from now on (503): what AckFirst holds is dispatched now, so the
        # shutdown's grace covers it like any answer already running.
        self._ack_first.release_now()
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None

    async def stop(self) -> None:
        """Stop receiving; the session stays open until the answers in flight are done, which the
        runner waits for."""
        await self.stop_accepting()
        if self.handlers.inflight:
            self._tasks.spawn(self._close_when_idle(), name="slack:close")
        else:
            await self._close_session()

    # -- HTTP events --

    async def handle_http(self, request: web.Request) -> web.Response:
        """Slack's HTTP requests, through the checks of adapters.slack.http_edge, then Bolt."""
        self._ack_first.arrived()
        if not self._accepting:
            return web.Response(status=503, text="not accepting events")
        if problem := header_problem(request.headers):
            return web.Response(status=401, text=problem)
        body = decode_body(await request.read())
        if body is None:
            return web.Response(status=400, text="body is not UTF-8")
        assert self._verifier is not None  # the route is mounted only with a signing secret
        if not self._verifier.is_valid(body, request.headers["X-Slack-Request-Timestamp"],
                                       request.headers["X-Slack-Signature"]):
            return web.Response(status=401, text="invalid signature")
        payload = examine_payload(body, request.headers.get("Content-Type", ""))
        if payload.problem:
            log.warning("signed Slack request ignored: %s", payload.problem)
            return web.Response(status=200)
        if (envelope := payload.envelope) is not None:
            # What the dispatch costs (the fields' check, Bolt's second parse, its middleware and listeners)
            # waits until after the ack, and until the acks of a burst are out.
            self._ack_first.dispatch_later(functools.partial(self._dispatch_event, envelope, body,
                                                             request.query_string, request.headers))
            return web.Response(status=200)
        bolt_request = AsyncBoltRequest(body=body, query=request.query_string, headers=dict(request.headers))
        try:
            bolt_response = await self.app.async_dispatch(bolt_request)
        except Exception as exc:  # noqa: BLE001 - a payload Bolt cannot read is ignored, never retried
            log.warning("signed Slack request ignored: Bolt could not read it (%s)", type(exc).__name__)
            return web.Response(status=200)
        if bolt_response.status == 404 or bolt_response.status >= 500:
            log.warning("signed Slack request ignored: Bolt answered %d", bolt_response.status)
            return web.Response(status=200)
        return await to_aiohttp_response(bolt_response)

    async def finish_interrupted(self, answer: InterruptedAnswer, notice: str) -> None:
        """Crash recovery: the answer's reply finished with `notice` (adapters.slack.recovery), through the
        client of its workspace."""
        client = await self._client_of(answer.workspace_id)
        if client is None:
            log.warning("no Slack client for workspace %s: interrupted answer %d left without a notice",
                        answer.workspace_id, answer.message_pk)
            return
        await finish_interrupted(client, answer, notice)

    async def _dispatch_event(self, envelope: dict[str, Any], body: str, query: str,
                              headers: Mapping[str, str]) -> None:
        """An acknowledged event_callback, checked (`event_callback_problem`), then dispatched. A mention or a
        channel message of the one workspace needs none of Bolt's middleware: it goes straight to the router."""
        if problem := event_callback_problem(envelope):
            log.warning("signed Slack request ignored: %s", problem)
            return
        single = self.workspaces.single
        if single is None or needs_bolt(envelope):
            await self._dispatch_acknowledged(body, query, dict(headers))
            return
        try:
            self.handlers.route(envelope, single, assistant=False)
        except Exception:  # noqa: BLE001 - already acknowledged: nothing to answer, only to log
            log.exception("Slack event acknowledged early, then routing it failed")

    async def _dispatch_acknowledged(self, body: str, query: str, headers: dict[str, str]) -> None:
        try:
            response = await self.app.async_dispatch(AsyncBoltRequest(body=body, query=query, headers=headers))
        except Exception as exc:  # noqa: BLE001 - already acknowledged: nothing to answer, only to log
            log.warning("Slack event acknowledged early, then Bolt could not read it (%s)", type(exc).__name__)
            return
        if response.status >= 400:
            log.warning("Slack event acknowledged early, then refused by Bolt (HTTP %d)", response.status)

    async def handle_oauth(self, request: web.Request) -> web.Response:
        """Slack's install flow: `/slack/install` sends the person to Slack's authorize page, Slack sends
        them back to `/slack/oauth_redirect`, where Bolt exchanges the code (oauth.v2.access) and saves
        the installation in the store."""
        flow = self.app.oauth_flow
        assert flow is not None
        bolt_request = await to_bolt_request(request)
        if request.path == flow.install_path:
            return await to_aiohttp_response(await flow.handle_installation(bolt_request))
        return await to_aiohttp_response(await flow.handle_callback(bolt_request))

    async def _client_of(self, workspace_id: str) -> AsyncWebClient | None:
        """The single workspace's Web API client, or an installed workspace's (its bot token from the
        installation store, so crash recovery finds it right after a restart); None if not installed."""
        if self._token is not None:
            return self.client
        assert isinstance(self.notifier, InstalledNotifier)
        try:
            return (await self.notifier.workspace(workspace_id)).client
        except LookupError:
            return None

    # -- internals --

    def _require_identity(self) -> BotIdentity:
        if self.identity is None:
            raise RuntimeError("the Slack adapter has not started")
        return self.identity

    def _shared_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # slack_sdk applies its client's timeout only to sessions it makes itself: a session handed to it
            # must carry the bound, or a Web API call to a Slack that never answers waits aiohttp's 300 s.
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WEB_API_TIMEOUT_SECONDS))
            self._bolt_client.session = self._session
            for workspace in self.workspaces.all():
                workspace.client.session = self._session
            if self._token is not None:
                self.client.session = self._session
        return self._session

    def _workspace_objects(self, token: str) -> tuple[AsyncWebClient, UserNames, FileFetcher]:
        client = web_client(self._settings.slack_api_url, token)
        client.session = self._session
        files = FileFetcher(self._shared_session, token, client, max_text_bytes=self._settings.max_attachment_bytes,
                            max_image_bytes=self._settings.max_image_bytes)
        return client, UserNames(client), files

    async def _close_when_idle(self) -> None:
        try:
            while self.handlers.inflight:
                await asyncio.wait(set(self.handlers.inflight))
        finally:
            await self._close_session()

    async def _close_session(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


class AckFirst:
    """Holds acknowledged events' dispatches while Slack requests keep arriving, so that in a burst every
    event is acknowledged before any is dispatched: a dispatch (Bolt's parse and listeners, the answer's
    start) run between two acks delays every ack behind it. The queue is let go as soon as one turn of the
    event loop passes without a new request, or once its oldest event has waited ACK_FIRST_HOLD_SECONDS
    (under steady traffic, so nothing waits longer); each event then dispatches in a task of its own."""

    def __init__(self, tasks: BackgroundTasks, hold_seconds: float = ACK_FIRST_HOLD_SECONDS) -> None:
        self._tasks = tasks
        self._hold = hold_seconds
        self._arrivals = 0
        self._queued: deque[tuple[float, Callable[[], Awaitable[None]]]] = deque()
        self._releasing = False

    def arrived(self) -> None:
        """A Slack request came in (called first thing by the HTTP handler)."""
        self._arrivals += 1

    def dispatch_later(self, dispatch: Callable[[], Awaitable[None]]) -> None:
        """Queue an acknowledged event's dispatch (called once, in a task of its own, when released); the
        queue's release runs as a background task, so shutdown waits for it like for any answer."""
        self._queued.append((time.monotonic(), dispatch))
        if not self._releasing:
            self._releasing = True
            self._tasks.spawn(self._release(), name="slack:ack-first").add_done_callback(self._released)

    def release_now(self) -> None:
        """Dispatch everything held, at once (shutdown: no more requests will be acknowledged)."""
        while self._queued:
            self._tasks.spawn(self._queued.popleft()[1](), name="slack:dispatch")

    async def _release(self) -> None:
        while self._queued:
            seen = self._arrivals
            await asyncio.sleep(0)  # one turn of the loop: the requests read meanwhile are acknowledged
            # release_now may have emptied the queue meanwhile (a shutdown while requests still arrive).
            if self._queued and self._arrivals != seen and time.monotonic() - self._queued[0][0] < self._hold:
                continue
            self.release_now()

    def _released(self, _task: asyncio.Task[None]) -> None:
        self._releasing = False
        # Cancelled while holding, even before it ran (a shutdown cut short): Slack has had its 200 for
        # these, so they are dispatched rather than dropped.
        self.release_now()


class _TokenUnusedFilter(logging.Filter):
    """Drops Bolt's start-up warnings that a token "will be unused" or "will be ignored". AsyncApp reads
    SLACK_BOT_TOKEN from the environment by itself (slack_bolt/app/async_app.py) and warns when a client or
    an authorize function is given too; seedbot gives both on purpose, so the warning is noise an operator
    would chase."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "will be unused" not in message and "will be ignored" not in message


def _bolt_app(**kwargs: Any) -> AsyncApp:
    """An AsyncApp that answers after the listener has run (`process_before_response=False`), built with the
    filter above on Bolt's logger for the length of its constructor only."""
    bolt_log = logging.getLogger("slack_bolt.AsyncApp")
    quiet = _TokenUnusedFilter()
    bolt_log.addFilter(quiet)
    try:
        return AsyncApp(name="seedbot", process_before_response=False, **kwargs)
    finally:
        bolt_log.removeFilter(quiet)

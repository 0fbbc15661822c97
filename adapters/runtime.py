"""`seedbot run`: one process serving every configured platform, the HTTP server and the scheduler.

This is the composition root for platforms: it lives beside the adapters because the core
(bot/) never imports a platform.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine
from datetime import date
from typing import Any

from adapters.common.platform import PlatformAdapter
from adapters.common.recovery import Recovery
from adapters.common.tasks import BackgroundTasks
from adapters.core import Core, build_core
from adapters.web.server import WebServer, build_web_app
from bot.config import ConfigError, Settings
from bot.ops.heap import HeapTrimmer, freeze_long_lived
from bot.ops.retention import Retention, RetentionSweep
from bot.ops.scheduler import Scheduler
from bot.ports import Notifier

log = logging.getLogger(__name__)

DRAIN_SECONDS = 20.0
MAINTENANCE_INTERVAL_SECONDS = 60.0
# How often live reservations are extended and dead ones expired (at most a third of the TTL).
RESERVATION_TICK_SECONDS = 5.0

NO_PLATFORM = ("no chat platform is configured: set SLACK_BOT_TOKEN (or SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and "
               "SLACK_SCOPES to install into many workspaces) with SLACK_SIGNING_SECRET (HTTP events) "
               "or SLACK_APP_TOKEN (Socket Mode), and/or DISCORD_BOT_TOKEN")


def configured_adapters(settings: Settings, core: Core, tasks: BackgroundTasks) -> list[PlatformAdapter]:
    adapters: list[PlatformAdapter] = []
    if settings.slack_bot_token is not None or settings.slack_installs:
        from adapters.slack.adapter import SlackAdapter

        adapters.append(SlackAdapter(settings, core, tasks))
    if settings.discord_bot_token is not None:
        from adapters.discord.adapter import DiscordAdapter

        adapters.append(DiscordAdapter(settings, core, tasks))
    return adapters


def check_platforms(settings: Settings) -> None:
    slack = settings.slack_bot_token is not None or settings.slack_installs
    if not slack and settings.discord_bot_token is None:
        raise ConfigError(NO_PLATFORM)
    if slack and settings.slack_app_token is None \
            and settings.slack_signing_secret is None:
        raise ConfigError("SLACK_SIGNING_SECRET: required to verify Slack's HTTP requests "
                          "(or set SLACK_APP_TOKEN to use Socket Mode)")


class BotProcess:
    """Everything `seedbot run` runs, startable and stoppable as one (tests drive it directly)."""

    def __init__(self, settings: Settings) -> None:
        check_platforms(settings)
        self.settings = settings
        self.heap = HeapTrimmer()
        self.tasks = BackgroundTasks(on_count=self.heap.running_changed)
        self.core: Core | None = None
        self.adapters: list[PlatformAdapter] = []
        self.server: WebServer | None = None
        self._maintenance: asyncio.Task[None] | None = None
        self._keeping_alive: asyncio.Task[None] | None = None
        self.scheduler: Scheduler | None = None
        self.recovery: Recovery | None = None
        self.retention: RetentionSweep | None = None
        # Set by an operator's second SIGINT/SIGTERM/SIGHUP during shutdown: the grace ends at once.
        self.hurry = asyncio.Event()

    async def start(self) -> None:
        # Budget alerts reach admins through the platforms' notifiers, which exist once the adapters
        # do: the core gets the mapping now and the adapters' notifiers join it as they are built.
        notifiers: dict[str, Notifier] = {}
        self.core = await build_core(self.settings, notifiers=notifiers)
        self.adapters = configured_adapters(self.settings, self.core, self.tasks)
        notifiers.update((adapter.name, adapter.notifier) for adapter in self.adapters)
        app = build_web_app(self.core.db, self.core.metrics, read_timeout=self.settings.http_read_timeout)
        for adapter in self.adapters:
            adapter.mount(app)
        if self.settings.console_enabled:
            from adapters.web.console import mount_console

            await mount_console(app, self.core, lambda: [adapter.name for adapter in self.adapters])
        self.server = WebServer(app, self.settings.http_host, self.settings.http_port)
        await self.server.start()
        for adapter in self.adapters:
            await adapter.start()
            log.info("%s adapter started", adapter.name)
        self.scheduler = Scheduler(self.settings, self.core.db, self.core.reports, notifiers)
        assert self.core.claimants is not None
        self.recovery = Recovery(self.core.claimants, {adapter.name: adapter for adapter in self.adapters
                                                       if hasattr(adapter, "finish_interrupted")})
        await self._recover()
        self.retention = RetentionSweep(self.settings.retention_days, Retention(self.core.db),
                                        self.scheduler.deliveries)
        self._maintenance = asyncio.create_task(self._maintain(), name="maintenance")
        self._keeping_alive = asyncio.create_task(self._keep_alive(), name="keep-alive")

    async def _maintain(self) -> None:
        assert self.core is not None and self.scheduler is not None and self.retention is not None
        while True:
            try:
                await self.scheduler.tick()
                await self.retention.tick()
                await self.core.budget.prune_closed()
            except Exception:  # noqa: BLE001 - whatever failed is retried next interval
                log.exception("maintenance tick failed")
            await asyncio.sleep(MAINTENANCE_INTERVAL_SECONDS)

    async def _keep_alive(self) -> None:
        """Every few seconds: keep this process's claimant and live reservations alive, expire dead
        processes' reservations (so their money comes back within the TTL plus one tick) and finish
        their interrupted answers."""
        assert self.core is not None and self.core.claimants is not None
        tick = min(RESERVATION_TICK_SECONDS, self.settings.reservation_ttl_seconds / 3)
        while True:
            try:
                await self.core.claimants.heartbeat()
                await self.core.budget.heartbeat()
                await self.core.budget.expire_stale()
                await self._recover()
            except Exception:  # noqa: BLE001 - whatever failed is retried next tick
                log.exception("keep-alive tick failed")
            await asyncio.sleep(tick)

    async def _recover(self) -> None:
        """Finish answers whose process died (on start-up and every maintenance tick)."""
        if self.recovery is not None:
            await self.recovery.run_once()

    async def stop(self) -> None:
        self.heap.cancel()
        await _cancel(self._maintenance)
        # Take nothing new, give answers in flight the grace period while every platform can still
        # post, then cancel the rest: the answer supervisor finishes each with the interruption
        # notice and settles it. Only then are the platform connections closed.
        for adapter in self.adapters:
            try:
                await adapter.stop_accepting()
            except Exception:  # noqa: BLE001 - keep shutting the rest down
                log.exception("stopping %s from accepting failed", adapter.name)
        cancelled = await self.tasks.drain(self.settings.shutdown_grace_seconds, hurry=self.hurry)
        if cancelled:
            log.warning("%d answers were still running after %g s of shutdown grace; finished with a notice",
                        cancelled, self.settings.shutdown_grace_seconds)
        await _cancel(self._keeping_alive)  # only now: the answers in flight kept their reservations
        for adapter in reversed(self.adapters):
            try:
                await adapter.stop()
            except Exception:  # noqa: BLE001 - keep shutting the rest down
                log.exception("stopping %s failed", adapter.name)
        await self.tasks.drain(DRAIN_SECONDS, hurry=self.hurry)
        if self.server is not None:
            await self.server.stop()
        if self.core is not None:
            await self.core.aclose()


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        # Let a tick cut short inside a transaction roll back before the engine is disposed.
        await asyncio.gather(task, return_exceptions=True)


def event_loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """The constructor of the event loop `seedbot run` serves on (SEEDBOT_EVENT_LOOP): "uvloop" (libuv's loop,
    which aiohttp's and asyncpg's documentation recommend for servers: here about 8% less CPU per answer on
    PostgreSQL in alternating runs, docs/BENCHMARKS.md) or "asyncio" (the standard library's, for asyncio's debug mode
    or a platform uvloop does not support). Raises ConfigError when uvloop is chosen but not installed
    (Windows: uvloop has no build there)."""
    if choice == "asyncio":
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError as exc:
        raise ConfigError("SEEDBOT_EVENT_LOOP=uvloop needs the uvloop package, which is not installed here "
                          "(it has no Windows build): install it or set SEEDBOT_EVENT_LOOP=asyncio") from exc
    return uvloop.new_event_loop


def run_on_event_loop(main: Coroutine[Any, Any, Any], choice: str) -> Any:
    """Runs `main` to completion on a new loop of `choice` (see event_loop_factory) and returns its result."""
    try:
        factory = event_loop_factory(choice)
    except ConfigError:
        main.close()  # never awaited: closing it keeps Python from warning so
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def serve(settings: Settings) -> None:
    """`seedbot run`: serves until SIGINT, SIGTERM or SIGHUP on the event loop the settings choose.
    Raises ConfigError for a setting that cannot be served."""
    run_on_event_loop(run_until_signalled(settings), settings.event_loop)


async def run_until_signalled(settings: Settings) -> None:
    process = BotProcess(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # SIGHUP too (a closed terminal, a supervisor's hang-up): by default it kills at once, leaving answers
    # streaming and reservations open until their TTL; seedbot has no configuration to reload on it.
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def on_signal() -> None:
        # A second signal (Ctrl-C pressed again) is an operator who will not wait out the grace: answers
        # still running are finished with the notice and settled now, not killed with the books open. One
        # handler that counts, not a second one installed by the first: two signals read in one turn of
        # the loop are both dispatched to the handler installed when they were read.
        if stop.is_set():
            _hurry(process)
        else:
            stop.set()

    for sig in signals:
        loop.add_signal_handler(sig, on_signal)
    # Logged once the signals are handled: from this line on, a signal stops the process in order.
    log.info("event loop: %s.%s", type(loop).__module__, type(loop).__name__)
    starting = asyncio.ensure_future(process.start())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            # Signalled while starting (a platform that does not answer can hold start for its timeouts).
            log.warning("signalled during start-up: stopping without waiting for it to finish")
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            return
        starting.result()  # a failed start raises here
        log.debug("%d start-up objects frozen out of garbage collection", freeze_long_lived())
        await stopping
    finally:
        stopping.cancel()
        # Also after a failed or cancelled start: whatever did start (engine, server, an adapter) is closed.
        await process.stop()


def _hurry(process: BotProcess) -> None:
    if not process.hurry.is_set():
        log.warning("second signal: ending the shutdown grace now; answers still running end with the notice")
        process.hurry.set()


async def send_summary_now(settings: Settings, day: date) -> tuple[int, int]:
    """`seedbot report --send`: connect the configured platforms, deliver `day`'s summary to every
    admin who has not had it (the same once-only claims as the scheduler), disconnect."""
    check_platforms(settings)
    tasks = BackgroundTasks()
    core = await build_core(settings, require_model_key=False)
    adapters = configured_adapters(settings, core, tasks)
    started: list[PlatformAdapter] = []
    try:
        for adapter in adapters:
            await adapter.start()
            started.append(adapter)
        scheduler = Scheduler(settings, core.db, core.reports, {a.name: a.notifier for a in adapters})
        sent = await scheduler.send_summary(day)
        return sent, len(scheduler.admins) - sent
    finally:
        for adapter in reversed(started):
            await adapter.stop()
        # A Socket Mode or gateway connection may have taken a message meanwhile: answer it before leaving.
        await tasks.drain(DRAIN_SECONDS)
        await core.aclose()

"""`seedbot run`: one process serving every configured platform, the HTTP server and the scheduler.

This is the composition root for platforms: it lives beside the adapters because the core
(bot/) never imports a platform.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import date

from adapters.base import PlatformAdapter
from bot.app import Core, build_core
from bot.background import BackgroundTasks
from bot.config import ConfigError, Settings
from bot.retention import Retention, RetentionSweep
from bot.scheduler import BudgetAlerts, Scheduler
from bot.web import WebServer, build_web_app

log = logging.getLogger(__name__)

DRAIN_SECONDS = 20.0
MAINTENANCE_INTERVAL_SECONDS = 60.0

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
        self.tasks = BackgroundTasks()
        self.core: Core | None = None
        self.adapters: list[PlatformAdapter] = []
        self.server: WebServer | None = None
        self._maintenance: asyncio.Task[None] | None = None
        self.scheduler: Scheduler | None = None
        self.retention: RetentionSweep | None = None

    async def start(self) -> None:
        self.core = await build_core(self.settings)
        self.adapters = configured_adapters(self.settings, self.core, self.tasks)
        app = build_web_app(self.core.db, self.core.metrics)
        for adapter in self.adapters:
            adapter.mount(app)
        self.server = WebServer(app, self.settings.http_host, self.settings.http_port)
        await self.server.start()
        for adapter in self.adapters:
            await adapter.start()
            log.info("%s adapter started", adapter.name)
        notifiers = {adapter.name: adapter.notifier for adapter in self.adapters}
        self.scheduler = Scheduler(self.settings, self.core.db, self.core.reports, notifiers)
        self.core.service.budget_watcher = BudgetAlerts(self.settings, self.scheduler.deliveries, notifiers)
        self.retention = RetentionSweep(self.settings.retention_days, Retention(self.core.db),
                                        self.scheduler.deliveries)
        self._maintenance = asyncio.create_task(self._maintain(), name="maintenance")

    async def _maintain(self) -> None:
        assert self.core is not None and self.scheduler is not None and self.retention is not None
        while True:
            try:
                await self.core.budget.expire_stale()
                await self.scheduler.tick()
                await self.retention.tick()
            except Exception:  # noqa: BLE001 - whatever failed is retried next interval
                log.exception("maintenance tick failed")
            await asyncio.sleep(MAINTENANCE_INTERVAL_SECONDS)

    async def stop(self) -> None:
        if self._maintenance is not None:
            self._maintenance.cancel()
            # Let a tick cut short inside a transaction roll back before the engine is disposed.
            await asyncio.gather(self._maintenance, return_exceptions=True)
        for adapter in reversed(self.adapters):
            try:
                await adapter.stop()
            except Exception:  # noqa: BLE001 - keep shutting the rest down
                log.exception("stopping %s failed", adapter.name)
        cancelled = await self.tasks.drain(DRAIN_SECONDS)
        if cancelled:
            log.warning("%d answers were still running at shutdown; their reservations expire after the TTL",
                        cancelled)
        if self.server is not None:
            await self.server.stop()
        if self.core is not None:
            await self.core.aclose()


async def run_until_signalled(settings: Settings) -> None:
    process = BotProcess(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await process.start()
        await stop.wait()
    finally:
        # Also after a failed start: whatever did start (engine, server, a connected adapter) is closed.
        await process.stop()


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

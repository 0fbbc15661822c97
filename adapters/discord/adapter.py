"""DiscordAdapter: the Discord side of `seedbot run` (adapters.common.platform.PlatformAdapter).

start() logs in (which also publishes the slash commands), connects to the gateway in a background
task and returns once discord.py says READY, or raises ConfigError with one line saying what to fix
(a refused token, the Message Content intent not enabled, no READY in time). stop() stops taking new
messages, lets answers in flight finish while it can still post them, then closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp
import discord
import yarl
from aiohttp import web
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.common.tasks import BackgroundTasks
from adapters.core import Core
from adapters.discord.client import build_client
from adapters.discord.commands import install_commands
from adapters.discord.controls import DiscordControls
from adapters.discord.listeners import Conversations
from adapters.discord.notifier import DiscordNotifier
from bot.config import ConfigError, Settings
from bot.storage.claimants import InterruptedAnswer

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://discord.com/api/v10"
READY_TIMEOUT_SECONDS = 60.0
DRAIN_SECONDS = 20.0

MESSAGE_CONTENT_MISSING = (
    "DISCORD_BOT_TOKEN: Discord refused the Message Content intent this bot needs; enable it in the Discord "
    "Developer Portal (https://discord.com/developers/applications -> your app -> Bot -> Privileged Gateway "
    "Intents -> Message Content Intent) and start seedbot again")
TOKEN_REFUSED = "DISCORD_BOT_TOKEN: Discord refused the token; copy it again from the Developer Portal (Bot -> Token)"


class DiscordAdapter:
    name = "discord"

    def __init__(self, settings: Settings, core: Core, tasks: BackgroundTasks, *,
                 ready_timeout: float = READY_TIMEOUT_SECONDS, drain_seconds: float = DRAIN_SECONDS) -> None:
        if settings.discord_bot_token is None:
            raise ConfigError("DISCORD_BOT_TOKEN is not set")
        self._settings = settings
        self._ready_timeout = ready_timeout
        self._drain_seconds = drain_seconds
        self.client = build_client(settings)
        self.conversations = Conversations(self.client, core, tasks, settings)
        self.client.message_listener = self.conversations.on_message
        self.controls = DiscordControls(self.conversations.switches, core.reports.feedback,
                                        lambda user_id: core.admin.is_admin("discord", user_id))
        self.client.interaction_listener = self.controls.on_interaction
        install_commands(self.client.tree, self.conversations, core.admin)
        self.notifier = DiscordNotifier(self.client)
        self._gateway: asyncio.Task[None] | None = None
        self._saved_urls: tuple[str, yarl.URL] | None = None

    def mount(self, app: web.Application) -> None:
        return None  # Discord needs no HTTP routes: events come over the gateway

    async def start(self) -> None:
        self._point_at_discord()
        assert self._settings.discord_bot_token is not None
        try:
            await self.client.login(self._settings.discord_bot_token.get_secret_value())
        except discord.LoginFailure:
            await self._shut()
            raise ConfigError(TOKEN_REFUSED) from None
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            await self._shut()
            url = self._settings.discord_api_url
            raise ConfigError(f"DISCORD_API_URL: cannot log in to Discord at {url}: {exc}") from None
        self._gateway = asyncio.create_task(self.client.connect(reconnect=True), name="discord-gateway")
        ready = asyncio.create_task(self.client.ready.wait())
        try:
            done, _ = await asyncio.wait({self._gateway, ready}, timeout=self._ready_timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if self._gateway in done:
            error = self._gateway.exception() if not self._gateway.cancelled() else None
            await self._shut()
            raise _start_error(error) from None
        if not done:
            await self._shut()
            raise ConfigError(f"DISCORD_GATEWAY_URL: no READY from the Discord gateway within "
                              f"{self._ready_timeout:g} s (is {DiscordWebSocket.DEFAULT_GATEWAY} reachable?)")
        self._gateway.add_done_callback(_gateway_ended)
        log.info("connected to Discord as %s", self.client.user)

    async def stop_accepting(self) -> None:
        self.conversations.accepting = False

    async def stop(self) -> None:
        await self.conversations.drain(self._drain_seconds)
        await self._shut()

    async def finish_interrupted(self, answer: InterruptedAnswer, notice: str) -> None:
        """Crash recovery: post `notice` where the half answer is (its reply location), else where the
        conversation is, the thread (a thread's id is the conversation's thread id for mentions and threads) or
        else its channel; then the half answer loses its Stop button (one PATCH of its components)."""
        where = answer.reply_location
        for channel_id in dict.fromkeys(filter(None, (str(where.get("channel") or ""), answer.thread_id,
                                                      answer.channel_id))):
            try:
                channel = self.client.get_channel(int(channel_id)) or await self.client.fetch_channel(int(channel_id))
                await channel.send(notice, allowed_mentions=discord.AllowedMentions.none())  # type: ignore[union-attr]
                break
            except (discord.NotFound, discord.Forbidden, ValueError, AttributeError) as exc:
                log.info("interruption notice not posted to %s: %s", channel_id, exc)
        else:
            log.warning("no channel took the interruption notice for message %s", answer.message_pk)
        if where.get("controls") and where.get("message") and where.get("channel"):
            await self._remove_stop(str(where["channel"]), str(where["message"]))

    async def _remove_stop(self, channel_id: str, message_id: str) -> None:
        try:
            half = self.client.get_partial_messageable(int(channel_id)).get_partial_message(int(message_id))
            await half.edit(view=None)
        except (discord.HTTPException, ValueError) as exc:  # only a button is left behind
            log.info("removing the Stop button of interrupted message %s failed: %s", message_id, exc)

    def _point_at_discord(self) -> None:
        """discord.py reads its REST base and first gateway URL from class attributes (process-wide),
        so they are set here from Settings, only when Settings differ from Discord's own, and put back
        by stop()."""
        api = self._settings.discord_api_url.rstrip("/")
        gateway = self._settings.discord_gateway_url
        if api == DEFAULT_API_URL and not gateway:
            return
        self._saved_urls = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
        if api != DEFAULT_API_URL:
            Route.BASE = api  # type: ignore[misc]
        if gateway:
            DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)

    async def _shut(self) -> None:
        try:
            await self.client.close()
            if self._gateway is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(self._gateway, 5.0)
        finally:
            if self._saved_urls is not None:
                Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = self._saved_urls  # type: ignore[misc]
                self._saved_urls = None


def _start_error(error: BaseException | None) -> ConfigError:
    if isinstance(error, discord.PrivilegedIntentsRequired):
        return ConfigError(MESSAGE_CONTENT_MISSING)
    if isinstance(error, discord.ConnectionClosed) and error.code == 4004:
        return ConfigError(TOKEN_REFUSED)
    if isinstance(error, discord.ConnectionClosed) and error.code in (4010, 4011):
        return ConfigError(f"DISCORD_SHARD_COUNT: Discord refused the shard settings ({error.reason or error.code})")
    what = f"{type(error).__name__}: {error}" if error is not None else "it stopped"
    return ConfigError(f"DISCORD_GATEWAY_URL: the Discord gateway connection failed before READY ({what})")


def _gateway_ended(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the Discord gateway connection ended", exc_info=task.exception())

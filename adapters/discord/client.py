"""The discord.py client: intents, the readiness signal, new messages out to a listener, and the
slash-command tree synced on login. Plain or auto-sharded, from Settings."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import discord
from discord import app_commands

from bot.config import ConfigError, Settings

log = logging.getLogger(__name__)

# discord.py waits this long after the last GUILD_CREATE before on_ready (2 s by default); the bot
# needs no member lists, so it need not wait for stragglers.
GUILD_READY_TIMEOUT = 1.0

MessageListener = Callable[[discord.Message], Awaitable[None]]
InteractionListener = Callable[[discord.Interaction], Awaitable[None]]


def chat_intents() -> discord.Intents:
    """Guilds (channels, threads), messages in guilds and DMs, and their text (a privileged intent:
    it must be enabled in the Developer Portal)."""
    intents = discord.Intents.none()
    intents.guilds = intents.guild_messages = intents.dm_messages = intents.message_content = True
    return intents


class _Seedbot:
    """What both client classes add to discord.py's."""

    def __init__(self, *, guild_ids: Sequence[int] = (), **options: Any) -> None:
        super().__init__(intents=chat_intents(), guild_ready_timeout=GUILD_READY_TIMEOUT, **options)
        self.tree = app_commands.CommandTree(self)  # type: ignore[arg-type]
        self.ready = asyncio.Event()
        self.message_listener: MessageListener | None = None
        self.interaction_listener: InteractionListener | None = None
        self._guild_ids = list(guild_ids)

    async def setup_hook(self) -> None:
        """Runs inside login(): publish the slash commands, to the listed guilds (instant) or
        globally. A failure (e.g. the bot was invited without the applications.commands scope) is
        logged; mentions and DMs work without commands."""
        try:
            if self._guild_ids:
                for guild_id in self._guild_ids:
                    guild = discord.Object(guild_id)
                    self.tree.copy_global_to(guild=guild)
                    await self.tree.sync(guild=guild)
            else:
                await self.tree.sync()
        except discord.HTTPException as exc:
            log.error("Discord slash commands could not be registered: %s", exc)

    async def on_ready(self) -> None:
        self.ready.set()

    async def on_message(self, message: discord.Message) -> None:
        if self.message_listener is not None:
            await self.message_listener(message)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Every interaction; the command tree answers slash commands itself, the listener takes
        button clicks."""
        if self.interaction_listener is not None:
            await self.interaction_listener(interaction)


class SeedbotClient(_Seedbot, discord.Client):
    pass


class ShardedSeedbotClient(_Seedbot, discord.AutoShardedClient):
    pass


def build_client(settings: Settings) -> SeedbotClient | ShardedSeedbotClient:
    """DISCORD_SHARD_COUNT / DISCORD_SHARD_IDS make it an AutoShardedClient running those shards
    (several processes can split the shards of one bot); otherwise a plain Client."""
    # The bot never joins voice: discord.py's start-up warnings about voice libraries are noise.
    discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
    shard_ids = list(settings.discord_shard_ids) or None
    count = settings.discord_shard_count
    if shard_ids is None and count is None:
        return SeedbotClient(guild_ids=settings.discord_guild_ids)
    if shard_ids is not None and count is None:
        raise ConfigError("DISCORD_SHARD_IDS: set DISCORD_SHARD_COUNT too (the total number of shards)")
    if shard_ids is not None and count is not None and any(i >= count for i in shard_ids):
        raise ConfigError(f"DISCORD_SHARD_IDS: every id must be below DISCORD_SHARD_COUNT ({count})")
    return ShardedSeedbotClient(guild_ids=settings.discord_guild_ids, shard_count=count, shard_ids=shard_ids)

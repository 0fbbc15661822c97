"""bot.ports.Notifier for Discord: direct messages to admins (daily summary, budget alerts) and notices
to channels. Errors propagate: the scheduler marks the delivery failed and retries it later."""

from __future__ import annotations

import io

import discord

from adapters.common.splitter import split_markdown
from adapters.discord.sink import LIMIT
from adapters.discord.transport import NO_PINGS


class DiscordNotifier:
    def __init__(self, client: discord.Client) -> None:
        self._client = client

    async def send_direct(self, user_id: str, text: str, *, png: bytes | None = None, filename: str = "") -> None:
        user = self._client.get_user(int(user_id)) or await self._client.fetch_user(int(user_id))
        channel = user.dm_channel or await user.create_dm()
        await self._send(channel, text, png=png, filename=filename or "seedbot.png")

    async def send_channel(self, workspace_id: str, channel_id: str, text: str) -> None:
        channel = self._client.get_channel(int(channel_id)) or await self._client.fetch_channel(int(channel_id))
        if not isinstance(channel, discord.abc.Messageable):
            raise TypeError(f"Discord channel {channel_id} cannot hold messages")
        await self._send(channel, text)

    @staticmethod
    async def _send(channel: discord.abc.Messageable, text: str, *, png: bytes | None = None,
                    filename: str = "") -> None:
        """The text in messages of at most 2,000 characters; the PNG goes with the last one."""
        parts = split_markdown(text, LIMIT) or ([""] if png else [])
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            file = discord.File(io.BytesIO(png), filename=filename) if last and png is not None else None
            if file is None:
                await channel.send(part, allowed_mentions=NO_PINGS)
            else:
                await channel.send(part or None, file=file, allowed_mentions=NO_PINGS)

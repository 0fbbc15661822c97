"""The parts of the fake the REST routes share, with the lookups that answer Discord's 404s."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from .gateway import Gateway
from .interactions import Interactions
from .model import EPHEMERAL, JSON, Channel, World
from .opcodes import Intent
from .records import MessageEvent, Records
from .rest_common import UNKNOWN_CHANNEL, UNKNOWN_MESSAGE, unknown


@dataclass
class Backend:
    token: str
    world: World
    gateway: Gateway
    records: Records
    interactions: Interactions
    recommended_shards: int = 1

    def channel(self, channel_id: int | str) -> Channel:
        channel = self.world.channels.get(_as_int(channel_id))
        if channel is None:
            raise unknown("Channel", UNKNOWN_CHANNEL)
        return channel

    def message(self, channel: Channel, message_id: int | str) -> JSON:
        message = self.world.messages.get(_as_int(message_id))
        # Ephemeral messages exist only for their interaction's webhook, never in the channel.
        if message is None or int(message["channel_id"]) != channel.id or message["flags"] & EPHEMERAL:
            raise unknown("Message", UNKNOWN_MESSAGE)
        return message

    def record(
        self,
        kind: Literal["create", "edit", "delete"],
        message: JSON,
        *,
        via: Literal["channel", "interaction"],
        body: JSON | None = None,
    ) -> None:
        self.records.message_events.append(
            MessageEvent(
                kind=kind,
                channel_id=int(message["channel_id"]),
                message_id=int(message["id"]),
                content=message.get("content", ""),
                at=time.monotonic(),
                via=via,
                payload=body or {},
            )
        )

    async def delete(self, message: JSON, *, via: Literal["channel", "interaction"]) -> None:
        """Removes a stored message; the gateway hears of it unless it was ephemeral, which only its
        interaction's webhook ever knew."""
        del self.world.messages[int(message["id"])]
        self.record("delete", message, via=via)
        if message["flags"] & EPHEMERAL:
            return
        channel = self.channel(message["channel_id"])
        deleted: JSON = {"id": message["id"], "channel_id": message["channel_id"]}
        if channel.guild_id is not None:
            deleted["guild_id"] = str(channel.guild_id)
        intent = Intent.GUILD_MESSAGES if channel.guild_id else Intent.DIRECT_MESSAGES
        await self.gateway.dispatch("MESSAGE_DELETE", deleted, guild_id=channel.guild_id, intent=intent)


def _as_int(value: int | str) -> int:
    try:
        return int(value)
    except ValueError:
        return -1

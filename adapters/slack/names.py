"""Teaching the core's NameBook what Slack calls a channel and a person, for reports and alerts.

Channel names come from conversations.info (Tier 3); people's from users.info, which UserNames already
asked for the message. The NameBook asks at most once a day per id, and the Web client retries a
rate-limited call after Slack's Retry-After, so this never competes with answering.
"""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bot.storage.names import CHANNEL, USER, NameBook

PLATFORM = "slack"


class SlackNames:
    def __init__(self, client: AsyncWebClient, book: NameBook) -> None:
        self._client = client
        self._book = book

    async def learn(self, channel_id: str, user_id: str, user_name: str) -> None:
        """Store the channel's name (asked of Slack when due) and the person's (already known). A DM
        (Slack's ids for them start with D) has no name to ask for."""
        if not channel_id.startswith("D"):
            await self._book.learn(PLATFORM, CHANNEL, channel_id, lambda: self.channel_name(channel_id))
        if user_name and user_name != user_id:
            await self._book.note(PLATFORM, USER, user_id, user_name)

    async def channel_name(self, channel_id: str) -> str | None:
        """conversations.info's `channel.name`; None for a DM, which has none."""
        response = await self._client.conversations_info(channel=channel_id)
        channel = response.get("channel")
        name = channel.get("name") if isinstance(channel, dict) else None
        return name if isinstance(name, str) and name else None

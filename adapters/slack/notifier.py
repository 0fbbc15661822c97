"""bot.ports.Notifier for Slack: summaries and alerts to people (DMs) and channels.

Failures raise (slack_sdk's SlackApiError or a connection error): the scheduler records them and
retries the delivery later.
"""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from adapters.common.splitter import split_markdown
from adapters.slack.sink import MESSAGE_LIMIT


class SlackNotifier:
    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client

    async def send_direct(self, user_id: str, text: str, *, png: bytes | None = None, filename: str = "") -> None:
        opened = await self._client.conversations_open(users=user_id)
        channel = str(opened["channel"]["id"])
        await self._post(channel, text)
        if png:
            name = filename or "seedbot-chart.png"
            await self._client.files_upload_v2(channel=channel, content=png, filename=name,
                                               title=name.rsplit(".", 1)[0])

    async def send_channel(self, workspace_id: str, channel_id: str, text: str) -> None:
        # One bot token serves one workspace, so workspace_id only names it.
        await self._post(channel_id, text)

    async def _post(self, channel: str, text: str) -> None:
        for part in split_markdown(text, MESSAGE_LIMIT) or [" "]:
            await self._client.chat_postMessage(channel=channel, markdown_text=part)

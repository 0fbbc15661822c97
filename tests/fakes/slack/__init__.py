"""A fake Slack for end-to-end tests: Web API, Socket Mode, file hosting, response_url, signed events.

It is a real aiohttp server on 127.0.0.1 (random port). slack_sdk's AsyncWebClient, SocketModeClient and
slack_bolt's AsyncApp talk to it unmodified: give them ``base_url=slack.api_url``.

    async with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.config.bot_token, base_url=slack.api_url)
        ...
        await slack.wait_for(lambda: slack.messages("C1"))

The modules: model (config, messages, channels, users, files), records (what the fake saw), state (the
workspace), checks, web_api, streaming and files (the Web API methods), endpoint (/api/{method}),
socket_mode, events (payload builders), sender (signed delivery), oauth and openid (install and sign-in),
server (FakeSlack, wiring it all into one app).
"""

from .events import EventFactory
from .model import (
    JSON,
    MARKDOWN_LIMIT,
    TEXT_LIMIT,
    AssistantThread,
    FakeChannel,
    FakeFile,
    FakeUser,
    Message,
    Revision,
    SlackConfig,
    SlackError,
    TsClock,
    dm_channel_id,
)
from .openid import OpenIdConnect
from .records import ApiCall, FileDownload, ResponseUrlPost, SocketAck
from .sender import Delivery, SignedSender
from .server import FakeSlack

__all__ = [
    "JSON",
    "MARKDOWN_LIMIT",
    "TEXT_LIMIT",
    "ApiCall",
    "AssistantThread",
    "Delivery",
    "EventFactory",
    "FakeChannel",
    "FakeFile",
    "FakeSlack",
    "FakeUser",
    "FileDownload",
    "Message",
    "OpenIdConnect",
    "ResponseUrlPost",
    "Revision",
    "SignedSender",
    "SlackConfig",
    "SlackError",
    "SocketAck",
    "TsClock",
    "dm_channel_id",
]

"""The Web API client the fake Slack's own tests share."""

from __future__ import annotations

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import FakeSlack


@pytest.fixture
def client(slack: FakeSlack) -> AsyncWebClient:
    """slack_sdk's async Web API client, with the bot token, pointed at the fake."""
    return AsyncWebClient(token=slack.config.bot_token, base_url=slack.api_url)

"""Fixtures of the Slack tests (the shared ones, `slack` and `slack_bot` among them, are in tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.slack.harness import RunningBot


@pytest.fixture
def bot(slack_bot: RunningBot) -> RunningBot:
    """In the Slack tests, `bot` is the bot process running against the fake Slack."""
    return slack_bot

"""Fixtures of the Discord tests (the shared ones, `fake` and `discord_bot` among them, are in tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.discord.harness import RunningBot


@pytest.fixture
def bot(discord_bot: RunningBot) -> RunningBot:
    """In the Discord tests, `bot` is the bot process running against the fake Discord."""
    return discord_bot

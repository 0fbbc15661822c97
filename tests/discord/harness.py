"""Running the real bot process (`seedbot run`'s BotProcess) against the fake Discord and the fake Seed
model, for the Discord end-to-end tests."""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.core import Core
from adapters.discord.adapter import DiscordAdapter
from adapters.runtime import BotProcess
from bot.config import Settings
from tests.fakes.discord_fake import JSON, Channel, FakeDiscord
from tests.fakes.seed import FakeSeed
from tests.waiting import wait_until_idle

DISCORD_API, DISCORD_GATEWAY = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
FOOTER_RE = re.compile(r"(?:^|\n)(-# [\d,]+ tokens · \$[\d.,]+[^\n]*)$")


@dataclass
class RunningBot:
    process: BotProcess
    fake: FakeDiscord

    @property
    def adapter(self) -> DiscordAdapter:
        (adapter,) = self.process.adapters
        assert isinstance(adapter, DiscordAdapter)
        return adapter

    async def idle(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        await wait_until_idle(self.process.tasks, timeout)

    def bot_messages(self, channel: Channel | int) -> list[JSON]:
        found = self.fake.messages_in(channel, author=self.fake.bot)
        return sorted(found, key=lambda m: int(m["id"]))

    async def answer_in(self, channel: Channel | int, *, after: int = 0, timeout: float = 10.0) -> list[JSON]:  # noqa: ASYNC109
        """The bot's messages in `channel` (newer than message id `after`) once the answer is complete."""

        def done() -> bool:
            found = [m for m in self.bot_messages(channel) if int(m["id"]) > after]
            return bool(found) and not len(self.process.tasks)

        await self.fake.wait_until(done, seconds=timeout)
        return [m for m in self.bot_messages(channel) if int(m["id"]) > after]


def split_footer(content: str) -> tuple[str, str]:
    """(answer part, footer line) of the last message of an answer."""
    match = FOOTER_RE.search(content)
    assert match is not None, f"no footer in {content[-200:]!r}"
    return content[: match.start()], match.group(1)


@asynccontextmanager
async def running_bot(fake: FakeDiscord, settings_for: Callable[..., Settings], tmp_path: Path,
                      **overrides: Any) -> AsyncIterator[RunningBot]:
    values: dict[str, Any] = {
        "DISCORD_BOT_TOKEN": fake.token,
        "DISCORD_API_URL": fake.api_base,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        "SEEDBOT_HTTP_HOST": "127.0.0.1",
        "SEEDBOT_HTTP_PORT": 0,
        "DISCORD_EDIT_INTERVAL": 0.3,
    }
    values.update(overrides)
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'discord.db'}", **values)
    process = BotProcess(settings)
    try:
        await process.start()
        yield RunningBot(process, fake)
    finally:
        await process.stop()


def prose(words: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(["monad", "bind", "unit", "functor", "type", "value", "wraps", "a", "the"])
                    for _ in range(words))


def user_turns(fake_seed: FakeSeed, index: int) -> list[tuple[str, str]]:
    """(role, content) of the prompt of the index-th model call, without the system prompt."""
    return [(m["role"], m["content"]) for m in fake_seed.completions[index].body["messages"][1:]]


def core_of(bot: RunningBot) -> Core:
    assert bot.process.core is not None
    return bot.process.core

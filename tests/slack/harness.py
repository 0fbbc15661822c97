"""Running the real bot process against the fake Slack and the fake Seed model, for the Slack tests."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.runtime import BotProcess
from adapters.slack.adapter import SlackAdapter
from bot.chat.markdown import open_fence
from bot.config import Settings
from tests.fakes.slack import FakeSlack, Message, SignedSender
from tests.waiting import wait_until_idle

FOOTER_RE = re.compile(r"\n\n_[^\n]*_$")


@dataclass
class RunningBot:
    process: BotProcess
    slack: FakeSlack

    @property
    def events_url(self) -> str:
        assert self.process.server is not None
        return f"http://127.0.0.1:{self.process.server.port}/slack/events"

    @property
    def adapter(self) -> SlackAdapter:
        adapter = self.process.adapters[0]
        assert isinstance(adapter, SlackAdapter)
        return adapter

    async def idle(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        await wait_until_idle(self.process.tasks, timeout)


@asynccontextmanager
async def running_bot(slack: FakeSlack, settings_for: Callable[..., Settings], tmp_path: Path, *,
                      socket_mode: bool = False, **overrides: Any) -> AsyncIterator[RunningBot]:
    values: dict[str, Any] = {
        "SLACK_BOT_TOKEN": slack.config.bot_token,
        "SLACK_API_URL": slack.api_url,
        "SEEDBOT_HTTP_HOST": "127.0.0.1",
        "SEEDBOT_HTTP_PORT": 0,
    }
    if socket_mode:
        values["SLACK_APP_TOKEN"] = slack.config.app_token
    else:
        values["SLACK_SIGNING_SECRET"] = slack.config.signing_secret
    values.update(overrides)
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'slack.db'}", **values)
    process = BotProcess(settings)
    await process.start()
    bot = RunningBot(process, slack)
    try:
        if socket_mode:
            await slack.wait_for_socket()
        yield bot
    finally:
        await process.stop()


def bot_replies(slack: FakeSlack, channel: str, thread_ts: str) -> list[Message]:
    return [m for m in slack.thread(channel, thread_ts) if m.user == slack.config.bot_user_id]


async def wait_for_answer(slack: FakeSlack, channel: str, thread_ts: str, *, count: int = 1,
                          timeout: float = 10.0) -> list[Message]:  # noqa: ASYNC109
    """The bot's messages in a thread once `count` exist and the last carries the footer."""

    def done() -> list[Message] | None:
        replies = bot_replies(slack, channel, thread_ts)
        if len(replies) >= count and FOOTER_RE.search(replies[-1].visible_text) \
                and replies[-1].stream_state != "streaming":
            return replies
        return None

    return await slack.wait_for(done, timeout)


async def answers_to(bot: RunningBot, slack: FakeSlack, text: str, *,
                     timeout: float = 15) -> list[Message]:  # noqa: ASYNC109
    """Mentions the bot with `text` in C1 over the Events API (asserting Slack gets its 200) and returns the
    bot's messages in that thread once its answer is complete (`wait_for_answer`, `timeout` seconds)."""
    mention = slack.events.app_mention(text)
    async with slack.sender(bot.events_url) as sender:
        assert (await sender.post_event(mention)).status == 200
    return await wait_for_answer(slack, "C1", mention["event"]["ts"], timeout=timeout)


async def mention_answered(sender: SignedSender, slack: FakeSlack, text: str) -> str:
    """Mentions the bot in C1 and waits for its answer; returns the thread's ts, for what the test sends next."""
    mention = slack.events.app_mention(text)
    await sender.post_event(mention)
    await wait_for_answer(slack, "C1", mention["event"]["ts"])
    return mention["event"]["ts"]


def answer_part(text: str) -> str:
    """A final message without its footer line."""
    match = FOOTER_RE.search(text)
    assert match is not None, f"no footer in {text[-200:]!r}"
    return text[: match.start()]


def rejoin(texts: list[str]) -> str:
    """The answer several messages carry: where one ends inside a code block, its closing fence line
    and the next one's reopening fence line were added by the cut."""
    parts = list(texts)
    for i, text in enumerate(texts[:-1]):
        if open_fence(text.rpartition("\n")[0]) is not None and open_fence(text) is None:
            parts[i] = text.rpartition("\n")[0] + "\n"
            parts[i + 1] = parts[i + 1].split("\n", 1)[1]
    return "".join(parts)


def fence_count(text: str) -> int:
    return sum(1 for line in text.split("\n") if line.lstrip().startswith("```"))

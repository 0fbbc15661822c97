"""The in-memory workspace the Web API methods read and change, and the change signal wait_for() waits on."""

from __future__ import annotations

import asyncio
import itertools
import time

from .model import AssistantThread, FakeChannel, FakeFile, FakeUser, Message, Revision, SlackConfig, TsClock


class Changes:
    """Wakes wait_for() whenever the fake's state changes."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._event.wait(), seconds)
        except TimeoutError:
            pass


class SlackState:
    """The in-memory workspace: messages per channel, users, files, DMs, assistant threads."""

    def __init__(self, config: SlackConfig, clock: TsClock) -> None:
        self.config = config
        self.clock = clock
        self.channels: dict[str, list[Message]] = {}
        self.users: dict[str, FakeUser] = {}
        self.conversations: dict[str, FakeChannel] = {}
        self.files: dict[str, FakeFile] = {}
        self.assistant: dict[tuple[str, str], AssistantThread] = {}
        self.sessions: dict[tuple[str, str], str] = {}  # agent session status by (channel, thread_ts)
        self.changes = Changes()
        self._ids = itertools.count(1)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08d}"

    def add_message(self, message: Message, method: str) -> Message:
        if message.thread_ts:
            message.thread_ts = self.thread_root(message.channel, message.thread_ts)
            thread = self.assistant.get((message.channel, message.thread_ts))
            if message.is_bot and thread is not None:
                # Slack clears an assistant thread's status when the app replies in it.
                thread.status = ""
        message.revisions.append(Revision(time.monotonic(), method, message.visible_text))
        self.channels.setdefault(message.channel, []).append(message)
        self.changes.notify()
        return message

    def revise(self, message: Message, method: str) -> None:
        message.revisions.append(Revision(time.monotonic(), method, message.visible_text))
        self.changes.notify()

    def find(self, channel: str, ts: str) -> Message | None:
        return next((m for m in self.channels.get(channel, []) if m.ts == ts), None)

    def thread_root(self, channel: str, ts: str) -> str:
        # A reply's ts given as thread_ts lands in the parent's thread, as on Slack.
        message = self.find(channel, ts)
        return message.thread_ts if message and message.thread_ts else ts

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        return [m for m in self.channels.get(channel, []) if thread_ts in (m.ts, m.thread_ts)]

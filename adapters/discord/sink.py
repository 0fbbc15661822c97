"""A ReplySink over paced message edits: how an answer streams into Discord.

The answer grows by editing one message. Edits of a message are at least DISCORD_EDIT_INTERVAL
apart; while an answer streams, the gap grows by a tenth of the interval per edit already made (to
3x), so early text shows up quickly and a 20-second answer still costs about a dozen API calls.
When the text passes 2,000 characters, the full message is frozen and the answer continues in a new
one, cut per split_logic (code blocks closed and reopened). The last message gets the footer
(`-# 1,234 tokens · $0.0012`) on its own line, or a message of its own if it does not fit.

Until the first text arrives, the typing indicator is on (re-sent every 8 s; sending a message
ends it). If an edit fails (the message was deleted, or Discord keeps refusing), the rest of the
answer goes out as new messages, from where the failed message's text ended. No Discord error ever
escapes to the core: a sink that cannot post logs why and stops.

All Discord calls run in one pump task per answer, so `append` never waits for Discord.

With an `answer_key`, the message being edited carries a Stop button and the finished answer's last
message the feedback buttons (adapters.discord.controls); they ride in the sends and edits above.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import discord
from discord.utils import MISSING

from adapters.discord.controls import feedback_view, stop_view
from adapters.discord.split_logic import LIMIT, split_markdown, split_text
from adapters.discord.targets import Posted, Target
from bot.domain import Footer
from bot.markdown import Fence, open_fence
from bot.ports import Step

log = logging.getLogger(__name__)

TYPING_REFRESH_SECONDS = 8.0
GAP_GROWTH_PER_EDIT = 0.1
MAX_GAP_FACTOR = 3.0
MAX_RESTARTS = 5
SEND_ERRORS = (discord.HTTPException, aiohttp.ClientError, OSError, asyncio.TimeoutError)
FALLBACK_REASON = "Something went wrong while answering; please try again."


def footer_line(footer: Footer) -> str:
    """The footer as Discord subtext, on one line."""
    text = " ".join(footer.text().split())
    return f"-# {text}" if text else ""


@dataclass(slots=True)
class _Live:
    """The message the answer is currently growing in."""

    posted: Posted
    content: str
    shown_end: int  # offset in the answer where the text this message shows ends
    touched: float  # when it was sent or last edited


class DiscordSink:
    def __init__(self, target: Target, *, interval: float, limit: int = LIMIT,
                 clock: Callable[[], float] = time.monotonic, answer_key: str = "") -> None:
        self._target = target
        self._answer_key = answer_key
        self._interval = interval
        self._limit = limit
        self._clock = clock
        self._parts: list[str] = []
        self._visible = False
        self._footer = ""
        self._final = False
        self._aborted = False
        self._closed = False
        self._broken = False
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._typing: asyncio.Task[None] | None = None
        self._current: _Live | None = None
        self._seg_start = 0  # where the text of the current message (and those after it) begins
        self._seg_fence: Fence | None = None  # the code block open at _seg_start
        self.messages_sent = 0
        self.edits = 0

    # -- ReplySink ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self._ensure_pump()

    async def status(self, text: str) -> None:
        return None  # the typing indicator (or the deferred "thinking…") says it; no API call

    async def step(self, step: Step) -> None:
        return None  # Discord has no task list; the typing indicator covers it, with no API call

    async def append(self, delta: str) -> None:
        if self._closed or not delta:
            return
        self._parts.append(delta)
        self._visible = self._visible or bool(delta.strip())
        self._ensure_pump()
        self._wake.set()

    async def finish(self, footer: Footer) -> None:
        if self._closed:
            return
        self._closed = self._final = True
        self._footer = footer_line(footer)
        self._closing.set()
        self._wake.set()
        await self._wait_for(self._ensure_pump())

    async def fail(self, reason: str) -> None:
        if self._closed:
            return
        self._closed = self._aborted = True
        self._closing.set()
        self._wake.set()
        if self._pump is not None:
            await self._wait_for(self._pump)
        await self._open()
        for content in split_text(reason or FALLBACK_REASON, self._limit):
            self._current = None
            if not await self._show(content, 0):
                return

    @property
    def text(self) -> str:
        return "".join(self._parts)

    # -- the pump ----------------------------------------------------------------------------------

    def _ensure_pump(self) -> asyncio.Task[None]:
        if self._pump is None:
            self._pump = asyncio.create_task(self._run(), name="discord-answer")
        return self._pump

    @staticmethod
    async def _wait_for(pump: asyncio.Task[None]) -> None:
        try:
            await asyncio.shield(pump)
        except asyncio.CancelledError:
            pump.cancel()
            raise

    async def _run(self) -> None:
        try:
            await self._open()
            if self._target.wants_typing and not self._aborted:
                self._typing = asyncio.create_task(self._keep_typing(), name="discord-typing")
            while not (self._broken or self._aborted):
                await self._wake.wait()
                if self._aborted:
                    return
                if not self._final and not self._visible:
                    self._wake.clear()
                    continue
                self._stop_typing()
                await self._pace()
                if self._aborted:
                    return
                self._wake.clear()
                final = self._final
                await self._render(final)
                if final:
                    return
        except Exception:  # noqa: BLE001 - never let a Discord problem reach the core
            log.exception("streaming an answer to Discord failed")
        finally:
            self._stop_typing()

    async def _open(self) -> None:
        try:
            await self._target.open()
        except Exception:  # noqa: BLE001 - the target falls back to where it can post
            log.exception("preparing the Discord target failed")

    async def _keep_typing(self) -> None:
        while True:
            try:
                await self._target.typing()
            except SEND_ERRORS as exc:
                log.debug("typing indicator failed: %s", exc)
                return
            await asyncio.sleep(TYPING_REFRESH_SECONDS)

    def _stop_typing(self) -> None:
        if self._typing is not None:
            self._typing.cancel()
            self._typing = None

    def _gap(self) -> float:
        if self._final:
            return self._interval
        return self._interval * min(MAX_GAP_FACTOR, 1 + GAP_GROWTH_PER_EDIT * self.edits)

    async def _pace(self) -> None:
        """Wait until the current message may be edited again; more text piles up meanwhile."""
        while self._current is not None and not self._aborted:
            delay = self._current.touched + self._gap() - self._clock()
            if delay <= 0:
                return
            if self._final:
                await asyncio.sleep(delay)
                return
            try:
                await asyncio.wait_for(self._closing.wait(), delay)  # finish shortens the gap
            except TimeoutError:
                return

    async def _render(self, final: bool) -> None:
        for _ in range(MAX_RESTARTS):
            if await self._render_once(final) or self._broken:
                return

    async def _render_once(self, final: bool) -> bool:
        """Show the answer so far; False if an edit failed and the rest must be rendered again."""
        base = self._seg_start
        chunks = split_markdown(self.text[base:], self._limit, fence=self._seg_fence)
        footer = self._footer if final else ""
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            content = chunk.text
            if last and footer and content.strip() and len(content) + 1 + len(footer) <= self._limit:
                content, footer = f"{content}\n{footer}", ""
            buttons = self._buttons(final and not footer) if last else self._buttons(None)
            if content.strip() and not await self._show(content, base + chunk.end, buttons):
                return False
            if not last:  # this message is full: freeze it, continue in a new one
                self._current = None
                self._seg_start = base + chunks[index + 1].start
                self._seg_fence = chunk.fence_after
        if footer:
            self._current = None
            return await self._show(footer[: self._limit], self._seg_start, self._buttons(True))
        return True

    def _buttons(self, final: bool | None) -> discord.ui.View | None:
        """The buttons of a message: Stop while it is edited (final False), feedback on the finished
        answer's last message (True), none on a message left behind (None). MISSING without a key."""
        if not self._answer_key:
            return MISSING
        if final is None:
            return None
        return feedback_view(self._answer_key) if final else stop_view(self._answer_key)

    async def _show(self, content: str, shown_end: int, buttons: discord.ui.View | None = MISSING) -> bool:
        current = self._current
        if current is None:
            try:
                posted = await self._target.send(content, view=buttons or None)
            except SEND_ERRORS as exc:
                log.warning("sending an answer message failed: %s", exc)
                self._broken = True
                return False
            self._current = _Live(posted, content, shown_end, self._clock())
            self.messages_sent += 1
            return True
        if current.content == content:
            current.shown_end = shown_end
            return True
        try:
            await current.posted.edit(content, view=buttons)
        except SEND_ERRORS as exc:
            log.info("editing message %s failed (%s); the rest of the answer goes to new messages",
                     current.posted.id, exc)
            self._seg_fence = open_fence(self.text[self._seg_start:current.shown_end], self._seg_fence)
            self._seg_start = current.shown_end
            self._current = None
            return False
        current.content, current.shown_end, current.touched = content, shown_end, self._clock()
        self.edits += 1
        return True

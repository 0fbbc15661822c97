"""A ReplySink over paced message edits: how an answer streams into Discord.

The answer grows by editing one message. Edits of a message start DISCORD_EDIT_INTERVAL apart (default
1 s, a steady pace measured from when each edit was sent, so a slow response does not stretch the
next gap): each answer has its own thread, and Discord's per-channel limit for message edits is about
five per five seconds, so a 20-second answer costs about two dozen API calls.
When the text passes what a message holds, the full message is frozen and the answer continues in a
new one, cut by adapters.common.splitter (code blocks closed and reopened, never inside a character).
The last message gets the footer (`-# 1,234 tokens · $0.0012`) on its own line: every message keeps
room for it, so it never stands alone.

Until the first text arrives, the typing indicator is on (re-sent every 8 s; sending a message
ends it). If an edit fails for a while (Discord keeps answering 429 or 5xx past discord.py's retries),
the message loses its Stop button and the rest of the answer goes out as new messages, from where the
failed message's text ended.

Discord refusing for good (403 Forbidden: Missing Access, Missing Permissions; 404 Not Found: Unknown
Channel, the message deleted by a moderator) ends the answer where it stands: nothing more is posted
there, not even a sentence saying so, the log says it once (channel id and Discord's error code), and
`start`, `append` and `finish` raise bot.ports.SinkBroken, so the core stops asking the model and ends
the message failed. A new message Discord does not take this once (a 429 or 5xx past discord.py's retries)
ends the answer the same way, except that a sentence saying so is still tried (`fail`'s, or INCOMPLETE when
it was the last write): the next post may well go through. A failed edit has a fallback (below).

`start` waits for the thread of a mention to open, so a channel refused for good costs no model call;
after that all Discord calls run in one pump task per answer, so `append` never waits for Discord.

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

from adapters.common.delivery import INCOMPLETE, DeliveryFailure
from adapters.common.footer import DISCORD_FOOTER, render_footer
from adapters.common.recovery import OnOpen
from adapters.common.splitter import MarkdownSplitter, split_markdown
from adapters.discord.controls import STOP_PREFIX, feedback_view, stop_view
from adapters.discord.transport import Posted, Target, forbidden_or_not_found
from bot.chat.markdown import open_fence
from bot.domain import Footer
from bot.ports import Step

log = logging.getLogger(__name__)

TYPING_REFRESH_SECONDS = 8.0
MAX_RESTARTS = 5
SEND_ERRORS = (discord.HTTPException, aiohttp.ClientError, OSError, asyncio.TimeoutError)
FALLBACK_REASON = "Something went wrong while answering; please try again."
# Discord refuses a message over 2,000 characters.
LIMIT = 2000


@dataclass(slots=True)
class _Live:
    """The message the answer is currently growing in."""

    posted: Posted
    content: str
    shown: int  # how much of its message text (see DiscordSink._texts) it shows, without a closing fence
    touched: float  # when it was sent or its last edit was sent
    buttons: tuple[str, ...]  # the custom ids of the buttons it was last sent or edited with


class DiscordSink:
    def __init__(self, target: Target, *, interval: float, limit: int = LIMIT,
                 clock: Callable[[], float] = time.monotonic, answer_key: str = "",
                 on_open: OnOpen | None = None) -> None:
        """`on_open` is told where each new message of the answer lives ({"channel", "message", "controls"}:
        "controls" when it carries the Stop button), for crash recovery (adapters.common.recovery.ReplyTracker)."""
        self._target = target
        self._on_open = on_open
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
        self._broken = False  # nothing more can be sent: the pump ends
        self._sending = False  # a new message is on its way: cancelled there, it may or may not exist
        self._failure = DeliveryFailure(log)  # ... because Discord refused the answer, or did not take a message
        self._opened = False
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._typing: asyncio.Task[None] | None = None
        self._current: _Live | None = None
        self._splitter = MarkdownSplitter(limit, DISCORD_FOOTER.room)
        self._fed = 0  # characters of the answer given to the splitter
        self._texts = [""]  # each message's text as the splitter cut it
        self._first_open = 0  # index in _texts of the first message not yet frozen
        self._footer_given = False
        self.messages_sent = 0
        self.edits = 0

    # -- ReplySink ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the target (a mention's thread) and start the pump. Raises SinkBroken if Discord refused
        the channel for good, before the core asks the model."""
        await self._open()
        self._raise_if_lost()
        self._ensure_pump()

    async def status(self, text: str) -> None:
        return None  # the typing indicator (or the deferred "thinking…") says it; no API call

    async def step(self, step: Step) -> None:
        return None  # Discord has no task list; the typing indicator covers it, with no API call

    async def append(self, delta: str) -> None:
        """Queue `delta` for the pump. Raises SinkBroken once Discord refused the answer for good."""
        self._raise_if_lost()
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
        self._footer = render_footer(footer, DISCORD_FOOTER)
        self._closing.set()
        self._wake.set()
        try:
            await self._wait_for(self._ensure_pump())
        except asyncio.CancelledError:  # a shutdown: `fail` still gives the text its last edit, then the notice,
            self._closed = self._final = False  # unless a new message was on its way: sent again, it could show twice
            self._pump = None
            self._broken = self._broken or self._sending
            raise
        if self._failure.dropped_only:
            await self._say(INCOMPLETE)
        self._raise_if_lost()  # the last edit (or a short answer's only message) was refused

    async def fail(self, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        # Text already shown gets its last edit (all that was produced, fences closed, Stop gone) first.
        self._final = self._visible and not self._broken
        self._aborted = not self._final
        self._closing.set()
        self._wake.set()
        if self._final or self._pump is not None:
            await self._wait_for(self._ensure_pump())
        await self._open()
        if self._failure.for_good:  # Discord would refuse the sentence too; the log already says why
            return
        await self._say(reason or FALLBACK_REASON)

    async def _say(self, sentence: str) -> None:
        """`sentence` in messages of its own, never edited."""
        for content in split_markdown(sentence, self._limit):
            self._current = None
            if not await self._show(content, len(content), 0):
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
        if self._opened:
            return
        self._opened = True
        try:
            await self._target.open()
        except SEND_ERRORS as exc:  # Discord refused or could not be reached: expected, no traceback
            if forbidden_or_not_found(exc):
                self._lose("opening the answer's thread", exc)
                return
            log.warning("preparing the Discord target failed (%s: %s); posting where it can",
                        type(exc).__name__, exc)
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

    async def _pace(self) -> None:
        """Wait until the current message may be edited again; more text piles up meanwhile."""
        while self._current is not None and not self._aborted:
            delay = self._current.touched + self._interval - self._clock()
            if delay <= 0:
                return
            if self._final:
                await asyncio.sleep(delay)
                return
            # finish shortens the gap; asyncio.timeout, since wait_for would start a task every edit (Python 3.11)
            try:
                async with asyncio.timeout(delay):
                    await self._closing.wait()
            except TimeoutError:
                return

    async def _render(self, final: bool) -> None:
        for _ in range(MAX_RESTARTS):
            if await self._render_once(final) or self._broken:
                return

    async def _render_once(self, final: bool) -> bool:
        """Show the answer so far; False if an edit failed and the rest must be rendered again."""
        text = self.text
        parts = self._splitter.feed(text[self._fed:])
        self._fed = len(text)
        if final and not self._footer_given:
            self._footer_given = True
            tail = self._splitter.finish(self._footer or "")
            parts[-1] += tail[0]
            parts += tail[1:]
        self._texts[-1] += parts[0]
        self._texts += parts[1:]
        for index in range(self._first_open, len(self._texts)):
            last = index == len(self._texts) - 1
            body = self._texts[index]
            content = body if final or not last else body + self._splitter.closing()
            buttons = self._buttons(final) if last else self._buttons(None)
            if content.strip() and not await self._show(content, len(body), index, buttons):
                return False
            if not last:  # this message is full: freeze it, continue in a new one
                self._current = None
                self._first_open = index + 1
        return True

    def _buttons(self, final: bool | None) -> discord.ui.View | None:
        """The buttons of a message: Stop while it is edited (final False), feedback on the finished
        answer's last message (True), none on a message left behind (None). MISSING without a key."""
        if not self._answer_key:
            return MISSING
        if final is None:
            return None
        return feedback_view(self._answer_key) if final else stop_view(self._answer_key)

    async def _show(self, content: str, shown: int, index: int, buttons: discord.ui.View | None = MISSING) -> bool:
        current = self._current
        sent_at = self._clock()
        if current is None:
            self._sending = True
            try:
                posted = await self._target.send(content, view=buttons or None)
            except SEND_ERRORS as exc:
                self._sending = False
                if forbidden_or_not_found(exc):
                    self._lose("sending the answer", exc)
                else:  # not posted again: Discord may have taken it anyway, and twice is worse
                    self._failure.drop(f"Discord did not take a message in channel {self._target.channel_id}: "
                                       f"{type(exc).__name__} {exc}")
                self._broken = True
                return False
            self._sending = False
            self._current = _Live(posted, content, shown, sent_at, _custom_ids(buttons or None))
            self.messages_sent += 1
            if self._on_open is not None:
                await self._on_open({"channel": str(posted.channel_id), "message": str(posted.id),
                                     "controls": any(i.startswith(STOP_PREFIX) for i in self._current.buttons)})
            return True
        if current.content == content and (buttons is MISSING or current.buttons == _custom_ids(buttons)):
            current.shown = shown
            return True
        try:
            await current.posted.edit(content, view=buttons)
        except SEND_ERRORS as exc:
            if forbidden_or_not_found(exc):  # deleted by a moderator, or the bot may no longer post here
                self._lose(f"editing message {current.posted.id}", exc)
                return False
            log.info("editing message %s failed (%s); the rest of the answer goes to new messages",
                     current.posted.id, exc)
            await self._remove_stop(current.posted)
            self._continue_after(index, current.shown)
            return False
        current.content, current.shown, current.touched = content, shown, sent_at
        if buttons is not MISSING:
            current.buttons = _custom_ids(buttons)
        self.edits += 1
        return True

    async def _remove_stop(self, posted: Posted) -> None:
        """A message left behind keeps the Stop button its failed edit was to replace: remove it with one
        PATCH of only `components: []` (smaller than the edit that failed), tried once."""
        if not self._answer_key:
            return
        try:
            await posted.remove_components()
        except SEND_ERRORS as exc:
            log.info("removing the buttons of message %s failed too (%s)", posted.id, exc)

    def _lose(self, doing: str, exc: discord.HTTPException) -> None:
        """Discord refused the answer for good: the pump ends, nothing more is posted, the next call of the
        core raises SinkBroken, and the log says it here, once."""
        self._broken = True
        self._failure.refuse(f"Discord refused {doing} in channel {self._target.channel_id}: "
                             f"{exc.status} {exc.text[:200] or 'no message'} (error code {exc.code})")

    def _raise_if_lost(self) -> None:
        self._failure.raise_if_lost()

    def _continue_after(self, index: int, shown: int) -> None:
        """Message `index` can no longer change: it keeps the `shown` characters it has, and the rest
        of its text starts a new message (its code block, if one is open there, reopened)."""
        text = self._texts[index]
        fence = open_fence(text[:shown])
        reopen = fence.opener + "\n" if fence is not None and text[shown:].strip() else ""
        self._texts[index:index + 1] = [text[:shown], reopen + text[shown:]]
        self._current = None
        self._first_open = index + 1


def _custom_ids(view: discord.ui.View | None) -> tuple[str, ...]:
    """What a message's buttons are, to tell an edit that changes only them from one that changes nothing."""
    return tuple(str(getattr(item, "custom_id", "")) for item in view.children) if view is not None else ()

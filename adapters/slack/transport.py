"""One Slack message of an answer: streamed with chat.startStream/appendStream/stopStream where Slack
allows it, otherwise posted with chat.postMessage and edited with chat.update at most once per
interval. A stream that breaks mid-answer (expired, not in streaming state, any error) continues
as edits of the same message, from what was already shown. Nothing here raises: a Slack failure is
logged and the answer goes on as well as it can, so the core always gets to settle the call.

Slack refusing a call for good (REFUSED_FOR_GOOD: the bot may not post in the channel, the channel, the
thread or the message is gone, the token is dead) is different: the message records it as `refused` and
sends nothing more, with no fallback (a re-post or a new message would be refused too, or show the answer
twice), for the sink to end the answer (bot.ports.SinkBroken). Transient errors keep their fallbacks, except
a new message Slack does not take: it has no fallback left, so it is recorded as `dropped`, and the sink ends
the answer there too, with a sentence.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from adapters.common.recovery import OnOpen
from adapters.slack.controls import JSON, escape_mrkdwn, markdown_block, without_stop_button
from adapters.slack.errors import REFUSED_FOR_GOOD, STREAM_ENDED, STREAMING_UNAVAILABLE, error_code

log = logging.getLogger(__name__)

STREAMING_RECHECK_SECONDS = 600.0
STOP_ATTEMPTS = 5
# Paced writes of one message come at most every interval x (writes so far), up to this many intervals.
MAX_INTERVAL_STEPS = 4

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class StreamingSwitch:
    """Remembers, per process, that Slack said chat streaming is unavailable, so later answers go
    straight to chat.postMessage; it tries streaming again after a while."""

    def __init__(self, recheck_seconds: float = STREAMING_RECHECK_SECONDS, clock: Clock = time.monotonic) -> None:
        self._recheck = recheck_seconds
        self._clock = clock
        self._refused_at: float | None = None

    def available(self) -> bool:
        return self._refused_at is None or self._clock() - self._refused_at >= self._recheck

    def refused(self) -> None:
        self._refused_at = self._clock()


@dataclass(frozen=True, slots=True)
class Refused:
    """A Web API call Slack refused (for good, or only this once: AnswerMessage.refused, .dropped): the
    `method`, Slack's error `code`, and the `ts` of the message it was to change (None for a new one)."""

    method: str
    code: str
    ts: str | None = None


@dataclass(frozen=True, slots=True)
class Target:
    """Where an answer goes and whom it is for (chat.startStream needs the recipient in channels)."""

    channel: str
    thread_ts: str
    recipient_user_id: str
    recipient_team_id: str


async def remove_kept_stop_button(client: AsyncWebClient, channel: str, ts: str, message: object) -> None:
    """If `message` (a message object Slack returned: chat.stopStream's `message`, or the message read back) still
    shows the Stop button, edit it out: one chat.update giving the message's own blocks without it. Slack's pages
    do not say whether a stream's `blocks` chunks (the Stop button rides in one) outlive chat.stopStream, so this
    costs a call only where they do. A failure is logged; the button stays, and a click is told the answer ended."""
    kept = without_stop_button(message.get("blocks") if isinstance(message, dict) else None)
    if kept is None:
        return
    assert isinstance(message, dict)
    text = message.get("text")
    try:
        await client.chat_update(channel=channel, ts=ts, text=text if isinstance(text, str) else "", blocks=kept)
    except Exception as exc:  # noqa: BLE001 - only a button is left behind
        log.info("removing the Stop button Slack kept in message %s failed (%s)", ts, error_code(exc))


class AnswerMessage:
    """The text of one message: `shown` is on Slack, `pending` waits for the next write, `chunks`
    (task updates) ride with it. `opening` chunks go with chat.startStream only (the Stop button)."""

    def __init__(self, client: AsyncWebClient, target: Target, *, stream: bool, switch: StreamingSwitch,
                 interval: float, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep,
                 on_open: OnOpen | None = None, opening: tuple[JSON, ...] = ()) -> None:
        """`on_open` is told {"channel", "thread_ts", "ts", "streaming", "controls"} when the message opens
        ("controls": it opens with the Stop button)."""
        self._client = client
        self._on_open = on_open
        self._target = target
        self._want_stream = stream
        self._switch = switch
        self._interval = interval
        self._clock = clock
        self._sleep = sleep
        self.ts: str | None = None
        self.shown = ""
        self.pending = ""
        self.chunks: list[JSON] = []
        self._opening = opening
        # Where the message is posted and edited instead of streamed, the opening blocks (the Stop
        # button) sit under the text until the final write replaces them.
        self._controls = [block for chunk in opening if chunk.get("type") == "blocks" for block in chunk["blocks"]]
        self.carries_blocks = False
        self.streaming = False
        self.stream_failed = False  # a stream call failed: later messages of this answer should not try
        self.failed = False  # Slack refused the message itself; later text is dropped
        self.refused: Refused | None = None  # ... for good (REFUSED_FOR_GOOD): the answer cannot go on
        self.dropped: Refused | None = None  # ... this once (internal_error, ratelimited past the client's retries)
        self._stream_error = ""  # the code of the last stream call Slack did not take
        self.last_write = float("-inf")
        self.writes = 0

    def add(self, text: str) -> None:
        self.pending += text

    def add_chunk(self, chunk: JSON) -> None:
        self.chunks.append(chunk)

    @property
    def streams(self) -> bool:
        """Whether this message is, or may still become, a stream (so it can show task updates)."""
        return self.streaming or (self.ts is None and self._want_stream and self._switch.available())

    def due(self) -> bool:
        """Whether the next paced write may go: the gap grows by one interval per write already
        made (1 s, 2 s, 3 s, then every 4 s), so a long answer stays within a handful of calls."""
        gap = self._interval * min(max(self.writes, 1), MAX_INTERVAL_STEPS)
        return self._clock() - self.last_write >= gap

    async def open(self) -> None:
        """Start the message now, before any text, as a stream carrying only the opening chunks (the Stop
        button), where streaming is wanted and available and there is an opening; else do nothing (the
        first text starts it). A refusal for good is left in `refused`; any other failure falls back to
        posting the first text."""
        if self.ts is None and not self.failed and self._opening and self._want_stream and self._switch.available():
            await self._start_stream()

    async def flush(self, *, final: bool = False, blocks: list[JSON] | None = None) -> None:
        """Send what is pending. The caller paces non-final flushes; a final one ends the message
        (stops its stream), waiting out the edit interval if it must edit, with `blocks` under it."""
        if self.failed:
            return
        if self.ts is None:
            if not self.pending and not self.chunks:
                return
            if not final and self._want_stream and self._switch.available() and await self._start_stream():
                return
            if self.failed:  # refused for good: posting instead would be refused too
                return
            self.chunks.clear()  # task updates only live in streams
            if self.pending:
                await self._post(self.pending, blocks if final else self._controls)
            return
        if self.streaming:
            if await (self._stop_stream(blocks) if final else self._append()):
                return
            self.streaming = False
            if self.failed:
                return
            # A stream Slack ended itself (its timeout) is simply edited from here; any other is stopped first.
            if self._stream_error not in STREAM_ENDED:
                # Slack did not take the text: the message is stopped as it stands, then takes it by chat.update
                # (the whole text: a call Slack took despite its error shows nothing twice, no message is left
                # empty); too long (msg_too_long), the rest continues in a new message.
                stopped = await self._stop_as_is()
                if self.failed:
                    return
                if stopped is None or self._stream_error == "msg_too_long":
                    if stopped and self._opening:  # left for a new message, it is not edited again: check it now
                        assert self.ts is not None
                        await remove_kept_stop_button(self._client, self._target.channel, self.ts, stopped)
                    self.ts, self.shown = None, ""
                    self.chunks.clear()
                    if self.pending:  # a refused call that carried only task updates or buttons: nothing to post
                        await self._post(self.pending, blocks if final else self._controls)
                    return
            # The stream's opening chunks (the Stop button) are part of the message now: every edit from here
            # gives its blocks, so they are replaced.
            self.carries_blocks = bool(self._controls)
        self.chunks.clear()
        await self._edit(final, blocks if final else self._controls)

    # -- streaming --

    def _content(self, *extra: JSON) -> dict[str, Any]:
        """What a stream call adds: the pending text as markdown_text, or, with task updates or
        blocks to send, everything as chunks in order (text after the updates it follows)."""
        chunks = [*self.chunks, *extra]
        if not chunks:
            return {"markdown_text": self.pending} if self.pending else {}
        text = [{"type": "markdown_text", "text": self.pending}] if self.pending else []
        return {"chunks": chunks + text}

    async def _start_stream(self) -> bool:
        t = self._target
        try:
            response = await self._client.chat_startStream(
                channel=t.channel, thread_ts=t.thread_ts,
                recipient_user_id=t.recipient_user_id, recipient_team_id=t.recipient_team_id,
                **self._content(*self._opening),
            )
        except Exception as exc:  # noqa: BLE001 - any failure falls back to posting
            code = error_code(exc)
            self.stream_failed = True
            self._want_stream = False  # the first text is posted, not streamed (open() may have failed)
            # First: a code that says streaming is unavailable to the app (missing_scope among them) is
            # the fallback's to answer; chat.postMessage refuses for good if the channel refuses.
            if code in STREAMING_UNAVAILABLE:
                self._switch.refused()
            elif code in REFUSED_FOR_GOOD:
                self._refuse("chat.startStream", code)
                return False
            log.info("chat.startStream failed (%s); posting instead", code)
            return False
        self.ts = str(response["ts"])
        self.streaming = True
        self._sent()
        await self._opened()
        return True

    async def _append(self) -> bool:
        if not self.pending and not self.chunks:
            return True
        return await self._stream_call("chat.appendStream", self._client.chat_appendStream, **self._content()) \
            is not None

    async def _stop_stream(self, blocks: list[JSON] | None) -> bool:
        extra = self._content()
        if blocks:
            extra["blocks"] = blocks
        response = await self._stream_call("chat.stopStream", self._client.chat_stopStream, **extra)
        if response is None:
            return False
        self.streaming = False
        if self._opening:
            assert self.ts is not None
            await remove_kept_stop_button(self._client, self._target.channel, self.ts, response.get("message"))
        return True

    async def _stream_call(self, name: str, method: Callable[..., Awaitable[Any]], **kwargs: Any) -> Any | None:
        """Slack's response to a stream call on this message, or None if it did not take it."""
        assert self.ts is not None
        try:
            response = await method(channel=self._target.channel, ts=self.ts, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the message goes on as edits, or in a new message
            code = error_code(exc)
            if code in REFUSED_FOR_GOOD:
                self._refuse(name, code, self.ts)
                return None
            self._stream_error = code
            log.info("%s failed (%s); continuing %s", name, code,
                     "in a new message" if code == "msg_too_long" else "with chat.update")
            self.stream_failed = True
            return None
        self._sent()
        return response

    async def _stop_as_is(self) -> JSON | None:
        """chat.stopStream without new text, tried until Slack takes it (each try already waits out
        429s in the client), so no message is left streaming; gives up after STOP_ATTEMPTS. The message as
        Slack's response gives it ({} where Slack had ended the stream itself), or None if it gave up, or Slack
        refused for good."""
        assert self.ts is not None
        for attempt in range(1, STOP_ATTEMPTS + 1):
            try:
                stopped = await self._client.chat_stopStream(channel=self._target.channel, ts=self.ts)
            except Exception as exc:  # noqa: BLE001 - tried again after a pause
                code = error_code(exc)
                if code in STREAM_ENDED:
                    return {}
                if code in REFUSED_FOR_GOOD:
                    self._refuse("chat.stopStream", code, self.ts)
                    return None
                log.info("chat.stopStream without text failed (%s), attempt %d of %d", code, attempt,
                         STOP_ATTEMPTS)
                await self._sleep(self._interval * attempt)
                continue
            message = stopped.get("message")
            return message if isinstance(message, dict) else {}
        log.warning("chat.stopStream kept failing; message %s may show as streaming until Slack ends it",
                    self.ts)
        return None

    # -- posting and editing --

    async def _post(self, text: str, blocks: list[JSON] | None = None) -> None:
        """A new message holding `text` (all that is pending), with `blocks` under it."""
        t = self._target
        try:
            response = await self._client.chat_postMessage(channel=t.channel, thread_ts=t.thread_ts,
                                                           **self._text_and_blocks(text, blocks))
        except Exception as exc:  # noqa: BLE001 - nothing more can be shown in this thread
            code = error_code(exc)
            if code in REFUSED_FOR_GOOD:
                self._refuse("chat.postMessage", code)
                return
            # Not tried again: Slack may have posted it anyway (internal_error says so), and twice is worse. The
            # sink ends the answer with a sentence saying so (adapters.slack.sink), and logs it once.
            log.info("chat.postMessage to %s failed (%s)", t.channel, code)
            self.failed = True
            self.dropped = Refused("chat.postMessage", code)
            return
        self.ts = str(response["ts"])
        self._sent()
        await self._opened()

    async def _edit(self, final: bool, blocks: list[JSON] | None = None) -> None:
        # A final write with nothing new still replaces blocks that must go (the Stop button).
        if not self.pending and not blocks and not (final and self.carries_blocks):
            return
        wait = self._interval - (self._clock() - self.last_write)
        if wait > 0:
            if not final:
                return
            await self._sleep(wait)
        assert self.ts is not None
        try:
            await self._client.chat_update(channel=self._target.channel, ts=self.ts,
                                           **self._text_and_blocks(self.shown + self.pending, blocks))
        except Exception as exc:  # noqa: BLE001 - continue in a new message instead
            code = error_code(exc)
            if code in REFUSED_FOR_GOOD:  # deleted, or the channel refuses: a new message would repeat it
                self._refuse("chat.update", code, self.ts)
                return
            log.info("chat.update failed (%s); continuing in a new message", code)
            await self._drop_controls()
            self.ts, self.shown = None, ""
            if self.pending.strip():
                await self._post(self.pending, blocks)
            else:  # an edit that only replaced buttons leaves nothing to post
                self.pending = ""
            return
        self._sent()

    async def _drop_controls(self) -> None:
        """A message left behind keeps the Stop button its failed edit was to replace: one chat.update of the
        text it shows, without blocks under it, tried once (an edit smaller than the one that failed)."""
        if not self._controls or not self.shown.strip():
            return
        assert self.ts is not None
        try:
            await self._client.chat_update(channel=self._target.channel, ts=self.ts,
                                           **self._text_and_blocks(self.shown, []))
        except Exception as exc:  # noqa: BLE001 - the button stays; a click is told the answer finished
            log.info("removing the Stop button of message %s failed too (%s)", self.ts, error_code(exc))

    async def _opened(self) -> None:
        """Tell `on_open` where this message lives, for crash recovery."""
        if self._on_open is not None:
            t = self._target
            await self._on_open({"channel": t.channel, "thread_ts": t.thread_ts, "ts": self.ts,
                                 "streaming": self.streaming, "controls": bool(self._opening)})

    def _text_and_blocks(self, text: str, blocks: list[JSON] | None) -> dict[str, Any]:
        """chat.postMessage/chat.update content: markdown_text alone, or (since markdown_text excludes
        blocks) the text as a markdown block followed by `blocks`, with `text` as the notification.
        A message that carried blocks keeps the block form, so its old blocks are replaced."""
        if not blocks and not self.carries_blocks:
            return {"markdown_text": text}
        self.carries_blocks = True
        return {"text": escape_mrkdwn(text), "blocks": [markdown_block(text), *(blocks or [])]}

    def _refuse(self, method: str, code: str, ts: str | None = None) -> None:
        """Slack refused `method` for good: nothing more is sent for this message; the sink says why."""
        self.failed = True
        self.refused = Refused(method, code, ts)
        self.pending = ""
        self.chunks.clear()

    def _sent(self) -> None:
        self.shown += self.pending
        self.pending = ""
        self.chunks.clear()
        self.last_write = self._clock()
        self.writes += 1


"""The ReplySink for Slack: an answer streams into a thread, batched so a long answer costs a handful
of Web API calls, cut into several messages at Slack's limit without breaking a code block, with the
footer as its last line.

Pacing: the first text shows at once (chat.startStream, chat.postMessage where streaming is unavailable,
or chat.appendStream into a stream `start` opened), so the user sees the answer begin. After that,
pending text is written at most once per `interval`, the gap growing by one interval per write up to four
(writes at about 1 s, 3 s, 6 s, 10 s, 14 s ...), or sooner for a stream whose buffer has grown past
`big_chars`. So a 1,000-token answer streamed in a few seconds costs start + two appends + stop, and a
minute-long one about a dozen calls. Edits (chat.update) never come sooner than `interval` after the
previous write of the same message.

`status` shows the assistant pane's "thinking…" (assistant.threads.setStatus) in assistant threads
and nothing elsewhere; Slack clears the status itself when the answer's first message appears.

Steps become task_update chunks of the stream (a step before any text starts the stream, so the
user sees it at once); later ones ride in the paced appends. Where the message is not a stream, a
step in progress falls back to `status`. With an `answer_key`, the answer's first message opens with a
Stop button (a blocks chunk of the stream, or blocks under a posted message) and the finished answer
carries feedback buttons (adapters.slack.controls), all in calls made anyway. Outside the assistant pane,
`start` opens that stream at once, with the Stop button alone: it can be clicked while the model thinks,
and a channel that refuses the bot is known before the model is asked. (In the pane, the "thinking…"
status shows until the first text, as Slack clears it when a reply appears, and a status Slack refuses for
good is that refusal; a refusal met only at the first text, where streaming is unavailable, stops the
model's call then.)

Slack refusing the answer for good (adapters.slack.errors.REFUSED_FOR_GOOD: not_in_channel,
is_archived, message_not_found for a message deleted mid-stream, a revoked token, ...) ends it where it
stands: nothing more is posted in that channel, not even a sentence saying so, the log says it once
(WARNING, with the channel id and Slack's error code), and `start`, `step`, `append` and `finish` raise
bot.ports.SinkBroken, so the core stops asking the model and ends the message failed. A new message Slack
does not take this once (internal_error, ratelimited past the client's retries: the message's `dropped`)
ends the answer the same way, except that a sentence saying so is still posted (`fail`'s, or INCOMPLETE when
it was the last write), since the next post may well go through. Other Slack errors stay here: the answer
goes on as well as it can.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time

from slack_sdk.web.async_client import AsyncWebClient

from adapters.common.delivery import INCOMPLETE, DeliveryFailure
from adapters.common.footer import SLACK_FOOTER, render_footer
from adapters.common.recovery import OnOpen
from adapters.common.splitter import MarkdownSplitter
from adapters.slack.controls import feedback_blocks, stop_chunk
from adapters.slack.errors import REFUSED_FOR_GOOD, error_code
from adapters.slack.transport import AnswerMessage, Clock, Refused, Sleep, StreamingSwitch, Target
from bot.domain import Footer
from bot.ports import SinkBroken, Step

log = logging.getLogger(__name__)

FLUSH_INTERVAL_SECONDS = 1.0
BIG_BUFFER_CHARS = 4_000
# Slack takes at most 12,000 characters of `markdown_text` per message.
MESSAGE_LIMIT = 12_000


class SlackSink:
    def __init__(self, client: AsyncWebClient, target: Target, *, switch: StreamingSwitch | None = None,
                 assistant: bool = False, interval: float = FLUSH_INTERVAL_SECONDS,
                 big_chars: int = BIG_BUFFER_CHARS, limit: int = MESSAGE_LIMIT,
                 clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep, on_open: OnOpen | None = None,
                 answer_key: str = "") -> None:
        self._client = client
        self._on_open = on_open
        self._target = target
        self._switch = switch or StreamingSwitch()
        self._assistant = assistant
        self._interval = interval
        self._big = big_chars
        self._clock = clock
        self._sleep = sleep
        # The last message keeps room for the footer (notes about skipped files can make it long).
        self._footer_style = dataclasses.replace(SLACK_FOOTER, room=min(SLACK_FOOTER.room, limit // 4))
        self._splitter = MarkdownSplitter(limit, self._footer_style.room)
        self._answer_key = answer_key
        self.messages: list[AnswerMessage] = []
        self._current = self._new_message()
        self._status_shown = False
        # Slack refused the answer for good (nothing more is posted), or did not take a message (a sentence may go).
        self._failure = DeliveryFailure(log)

    # -- ReplySink --

    async def start(self) -> None:
        """Outside the assistant pane, open the answer's first message as a stream carrying its Stop
        button (see the module's docstring); else the message appears with the first text. Raises
        SinkBroken if Slack refuses it for good."""
        if not self._assistant:
            await self._current.open()
        self._check()

    async def status(self, text: str) -> None:
        """In the assistant pane, before the answer's first message, show `text` as the thread's status
        (assistant.threads.setStatus); elsewhere nothing. Raises SinkBroken if Slack refuses it for good (the
        channel gone, the token dead: the codes its page shares with REFUSED_FOR_GOOD), so in the pane too
        the model is not asked for an answer nobody could see; any other failure only loses the status."""
        if not self._assistant or self._current.ts is not None or self._failure.for_good:
            return
        try:
            await self._client.assistant_threads_setStatus(channel_id=self._target.channel,
                                                           thread_ts=self._target.thread_ts, status=text)
            self._status_shown = bool(text)
        except Exception as exc:  # noqa: BLE001 - a status is a nicety, unless Slack refuses the thread itself
            code = error_code(exc)
            # missing_scope is not the thread refused: an app may post (chat:write) without the status's scope.
            if code in REFUSED_FOR_GOOD and code != "missing_scope":
                self._refuse(Refused("assistant.threads.setStatus", code))
                self._failure.raise_if_lost()
            log.info("assistant.threads.setStatus failed (%s)", code)

    async def step(self, step: Step) -> None:
        """Show `step` (a task update of the stream, else the status). Raises SinkBroken if Slack refused
        the stream it started or rode in for good."""
        if self._failure.for_good:
            return
        message = self._current
        if not message.streams:
            if step.state == "in_progress":
                await self.status(step.title)
            return
        message.add_chunk({"type": "task_update", "id": step.id, "title": step.title, "status": step.state})
        # The first step starting after the opening shows at once; others ride with the next paced write.
        await self._pace(first=step.state == "in_progress" and message.writes <= 1)
        self._check()
        if not message.streaming and step.state == "in_progress":  # Slack refused to start the stream
            await self.status(step.title)

    async def append(self, delta: str) -> None:
        """Add `delta` to the answer. Raises SinkBroken once Slack refused the answer (or did not take a message)."""
        self._raise_if_lost()
        if not delta:
            return
        await self._take(self._splitter.feed(delta))
        await self._pace(first=True)
        self._check()

    async def finish(self, footer: Footer) -> None:
        """End the answer with `footer`. Raises SinkBroken if Slack refused it for good (its last write
        among others: a short answer's only one), or did not take one of its messages; then INCOMPLETE is
        posted first, if Slack takes that."""
        self._raise_if_lost()
        await self._take(self._splitter.finish(render_footer(footer, self._footer_style)))
        await self._current.flush(final=True, blocks=feedback_blocks(self._answer_key) if self._answer_key else None)
        self._lose()
        if self._failure.dropped_only:
            await self._notify(INCOMPLETE)
        await self._clear_status()
        self._check()

    async def fail(self, reason: str) -> None:
        """End the answer with `reason` in a message of its own (or as the only text of a message that shows
        none yet: the stream `start` opened, even one stopped since); after a refusal for good, post nothing."""
        current = self._current
        # One message, not one showing nothing (white space, its Stop button) above the sentence.
        blank = (current.ts is not None and not current.failed and not current.shown.strip()
                 and not current.pending.strip())
        if not self._failure.for_good and not blank and (current.ts is not None or current.pending):
            closing = self._splitter.finish()
            await self._take(closing)
            await self._current.flush(final=True)
        self._lose()
        if self._failure.for_good:  # Slack would refuse the sentence too; the log says why
            await self._clear_status()
            return
        await self._notify(reason, current if blank else None)
        await self._clear_status()

    # -- internals --

    async def _notify(self, sentence: str, message: AnswerMessage | None = None) -> None:
        """Post `sentence` as the answer's last message (or as the text of `message`, one that shows nothing
        yet); a sentence Slack refuses or does not take is logged like an answer (it never raises)."""
        notice = message or self._new_message(stream=False)
        notice.add(sentence)
        after_a_drop = self._failure.dropped_only
        await notice.flush(final=True)
        self._lose()  # the sentence's own failure, if it is the answer's first, is logged there
        if notice.dropped is not None and after_a_drop:
            log.info("Slack did not take the sentence saying so either (%s)", notice.dropped.code)

    def _new_message(self, *, stream: bool | None = None) -> AnswerMessage:
        if stream is None:
            stream = not any(m.stream_failed for m in self.messages)
        # Only the answer's first message gets the Stop button: one control per answer.
        opening = (stop_chunk(self._answer_key),) if self._answer_key and not self.messages else ()
        message = AnswerMessage(self._client, self._target, stream=stream, switch=self._switch,
                                interval=self._interval, clock=self._clock, sleep=self._sleep,
                                on_open=self._on_open, opening=opening)
        self.messages.append(message)
        self._current = message
        return message

    async def _take(self, parts: list[str]) -> None:
        """parts[0] continues the current message; each further part starts a new one (none once Slack
        refused the answer for good)."""
        self._current.add(parts[0])
        for part in parts[1:]:
            await self._current.flush(final=True)
            if self._current.failed:
                return
            self._new_message().add(part)

    def _refused(self) -> Refused | None:
        """What Slack refused for good in this answer, if it did."""
        return next((m.refused for m in self.messages if m.refused is not None), None)

    def _lose(self) -> None:
        """Turn a refusal the messages recorded into the answer's SinkBroken (logged once); else a message
        Slack did not take into the answer's end (logged once too)."""
        refused = self._refused()
        if refused is not None:
            self._refuse(refused)
            return
        dropped = next((m.dropped for m in self.messages if m.dropped is not None), None)
        if dropped is not None:
            self._failure.drop(f"Slack did not take {dropped.method} in channel {self._target.channel} "
                               f"({dropped.code})")

    def _refuse(self, refused: Refused) -> None:
        """Keep `refused` as the answer's SinkBroken (the first one only), worded with the channel."""
        of = f" of message {refused.ts}" if refused.ts else ""
        self._failure.refuse(f"Slack refused {refused.method}{of} in channel {self._target.channel}: {refused.code}")

    def _check(self) -> None:
        """Raises SinkBroken if Slack refused the answer for good, or did not take one of its messages."""
        self._lose()
        self._raise_if_lost()

    def _raise_if_lost(self) -> None:
        self._failure.raise_if_lost()

    async def _pace(self, *, first: bool = False) -> None:
        """Flush the current message if its next write is due. `first`: what is pending should show at once
        if the message shows no text yet (a stream opened with the Stop button alone); the opening still
        counts as a write for the pace after that."""
        message = self._current
        if not message.pending and not message.chunks:
            return
        if message.ts is None or (first and not message.shown) or message.due() \
                or (message.streaming and len(message.pending) >= self._big):
            await message.flush()

    async def _clear_status(self) -> None:
        """Slack clears the status when a reply appears; if none could be posted, clear it here."""
        if self._status_shown and all(m.ts is None for m in self.messages):
            with contextlib.suppress(SinkBroken):  # the answer has ended; a refused clearing is only logged
                await self.status("")

"""The answer supervisor: one contract around every answer, on every surface (Slack, Discord, the
terminal, reviews, which run inside the same call).

Whatever escapes the answer (a bug, a database error, a cancelled task at shutdown), the message
ends in a final, truthful state: the platform message that was opened is finished (the sink's `fail`
stops a stream and makes the last edit, then says one plain sentence), every reservation still open
is settled by the cost rule (bot.budget.cost_rule) or released if its request was never sent, the user's
message gets a final status, and the traceback is logged once with the message's id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from adapters.common.recovery import INTERRUPTED_NOTICE, ReplyTracker
from bot.chat.controls import StopSwitch
from bot.chat.inflight import InFlight, close_abandoned
from bot.chat.service import Answer, ChatService
from bot.chat.streamed import described
from bot.domain import Footer, Incoming
from bot.ops.logs import answer_context
from bot.ports import ReplySink, Step

log = logging.getLogger(__name__)

FAILED_SENTENCE = "Something went wrong on my side while answering. Please ask again."

Prepare = Callable[[Incoming], Awaitable[Incoming | None]]


class WatchedSink:
    """Passes every call on to `sink` and remembers whether the answer was closed (`finish` or `fail`
    returned), so the supervisor closes it exactly once."""

    def __init__(self, sink: ReplySink) -> None:
        self._sink = sink
        self.closed = False

    async def start(self) -> None:
        await self._sink.start()

    async def status(self, text: str) -> None:
        await self._sink.status(text)

    async def step(self, step: Step) -> None:
        await self._sink.step(step)

    async def append(self, delta: str) -> None:
        await self._sink.append(delta)

    async def finish(self, footer: Footer) -> None:
        await self._sink.finish(footer)
        self.closed = True

    async def fail(self, reason: str) -> None:
        await self._sink.fail(reason)
        self.closed = True


class AnswerSupervisor:
    """Runs `ChatService.handle` under the failure contract. One per process (or per adapter)."""

    def __init__(self, service: ChatService) -> None:
        self._service = service

    async def answer(self, incoming: Incoming, sink: ReplySink, *, prepare: Prepare | None = None,
                     tracker: ReplyTracker | None = None, stop: StopSwitch | None = None) -> Answer | None:
        """Answer `incoming` into `sink`; returns what `ChatService.handle` returns (None for a message
        seen before), or an Answer with status "failed" (or "interrupted") if something escaped.

        `prepare` completes the message before the core sees it (user name, attachments) inside the
        same contract; it returns None when the message needs no answer after all. CancelledError (a
        shutdown past its grace) is closed with the interruption notice and raised again. `tracker`
        (the sink's on_open) stores where the reply lives once the message is claimed; `stop` is the
        answer's stop switch (bot.chat.controls), passed to the core."""
        with answer_context(incoming):  # the traceback line, too, carries the message's ids
            return await self._answer(incoming, sink, prepare, tracker, stop)

    async def _answer(self, incoming: Incoming, sink: ReplySink, prepare: Prepare | None,
                      tracker: ReplyTracker | None, stop: StopSwitch | None) -> Answer | None:
        watched = WatchedSink(sink)
        inflight = InFlight()
        if tracker is not None:
            tracker.inflight = inflight
        try:
            if prepare is not None:
                prepared = await prepare(incoming)
                if prepared is None:
                    return None
                incoming = prepared
            return await self._service.handle(incoming, watched, inflight, stop=stop)
        except asyncio.CancelledError:
            log.warning("answer to message %s interrupted by shutdown", incoming.dedup_key)
            await asyncio.shield(self._close(incoming, watched, inflight, "interrupted", INTERRUPTED_NOTICE,
                                             "the process stopped before the answer finished"))
            raise
        except Exception as exc:  # noqa: BLE001 - the contract: whatever escapes, the message ends truthfully
            log.exception("answering message %s failed", incoming.dedup_key)
            await self._close(incoming, watched, inflight, "failed", FAILED_SENTENCE, described(exc))
            return Answer("failed", reason=FAILED_SENTENCE)

    async def _close(self, incoming: Incoming, sink: WatchedSink, inflight: InFlight, status: str, sentence: str,
                     error: str) -> None:
        service = self._service
        await close_abandoned(inflight, budget=service.budget, store=service.store, prices=service.prices,
                              model=service.llm.model, status=status, error=error[:500])
        if inflight.message_pk is not None:
            service.metrics.messages.labels(incoming.platform.value, status).inc()
        if sink.closed:
            return
        try:
            await sink.fail(sentence)
        except Exception:  # noqa: BLE001 - the platform itself is failing; the books are already closed
            log.warning("could not tell the user that the answer failed", exc_info=True)

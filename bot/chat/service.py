"""ChatService: the one path every message takes, whatever platform it came from.

classify (a diff to review? from the message alone) -> dedup, thread, prompt window and reservation in one
transaction (bot.chat.planning) -> stream -> settle. See DESIGN.md, whose steps 2-6 this runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.engine import Connection

from bot.budget.cost_rule import Basis, call_charge, stopped_call_charge
from bot.budget.outcomes import Denial, Grant, Remaining, Settlement
from bot.budget.pricing import PriceBook
from bot.budget.reservations import BudgetManager
from bot.chat.controls import StopSwitch, until_stopped
from bot.chat.guarded_sink import GuardedSink
from bot.chat.inflight import InFlight, OpenCall
from bot.chat.notices import degrade_notes, denial_text
from bot.chat.planning import Planned, plan_answer
from bot.chat.prompt import SYSTEM_PROMPT, UserTurn, build_messages, build_user_turn, parse_options
from bot.chat.redaction import StreamRedactor, mask_incoming_async
from bot.chat.start_gate import STARTS_AT_ONCE, StartGate
from bot.chat.streamed import NOT_POSTED, StreamedCall, cut_reason, described, failure_sentence
from bot.chat.tokens import estimate_message_tokens
from bot.config import Settings
from bot.domain import Footer, Incoming, Usage
from bot.llm import (
    ChatRequest,
    ContentDelta,
    Finish,
    ReasoningDelta,
    SeedClient,
    SeedError,
    UsageRejected,
    UsageReport,
)
from bot.ops.logs import answer_context
from bot.ops.metrics import Metrics
from bot.ports import ReplySink, Step
from bot.storage.conversations import Claimed, ConversationStore

log = logging.getLogger(__name__)

# Tokenising a few thousand characters takes a fraction of a millisecond; past that, a thread hop is cheaper
# than holding up every other answer and acknowledgement on the loop.
OFF_LOOP_CHARS = 4_000

EMPTY_REPLY = "Ask me a code question, paste a diff to review, or attach a file. Add `--web` to search the web."


@dataclass(slots=True)
class Answer:
    """What became of one message, for callers that want more than the sink saw (the CLI)."""

    status: str
    text: str = ""
    usage: Usage = field(default_factory=Usage)
    cost_nanos: int = 0
    reason: str = ""


class BudgetWatcher(Protocol):
    async def after_charge(self, incoming: Incoming, remaining: Remaining) -> None: ...

    async def after_denial(self, incoming: Incoming, denial: Denial, channel_scope: str) -> None: ...


class Reviewer(Protocol):
    def wanted(self, incoming: Incoming) -> object | None:
        """What the message asks to have reviewed (the reviewer's own value), or None: a question."""

    async def review(self, wanted: Any, incoming: Incoming, claimed: Claimed, turn: UserTurn,
                     sink: GuardedSink, inflight: InFlight) -> Answer: ...


class ChatService:
    def __init__(self, *, settings: Settings, llm: SeedClient, budget: BudgetManager, store: ConversationStore,
                 prices: PriceBook, metrics: Metrics | None = None, reviewer: Reviewer | None = None,
                 budget_watcher: BudgetWatcher | None = None, clock: Callable[[], float] = time.monotonic,
                 starts_at_once: int = STARTS_AT_ONCE) -> None:
        self.settings = settings
        self.llm = llm
        self.budget = budget
        self.store = store
        self.prices = prices
        self.metrics = metrics or Metrics()
        self.reviewer = reviewer
        self.budget_watcher = budget_watcher
        self._clock = clock
        self._system_tokens = estimate_message_tokens(SYSTEM_PROMPT)
        self._starts = StartGate(starts_at_once)

    async def handle(self, incoming: Incoming, sink: ReplySink, inflight: InFlight | None = None, *,
                     stop: StopSwitch | None = None) -> Answer | None:
        """Answer one message into `sink`. Returns None for a message seen before (no reply at all).

        `inflight` (from the answer supervisor) is kept up to date with the message and the calls
        this answer holds open, so whoever ends it early can settle them. A `stop` switch thrown while
        the model streams ends the answer there (see bot.chat.controls). Every line logged meanwhile
        carries the message's ids (bot/ops/logs.py)."""
        with answer_context(incoming):
            async with self._starts.starting() as started:
                answer = await self._handle(incoming, sink, started,
                                            inflight if inflight is not None else InFlight(), stop)
            if answer is not None:
                log.info("message finished: %s", answer.status)
            return answer

    async def _handle(self, incoming: Incoming, platform_sink: ReplySink, started: Callable[[], None],
                      inflight: InFlight, stop: StopSwitch | None) -> Answer | None:
        incoming = incoming.cleaned()
        sink = GuardedSink(platform_sink)
        secrets_masked = 0
        if self.settings.redact_input:
            incoming, secrets_masked = await mask_incoming_async(incoming)
        options = parse_options(incoming.text)
        text = f"{options.text}\n\n({incoming.context})" if incoming.context else options.text
        turn = build_user_turn(text, incoming.attachments, max_image_bytes=self.settings.max_image_bytes)
        turn.secrets_masked = secrets_masked
        turn_tokens = await _estimate(turn.token_estimate, len(turn.text))
        empty = not turn.text.strip() and not turn.images
        wanted = None if empty or self.reviewer is None else self.reviewer.wanted(incoming)
        planned: Planned | None = None
        if empty or wanted is not None:
            claimed = await self.store.claim(incoming, turn.text, turn_tokens)
        else:  # a question: the message claimed and its call reserved in one transaction
            books = self.budget.scope_locks(self.store.channel_scope_of(incoming.thread), incoming.user_id)
            both = await self.budget.reserving(lambda: self.store.claim_then(
                incoming, turn.text, turn_tokens, lambda connection, claimed: plan_answer(
                    connection, claimed, incoming, options, turn_tokens + self._system_tokens, self.settings,
                    self.budget), first=books))
            claimed, planned = both if both is not None else (None, None)
        platform = incoming.platform.value
        if claimed is None:
            self.metrics.messages.labels(platform, "duplicate").inc()
            log.debug("duplicate message %s ignored", incoming.dedup_key)
            return None
        inflight.message_pk = claimed.message_pk
        if planned is not None and isinstance(planned.granted, Grant):
            self.budget.hold(planned.granted)
        if empty:
            notice = await self._notice(claimed, sink, "empty", " ".join([EMPTY_REPLY, *turn.notes]))
            self.metrics.messages.labels(platform, notice.status).inc()
            return notice
        if wanted is not None:
            assert self.reviewer is not None
            if stop is not None:
                stop.stoppable = False  # a review's concurrent calls are not cancelled (yet)
            reviewed = await self.reviewer.review(wanted, incoming, claimed, turn, sink, inflight)
            self.metrics.messages.labels(platform, f"review_{reviewed.status}").inc()
            if self.budget_watcher is not None and reviewed.cost_nanos:
                remaining = await self.budget.remaining(claimed.channel.scope_key)
                await self._watch(self.budget_watcher.after_charge(incoming, remaining))
            return reviewed
        assert planned is not None
        answer = await self._answer(incoming, claimed, turn, planned, sink, inflight, started, stop=stop)
        self.metrics.messages.labels(platform, answer.status).inc()
        return answer

    async def _notice(self, claimed: Claimed, sink: ReplySink, status: str, text: str) -> Answer:
        await self.store.mark_user_message(claimed.message_pk, status)
        await sink.fail(text)
        return Answer(status, reason=text)

    async def _answer(self, incoming: Incoming, claimed: Claimed, turn: UserTurn, planned: Planned,
                      sink: GuardedSink, inflight: InFlight, started: Callable[[], None], *,
                      stop: StopSwitch | None) -> Answer:
        if planned.too_long is not None:
            return await self._notice(claimed, sink, "too_long", planned.too_long)
        granted, window, prompt_estimate = planned.granted, planned.window, planned.prompt_estimate
        assert granted is not None and window is not None
        if isinstance(granted, Denial):
            text = denial_text(granted, incoming.platform, self.settings)
            refused = await self._notice(claimed, sink, "refused", text)
            await self._watch(self.budget_watcher and self.budget_watcher.after_denial(
                incoming, granted, claimed.channel.scope_key))
            return refused
        opened = inflight.open(granted, prompt_estimate)
        effort = (incoming.reasoning_effort or claimed.channel.reasoning_effort
                  or self.settings.default_reasoning_effort)
        request = ChatRequest(
            messages=build_messages(SYSTEM_PROMPT, window, turn), max_tokens=granted.max_tokens,
            enable_thinking=granted.thinking, reasoning_effort=effort,  # type: ignore[arg-type]
            enable_web_search=granted.web_search, enable_caching=bool(claimed.history),
        )
        await sink.start()
        await sink.status("searching the web…" if granted.web_search else "thinking…")
        files = sum(1 for a in incoming.attachments if a.data)
        if files:
            await sink.step(Step("files", f"Reading {files} attached file{'s' if files > 1 else ''}", "complete"))
        if sink.lost is None:
            call = await self._stream(request, sink, opened, started, stop, web_search=granted.web_search)
        else:  # the platform refused the answer before the model was asked: no request, nothing to pay
            call = StreamedCall(parts=opened.parts, started=self._clock(), lost=sink.lost)
        notes = list(turn.notes)
        if window.dropped:
            notes.append(f"{window.dropped} earlier messages left out of the context")
        notes += degrade_notes(granted, web_search=planned.web_search, thinking=not planned.fast)
        answer, remaining = await self._settle(claimed, granted, call, sink, notes=notes, floor_pk=window.floor_pk,
                                               prompt_estimate=prompt_estimate, secrets_masked=turn.secrets_masked,
                                               reserved_prompt=planned.reserved_prompt,
                                               web_search=granted.web_search)
        inflight.settled(granted)
        await self._watch(self.budget_watcher and self.budget_watcher.after_charge(incoming, remaining))
        return answer

    @staticmethod
    async def _watch(watching: Awaitable[None] | None) -> None:
        """Budget alerts must never cost the user their answer."""
        if watching is None:
            return
        try:
            await watching
        except Exception:  # noqa: BLE001
            log.exception("budget alert check failed")

    async def _stream(self, request: ChatRequest, sink: GuardedSink, opened: OpenCall, started: Callable[[], None],
                      stop: StopSwitch | None = None, *, web_search: bool = False) -> StreamedCall:
        """Stream the answer into the sink, secrets masked (`call.masked_parts`, which is also what is stored:
        masking is deterministic, so every later turn's prompt repeats the stored text byte for byte). Once the
        platform refuses the answer for good (`sink.lost`), the model's stream is closed at once: nobody would
        read the rest."""
        call = StreamedCall(parts=opened.parts, started=self._clock())
        redactor = StreamRedactor()
        searching = Step("web", "Searching the web") if web_search else None
        if searching is not None:
            await sink.step(searching)
        events = self.llm.stream(request)
        if stop is not None:
            events = until_stopped(events, stop, on_cut=call.stopped_by)
        opened.sent = call.sent = True
        try:
            # aclosing: a break closes the model's stream now (its connection), not when it is collected.
            async with contextlib.aclosing(events):  # type: ignore[type-var]
                async for event in events:
                    started()
                    self._take(event, call)
                    if isinstance(event, ContentDelta):
                        if searching is not None:
                            # Seed searches before it writes: the first text means the search is over.
                            await sink.step(Step(searching.id, searching.title, "complete"))
                            searching = None
                        if shown := redactor.feed(event.text):
                            call.masked_parts.append(shown)
                            await sink.append(shown)
                    if sink.lost is not None:
                        break
        except SeedError as exc:
            call.error = exc
        if searching is not None:
            await sink.step(Step(searching.id, searching.title, "error" if call.error else "complete"))
        if rest := redactor.flush():
            call.masked_parts.append(rest)
            if sink.lost is None:
                await sink.append(rest)
        call.lost = sink.lost
        return call

    def _take(self, event: object, call: StreamedCall) -> None:
        """Note one stream event in `call`."""
        match event:
            case ContentDelta(text):
                self._first_token(call)
                call.parts.append(text)
            case ReasoningDelta(text):
                call.reasoning.append(text)
                self._first_token(call)
            case UsageReport(usage):
                call.usage = usage
            case UsageRejected(reason):
                call.usage, call.usage_problem = None, f"usage invalid: {reason}"
            case Finish(reason):
                call.finish = reason

    def _first_token(self, call: StreamedCall) -> None:
        if call.first_token is None:
            call.first_token = self._clock()
            self.metrics.first_token.observe(call.first_token - call.started)

    async def _settle(self, claimed: Claimed, grant: Grant, call: StreamedCall, sink: GuardedSink, *,
                      notes: list[str], floor_pk: int, prompt_estimate: int, reserved_prompt: int, web_search: bool,
                      secrets_masked: int = 0) -> tuple[Answer, Remaining]:
        streamed = call.first_token is not None
        usage = call.usage or Usage()
        if call.stopper is not None:
            charge = stopped_call_charge(self.prices, prompt_estimate_tokens=reserved_prompt,
                                         produced_text=call.text + "".join(call.reasoning),
                                         reserved_nanos=grant.amount_nanos, usage=call.usage, web_search=web_search)
        else:
            # The provider bills no call never sent, nor one that failed before answering: released.
            charge = call_charge(self.prices, call.usage, reserved_nanos=grant.amount_nanos,
                                 request_sent=call.sent and (call.error is None or streamed))
        cost = charge.cost_nanos
        if call.stopper is not None:
            status = "stopped"
            notes.append(f"stopped by @{call.stopper.name}")
            if charge.note:
                notes.append(charge.note)
        elif call.lost is not None or (call.error is not None and not streamed):
            status = "failed"
        else:
            status = "ok"
            if charge.basis is Basis.RESERVED:
                log.warning("call with reservation %d charged its reserved amount: %s", grant.reservation_id,
                            call.usage_problem)
            if call.error is not None:
                status = "cut"
                notes.append("the answer was cut off: " + cut_reason(call.error))
            elif call.finish == "content_filter":
                status = "filtered"
                notes.append("stopped by the model's content filter")
            elif call.finish == "length":
                notes.append(f"stopped at the length limit ({grant.max_tokens:,} tokens)")
        if cost > grant.amount_nanos:
            self.metrics.overrun.inc(cost - grant.amount_nanos)
            log.warning("call cost %d nanos, above its reservation of %d", cost, grant.amount_nanos)
        # An answer of only white space shows nothing: it ends like an empty one, with a sentence.
        answer_text = call.masked_text if call.masked_text.strip() else ""
        if not answer_text and status == "ok":  # the ledger and the message say what the person saw
            status = "empty_answer"
        # Counted before the transaction: the SQLite writer thread serves every answer in turn.
        answer_tokens = await _estimate(lambda: estimate_message_tokens(answer_text), len(answer_text))
        error_text = call.failure
        if status == "empty_answer" and call.finish == "length" and error_text is None:
            error_text = f"the length limit ({grant.max_tokens:,} tokens) was reached before any answer text"
        if charge.basis is Basis.RESERVED and error_text is None:
            error_text = call.usage_problem
        now = self._clock()

        def record(connection: Connection) -> None:
            ConversationStore.record_answer(
                connection, claimed=claimed, answer=answer_text, answer_tokens=answer_tokens,
                status=status if answer_text else ("failed" if status in ("failed", "cut") else status),
                floor_pk=floor_pk, prompt_estimate=prompt_estimate,
                prompt_actual=call.usage.prompt_tokens if call.usage else None,
            )

        remaining: Remaining = await self.budget.settle(grant, Settlement(
            status=status, cost_nanos=cost, model=self.llm.model, prompt_tokens=usage.prompt_tokens,
            cached_tokens=usage.cached_tokens, completion_tokens=usage.completion_tokens,
            reasoning_tokens=usage.reasoning_tokens, web_searches=usage.web_searches,
            usage_known=call.usage is not None, error=error_text,
            first_token_ms=_ms(call.first_token - call.started) if call.first_token else None,
            duration_ms=_ms(now - call.started),
        ), also=record)
        self._count(usage, cost, claimed.channel.platform)
        if not answer_text or call.lost is not None:
            reason = f"Stopped by @{call.stopper.name} before any answer was written." if call.stopper \
                else failure_sentence(call)
            await sink.fail(reason)  # a lost sink only closes: it posts nothing where it was refused
            failed = Answer(status, answer_text, usage, cost, reason=reason)
            return failed, remaining
        footer = Footer(usage=usage, cost_nanos=cost, budget_left_fraction=remaining.fraction,
                        budget_left_nanos=remaining.left_nanos, notes=tuple(notes),
                        usage_known=charge.basis is not Basis.RESERVED,
                        secrets_masked=secrets_masked)
        await sink.finish(footer)
        if sink.lost is not None:  # the platform refused the last post (a short answer's only one, the final edit)
            await self._restate(claimed, grant, "; ".join(filter(None, [described(sink.lost), error_text])))
            return Answer("failed", answer_text, usage, cost, reason=NOT_POSTED), remaining
        return Answer(status, answer_text, usage, cost), remaining

    async def _restate(self, claimed: Claimed, grant: Grant, error: str) -> None:
        """Mark a settled answer failed after all: its ledger row (the money stays as booked, the cost rule
        having priced it already) and the turn's messages, in one transaction."""
        await self.budget.restate([(grant, error)], status="failed",
                                  also=lambda connection: ConversationStore.restate_turn(connection, claimed, "failed"))

    def _count(self, usage: Usage, cost: int, platform: str) -> None:
        self.metrics.cost.labels(platform).inc(cost)
        for kind in ("prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens"):
            self.metrics.tokens.labels(kind.removesuffix("_tokens")).inc(getattr(usage, kind))


async def _estimate(count: Callable[[], int], chars: int) -> int:
    """A token estimate (tokens) of a text of `chars` characters; a long one (a pasted file, a long answer)
    is counted in a worker thread, where tiktoken runs beside the event loop instead of stalling it."""
    if chars < OFF_LOOP_CHARS:
        return count()
    return await asyncio.to_thread(count)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)

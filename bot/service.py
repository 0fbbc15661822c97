"""ChatService: the one path every message takes, whatever platform it came from.

dedup -> thread -> classify -> prompt -> reserve -> stream -> settle. See DESIGN.md.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.orm import Session

from bot.budget import BudgetManager, Denial, Grant, Remaining, Settlement
from bot.config import Settings
from bot.domain import Footer, Incoming, Usage
from bot.llm import (
    ChatRequest,
    ContentDelta,
    Finish,
    ReasoningDelta,
    SeedClient,
    SeedContentFiltered,
    SeedError,
    SeedStreamBroken,
    UsageReport,
)
from bot.logs import answer_context
from bot.metrics import Metrics
from bot.ports import ReplySink
from bot.pricing import PriceBook
from bot.prompt import SYSTEM_PROMPT, UserTurn, build_messages, build_user_turn, choose_window, parse_options
from bot.redact import StreamRedactor
from bot.replies import denial_text, too_long_text
from bot.store import Claimed, ConversationStore
from bot.tokens import estimate_message_tokens

log = logging.getLogger(__name__)

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
    async def maybe_review(self, incoming: Incoming, claimed: Claimed, turn: UserTurn,
                           sink: ReplySink) -> Answer | None: ...


class GuardedSink:
    """Shields the core from a failing platform: a sink error is logged and never interrupts the
    accounting of a call that is already paid for. After an append fails, later appends are skipped
    (the platform is not hammered); finish and fail are still tried, since they may recover."""

    def __init__(self, sink: ReplySink) -> None:
        self._sink = sink
        self.broken = False

    async def start(self) -> None:
        await self._call("start", self._sink.start())

    async def status(self, text: str) -> None:
        await self._call("status", self._sink.status(text))

    async def append(self, delta: str) -> None:
        if not self.broken:
            self.broken = not await self._call("append", self._sink.append(delta))

    async def finish(self, footer: Footer) -> None:
        await self._call("finish", self._sink.finish(footer))

    async def fail(self, reason: str) -> None:
        await self._call("fail", self._sink.fail(reason))

    @staticmethod
    async def _call(what: str, call: Awaitable[None]) -> bool:
        try:
            await call
        except Exception:  # noqa: BLE001 - any platform failure; the books come first
            log.exception("reply sink %s failed", what)
            return False
        return True


@dataclass(slots=True)
class _Call:
    """The state of one streamed model call."""

    parts: list[str] = field(default_factory=list)
    usage: Usage | None = None
    finish: str = ""
    error: SeedError | None = None
    started: float = 0.0
    first_token: float | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)


class ChatService:
    def __init__(self, *, settings: Settings, llm: SeedClient, budget: BudgetManager, store: ConversationStore,
                 prices: PriceBook, metrics: Metrics | None = None, reviewer: Reviewer | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.llm = llm
        self.budget = budget
        self.store = store
        self.prices = prices
        self.metrics = metrics or Metrics()
        self.reviewer = reviewer
        self.budget_watcher: BudgetWatcher | None = None
        self._clock = clock
        self._system_tokens = estimate_message_tokens(SYSTEM_PROMPT)

    async def handle(self, incoming: Incoming, sink: ReplySink) -> Answer | None:
        """Answer one message into `sink`. Returns None for a message seen before (no reply at all).
        Every line logged meanwhile carries the message's ids (bot/logs.py)."""
        with answer_context(incoming):
            answer = await self._handle(incoming, sink)
            if answer is not None:
                log.info("message finished: %s", answer.status)
            return answer

    async def _handle(self, incoming: Incoming, sink: ReplySink) -> Answer | None:
        sink = GuardedSink(sink)
        options = parse_options(incoming.text)
        turn = build_user_turn(options.text, incoming.attachments, max_image_bytes=self.settings.max_image_bytes)
        claimed = await self.store.claim(incoming, turn.text, turn.token_estimate())
        platform = incoming.platform.value
        if claimed is None:
            self.metrics.messages.labels(platform, "duplicate").inc()
            log.debug("duplicate message %s ignored", incoming.dedup_key)
            return None
        if not turn.text.strip() and not turn.images:
            empty = await self._notice(claimed, sink, "empty", " ".join([EMPTY_REPLY, *turn.notes]))
            self.metrics.messages.labels(platform, empty.status).inc()
            return empty
        if self.reviewer is not None:
            reviewed = await self.reviewer.maybe_review(incoming, claimed, turn, sink)
            if reviewed is not None:
                self.metrics.messages.labels(platform, f"review_{reviewed.status}").inc()
                if self.budget_watcher is not None and reviewed.cost_nanos:
                    remaining = await self.budget.remaining(claimed.channel.scope_key)
                    await self._watch(self.budget_watcher.after_charge(incoming, remaining))
                return reviewed
        web = options.web_search or bool(incoming.web_search) or claimed.channel.web_search
        fast = options.fast or incoming.thinking is False
        answer = await self._answer(incoming, claimed, turn, sink, web_search=web, fast=fast)
        self.metrics.messages.labels(platform, answer.status).inc()
        return answer

    async def _notice(self, claimed: Claimed, sink: ReplySink, status: str, text: str) -> Answer:
        await self.store.mark_user_message(claimed.message_pk, status)
        await sink.fail(text)
        return Answer(status, reason=text)

    async def _answer(self, incoming: Incoming, claimed: Claimed, turn: UserTurn, sink: ReplySink, *,
                      web_search: bool, fast: bool) -> Answer:
        thread = claimed.thread
        correction = thread.last_prompt_actual / thread.last_prompt_estimate if thread.last_prompt_estimate else 1.0
        correction = max(1.0, correction)
        fixed_tokens = self._system_tokens + turn.token_estimate()
        if fixed_tokens * correction > self.settings.context_tokens:
            text = too_long_text(math.ceil(fixed_tokens * correction), self.settings.context_tokens)
            return await self._notice(claimed, sink, "too_long", text)
        window = choose_window(claimed.history, floor_pk=thread.floor_pk, budget_tokens=self.settings.context_tokens,
                               fixed_tokens=fixed_tokens, correction=correction)
        prompt_estimate = fixed_tokens + window.tokens()
        granted = await self.budget.reserve(
            channel_pk=claimed.channel.pk, scope_key=claimed.channel.scope_key, thread_pk=thread.pk,
            user_id=incoming.user_id, kind="chat",
            estimated_prompt_tokens=math.ceil(prompt_estimate * max(correction, self.settings.token_safety_factor)),
            wanted_max_tokens=self.settings.seed_max_tokens, web_search=web_search,
        )
        if isinstance(granted, Denial):
            text = denial_text(granted, incoming.platform, self.settings)
            refused = await self._notice(claimed, sink, "refused", text)
            await self._watch(self.budget_watcher and self.budget_watcher.after_denial(
                incoming, granted, claimed.channel.scope_key))
            return refused
        effort = (incoming.reasoning_effort or claimed.channel.reasoning_effort
                  or self.settings.default_reasoning_effort)
        request = ChatRequest(
            messages=build_messages(SYSTEM_PROMPT, window, turn), max_tokens=granted.max_tokens,
            enable_thinking=not fast, reasoning_effort=effort,  # type: ignore[arg-type]
            enable_web_search=web_search, enable_caching=bool(claimed.history),
        )
        await sink.start()
        await sink.status("searching the web…" if web_search else "thinking…")
        call = await self._stream(request, sink)
        notes = list(turn.notes)
        if window.dropped:
            notes.append(f"{window.dropped} earlier messages left out of the context")
        if granted.shrunk:
            notes.append(f"answer limited to {granted.max_tokens:,} tokens by the budget")
        answer, remaining = await self._settle(claimed, granted, call, sink, notes=notes, floor_pk=window.floor_pk,
                                               prompt_estimate=prompt_estimate)
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

    async def _stream(self, request: ChatRequest, sink: ReplySink) -> _Call:
        """Stream the answer into the sink, secrets masked; the stored answer keeps the model's exact
        text, since the next turn's prompt must repeat it byte for byte."""
        call = _Call(started=self._clock())
        redactor = StreamRedactor()
        try:
            async for event in self.llm.stream(request):
                match event:
                    case ContentDelta(text):
                        self._first_token(call)
                        call.parts.append(text)
                        if shown := redactor.feed(text):
                            await sink.append(shown)
                    case ReasoningDelta():
                        self._first_token(call)
                    case UsageReport(usage):
                        call.usage = usage
                    case Finish(reason):
                        call.finish = reason
        except SeedError as exc:
            call.error = exc
        if rest := redactor.flush():
            await sink.append(rest)
        return call

    def _first_token(self, call: _Call) -> None:
        if call.first_token is None:
            call.first_token = self._clock()
            self.metrics.first_token.observe(call.first_token - call.started)

    async def _settle(self, claimed: Claimed, grant: Grant, call: _Call, sink: ReplySink, *, notes: list[str],
                      floor_pk: int, prompt_estimate: int) -> tuple[Answer, Remaining]:
        streamed = call.first_token is not None
        usage = call.usage or Usage()
        if call.error is not None and not streamed:
            status, cost = "failed", 0
        else:
            cost = self.prices.cost_nanos(call.usage) if call.usage else grant.amount_nanos
            status = "ok"
            if call.error is not None:
                status = "cut"
                notes.append("the answer was cut off: " + _cut_reason(call.error))
            elif call.finish == "content_filter":
                status = "filtered"
                notes.append("stopped by the model's content filter")
            elif call.finish == "length":
                notes.append(f"stopped at the length limit ({grant.max_tokens:,} tokens)")
        if cost > grant.amount_nanos:
            self.metrics.overrun.inc(cost - grant.amount_nanos)
            log.warning("call cost %d nanos, above its reservation of %d", cost, grant.amount_nanos)
        answer_text = call.text
        error_text = f"{type(call.error).__name__}: {call.error}" if call.error else None
        now = self._clock()

        def record(session: Session) -> None:
            ConversationStore.record_answer(
                session, claimed=claimed, answer=answer_text, answer_tokens=estimate_message_tokens(answer_text),
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
        if not answer_text:
            reason = _failure_sentence(call)
            await sink.fail(reason)
            failed = Answer(status if status != "ok" else "empty_answer", usage=usage, cost_nanos=cost, reason=reason)
            return failed, remaining
        footer = Footer(usage=usage, cost_nanos=cost, budget_left_fraction=remaining.fraction,
                        budget_left_nanos=remaining.left_nanos, notes=tuple(notes))
        await sink.finish(footer)
        return Answer(status, answer_text, usage, cost), remaining

    def _count(self, usage: Usage, cost: int, platform: str) -> None:
        self.metrics.cost.labels(platform).inc(cost)
        for kind in ("prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens"):
            self.metrics.tokens.labels(kind.removesuffix("_tokens")).inc(getattr(usage, kind))


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _cut_reason(error: SeedError) -> str:
    if isinstance(error, SeedStreamBroken):
        return "the connection to the model broke."
    return error.user_message.rstrip(".").lower() + "."


def _failure_sentence(call: _Call) -> str:
    if call.error is not None:
        return call.error.user_message
    if call.finish == "content_filter":
        return SeedContentFiltered.user_message
    return "The model returned an empty answer; please rephrase and try again."


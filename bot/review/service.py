"""The review path of ChatService: a message carrying a diff gets a grounded review.

The pure steps live in bot.review; this module adds what touches the world: a budget reservation and
a ledger row per model call, the calls themselves (concurrently), persistence, and the sink.

Once the platform refuses the answer for good (GuardedSink.lost, bot.ports.SinkBroken), no further review
call is made: each one not yet sent is settled failed at no cost (its reservation released, the ledger
`error` naming the refusal), calls already sent are settled as they end, and the message ends failed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from dataclasses import dataclass

from bot.budget.cost_rule import call_charge
from bot.budget.outcomes import Denial, Grant, Settlement
from bot.budget.pricing import PriceBook
from bot.budget.reservations import BudgetManager
from bot.chat.guarded_sink import GuardedSink
from bot.chat.inflight import InFlight
from bot.chat.notices import denial_text
from bot.chat.prompt import UserTurn
from bot.chat.redaction import redact
from bot.chat.service import Answer
from bot.chat.streamed import NOT_POSTED, described
from bot.chat.tokens import estimate_message_tokens
from bot.config import Settings
from bot.domain import Footer, Incoming, Usage, counted
from bot.llm import ChatRequest, Completion, SeedClient, SeedContentFiltered, SeedError, SeedStreamBroken
from bot.ports import Step
from bot.review import (
    ChunkReview,
    build_review_messages,
    detect_diff,
    ground_findings,
    merge_reviews,
    parse_review_reply,
    prepare_review,
    render_review,
)
from bot.review.types import DiffInput, ReviewBudget, ReviewChunk
from bot.storage.conversations import Claimed, ConversationStore

log = logging.getLogger(__name__)

NO_DIFF = ("I found no diff to review. Paste a unified diff (`git diff` output, fenced as ```diff or raw) "
           "or attach a .diff/.patch file.")


@dataclass(slots=True)
class _CallResult:
    chunk: ReviewChunk
    review: ChunkReview | None = None
    usage: Usage | None = None
    cost_nanos: int = 0
    refused: Denial | None = None
    grant: Grant | None = None  # the call's reservation, once granted
    error: str = ""
    cut: bool = False  # the model stopped at max_tokens (finish_reason "length"): the reply may lack findings


@dataclass(frozen=True, slots=True)
class ReviewWanted:
    """A message that asks for a review, and the diff found in it (None: asked for, none found)."""

    diff: DiffInput | None


class ReviewService:
    def __init__(self, *, settings: Settings, llm: SeedClient, budget: BudgetManager, store: ConversationStore,
                 prices: PriceBook) -> None:
        self._settings = settings
        self._llm = llm
        self._budget = budget
        self._store = store
        self._prices = prices

    def wanted(self, incoming: Incoming) -> ReviewWanted | None:
        """Whether the message asks for a review, from the message alone (before it is claimed): it carries
        a diff, or the person asked for one (`force_review`). None: a question like any other."""
        # detect_diff adds the word "review" in the text (the word: "preview" asks for nothing).
        diff = detect_diff(incoming.text, incoming.attachments, review_requested=incoming.force_review)
        if diff is None and not incoming.force_review:
            return None
        return ReviewWanted(diff)

    async def review(self, wanted: ReviewWanted, incoming: Incoming, claimed: Claimed, turn: UserTurn,
                     sink: GuardedSink, inflight: InFlight) -> Answer:
        """Review what `wanted` found into `sink`, or say there is no diff to review."""
        diff = wanted.diff
        if diff is None:
            await self._store.mark_user_message(claimed.message_pk, "empty")
            await sink.fail(NO_DIFF)
            return Answer("empty", reason=NO_DIFF)
        budget = ReviewBudget(self._settings.review_tokens, self._settings.review_max_calls)
        # Parsing and planning a 50,000-line diff takes a few hundred ms: keep it off the event loop.
        plan = await asyncio.to_thread(prepare_review, diff, budget)
        if plan.chunks:
            await sink.start()
            await sink.status(f"reviewing {sum(len(c.parts) for c in plan.chunks)} files…")
        steps = review_steps(plan.chunks)
        results = await asyncio.gather(*(
            self._review_chunk(incoming, claimed, chunk, inflight, sink, steps[chunk.index]) for chunk in plan.chunks))
        usage = sum((r.usage for r in results if r.usage), Usage())
        cost = sum(r.cost_nanos for r in results)
        if sink.lost is not None:  # nothing can be shown there: the calls made are paid, the rest were not made
            await self._store.mark_user_message(claimed.message_pk, "failed")
            await sink.fail(NOT_POSTED)  # a lost sink only closes
            return Answer("failed", usage=usage, cost_nanos=cost, reason=NOT_POSTED)
        if plan.chunks and all(r.refused for r in results):
            text = denial_text(results[0].refused, incoming.platform, self._settings)  # type: ignore[arg-type]
            await self._store.mark_user_message(claimed.message_pk, "refused")
            await sink.fail(text)
            return Answer("refused", reason=text)
        merged = merge_reviews(plan, [r.review for r in results if r.review is not None])
        text = render_review(merged)
        notes = [counted(len(results), "review call")] if results else []
        refused = sum(1 for r in results if r.refused)
        if refused:
            notes.append(f"{counted(refused, 'review call')} refused by the budget")
        if cut := sum(1 for r in results if r.cut):
            notes.append(f"{counted(cut, 'review call')} cut at the model's output limit: findings may be missing")
        charged = [r for r in results if r.cost_nanos]
        unreported = sum(1 for r in charged if r.usage is None)
        if 0 < unreported < len(charged):
            notes.append(f"usage not reported for {counted(unreported, 'review call')}, charged their reservations")
        status = "ok" if any(r.review for r in results) or not plan.chunks else "failed"
        text = redact(text)  # stored as shown: the model may write a secret it found in the diff
        await self._store.save_answer(claimed, text, estimate_message_tokens(text), status)
        if not plan.chunks:
            await sink.start()
        await sink.append(text)
        if sink.lost is not None:  # its post was refused, or not taken: `fail` says so where it still can
            await sink.fail(NOT_POSTED)
        else:
            remaining = await self._budget.remaining(claimed.channel.scope_key)
            await sink.finish(Footer(usage=usage, cost_nanos=cost, budget_left_fraction=remaining.fraction,
                                     budget_left_nanos=remaining.left_nanos, notes=tuple(notes),
                                     usage_known=not charged or unreported < len(charged),
                                     secrets_masked=turn.secrets_masked))
        if sink.lost is not None:  # the review itself (posted last, in one go) did not reach the person
            await self._restate_failed(claimed, results, sink.lost)
            return Answer("failed", text, usage, cost, reason=NOT_POSTED)
        return Answer(status, text, usage, cost)

    async def _restate_failed(self, claimed: Claimed, results: list[_CallResult], lost: Exception) -> None:
        """The review was settled, then not shown: its calls' ledger rows (each keeping its own error after the
        platform's) and its turn say `failed`, the money as booked (as ChatService does for an answer whose last
        post the platform refused), in one transaction."""
        rows = [(result.grant, "; ".join(filter(None, [described(lost), result.error])))
                for result in results if result.grant is not None]
        turn_failed = functools.partial(ConversationStore.restate_turn, claimed=claimed, status="failed")
        await self._budget.restate(rows, status="failed", also=turn_failed)

    async def _review_chunk(self, incoming: Incoming, claimed: Claimed, chunk: ReviewChunk, inflight: InFlight,
                            sink: GuardedSink, steps: list[Step]) -> _CallResult:
        for step in steps:
            await sink.step(step)
        result = await self._review_call(incoming, claimed, chunk, inflight, sink)
        state = "complete" if result.review is not None else "error"
        for step in steps:
            await sink.step(Step(step.id, step.title, state))
        return result

    async def _review_call(self, incoming: Incoming, claimed: Claimed, chunk: ReviewChunk,
                           inflight: InFlight, sink: GuardedSink) -> _CallResult:
        """Reserve, make and settle one review call; not made (its reservation released) if `sink` is lost."""
        result = _CallResult(chunk)
        grant = await self._budget.reserve(
            channel_pk=claimed.channel.pk, scope_key=claimed.channel.scope_key, thread_pk=claimed.thread.pk,
            user_id=incoming.user_id, kind="review",
            estimated_prompt_tokens=math.ceil(chunk.prompt_tokens * self._settings.token_safety_factor),
            wanted_max_tokens=self._settings.seed_max_tokens, web_search=False)
        if isinstance(grant, Denial):
            result.refused = grant
            return result
        result.grant = grant
        opened = inflight.open(grant, chunk.prompt_tokens)
        started = time.monotonic()
        # Checked after the reservation's await, right before the call: the sink may have been lost meanwhile.
        if sink.lost is not None:
            result.error = described(sink.lost)
            await self._settle(grant, result, None, "failed", result.error, started, answered=False)
            inflight.settled(grant)
            return result
        opened.sent = True
        request = ChatRequest(messages=build_review_messages(chunk), max_tokens=grant.max_tokens,
                              enable_thinking=grant.thinking, reasoning_effort="medium", enable_caching=False)
        completion: Completion | None = None
        try:
            completion = await self._llm.complete(request)
        except SeedContentFiltered:
            await self._settle(grant, result, None, "filtered", "content filter", started, answered=True)
        except SeedError as exc:
            await self._settle(grant, result, None, "failed", described(exc), started,
                               answered=isinstance(exc, SeedStreamBroken))
        else:
            await self._settle(grant, result, completion, "ok", None, started, answered=True)
        inflight.settled(grant)
        if completion is not None:
            result.cut = completion.finish_reason == "length"
            result.review = ground_findings(parse_review_reply(completion.content), chunk)
        return result

    async def _settle(self, grant: Grant, result: _CallResult, completion: Completion | None, status: str,
                      error: str | None, started: float, *, answered: bool) -> None:
        """`answered`: the provider started answering, so the call is billed (the cost rule: by usage,
        else the reservation); an error before any answer is released."""
        usage = completion.usage if completion else None
        cost = call_charge(self._prices, usage, reserved_nanos=grant.amount_nanos, request_sent=answered).cost_nanos
        if usage is None and answered:
            log.warning("review call with reservation %d charged its reserved amount: no valid usage",
                        grant.reservation_id)
            error = error or "no valid usage reported"
        result.usage, result.cost_nanos = usage, cost
        u = usage or Usage()
        await self._budget.settle(grant, Settlement(
            status=status, cost_nanos=cost, model=self._llm.model, prompt_tokens=u.prompt_tokens,
            cached_tokens=u.cached_tokens, completion_tokens=u.completion_tokens,
            reasoning_tokens=u.reasoning_tokens, web_searches=u.web_searches, usage_known=usage is not None,
            error=error, duration_ms=int((time.monotonic() - started) * 1000)))


def review_steps(chunks: tuple[ReviewChunk, ...]) -> dict[int, list[Step]]:
    """The steps a review shows, by chunk index: one per file part, numbered across the whole review
    ("Reviewing src/app.py (2 of 5)"), each in progress while its chunk's call runs."""
    parts = [(chunk.index, part) for chunk in chunks for part in chunk.parts]
    steps: dict[int, list[Step]] = {chunk.index: [] for chunk in chunks}
    for number, (index, part) in enumerate(parts, start=1):
        piece = f", part {part.part} of {part.parts}" if part.parts > 1 else ""
        steps[index].append(Step(f"review-{number}", f"Reviewing {part.file.path}{piece} ({number} of {len(parts)})"))
    return steps

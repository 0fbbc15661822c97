"""Diff review, pure logic: detect a diff in a message, parse it, choose what to review, pack it into
model calls, read and check the model's answers, and render one review.

The service calls, in order: `detect_diff` -> `prepare_review` (or `parse_diff_input` ->
`select_files` -> `plan_review`) -> `build_review_messages` per chunk -> `parse_review_reply` ->
`ground_findings` -> `merge_reviews` -> `render_review`.

The diff model these steps pass along (`ParsedDiff`, `Selection`, `ReviewPlan`, `SkipReason`, ...) is not
repeated here: callers import it from `bot.review.types`.
"""

from __future__ import annotations

from bot.review.chunking import plan_review
from bot.review.detect import detect_diff
from bot.review.findings import (
    Finding,
    ParsedReply,
    ReviewReply,
    Risk,
    Severity,
    parse_review_reply,
)
from bot.review.grounding import ChunkReview, MergedReview, ground_findings, merge_reviews
from bot.review.parse import parse_diff, parse_diff_input
from bot.review.prompt import SYSTEM_PROMPT, build_review_messages
from bot.review.render import render_review
from bot.review.selection import DEFAULT_RULES, SelectionRules, select_files
from bot.review.types import DiffInput, ReviewBudget, ReviewPlan


def prepare_review(
    diff_input: DiffInput,
    budget: ReviewBudget = ReviewBudget(),
    rules: SelectionRules = DEFAULT_RULES,
) -> ReviewPlan:
    """Parse, select and plan in one go: the CPU-heavy part, for the caller to run in a thread."""
    return plan_review(select_files(parse_diff_input(diff_input), rules), budget)


__all__ = [
    "DEFAULT_RULES",
    "SYSTEM_PROMPT",
    "ChunkReview",
    "Finding",
    "MergedReview",
    "ParsedReply",
    "ReviewReply",
    "Risk",
    "SelectionRules",
    "Severity",
    "build_review_messages",
    "detect_diff",
    "ground_findings",
    "merge_reviews",
    "parse_diff",
    "parse_diff_input",
    "parse_review_reply",
    "plan_review",
    "prepare_review",
    "render_review",
    "select_files",
]

"""Packing the selected files into at most `max_calls` model calls, each prompt under the token budget.

Files stay whole where they fit in one call; a larger file is cut between hunks, keeping neighbouring
hunks together; a hunk that alone exceeds a call is not sent. Units are packed first-fit in diff
order. Whatever does not fit is listed in the plan's `skipped`, never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bot.chat.tokens import count_tokens
from bot.review.prompt import (
    FILE_CLOSE_TAG,
    build_review_messages,
    count_message_tokens,
    file_open_tag,
    number_width,
    render_hunk,
)
from bot.review.types import (
    DiffHunk,
    FileDiff,
    FilePart,
    ReviewBudget,
    ReviewChunk,
    ReviewPlan,
    Selection,
    SkippedFile,
    SkipReason,
    describe_line_ranges,
    describe_span,
)

# Token counts of pieces are summed, but a joined text can tokenize differently at the seams.
_SEAM_MARGIN = 2
_CHUNK_MARGIN = 16


@dataclass(frozen=True, slots=True)
class _Unit:
    order: int
    part: FilePart
    tokens: int


def plan_review(selection: Selection, budget: ReviewBudget = ReviewBudget()) -> ReviewPlan:
    capacity = budget.tokens_per_call - _fixed_tokens(selection, budget)
    units, skipped = _units(selection.files, capacity)
    bins, unplaced = _pack_first_fit(units, capacity, budget.max_calls)
    skipped.extend(_too_large([unit.part for unit in unplaced]))
    fitted: list[ReviewChunk] = []
    for index, chunk_units in enumerate(bins, start=1):
        chunk, overflow = _fit_exactly(_chunk(index, len(bins), chunk_units, selection), budget)
        fitted.append(chunk)
        skipped.extend(_too_large(overflow))
    chunks = [chunk for chunk in fitted if chunk.parts]
    if len(chunks) < len(fitted):
        # "Part i of n" is in the prompt, so a renumbered call is counted again (it only got shorter).
        chunks = [_counted(replace(c, index=i, total=len(chunks))) for i, c in enumerate(chunks, start=1)]
    return ReviewPlan(tuple(chunks), selection.skipped + tuple(skipped), selection.parsed.notes, budget)


def _fixed_tokens(selection: Selection, budget: ReviewBudget) -> int:
    """The prompt of a call with no files in it: system prompt, question, commit message, notes."""
    empty = ReviewChunk(
        budget.max_calls,
        budget.max_calls,
        (),
        selection.parsed.question,
        selection.parsed.context,
        selection.parsed.notes,
    )
    return count_message_tokens(build_review_messages(empty)) + _CHUNK_MARGIN


def _units(files: tuple[FileDiff, ...], capacity: int) -> tuple[list[_Unit], list[SkippedFile]]:
    units: list[_Unit] = []
    skipped: list[SkippedFile] = []
    for file in files:
        parts, oversized = _split_file(file, capacity)
        for part, tokens in parts:
            units.append(_Unit(len(units), part, tokens))
        if oversized:
            skipped.append(SkippedFile(file.path, SkipReason.TOO_LARGE, describe_line_ranges(oversized)))
    return units, skipped


def _split_file(file: FileDiff, capacity: int) -> tuple[list[tuple[FilePart, int]], list[DiffHunk]]:
    """The file's parts with their token estimates, and the hunks too large for any call."""
    width = number_width(file)
    hunk_tokens = [count_tokens(render_hunk(h, width)) + _SEAM_MARGIN for h in file.hunks]
    frame = _frame_tokens(FilePart(file, file.hunks, len(file.hunks), len(file.hunks)))
    if frame + sum(hunk_tokens) <= capacity:
        return [(FilePart(file, file.hunks), frame + sum(hunk_tokens))], []
    groups: list[list[DiffHunk]] = [[]]
    group_tokens = [0]
    oversized: list[DiffHunk] = []
    for hunk, tokens in zip(file.hunks, hunk_tokens, strict=True):
        if frame + tokens > capacity:
            oversized.append(hunk)
            groups.append([])
            group_tokens.append(0)
            continue
        if frame + group_tokens[-1] + tokens > capacity:
            groups.append([])
            group_tokens.append(0)
        groups[-1].append(hunk)
        group_tokens[-1] += tokens
    filled = [(group, tokens) for group, tokens in zip(groups, group_tokens, strict=True) if group]
    parts = [
        (FilePart(file, tuple(group), number, len(filled)), frame + tokens)
        for number, (group, tokens) in enumerate(filled, start=1)
    ]
    return parts, oversized


def _frame_tokens(part: FilePart) -> int:
    return count_tokens(file_open_tag(part)) + count_tokens(FILE_CLOSE_TAG) + 2 * _SEAM_MARGIN


def _pack_first_fit(
    units: list[_Unit], capacity: int, max_calls: int
) -> tuple[list[list[_Unit]], list[_Unit]]:
    bins: list[list[_Unit]] = []
    room: list[int] = []
    unplaced: list[_Unit] = []
    for unit in units:
        target = next((i for i, free in enumerate(room) if unit.tokens <= free), None)
        if target is None and len(bins) < max_calls and unit.tokens <= capacity:
            bins.append([])
            room.append(capacity)
            target = len(bins) - 1
        if target is None:
            unplaced.append(unit)
            continue
        bins[target].append(unit)
        room[target] -= unit.tokens
    return [sorted(b, key=lambda unit: unit.order) for b in bins], unplaced


def _chunk(index: int, total: int, units: list[_Unit], selection: Selection) -> ReviewChunk:
    parsed = selection.parsed
    return ReviewChunk(
        index, total, tuple(u.part for u in units), parsed.question, parsed.context, parsed.notes
    )


def _fit_exactly(chunk: ReviewChunk, budget: ReviewBudget) -> tuple[ReviewChunk, list[FilePart]]:
    """Count the call as it will be sent; should the estimate have been short, move parts out."""
    overflow: list[FilePart] = []
    while True:
        counted = _counted(chunk)
        if counted.prompt_tokens <= budget.tokens_per_call or not chunk.parts:
            return counted, overflow
        overflow.insert(0, chunk.parts[-1])
        chunk = replace(chunk, parts=chunk.parts[:-1])


def _counted(chunk: ReviewChunk) -> ReviewChunk:
    return replace(chunk, prompt_tokens=count_message_tokens(build_review_messages(chunk)))


def _too_large(parts: list[FilePart]) -> list[SkippedFile]:
    """One entry per run of consecutive parts of a file, naming the lines it spans."""
    runs: list[list[FilePart]] = []
    for part in parts:
        previous = runs[-1][-1] if runs else None
        if previous is not None and previous.file is part.file and previous.part + 1 == part.part:
            runs[-1].append(part)
        else:
            runs.append([part])
    return [_too_large_run(run) for run in runs]


def _too_large_run(run: list[FilePart]) -> SkippedFile:
    file = run[0].file
    hunks = [hunk for part in run for hunk in part.hunks]
    detail = "" if len(hunks) == len(file.hunks) else describe_span(hunks)
    return SkippedFile(file.path, SkipReason.TOO_LARGE, detail)

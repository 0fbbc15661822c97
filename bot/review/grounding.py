"""Keeping the model honest: a finding must cite a line this call was shown, on the new side.
Then the calls' findings are merged into one review."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from bot.review.findings import RISK_ORDER, SEVERITY_ORDER, Finding, ParsedReply, ReviewReply, Risk
from bot.review.types import ReviewChunk, ReviewPlan, SkippedFile, SkipReason, describe_span

_GIT_SIDE_PREFIXES = ("a/", "b/")


@dataclass(frozen=True, slots=True)
class ChunkReview:
    """One call's grounded answer. `review` is None when the reply could not be read; then
    `raw_text` holds it to be shown as written."""

    chunk_index: int
    review: ReviewReply | None
    findings: tuple[Finding, ...]
    dropped: tuple[Finding, ...]
    raw_text: str = ""


@dataclass(frozen=True, slots=True)
class CitableLines:
    """For each file of a call, the new-side numbers it showed on added and unchanged lines."""

    numbers_by_path: dict[str, frozenset[int]]
    renamed_from: dict[str, str]

    @classmethod
    def of_chunk(cls, chunk: ReviewChunk) -> CitableLines:
        numbers: dict[str, set[int]] = {}
        renamed_from: dict[str, str] = {}
        for part in chunk.parts:
            shown = numbers.setdefault(part.file.path, set())
            for hunk in part.hunks:
                shown.update(hunk.new_side_numbers())
            if part.file.is_rename:
                renamed_from[part.file.old_path] = part.file.path
        return cls({path: frozenset(lines) for path, lines in numbers.items()}, renamed_from)

    def resolve(self, cited_path: str, line: int) -> str | None:
        """The file's path as shown if `cited_path:line` was shown in this call, else None."""
        for spelling in _path_spellings(cited_path):
            path = spelling if spelling in self.numbers_by_path else self.renamed_from.get(spelling)
            if path is not None:
                return path if line in self.numbers_by_path[path] else None
        return None


def _path_spellings(cited: str) -> Iterator[str]:
    path = cited.strip().strip("`").strip()
    yield path
    path = path.removeprefix("./")
    yield path
    if path.startswith(_GIT_SIDE_PREFIXES):
        yield path[2:]


def ground_findings(reply: ParsedReply, chunk: ReviewChunk) -> ChunkReview:
    if reply.review is None:
        return ChunkReview(chunk.index, None, (), (), reply.raw_text)
    citable = CitableLines.of_chunk(chunk)
    kept: list[Finding] = []
    dropped: list[Finding] = []
    for finding in reply.review.findings:
        path = citable.resolve(finding.path, finding.line)
        if path is None:
            dropped.append(finding)
        else:
            kept.append(finding.model_copy(update={"path": path}))
    return ChunkReview(chunk.index, reply.review, tuple(kept), tuple(dropped))


@dataclass(frozen=True, slots=True)
class MergedReview:
    summaries: tuple[str, ...]
    risk: Risk | None
    findings: tuple[Finding, ...]
    dropped_findings: int
    raw_replies: tuple[str, ...]
    skipped: tuple[SkippedFile, ...]
    notes: tuple[str, ...]
    calls: int
    unreadable_findings: int = 0


def merge_reviews(plan: ReviewPlan, reviews: Sequence[ChunkReview]) -> MergedReview:
    """All calls' findings, duplicates removed, most severe first. Files of calls that returned
    nothing, or only blank text, are listed as not reviewed."""
    readable = [r.review for r in reviews if r.review is not None]
    findings = sorted((f for r in reviews for f in r.findings), key=_finding_order)
    return MergedReview(
        summaries=tuple(r.summary.strip() for r in readable if r.summary.strip()),
        risk=max((r.risk for r in readable), key=RISK_ORDER.index, default=None),
        findings=tuple(_without_duplicates(findings)),
        dropped_findings=sum(len(r.dropped) for r in reviews),
        unreadable_findings=sum(r.unreadable_findings for r in readable),
        raw_replies=tuple(r.raw_text for r in reviews if r.review is None and r.raw_text.strip()),
        skipped=plan.skipped + _unanswered(plan, reviews),
        notes=plan.notes,
        calls=len(reviews),
    )


def _finding_order(finding: Finding) -> tuple[int, str, int]:
    return SEVERITY_ORDER.index(finding.severity), finding.path, finding.line


def _without_duplicates(findings: list[Finding]) -> Iterator[Finding]:
    seen: set[tuple[str, int, str]] = set()
    for finding in findings:
        key = (finding.path, finding.line, re.sub(r"\s+", " ", finding.title).strip().casefold())
        if key not in seen:
            seen.add(key)
            yield finding


def _unanswered(plan: ReviewPlan, reviews: Sequence[ChunkReview]) -> tuple[SkippedFile, ...]:
    # A call that came back empty (blank text, or the JSON only in its reasoning) reviewed nothing either.
    answered = {review.chunk_index for review in reviews if review.review is not None or review.raw_text.strip()}
    return tuple(
        SkippedFile(
            part.file.path,
            SkipReason.NOT_REVIEWED,
            "" if part.parts == 1 else describe_span(part.hunks),
        )
        for chunk in plan.chunks
        if chunk.index not in answered
        for part in chunk.parts
    )

"""The merged review as Markdown: summary and risk, findings by severity, then what was left out."""

from __future__ import annotations

from collections import defaultdict

from bot.chat.markdown import balance_fences, code_block, language_for
from bot.domain import counted
from bot.review.findings import SEVERITY_ORDER, Finding
from bot.review.grounding import MergedReview
from bot.review.types import SkippedFile, SkipReason

# How many files each "Not reviewed" line names; a 50,000-file diff would otherwise make a review of
# hundreds of messages out of file names.
SKIPPED_NAMED_PER_REASON = 20
# A finding's title is one line of the review; the explanation below it carries the rest.
TITLE_MAX_CHARS = 200


def render_review(review: MergedReview) -> str:
    sections = [_head(review), _findings(review.findings), _raw_replies(review.raw_replies), _footer(review)]
    return "\n\n".join(section for section in sections if section)


def _head(review: MergedReview) -> str:
    if review.risk is None:
        return "" if review.raw_replies else "**Code review**: nothing in this change was reviewed."
    head = f"**Code review** · risk: **{review.risk.value}**"
    return "\n\n".join([head, *(balance_fences(summary) for summary in review.summaries)])


def _findings(findings: tuple[Finding, ...]) -> str:
    if not findings:
        return ""
    blocks = []
    for severity in SEVERITY_ORDER:
        group = [finding for finding in findings if finding.severity is severity]
        if group:
            blocks.append(f"**{severity.value.capitalize()} ({len(group)})**")
            blocks.extend(_finding(finding) for finding in group)
    return "\n\n".join(blocks)


def _finding(finding: Finding) -> str:
    title = " ".join(finding.title.split())
    if len(title) > TITLE_MAX_CHARS:
        title = title[: TITLE_MAX_CHARS - 1].rstrip() + "…"
    parts = [f"`{finding.path}:{finding.line}` {title}"]
    if finding.explanation.strip():
        parts.append(balance_fences(finding.explanation.strip()))
    if finding.suggestion:
        parts.append(code_block(finding.suggestion.strip("\n"), language_for(finding.path)))
    return "\n".join(parts)


def _raw_replies(replies: tuple[str, ...]) -> str:
    if not replies:
        return ""
    intro = "The model's answer was not in the expected format, so here it is as written:"
    return "\n\n".join([intro, *(balance_fences(reply.strip()) for reply in replies)])


def _footer(review: MergedReview) -> str:
    lines = [_skipped_line(reason, files) for reason, files in _by_reason(review.skipped).items()]
    if review.dropped_findings:
        lines.append(f"{counted(review.dropped_findings, 'finding')} dropped for citing lines outside the diff.")
    if review.unreadable_findings:
        lines.append(f"{counted(review.unreadable_findings, 'finding')} dropped as unreadable (not in the review's "
                     "format).")
    lines.extend(note[0].upper() + note[1:] + "." for note in review.notes)
    return "\n".join(lines)


def _by_reason(skipped: tuple[SkippedFile, ...]) -> dict[SkipReason, list[SkippedFile]]:
    groups: dict[SkipReason, list[SkippedFile]] = defaultdict(list)
    for file in skipped:
        groups[file.reason].append(file)
    return groups


def _skipped_line(reason: SkipReason, files: list[SkippedFile]) -> str:
    shown = files[:SKIPPED_NAMED_PER_REASON]
    names = ", ".join(f"`{f.path}`" + (f" ({f.detail})" if f.detail else "") for f in shown)
    if len(files) > len(shown):
        names += f" and {counted(len(files) - len(shown), 'more file')}"
    return f"Not reviewed, {reason.value}: {names}"



"""Is there a diff in this message, where, and what did the person say besides it?

A diff is at least one file header (---/+++ pair or `diff --git`) with at least one hunk after it.
Headerless hunks count only where the person clearly meant a diff: a ```diff/```patch block, a
.diff/.patch attachment, or an explicit review request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.domain import Attachment, AttachmentKind
from bot.review.scan import GIT_DIFF_HEADER, DiffScan, is_mail_signature, scan_diff, split_lines
from bot.review.types import DiffInput, DiffOrigin, DiffSource

REVIEW_WORD = re.compile(r"\breview\b", re.IGNORECASE)
DIFF_FENCE_LANGUAGES = frozenset({"diff", "patch", "udiff"})
DIFF_FILE_SUFFIXES = (".diff", ".patch")
SYNTHETIC_PATH = "snippet"
_SYNTHETIC_HEADER = (f"--- a/{SYNTHETIC_PATH}", f"+++ b/{SYNTHETIC_PATH}")
_REVIEW_COMMAND = re.compile(r"^\s*/review\b[ \t]*", re.IGNORECASE)
_MAIL_START = re.compile(r"^From [0-9a-f]{40} Mon Sep 17 00:00:00 2001$")
_MAIL_SUBJECT_TAG = re.compile(r"^\[PATCH[^\]]*\]\s*")
_FENCE_OPEN = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})(?P<rest>.*)$")
_FENCE_CLOSE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*$")
_FENCE_LANGUAGE = re.compile(r"^[\w+#.-]*$")


@dataclass(frozen=True, slots=True)
class TextSegment:
    """A stretch of a message: plain text (`language` None) or one fenced block's content.
    `raw` is the stretch as written, fences included, to give back to the question if no diff."""

    lines: list[str]
    raw: list[str]
    language: str | None


def detect_diff(
    text: str, attachments: Sequence[Attachment] = (), *, review_requested: bool = False
) -> DiffInput | None:
    """The diffs in a message and its attachments, or None when it is a question like any other."""
    requested = review_requested or bool(REVIEW_WORD.search(text))
    sources: list[DiffSource] = []
    question: list[str] = []
    for segment in split_fenced_blocks(split_lines(text)):
        found, leftover = _diffs_in_segment(segment, requested)
        sources.extend(found)
        question.extend(leftover)
    for attachment in attachments:
        sources.extend(_diffs_in_attachment(attachment, requested))
    if not sources:
        return None
    return DiffInput(tuple(sources), _clean_question(question), requested)


class _HunkTracker:
    """Whether a line is inside a diff hunk: after an `@@ -a,b +c,d @@` line, for as long as lines start
    with a diff marker (space, `+`, `-`, backslash). There a line that starts with a space is a context
    line, even when what follows is a fence (a README's code block): it neither opens nor closes one."""

    def __init__(self) -> None:
        self._inside = False

    def context_line(self, line: str) -> bool:
        """Take the next line; True if it is a hunk's context line."""
        if line.startswith("@@ -"):
            self._inside = True
            return False
        self._inside = self._inside and line[:1] in (" ", "+", "-", "\\")
        return self._inside and line.startswith(" ")


def split_fenced_blocks(lines: list[str]) -> list[TextSegment]:
    segments: list[TextSegment] = []
    plain: list[str] = []
    hunk = _HunkTracker()
    i = 0
    while i < len(lines):
        opening = None if hunk.context_line(lines[i]) else _FENCE_OPEN.match(lines[i])
        if opening is None:
            plain.append(lines[i])
            i += 1
            continue
        if plain:
            segments.append(TextSegment(plain, plain, None))
            plain = []
        block, i = _read_fenced_block(lines, i, opening)
        segments.append(block)
    if plain:
        segments.append(TextSegment(plain, plain, None))
    return segments


def _read_fenced_block(lines: list[str], i: int, opening: re.Match[str]) -> tuple[TextSegment, int]:
    fence, rest = opening["fence"], opening["rest"]
    # Slack has no info strings: its blocks often start right after the backticks.
    starts_inline = not _FENCE_LANGUAGE.match(rest.strip())
    language = "" if starts_inline else rest.strip()
    content = [rest] if starts_inline else []
    if starts_inline and rest.rstrip().endswith(fence):
        return TextSegment([rest.rstrip()[: -len(fence)]], lines[i : i + 1], language), i + 1
    hunk = _HunkTracker()
    for j in range(i + 1, len(lines)):
        if not hunk.context_line(lines[j]) and _closes(lines[j], fence):
            return TextSegment(content, lines[i : j + 1], language), j + 1
        if starts_inline and lines[j].rstrip().endswith(fence):
            content.append(lines[j].rstrip()[: -len(fence)])
            return TextSegment(content, lines[i : j + 1], language), j + 1
        content.append(lines[j])
    return TextSegment(content, lines[i:], language), len(lines)


def _closes(line: str, fence: str) -> bool:
    closing = _FENCE_CLOSE.match(line)
    return closing is not None and closing[1][0] == fence[0] and len(closing[1]) >= len(fence)


def _diffs_in_segment(segment: TextSegment, requested: bool) -> tuple[list[DiffSource], list[str]]:
    if segment.language is None:
        return extract_diffs(segment.lines, headerless=requested, origin=DiffOrigin.MESSAGE_TEXT)
    headerless = requested or segment.language.lower() in DIFF_FENCE_LANGUAGES
    found, _ = extract_diffs(segment.lines, headerless=headerless, origin=DiffOrigin.FENCED_BLOCK)
    return (found, []) if found else ([], segment.raw)


def _diffs_in_attachment(attachment: Attachment, requested: bool) -> list[DiffSource]:
    if attachment.kind is not AttachmentKind.TEXT:
        return []
    headerless = requested or attachment.filename.lower().endswith(DIFF_FILE_SUFFIXES)
    found, _ = extract_diffs(
        split_lines(attachment.text()),
        headerless=headerless,
        origin=DiffOrigin.ATTACHMENT,
        name=attachment.filename,
    )
    return found


def extract_diffs(
    lines: list[str], *, headerless: bool, origin: DiffOrigin, name: str = ""
) -> tuple[list[DiffSource], list[str]]:
    """Diff sources in `lines` (one per format-patch mail) and the lines that are not part of one."""
    sources: list[DiffSource] = []
    leftover: list[str] = []
    for piece in _mail_pieces(lines):
        is_mail = bool(_MAIL_START.match(piece[0]))
        scan = scan_diff(piece, headerless=headerless)
        if not scan.has_diff(headers_required=not headerless):
            leftover.extend(piece)
            continue
        start = 0 if is_mail else scan.start
        text = "\n".join(_region_with_headers(piece, scan, start)) + "\n"
        if is_mail:
            sources.append(DiffSource(text, DiffOrigin.MAIL, name, _mail_description(piece)))
        else:
            sources.append(DiffSource(text, origin, name))
        leftover.extend(piece[:start])
        leftover.extend(_without_signature(piece[scan.end :]) if is_mail else piece[scan.end :])
    return sources, leftover


def _mail_pieces(lines: list[str]) -> list[list[str]]:
    starts = [i for i, line in enumerate(lines) if _MAIL_START.match(line)]
    bounds = [0, *starts, len(lines)]
    return [lines[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def _region_with_headers(lines: list[str], scan: DiffScan, start: int) -> list[str]:
    """The diff's lines, with a placeholder file header in front of headerless hunks."""
    synthetic_starts = {file.first_index for file in scan.files if file.synthetic}
    region: list[str] = []
    for index in range(start, scan.end):
        if index in synthetic_starts:
            region.extend(_SYNTHETIC_HEADER)
        region.append(lines[index])
    return region


def _without_signature(lines: list[str]) -> list[str]:
    for index, line in enumerate(lines):
        if line.strip():
            return lines[index + 2 :] if is_mail_signature(lines, index) else lines
    return lines


def _mail_description(lines: list[str]) -> str:
    """Subject and body of a format-patch mail: what the author says the change is for."""
    subject: list[str] = []
    in_subject = False
    i = 1
    while i < len(lines) and lines[i].strip():
        if lines[i].startswith("Subject:"):
            subject, in_subject = [lines[i].removeprefix("Subject:").strip()], True
        elif in_subject and lines[i][:1] in (" ", "\t"):
            subject.append(lines[i].strip())
        else:
            in_subject = False
        i += 1
    body: list[str] = []
    for line in lines[i + 1 :]:
        if line.rstrip() == "---" or line.startswith(GIT_DIFF_HEADER):
            break
        body.append(line)
    title = _MAIL_SUBJECT_TAG.sub("", " ".join(part for part in subject if part))
    return "\n\n".join(part for part in (title, "\n".join(body).strip()) if part)


def _clean_question(lines: list[str]) -> str:
    text = _REVIEW_COMMAND.sub("", "\n".join(lines).strip())
    return re.sub(r"\n{3,}", "\n\n", text).strip()

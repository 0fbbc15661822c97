"""The values each review step hands to the next: what was detected, the parsed files and hunks,
what was selected, and how it was packed into model calls."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

NOTE_REPAIRED_HEADERS = "parsed after repairing hunk headers"
NOTE_PLAIN_CODE = "reviewed as plain code: the text could not be read as a diff"


class LineKind(StrEnum):
    """A diff line's first character, as unified diff writes it."""

    ADDED = "+"
    REMOVED = "-"
    CONTEXT = " "


@dataclass(frozen=True, slots=True)
class DiffLine:
    """One line of a hunk without its prefix; `old_number`/`new_number` are 1-based line numbers in the
    old and new file, None on the side the line is not in."""

    kind: LineKind
    text: str
    old_number: int | None
    new_number: int | None


@dataclass(frozen=True, slots=True)
class DiffHunk:
    """One `@@ -old_start,old_length +new_start,new_length @@ section` block and its lines."""

    old_start: int
    old_length: int
    new_start: int
    new_length: int
    section: str
    lines: tuple[DiffLine, ...]

    @property
    def has_additions(self) -> bool:
        return any(line.kind is LineKind.ADDED for line in self.lines)

    def new_side_numbers(self) -> Iterator[int]:
        """Numbers a review may cite: added and unchanged lines, on the new side."""
        for line in self.lines:
            if line.new_number is not None:
                yield line.new_number

    def new_range(self) -> tuple[int, int]:
        numbers = list(self.new_side_numbers())
        if not numbers:
            return (self.new_start, self.new_start)
        return (numbers[0], numbers[-1])


@dataclass(frozen=True, slots=True)
class FileDiff:
    path: str
    old_path: str | None = None
    hunks: tuple[DiffHunk, ...] = ()
    is_binary: bool = False
    is_new: bool = False
    is_deleted: bool = False
    old_mode: str | None = None
    new_mode: str | None = None
    is_plain_code: bool = False
    is_copy: bool = False  # `old_path` was copied, and is still there

    @property
    def is_rename(self) -> bool:
        return self.old_path is not None and self.old_path != self.path and not self.is_copy

    @property
    def mode_changed(self) -> bool:
        return None not in (self.old_mode, self.new_mode) and self.old_mode != self.new_mode

    def status(self) -> str:
        """How the file changed, in a few words for a prompt or a footer."""
        if self.is_plain_code:
            return "plain code"
        parts = []
        if self.is_new:
            parts.append("new file")
        elif self.is_deleted:
            parts.append("deleted")
        if self.is_rename:
            parts.append(f"renamed from {self.old_path}")
        elif self.is_copy:
            parts.append(f"copied from {self.old_path}")
        if self.mode_changed:
            parts.append(f"mode {self.old_mode} -> {self.new_mode}")
        return ", ".join(parts) or "modified"


class DiffOrigin(StrEnum):
    FENCED_BLOCK = "fenced block"
    MESSAGE_TEXT = "message text"
    MAIL = "format-patch mail"
    ATTACHMENT = "attachment"


@dataclass(frozen=True, slots=True)
class DiffSource:
    """One diff found in a message. `name` is the attachment's file name, if it came as one;
    `description` is the commit message of a format-patch mail."""

    text: str
    origin: DiffOrigin
    name: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class DiffInput:
    """Everything reviewable in a message, plus what the person said besides the diff."""

    sources: tuple[DiffSource, ...]
    question: str
    requested: bool


@dataclass(frozen=True, slots=True)
class ParsedDiff:
    files: tuple[FileDiff, ...]
    question: str = ""
    context: str = ""
    repaired_headers: bool = False
    plain_code: bool = False

    @property
    def notes(self) -> tuple[str, ...]:
        notes = []
        if self.repaired_headers:
            notes.append(NOTE_REPAIRED_HEADERS)
        if self.plain_code:
            notes.append(NOTE_PLAIN_CODE)
        return tuple(notes)


class SkipReason(StrEnum):
    """Why a file of the diff was not reviewed, in the words the review's list of skipped files shows."""

    BINARY = "binary"
    LOCKFILE = "lockfile"
    MINIFIED = "minified"
    GENERATED = "generated"
    VENDORED = "vendored"
    ONLY_DELETIONS = "only deletions"
    NO_CONTENT_CHANGE = "no content changes"
    TOO_LARGE = "does not fit the review budget"
    NOT_REVIEWED = "its review call did not complete"


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """A file left out of the review; `detail` adds what the reason alone does not say (a size, a pattern)."""

    path: str
    reason: SkipReason
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Selection:
    """The parsed diff split into the files to review and the files skipped, each in diff order."""

    parsed: ParsedDiff
    files: tuple[FileDiff, ...]
    skipped: tuple[SkippedFile, ...]


@dataclass(frozen=True, slots=True)
class ReviewBudget:
    """How much one review may send: at most `max_calls` model calls of at most `tokens_per_call`
    prompt tokens each (cl100k estimates)."""

    tokens_per_call: int = 100_000
    max_calls: int = 4


@dataclass(frozen=True, slots=True)
class FilePart:
    """A file, or the run of its hunks that went into one call (`part` of `parts`)."""

    file: FileDiff
    hunks: tuple[DiffHunk, ...]
    part: int = 1
    parts: int = 1


@dataclass(frozen=True, slots=True)
class ReviewChunk:
    """What one model call reviews. `prompt_tokens` is the count of its messages as sent."""

    index: int
    total: int
    parts: tuple[FilePart, ...]
    question: str
    context: str
    notes: tuple[str, ...]
    prompt_tokens: int = 0


@dataclass(frozen=True, slots=True)
class ReviewPlan:
    chunks: tuple[ReviewChunk, ...]
    skipped: tuple[SkippedFile, ...]
    notes: tuple[str, ...]
    budget: ReviewBudget


def describe_line_ranges(hunks: Sequence[DiffHunk]) -> str:
    """New-side line ranges of some hunks, one per hunk, e.g. "lines 10-40, 90-120", for a footer."""
    ranges = []
    for hunk in hunks:
        first, last = hunk.new_range()
        ranges.append(str(first) if first == last else f"{first}-{last}")
    return "lines " + ", ".join(ranges) if ranges else ""


def describe_span(hunks: Sequence[DiffHunk]) -> str:
    """The new-side lines from the first of some consecutive hunks to the last, e.g. "lines 10-120"."""
    if not hunks:
        return ""
    first, last = hunks[0].new_range()[0], hunks[-1].new_range()[1]
    return f"lines {first}" if first == last else f"lines {first}-{last}"

"""A tolerant, line-level reading of unified diff text: where files and hunks start, where each hunk's
body really ends, and how many lines it really has on each side.

unidiff trusts the counts in hunk headers; chat damages exactly those (a trailing context line trimmed
away, a hand-edited hunk). This scanner recounts from the line shapes instead, so detection can find
the diff's extent in a message and the parser can rewrite headers that no longer match.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)$")
GIT_DIFF_HEADER = "diff --git "
_EXTENDED_HEADER = re.compile(
    r"^(index [0-9a-f]+\.\.[0-9a-f]+"
    r"|(old|new|deleted file|new file) mode \d+"
    r"|(dis)?similarity index \d+%"
    r"|(rename|copy) (from|to) "
    r"|Binary files .* differ$)"
)
_BINARY_PATCH_MARKER = "GIT binary patch"
_BINARY_PAYLOAD = re.compile(r"^((literal|delta) \d+|[A-Za-z][0-9A-Za-z!#$%&()*+\-;<=>?@^_`{|}~]*)$")
_GIT_VERSION = re.compile(r"^\d+(\.\d+)+")
_BODY_MARKERS = frozenset(" +-\\")


@dataclass(frozen=True, slots=True)
class ScannedHunk:
    header_index: int
    body_end: int
    old_start: int
    new_start: int
    declared_old: int
    declared_new: int
    counted_old: int
    counted_new: int
    section: str

    @property
    def consistent(self) -> bool:
        return (self.counted_old, self.counted_new) == (self.declared_old, self.declared_new)


@dataclass(slots=True)
class ScannedFile:
    first_index: int
    header_indices: tuple[int, ...]
    synthetic: bool = False
    hunks: list[ScannedHunk] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DiffScan:
    files: tuple[ScannedFile, ...]
    start: int
    end: int

    @property
    def hunks(self) -> list[ScannedHunk]:
        return [hunk for file in self.files for hunk in file.hunks]

    def has_diff(self, *, headers_required: bool) -> bool:
        """At least one hunk, in a file with real headers unless headerless hunks are acceptable."""
        return any(file.hunks and not (headers_required and file.synthetic) for file in self.files)


def split_lines(text: str) -> list[str]:
    """Lines without terminators, whatever the platform did to them (CRLF, CR before LF)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def scan_diff(lines: Sequence[str], *, headerless: bool = False) -> DiffScan:
    """Find files and hunks in `lines`. With `headerless`, hunks outside any file header count too,
    under a synthetic file (a pasted ```diff block often has no ---/+++ lines)."""
    files: list[ScannedFile] = []
    current: ScannedFile | None = None
    start: int | None = None
    end = 0
    i = 0
    while i < len(lines):
        header_end = _file_header_end(lines, i)
        if header_end is not None:
            current = ScannedFile(i, tuple(range(i, header_end)))
            files.append(current)
            start = i if start is None else start
            i = end = header_end
            continue
        header = HUNK_HEADER.match(lines[i])
        if header and (current is not None or headerless):
            if current is None:
                current = ScannedFile(i, (), synthetic=True)
                files.append(current)
            hunk = _scan_hunk(lines, i, header)
            current.hunks.append(hunk)
            start = i if start is None else start
            i = end = hunk.body_end
            continue
        if lines[i].strip():
            current = None
        i += 1
    return DiffScan(tuple(files), start if start is not None else 0, end)


def _file_header_end(lines: Sequence[str], i: int) -> int | None:
    """If a file's header starts at line `i`, the index just past it (git's extended header lines,
    the ---/+++ pair and any binary payload included); else None."""
    line = lines[i]
    if _is_path_pair(lines, i):
        return i + 2
    if not line.startswith(GIT_DIFF_HEADER):
        return None
    j = i + 1
    while j < len(lines):
        if _EXTENDED_HEADER.match(lines[j]):
            j += 1
        elif lines[j] == _BINARY_PATCH_MARKER:
            j = _binary_payload_end(lines, j + 1)
        elif _is_path_pair(lines, j):
            return j + 2
        else:
            break
    return j


def _is_path_pair(lines: Sequence[str], i: int) -> bool:
    return lines[i].startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ ")


def _binary_payload_end(lines: Sequence[str], i: int) -> int:
    while i < len(lines) and (lines[i] == "" or _BINARY_PAYLOAD.match(lines[i])):
        i += 1
    return i


def is_mail_signature(lines: Sequence[str], i: int) -> bool:
    """git format-patch ends a mail with "-- " and the git version; chat may strip the space."""
    if lines[i] not in ("--", "-- "):
        return False
    return i + 1 >= len(lines) or bool(_GIT_VERSION.match(lines[i + 1]))


def _is_body_line(lines: Sequence[str], i: int) -> bool:
    line = lines[i]
    if line == "":
        return True
    if line[0] not in _BODY_MARKERS:
        return False
    return not (_is_path_pair(lines, i) or is_mail_signature(lines, i))


def _scan_hunk(lines: Sequence[str], i: int, header: re.Match[str]) -> ScannedHunk:
    declared_old = int(header[2]) if header[2] is not None else 1
    declared_new = int(header[4]) if header[4] is not None else 1
    counts = [0, 0]
    j = i + 1
    while j < len(lines) and (counts[0] < declared_old or counts[1] < declared_new):
        if not _is_body_line(lines, j):
            break
        _count_line(lines[j], counts)
        j += 1
    if counts != [declared_old, declared_new]:
        # The header promised more than is here; blank lines at the end are separators, not context.
        while j > i + 1 and lines[j - 1] == "":
            j -= 1
            counts[0] -= 1
            counts[1] -= 1
    # Marked or uncounted lines directly after a complete hunk still belong to it (a hand edit).
    while j < len(lines) and lines[j] and _is_body_line(lines, j):
        _count_line(lines[j], counts)
        j += 1
    return ScannedHunk(
        header_index=i,
        body_end=j,
        old_start=int(header[1]),
        new_start=int(header[3]),
        declared_old=declared_old,
        declared_new=declared_new,
        counted_old=counts[0],
        counted_new=counts[1],
        section=header[5],
    )


def _count_line(line: str, counts: list[int]) -> None:
    marker = line[:1]
    if marker == "-":
        counts[0] += 1
    elif marker == "+":
        counts[1] += 1
    elif marker != "\\":
        counts[0] += 1
        counts[1] += 1

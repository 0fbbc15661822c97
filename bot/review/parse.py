"""Diff text -> files and hunks, with unidiff, surviving what chat does to pasted text.

Order of attempts: strict unidiff parse of the diff as it stands; if that fails, or the hunk headers
disagree with a recount of the lines present, rewrite the headers from the recount and parse again;
if that fails too, the text is reviewed as plain code and the result says so.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from dataclasses import dataclass

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError
from unidiff.patch import Hunk, PatchedFile

from bot.review.scan import GIT_DIFF_HEADER, DiffScan, ScannedHunk, scan_diff, split_lines
from bot.review.types import DiffHunk, DiffInput, DiffLine, FileDiff, LineKind, ParsedDiff

PLAIN_CODE_PATH = "pasted-code"
# Plain code is cut into pieces of this many lines so that a long paste can still be split across calls.
PLAIN_CODE_PIECE_LINES = 200
_GIT_PATH_PREFIXES = ("a/", "b/")


def parse_diff_input(diff_input: DiffInput) -> ParsedDiff:
    """Parse every source of a detected diff into one result carrying the question along."""
    files: list[FileDiff] = []
    repaired = plain = False
    for number, source in enumerate(diff_input.sources, start=1):
        fallback_name = source.name or (PLAIN_CODE_PATH if number == 1 else f"{PLAIN_CODE_PATH}-{number}")
        parsed = parse_diff(source.text, plain_name=fallback_name)
        files.extend(parsed.files)
        repaired = repaired or parsed.repaired_headers
        plain = plain or parsed.plain_code
    context = "\n\n".join(s.description for s in diff_input.sources if s.description)
    return ParsedDiff(tuple(files), diff_input.question, context, repaired, plain)


def parse_diff(text: str, *, plain_name: str = PLAIN_CODE_PATH) -> ParsedDiff:
    lines = split_lines(text)
    scan = scan_diff(lines)
    lines = _with_trimmed_file_headers(lines, scan)
    # unidiff trusts the header counts, and silently leaves out lines they do not cover: only a diff
    # whose counts match a recount is parsed as it stands.
    consistent = all(hunk.consistent for hunk in scan.hunks)
    patch = _parse_text(_join(lines)) if consistent else None
    if patch is not None:
        return ParsedDiff(tuple(_file_diff(f) for f in patch))
    repaired_text = _recounted(lines, scan)
    patch = _parse_text(repaired_text) if repaired_text is not None else None
    if patch is not None:
        return ParsedDiff(tuple(_file_diff(f) for f in patch), repaired_headers=True)
    return ParsedDiff((plain_code_file(lines, plain_name),), plain_code=True)


def _with_trimmed_file_headers(lines: list[str], scan: DiffScan) -> list[str]:
    """Chat turns the tab git writes after a path containing spaces into spaces; headers need none."""
    trimmed = list(lines)
    for file in scan.files:
        for index in file.header_indices:
            trimmed[index] = trimmed[index].rstrip()
    return trimmed


def _parse_text(text: str) -> PatchSet | None:
    try:
        patch = PatchSet(text)
    except (UnidiffParseError, UnicodeError, ValueError):
        return None
    return patch if len(patch) else None


def repair_hunk_headers(lines: Sequence[str]) -> str | None:
    """The diff with every hunk header rewritten from the lines actually present, or None when no
    hunk has any lines. A hunk whose line balance changed moves the new-side start of the hunks
    after it in the same file, as a re-generated diff would."""
    return _recounted(list(lines), scan_diff(lines))


def _recounted(lines: list[str], scan: DiffScan) -> str | None:
    if not any(hunk.counted_old or hunk.counted_new for hunk in scan.hunks):
        return None
    repaired = list(lines)
    for file in scan.files:
        shift = 0
        for hunk in file.hunks:
            repaired[hunk.header_index] = _recounted_header(hunk, hunk.new_start + shift)
            shift += (hunk.counted_new - hunk.counted_old) - (hunk.declared_new - hunk.declared_old)
    return _join(_without_empty_hunks(repaired, scan))


def _recounted_header(hunk: ScannedHunk, new_start: int) -> str:
    section = f" {hunk.section}" if hunk.section else ""
    return f"@@ -{hunk.old_start},{hunk.counted_old} +{new_start},{hunk.counted_new} @@{section}"


def _without_empty_hunks(lines: list[str], scan: DiffScan) -> list[str]:
    empty = {h.header_index for h in scan.hunks if h.counted_old == h.counted_new == 0}
    return [line for index, line in enumerate(lines) if index not in empty]


def _join(lines: Sequence[str]) -> str:
    return "\n".join(lines) + "\n" if lines else ""


def plain_code_file(lines: Sequence[str], name: str) -> FileDiff:
    """The text as one file whose every line is under review, numbered from 1."""
    hunks = []
    for start in range(0, len(lines), PLAIN_CODE_PIECE_LINES):
        piece = lines[start : start + PLAIN_CODE_PIECE_LINES]
        numbered = tuple(
            DiffLine(LineKind.ADDED, text, None, start + offset + 1) for offset, text in enumerate(piece)
        )
        hunks.append(DiffHunk(0, 0, start + 1, len(piece), "", numbered))
    return FileDiff(path=name, hunks=tuple(hunks), is_plain_code=True)


def _file_diff(patched: PatchedFile) -> FileDiff:
    git = _git_status(patched)
    if git is None:  # no git header: judge by the ---/+++ paths, as unidiff does
        return FileDiff(
            path=unquote_path(patched.path), old_path=_old_path(patched) if patched.is_rename else None,
            hunks=tuple(_hunk(h) for h in patched), is_binary=patched.is_binary_file,
            is_new=patched.is_added_file, is_deleted=patched.is_removed_file,
            old_mode=patched.source_mode, new_mode=patched.target_mode,
        )
    return FileDiff(
        path=unquote_path(patched.path),
        old_path=git.old_path,
        hunks=tuple(_hunk(h) for h in patched),
        is_binary=patched.is_binary_file,
        is_new=git.is_new,
        is_deleted=git.is_deleted,
        old_mode=patched.source_mode,
        new_mode=patched.target_mode,
        is_copy=git.is_copy,
    )


@dataclass(frozen=True, slots=True)
class _GitStatus:
    old_path: str | None
    is_copy: bool
    is_new: bool
    is_deleted: bool


def _git_status(patched: PatchedFile) -> _GitStatus | None:
    """How git itself says the file changed, from its extended header lines (git-diff(1), "generating
    patch text with -p"); None when the file has no `diff --git` header. Hunk shapes are not evidence:
    an empty file's first line looks like a new file, a copy like a rename."""
    header = [line.rstrip("\r\n") for line in patched.patch_info or ()]
    if not header or not header[0].startswith(GIT_DIFF_HEADER):
        return None
    old_path, is_copy = None, False
    for line in header[1:]:
        for verb in ("rename", "copy"):
            if line.startswith(f"{verb} from "):
                old_path, is_copy = unquote_path(line[len(verb) + 6:]), verb == "copy"
    if old_path is None and patched.is_rename:  # a header cut short by chat: the paths still differ
        old_path = _old_path(patched)
    return _GitStatus(old_path, is_copy, any(line.startswith("new file mode ") for line in header),
                      any(line.startswith("deleted file mode ") for line in header))


def _old_path(patched: PatchedFile) -> str:
    source = patched.source_file
    quoted = source.startswith('"') and source.endswith('"')
    if quoted:
        source = source[1:-1]
    if source.startswith(_GIT_PATH_PREFIXES):
        source = source[2:]
    return unquote_path(f'"{source}"' if quoted else source)


def _hunk(hunk: Hunk) -> DiffHunk:
    lines = tuple(
        DiffLine(LineKind(line.line_type), line.value.rstrip("\n"), line.source_line_no, line.target_line_no)
        for line in hunk
        if line.line_type in (LineKind.ADDED, LineKind.REMOVED, LineKind.CONTEXT)
    )
    return DiffHunk(
        hunk.source_start,
        hunk.source_length,
        hunk.target_start,
        hunk.target_length,
        hunk.section_header.strip(),
        lines,
    )


def unquote_path(path: str) -> str:
    """git quotes paths with unusual bytes as C strings ("caf\\303\\251.py"); undo that."""
    if not (len(path) >= 2 and path.startswith('"') and path.endswith('"')):
        return path
    try:
        return codecs.escape_decode(path[1:-1].encode("ascii"))[0].decode("utf-8")
    except (UnicodeError, ValueError):
        return path[1:-1]

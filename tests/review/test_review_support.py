"""Helpers for the review tests: a throwaway git repository, the ways chat mangles pasted text, and
checks shared by several test modules. (No tests here.)"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from bot.review.types import FileDiff, LineKind, ParsedDiff

# The smallest valid PNG: signature, IHDR, IDAT, IEND. Has NUL bytes, so git treats it as binary.
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d4944415478da63f8cfc0f01f0005000201a5f3f5d30000000049454e44ae426082"
)


class GitRepo:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.name", "Review Test")
        self.git("config", "user.email", "review@example.com")
        self.git("config", "core.autocrlf", "false")
        self.git("config", "commit.gpgsign", "false")

    def git(self, *args: str) -> str:
        done = subprocess.run(["git", *args], cwd=self.root, check=True, capture_output=True)
        return done.stdout.decode("utf-8")

    def write(self, path: str, content: str | bytes) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_bytes(content.encode("utf-8"))

    def remove(self, path: str) -> None:
        self.git("rm", "-q", path)

    def commit(self, message: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)

    def staged_diff(self, *args: str) -> str:
        self.git("add", "-A")
        return self.git("diff", "--cached", *args)

    def lines_of(self, path: str) -> list[str]:
        """The working-tree file as the new side of a diff numbers it."""
        data = (self.root / path).read_bytes().decode("utf-8")
        lines = data.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return [line.rstrip("\r") for line in lines]


# --- what chat does to pasted text ---------------------------------------------------------------


def with_crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


def with_trailing_whitespace_stripped(text: str) -> str:
    """Per-line trailing whitespace gone, and the message trimmed at both ends."""
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


def with_tabs_as_spaces(text: str) -> str:
    return text.replace("\t", "    ")


def fully_mangled(text: str) -> str:
    return with_crlf(with_trailing_whitespace_stripped(with_tabs_as_spaces(text)))


MANGLERS = {
    "crlf": with_crlf,
    "stripped": with_trailing_whitespace_stripped,
    "tabs": with_tabs_as_spaces,
    "all": fully_mangled,
}


def as_chat_shows(text: str) -> str:
    """A line's content as it reads after the worst mangling."""
    return text.replace("\t", "    ").rstrip()


# --- shared checks -------------------------------------------------------------------------------


def line_table(parsed: ParsedDiff) -> dict[str, list[tuple[str, int | None, int | None, str]]]:
    """Every line of every file: kind, old number, new number, text as chat would show it."""
    return {
        file.path: [
            (line.kind.value, line.old_number, line.new_number, as_chat_shows(line.text))
            for hunk in file.hunks
            for line in hunk.lines
        ]
        for file in parsed.files
    }


def assert_new_numbers_point_at_file(file: FileDiff, new_lines: list[str]) -> None:
    """Each added or unchanged line's new-side number names the line of the new file it shows."""
    checked = 0
    for hunk in file.hunks:
        for line in hunk.lines:
            if line.kind is LineKind.REMOVED:
                assert line.new_number is None
                continue
            assert line.new_number is not None
            assert as_chat_shows(line.text) == as_chat_shows(new_lines[line.new_number - 1]), (
                file.path,
                line.new_number,
            )
            checked += 1
    assert checked > 0


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


def open_fence_at_end(markdown: str) -> str | None:
    """CommonMark's reading of fenced code blocks: the fence still open at the end, if any."""
    open_fence: str | None = None
    for line in markdown.split("\n"):
        match = _FENCE.match(line)
        if not match:
            continue
        fence, info = match[1], match[2]
        if open_fence is None and not (fence[0] == "`" and "`" in info):
            open_fence = fence
        elif open_fence and fence[0] == open_fence[0] and len(fence) >= len(open_fence) and not info.strip():
            open_fence = None
    return open_fence


_PROMPT_FILE = re.compile(r'^<file path="(?P<path>[^"]+)"')
_PROMPT_ADDED = re.compile(r"^\s*(?P<number>\d+) \+(?: |$)")


def added_lines_in_prompt(prompt: str) -> list[tuple[str, int]]:
    """(path, new line number) of every added line written in a review prompt."""
    found: list[tuple[str, int]] = []
    path = ""
    for line in prompt.split("\n"):
        if opened := _PROMPT_FILE.match(line):
            path = opened["path"]
        elif added := _PROMPT_ADDED.match(line):
            found.append((path, int(added["number"])))
    return found


def parse_line_ranges(detail: str) -> list[tuple[int, int]]:
    """ "lines 3-9, 12" -> [(3, 9), (12, 12)]."""
    ranges = []
    for piece in detail.removeprefix("lines ").split(", "):
        first, _, last = piece.partition("-")
        ranges.append((int(first), int(last or first)))
    return ranges

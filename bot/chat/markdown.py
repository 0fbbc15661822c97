"""Markdown helpers shared by prompts, reviews and platform adapters: code fences and languages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

_LANGUAGE_BY_EXTENSION = {
    "py": "python",
    "pyi": "python",
    "ts": "typescript",
    "tsx": "tsx",
    "js": "javascript",
    "jsx": "jsx",
    "mjs": "javascript",
    "cjs": "javascript",
    "go": "go",
    "rs": "rust",
    "java": "java",
    "kt": "kotlin",
    "kts": "kotlin",
    "scala": "scala",
    "rb": "ruby",
    "php": "php",
    "cs": "csharp",
    "swift": "swift",
    "m": "objectivec",
    "c": "c",
    "h": "c",
    "cc": "cpp",
    "cpp": "cpp",
    "cxx": "cpp",
    "hpp": "cpp",
    "hh": "cpp",
    "sh": "bash",
    "bash": "bash",
    "zsh": "bash",
    "ps1": "powershell",
    "yml": "yaml",
    "yaml": "yaml",
    "json": "json",
    "toml": "toml",
    "ini": "ini",
    "xml": "xml",
    "html": "html",
    "css": "css",
    "scss": "scss",
    "sql": "sql",
    "md": "markdown",
    "lua": "lua",
    "dart": "dart",
    "ex": "elixir",
    "exs": "elixir",
    "erl": "erlang",
    "hs": "haskell",
    "r": "r",
    "pl": "perl",
    "tf": "hcl",
    "proto": "protobuf",
    "vue": "vue",
    "gradle": "groovy",
    "groovy": "groovy",
    "diff": "diff",
    "patch": "diff",
}
_LANGUAGE_BY_FILE_NAME = {
    "Dockerfile": "dockerfile",
    "Makefile": "makefile",
    "CMakeLists.txt": "cmake",
    "Jenkinsfile": "groovy",
    "Gemfile": "ruby",
    "Rakefile": "ruby",
}

_BACKTICK_RUN = re.compile(r"`{3,}")


def language_for(path: str) -> str:
    """The fence language for a file, from its name or extension ("" when unknown)."""
    name = PurePosixPath(path).name
    if name in _LANGUAGE_BY_FILE_NAME:
        return _LANGUAGE_BY_FILE_NAME[name]
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    return _LANGUAGE_BY_EXTENSION.get(extension, "")


def fence_for(content: str) -> str:
    """A backtick fence longer than any run of three or more backticks inside `content`."""
    longest = max((len(run) for run in _BACKTICK_RUN.findall(content)), default=2)
    return "`" * (longest + 1)


def code_block(code: str, language: str = "") -> str:
    """A fenced block that the code cannot close."""
    fence = fence_for(code)
    return f"{fence}{language}\n{code}\n{fence}"


# Fences as chat renders them: any indentation is accepted, since answers put code inside list items.
_FENCE_LINE = re.compile(r"^([ \t]*)(`{3,}|~{3,})(.*)$")
_INFO_CHARS = 32


@dataclass(frozen=True, slots=True)
class Fence:
    """An open fenced code block: how it was opened, so it can be closed and reopened alike."""

    indent: str
    marker: str  # the run of backticks or tildes that opened it; closing needs as many
    info: str  # the language (first word of the info string), possibly ""

    @property
    def opener(self) -> str:
        return f"{self.indent}{self.marker}{self.info}"

    @property
    def closer(self) -> str:
        return f"{self.indent}{self.marker}"


def fence_step(fence: Fence | None, line: str) -> Fence | None:
    """The code block open after one complete `line`, given the one open before it (CommonMark rules)."""
    match = _FENCE_LINE.match(line)
    if match is None:
        return fence
    indent, marker, rest = match.groups()
    if fence is None:
        if marker[0] == "`" and "`" in rest:
            return None  # ```inline``` on one line is not an opening fence
        words = rest.split()
        return Fence(indent, marker, words[0][:_INFO_CHARS] if words else "")
    closes = marker[0] == fence.marker[0] and len(marker) >= len(fence.marker) and not rest.strip()
    return None if closes else fence


def open_fence(text: str, fence: Fence | None = None) -> Fence | None:
    """The code block still open at the end of `text` (its last line counts without a newline), if
    `fence` was open at its start."""
    for line in text.split("\n"):
        fence = fence_step(fence, line)
    return fence


def balance_fences(text: str) -> str:
    """`text` with a closing fence added if it leaves a code block open."""
    fence = open_fence(text)
    return text if fence is None else f"{text}\n{fence.closer}"

"""Markdown helpers shared by prompts, reviews and platform adapters: code fences and languages."""

from __future__ import annotations

import re
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

"""Attachments: which to read, reading them, and a plain sentence for each one refused.

A file is judged by its name and size first (Discord's content_type is a guess, and absent on some
uploads); the size check comes before any download, so a 5 MB file is never fetched. Text and source
files are read and must decode as UTF-8 without NUL bytes; images go to the model as images; the
rest is refused with one sentence the core shows to the user (`Attachment.skipped_reason`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Protocol

import aiohttp
import discord

from bot.chat.markdown import language_for
from bot.domain import Attachment, AttachmentKind

log = logging.getLogger(__name__)

IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
               ".webp": "image/webp"}
TEXT_SUFFIXES = frozenset({
    ".py", ".pyi", ".js", ".mjs", ".cjs", ".ts", ".tsx", ".jsx", ".go", ".rs", ".java", ".kt", ".kts", ".scala",
    ".rb", ".php", ".cs", ".swift", ".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".sh", ".bash", ".zsh",
    ".fish", ".ps1", ".bat", ".sql", ".yaml", ".yml", ".json", ".toml", ".ini", ".cfg", ".conf", ".xml", ".html",
    ".htm", ".css", ".scss", ".sass", ".less", ".md", ".rst", ".adoc", ".txt", ".log", ".diff", ".patch", ".csv",
    ".tsv", ".env", ".properties", ".gradle", ".groovy", ".mk", ".cmake", ".proto", ".graphql", ".gql", ".vue",
    ".svelte", ".dart", ".lua", ".pl", ".pm", ".r", ".ex", ".exs", ".erl", ".hs", ".tf", ".hcl", ".m", ".mm",
    ".tex", ".nix", ".zig", ".jl", ".clj", ".el", ".vim", ".lock", ".sum", ".mod", ".svg", ".j2", ".tmpl", ".tpl",
    ".ipynb", ".dockerfile",
})
TEXT_NAMES = frozenset({"dockerfile", "makefile", "gemfile", "procfile", "rakefile", "vagrantfile", "jenkinsfile",
                        "readme", "license", "changelog", "codeowners", ".gitignore", ".dockerignore",
                        ".editorconfig", ".gitattributes", ".npmrc", ".bashrc", ".zshrc", ".profile"})
TEXT_CONTENT_TYPES = ("text/", "application/json", "application/xml", "application/javascript",
                      "application/x-sh", "application/x-yaml", "application/toml", "application/sql")


class Plan(StrEnum):
    TEXT = "text"  # download, must be UTF-8 text
    IMAGE = "image"  # download, send as an image
    SKIP = "skip"  # refuse without downloading


@dataclass(frozen=True, slots=True)
class FileInfo:
    filename: str
    size: int
    content_type: str = ""


def plan_for(info: FileInfo, *, max_text_bytes: int, max_image_bytes: int) -> tuple[Plan, str]:
    """PURE: what to do with a file, and for SKIP the reason (a clause following "NAME was skipped:")."""
    path = PurePosixPath(info.filename.lower())
    suffix = path.suffix if path.suffix != path.name else ""
    content_type = (info.content_type or "").split(";")[0].strip().lower()
    if suffix in IMAGE_TYPES:
        if info.size > max_image_bytes:
            return Plan.SKIP, f"it is {human_size(info.size)}, over the {human_size(max_image_bytes)} limit for images"
        return Plan.IMAGE, ""
    textual = (suffix in TEXT_SUFFIXES or path.name in TEXT_NAMES or not suffix or bool(language_for(info.filename))
               or content_type.startswith(TEXT_CONTENT_TYPES))
    if not textual:
        kind = f"a {suffix} file" if suffix else "this kind of file"
        return Plan.SKIP, f"{kind} is not something I can read (text, source code and images only)"
    if info.size > max_text_bytes:
        return Plan.SKIP, (f"it is {human_size(info.size)}, over the {human_size(max_text_bytes)} limit for text "
                           "files")
    return Plan.TEXT, ""


def text_or_refusal(filename: str, data: bytes) -> Attachment:
    """PURE: a downloaded text file, or its refusal when the bytes are not UTF-8 text."""
    try:
        data.decode("utf-8")
        binary = b"\x00" in data
    except UnicodeDecodeError:
        binary = True
    if binary:
        return skipped(filename, len(data), "it looks like a binary file, not text")
    return Attachment(filename=filename, kind=AttachmentKind.TEXT, size=len(data), data=data,
                      content_type="text/plain")


def skipped(filename: str, size: int, reason: str) -> Attachment:
    return Attachment(filename=filename, kind=AttachmentKind.SKIPPED, size=size, skipped_reason=reason)


def human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB".replace(".0 MB", " MB")
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} bytes"


class Downloadable(Protocol):
    """What we use of a discord.Attachment."""

    filename: str
    size: int
    content_type: str | None

    async def read(self, *, use_cached: bool = False) -> bytes: ...


class AttachmentReader:
    """Reads a message's attachments concurrently, within the size limits from Settings."""

    def __init__(self, *, max_text_bytes: int, max_image_bytes: int) -> None:
        self._max_text = max_text_bytes
        self._max_image = max_image_bytes

    async def read_all(self, attachments: Iterable[Downloadable]) -> tuple[Attachment, ...]:
        return tuple(await asyncio.gather(*(self.read(a) for a in attachments)))

    async def read(self, attachment: Downloadable) -> Attachment:
        name = attachment.filename
        info = FileInfo(name, attachment.size, attachment.content_type or "")
        plan, reason = plan_for(info, max_text_bytes=self._max_text, max_image_bytes=self._max_image)
        if plan is Plan.SKIP:
            return skipped(name, attachment.size, reason)
        try:
            data = await attachment.read()
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("could not download attachment %s: %s", name, exc)
            return skipped(name, attachment.size, "it could not be downloaded from Discord")
        limit = self._max_image if plan is Plan.IMAGE else self._max_text
        if len(data) > limit:  # the size Discord announced was wrong
            return skipped(name, len(data), f"it is {human_size(len(data))}, over the {human_size(limit)} limit")
        if plan is Plan.IMAGE:
            content_type = info.content_type if info.content_type.startswith("image/") else ""
            suffix = PurePosixPath(name.lower()).suffix
            return Attachment(filename=name, kind=AttachmentKind.IMAGE, size=len(data), data=data,
                              content_type=content_type or IMAGE_TYPES.get(suffix, "image/png"))
        return text_or_refusal(name, data)

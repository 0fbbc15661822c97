"""Cutting a Markdown answer into Slack messages, as it streams. Pure: no I/O, no clock.

Slack takes at most 12,000 characters of `markdown_text` per message. A long answer therefore
continues in further messages, and a cut inside a fenced code block must not break it: the block is
closed at the end of one message and reopened, with its language, at the start of the next.

`MarkdownSplitter.feed(delta)` returns a list of strings: the first continues the current message,
each further one starts a new message. `finish(footer)` does the same for the end of the answer
(closing a fence the model left open, then the footer). Joining everything a splitter returned, minus
the fence lines it added at the cuts, gives back exactly the text it was fed.
"""

from __future__ import annotations

import re

from bot.markdown import Fence, fence_step

MESSAGE_LIMIT = 12_000
# Every message keeps this much room for a closing fence and, on the last one, the footer line.
FOOTER_ROOM = 1_600
CONTENT_LIMIT = MESSAGE_LIMIT - FOOTER_ROOM
# Past this share of the limit a message ends at the next line break outside a code block, so that
# most cuts fall between paragraphs rather than mid-line.
SOFT_SHARE = 0.85
# Within this many characters of the limit, even a code block is cut at the next line start.
LINE_ROOM = 400
FOOTER_MAX_CHARS = 1_400  # notes about skipped files can make it long
# A fence marker (with its language) longer than this is never closed or reopened at a cut.
MAX_FENCE_CHARS = 100

_MARKDOWN_SPECIALS = re.compile(r"([\\`*_~])")
_LINES = re.compile(r"[^\n]*\n|[^\n]+")


def footer_markdown(text: str) -> str:
    """The footer as the answer's last line: a blank line, then the text in italics."""
    text = " ".join(text.split())
    if not text:
        return ""
    escaped = _MARKDOWN_SPECIALS.sub(r"\\\1", text)
    if len(escaped) > FOOTER_MAX_CHARS:
        escaped = escaped[: FOOTER_MAX_CHARS - 1]
        if (len(escaped) - len(escaped.rstrip("\\"))) % 2:
            escaped = escaped[:-1]  # never leave half an escape before the closing underscore
        escaped += "…"
    return f"\n\n_{escaped}_"


class MarkdownSplitter:
    """Tracks one answer's position in its current message and in code fences, and cuts it."""

    def __init__(self, limit: int = CONTENT_LIMIT, soft_share: float = SOFT_SHARE) -> None:
        if limit < 200:
            raise ValueError("limit must leave room for a fence line and some text")
        self._limit = limit
        self._soft = int(limit * soft_share)
        self._late = limit - min(LINE_ROOM, limit // 10)
        self._length = 0  # characters in the current message
        self._header = 0  # of which the reopened fence line at its start
        self._line = ""  # the current, unfinished line of the answer
        self._fence: Fence | None = None
        self._cut_pending = False
        self.messages = 1

    @property
    def fence(self) -> Fence | None:
        return self._fence

    @property
    def length(self) -> int:
        return self._length

    def feed(self, text: str) -> list[str]:
        out = [""]
        for piece in _LINES.findall(text):
            if self._cut_pending:
                self._cut(out)
            if not self._line and self._length > self._header and self._length >= self._late:
                self._cut(out)  # near the limit, a new line starts a new message rather than risk a mid-line cut
            while piece:
                room = self._limit - self._length
                if len(piece) <= room:
                    self._emit(out, piece)
                    piece = ""
                    if not self._line and self._fence is None and self._length >= self._soft:
                        self._cut_pending = True  # cut lazily: the answer may end right here
                else:
                    cut = self._cut_point(piece, room)
                    self._emit(out, piece[:cut])
                    piece = piece[cut:]
                    self._cut(out)
        return out

    def finish(self, footer: str = "") -> list[str]:
        """Close a fence the answer left open and append `footer` (it fits: FOOTER_ROOM is kept free)."""
        out = [""]
        fence = fence_step(self._fence, self._line) if self._line else self._fence
        if _closable(fence):
            out[0] += ("\n" if self._line else "") + fence.closer
        self._line, self._fence, self._cut_pending = "", None, False
        out[0] += footer
        self._length += len(out[0])
        return out

    def _emit(self, out: list[str], text: str) -> None:
        out[-1] += text
        self._length += len(text)
        self._line += text
        if self._line.endswith("\n"):
            self._fence = fence_step(self._fence, self._line[:-1].rstrip("\r"))
            self._line = ""

    def _cut(self, out: list[str]) -> None:
        reopen = ""
        if _closable(self._fence):
            out[-1] += ("\n" if self._line else "") + self._fence.closer
            reopen = self._fence.opener + "\n"
        out.append(reopen)
        self._length = self._header = len(reopen)
        self._cut_pending = False
        self.messages += 1

    def _cut_point(self, piece: str, room: int) -> int:
        """Where to cut a line that does not fit: after a space outside code, else at the limit."""
        room = max(room, 1)
        if self._fence is None:
            space = piece.rfind(" ", 0, room)
            if space >= room // 2:
                return space + 1
        return room


def _closable(fence: Fence | None) -> bool:
    """Whether a fence is closed and reopened at cuts: not one whose marker alone would not fit in the
    room kept for it (a line of thousands of backticks is text, as far as message limits go)."""
    return fence is not None and len(fence.opener) <= MAX_FENCE_CHARS


def split_markdown(text: str, footer: str = "", limit: int = CONTENT_LIMIT) -> list[str]:
    """A whole answer at once: the messages it takes, the footer on the last."""
    splitter = MarkdownSplitter(limit)
    parts = splitter.feed(text)
    tail = splitter.finish(footer)
    parts[-1] += tail[0]
    return [p for p in parts + tail[1:] if p]

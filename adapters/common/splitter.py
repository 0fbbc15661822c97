"""Cutting a Markdown answer into chat messages as it streams: the one splitter of every platform.

Pure: no I/O, no clock. A platform gives a `limit` (characters per message, everything included) and a
`footer_room` (kept free on the last message for the footer). Cuts follow three rules:

- Code fences stay whole per message: a block cut in two is closed at the end of one message and
  reopened, with its language, at the start of the next (bot.chat.markdown tracks the fences).
- Past SOFT_SHARE of the room a message ends at the next line break outside a code block, so most
  cuts fall between paragraphs; otherwise at the last space, otherwise between two grapheme clusters
  (user-perceived characters, Unicode UAX #29, from the `regex` module's `\\X`), never inside one:
  `👩‍💻` or a flag is never split across messages.
- A cut is not made final at once: the text after it is held back (up to half the footer room). If the
  answer ends meanwhile, that tail and the footer fit in the message being written, so an answer never
  ends in a message holding a few characters and the footer, or the footer alone.

`MarkdownSplitter.feed(delta)` returns a list of strings: the first continues the current message, each
further one starts a new message. `finish(footer)` does the same for the end of the answer (closing a
fence the model left open, then the footer). Joining everything a splitter returned, minus the fence
lines it added at the cuts and the footer, gives back exactly the text it was fed.
"""

from __future__ import annotations

import re

import regex

from bot.chat.markdown import Fence, fence_step, open_fence

# Past this share of the room a message ends at the next line break outside a code block.
SOFT_SHARE = 0.85
# Within this many characters of the room, even a code block is cut at the next line start.
LINE_ROOM = 400
# Fences are closed and reopened at cuts only up to this many indent and marker characters; a longer
# one (hundreds of backticks) would eat the message, so it is left as it is.
MAX_DECORATION = 40
# What closing a fence at a cut can add: a line break and the closing marker.
FENCE_ROOM = MAX_DECORATION + 1
MIN_ROOM = 150

_GRAPHEME = regex.compile(r"\X")
_LINE = re.compile(r"[^\n]*\n|[^\n]+")
# A trailing cluster ending in these is complete in any real text; others may still grow (a combining
# accent, the rest of a ZWJ emoji sequence), so they wait for the next delta.
_SETTLED_ENDINGS = ("\n", " ", "\t")
# The longest unfinished word a streamed delta holds back (see MarkdownSplitter.feed).
MAX_WORD_WAIT = 64


def grapheme_ends(text: str) -> list[int]:
    """Offsets in `text` right after each grapheme cluster (UAX #29 extended clusters), in order."""
    return [match.end() for match in _GRAPHEME.finditer(text)]


def last_boundary(text: str, index: int) -> int:
    """The last grapheme-cluster boundary at or before `index` in `text`, judged from the characters
    around it (a cluster longer than MAX_WORD_WAIT characters counts as ending at the window's start)."""
    if index <= 0:
        return 0
    if index < len(text) and text[index - 1].isascii() and text[index].isascii():
        # Between two ASCII characters there is always a boundary, except inside CR LF (UAX #29 GB3).
        return index - 1 if text[index - 1:index + 1] == "\r\n" else index
    start = max(0, index - 2 * MAX_WORD_WAIT)
    ends = grapheme_ends(text[start:index + 2 * MAX_WORD_WAIT])
    return start + max((end for end in ends if start + end <= index), default=0)


def clip(text: str, limit: int, ellipsis: str = "…") -> str:
    """`text` cut to at most `limit` characters on a grapheme-cluster boundary, `ellipsis` marking the
    cut (counted in the limit). Unchanged when it fits. Raises ValueError if `limit` < len(ellipsis)."""
    if len(text) <= limit:
        return text
    room = limit - len(ellipsis)
    if room < 0:
        raise ValueError("limit is shorter than the ellipsis")
    return text[:last_boundary(text, room)] + ellipsis


def _decorated(fence: Fence | None) -> Fence | None:
    if fence is None or len(fence.closer) > MAX_DECORATION:
        return None
    return fence


class _Line:
    """The answer's current, unfinished line, in pieces: text without line breaks can make one line very
    long, and it grows once per delta (joining it each time would cost its length every time)."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self.length = 0

    def __bool__(self) -> bool:
        return self.length > 0

    def add(self, text: str) -> None:
        if text:
            self._parts.append(text)
            self.length += len(text)

    def text(self) -> str:
        joined = "".join(self._parts)
        self._parts = [joined] if joined else []
        return joined

    def tail(self, count: int) -> str:
        """The last `count` characters (fewer if the line is shorter)."""
        parts, size = [], 0
        for part in reversed(self._parts):
            parts.append(part)
            size += len(part)
            if size >= count:
                break
        return "".join(reversed(parts))[-count:]


class MarkdownSplitter:
    """One answer's position in its current message and in code fences; cuts it into messages.

    `limit`: the most characters a message may hold (fences and footer included). `footer_room`: kept
    free on the answer's last message for the footer passed to `finish` (which must not be longer).
    Raises ValueError when the two leave under MIN_ROOM characters for text.
    """

    def __init__(self, limit: int, footer_room: int = 0, *, soft_share: float = SOFT_SHARE) -> None:
        room = limit - footer_room - FENCE_ROOM
        if footer_room < 0 or room < MIN_ROOM:
            raise ValueError("limit must leave room for a fence line, the footer and some text")
        self._limit = limit
        self._room = room  # text (and a reopened fence line) per message, before any held tail
        self._soft = int(room * soft_share)
        self._late = room - min(LINE_ROOM, room // 10)
        self._hold_max = footer_room // 2
        self._length = 0  # characters in the current message
        self._header = 0  # of which the reopened fence line at its start
        self._line = _Line()  # the current, unfinished line of the answer
        self._fence: Fence | None = None  # the block open at the start of `_line`
        self._tail = ""  # the last word (or cluster) fed, until the next delta shows it is complete
        self._pending = False  # a cut is decided where the current message's text ends ...
        self._held = ""  # ... and this text, after it, waits to see whether the answer ends first
        self.messages = 1

    def feed(self, text: str) -> list[str]:
        """Parts for `text`: the first continues the current message, each further one starts a new one."""
        text = self._tail + text
        self._tail = ""
        if text and not text.endswith(_SETTLED_ENDINGS):
            # A word still arriving waits for its end, so a cut can fall before it rather than inside
            # it; a "word" too long for that (text without spaces) waits only for its last cluster.
            start = max(text.rfind(ending) for ending in _SETTLED_ENDINGS) + 1
            if len(text) - start > MAX_WORD_WAIT:
                window = len(text) - min(len(text), 2 * MAX_WORD_WAIT)
                ends = grapheme_ends(text[window:])
                start = window + (ends[-2] if len(ends) > 1 else 0)
            text, self._tail = text[:start], text[start:]
        out = [""]
        self._consume(text, out)
        return out

    def finish(self, footer: str = "") -> list[str]:
        """The end of the answer: held text, a closing fence if a block is open, then `footer` (at most
        `footer_room` characters, its separator included). Same shape as `feed`'s result."""
        out = [""]
        text, self._tail = self._tail, ""
        self._consume(text, out)
        if self._pending:
            held, self._held = self._held, ""
            after = _decorated(open_fence(self._line.text() + held, self._fence))
            closing = 1 + len(after.closer) if after else 0
            if self._length + len(held) + closing + len(footer) <= self._limit:
                self._pending = False  # the tail and the footer fit: no cut after all
            else:
                self._cut(out)
            self._emit_lines(out, held)
        close = self.closing()
        self._line, self._fence = _Line(), None
        out[-1] += close + footer
        self._length += len(close) + len(footer)
        return out

    def closing(self) -> str:
        """What would close the current message's open code block if it ended now ("" if none)."""
        fence = _decorated(fence_step(self._fence, self._line.text()) if self._line else self._fence)
        if fence is None:
            return ""
        return ("\n" if self._line else "") + fence.closer

    # -- internals --

    def _consume(self, text: str, out: list[str]) -> None:
        pos = 0
        while pos < len(text):
            if self._pending:
                self._held += text[pos:]
                if len(self._held) <= self._hold_max:
                    return
                text, pos, self._held = self._held, 0, ""
                self._cut(out)
                continue
            if not self._line and self._length > self._header and self._length >= self._late:
                self._pending = True  # near the limit, a new line starts a new message rather than risk a mid-line cut
                continue
            newline = text.find("\n", pos)
            end = len(text) if newline == -1 else newline + 1
            piece = text[pos:end]
            room = self._room - self._length
            if len(piece) <= room:
                self._emit(out, piece)
                pos = end
                if not self._line and self._fence is None and self._length >= self._soft:
                    self._pending = True
            else:
                cut = self._cut_point(piece, room)
                self._emit(out, piece[:cut])
                pos += cut
                self._pending = True

    def _emit(self, out: list[str], text: str) -> None:
        """Text of at most one line (ending the line or not) into the current message."""
        out[-1] += text
        self._length += len(text)
        self._line.add(text)
        if text.endswith("\n"):
            self._fence = fence_step(self._fence, self._line.text()[:-1].rstrip("\r"))
            self._line = _Line()

    def _emit_lines(self, out: list[str], text: str) -> None:
        for line in _LINE.findall(text):
            self._emit(out, line)

    def _reopen(self) -> str:
        fence = _decorated(self._fence)
        return "" if fence is None else fence.opener + "\n"

    def _cut(self, out: list[str]) -> None:
        reopen = self._reopen()
        fence = _decorated(self._fence)
        if fence is not None:
            out[-1] += ("\n" if self._line else "") + fence.closer
        out.append(reopen)
        self._length = self._header = len(reopen)
        self._pending = False
        self.messages += 1

    def _cut_point(self, piece: str, room: int) -> int:
        """Where to cut a line that does not fit in `room`: after a space in its second half, else after the
        last whole grapheme cluster that fits; 0 (cut before it) when none fits and the message has text."""
        context = self._line.tail(2 * MAX_WORD_WAIT)  # what precedes the piece decides its first cluster
        line = context + piece[: room + 2 * MAX_WORD_WAIT]

        def boundary(offset: int) -> int:
            return last_boundary(line, len(context) + offset) - len(context)

        has_text = self._length > self._header
        space = piece.rfind(" ", 0, room)
        while space >= room // 2:
            if boundary(space + 1) == space + 1:
                return space + 1
            space = piece.rfind(" ", 0, space)
        if not context and has_text and len(piece) <= self._room - len(self._reopen()):
            return 0  # the line starts here, and fits whole in the next message
        while space >= 0:
            if boundary(space + 1) == space + 1:
                return space + 1
            space = piece.rfind(" ", 0, space)
        if context.endswith(" ") and boundary(0) == 0 and has_text:
            return 0  # the line's text so far ended at a space: cut there
        fits = max(boundary(room), 0)
        if fits == 0 and not has_text:
            return max(room, 1)  # a single cluster longer than a whole message: nothing better exists
        return fits


def split_markdown(text: str, limit: int, *, footer: str = "", footer_room: int = 0) -> list[str]:
    """A whole text at once: the messages it takes (none blank), `footer` on the last."""
    splitter = MarkdownSplitter(limit, max(footer_room, len(footer)))
    parts = splitter.feed(text)
    tail = splitter.finish(footer)
    parts[-1] += tail[0]
    return [part for part in parts + tail[1:] if part.strip()]

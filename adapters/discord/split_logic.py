"""Splitting Markdown into Discord messages. PURE: strings in, strings out, no discord import.

Discord refuses a message over 2,000 characters, so a long answer becomes several messages. The cut
goes at a line break (preferably outside a code block), else at a space, and only inside a word when
a single "word" is longer than a whole message. A code block cut in two is closed at the end of one
message and reopened, with its language, at the start of the next, so every message renders on its
own. The split is greedy, so as an answer grows while streaming, the messages already full do not
change: the sink can freeze them and keep editing only the last one.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.chat.markdown import Fence, fence_step, open_fence

LIMIT = 2000
# A fence whose decoration (reopen line + close line) would take more than this share of a message
# is not reopened; only pathological inputs (hundreds of backticks) get there.
_MAX_DECORATION_SHARE = 0.25


@dataclass(frozen=True, slots=True)
class Chunk:
    """One message. `text[start:end]` of the input is its body; `text` adds the reopened fence line
    before it and the closing fence line after it when a code block spans the cut."""

    text: str
    start: int
    end: int
    fence_after: Fence | None  # the code block still open at `end` (closed in `text`)


def _closing(fence: Fence | None) -> int:
    return 0 if fence is None else 1 + len(fence.closer)


def _decorates(fence: Fence | None, limit: int) -> Fence | None:
    if fence is None or len(fence.opener) + len(fence.closer) + 2 > limit * _MAX_DECORATION_SHARE:
        return None
    return fence


def split_markdown(text: str, limit: int = LIMIT, *, fence: Fence | None = None) -> list[Chunk]:
    """Cut `text` into chunks of at most `limit` characters each. `fence` is a code block already
    open where `text` starts (a continuation). Always returns at least one chunk (maybe empty)."""
    if limit < 40:
        raise ValueError("limit too small to split Markdown sensibly")
    chunks: list[Chunk] = []
    pos = 0
    while True:
        opened = _decorates(fence, limit)
        prefix = opened.opener + "\n" if opened else ""
        end, resume, after = _cut(text, pos, limit - len(prefix), fence, limit)
        closed = _decorates(after, limit)
        suffix = "\n" + closed.closer if closed else ""
        chunks.append(Chunk(prefix + text[pos:end] + suffix, pos, end, after))
        if end >= len(text):
            return chunks
        pos, fence = resume, after


def _cut(text: str, pos: int, room: int, fence: Fence | None, limit: int) -> tuple[int, int, Fence | None]:
    """Where the chunk starting at `pos` ends: (end, where the next chunk starts, fence open at end)."""
    if len(text) - pos <= room:
        rest = open_fence(text[pos:], fence)
        if len(text) - pos + _closing(_decorates(rest, limit)) <= room:
            return len(text), len(text), rest
    outside = anywhere = after_opener = None
    state, line_start = fence, pos
    while True:
        newline = text.find("\n", line_start, pos + room + 1)
        if newline == -1:
            break
        before, state = state, fence_step(state, text[line_start:newline])
        if newline > pos and newline - pos + _closing(_decorates(state, limit)) <= room:
            candidate = (newline, newline + 1, state)
            if before is None and state is not None:
                after_opener = candidate  # would end on an empty code block: a last resort
            else:
                anywhere = candidate
                if state is None and newline - pos >= room // 2:
                    outside = candidate
        line_start = newline + 1
    best = outside or anywhere
    if best is not None and best[0] - pos >= room // 4:
        return best
    spaced = _cut_at_space(text, pos, room, fence, limit, floor=best[0] if best else pos)
    return spaced or best or after_opener or _cut_hard(text, pos, room, fence, limit)


def _cut_at_space(text: str, pos: int, room: int, fence: Fence | None, limit: int,
                  floor: int) -> tuple[int, int, Fence | None] | None:
    """The last space or tab after `floor` in the window that leaves room to close a code block."""
    right = pos + room
    while right > floor:
        space = max(text.rfind(" ", floor + 1, right + 1), text.rfind("\t", floor + 1, right + 1))
        if space <= max(floor, pos):
            return None
        after = open_fence(text[pos:space], fence)
        if space - pos + _closing(_decorates(after, limit)) <= room:
            return space, space + 1, after
        right = space - 1
    return None


def _cut_hard(text: str, pos: int, room: int, fence: Fence | None, limit: int) -> tuple[int, int, Fence | None]:
    """A single word longer than a message: cut it, leaving room for a closing fence."""
    end = pos + room
    while end > pos + 1:
        after = open_fence(text[pos:end], fence)
        if end - pos + _closing(_decorates(after, limit)) <= room:
            return end, end, after
        end -= 1
    return pos + 1, pos + 1, open_fence(text[pos:pos + 1], fence)


def split_text(text: str, limit: int = LIMIT) -> list[str]:
    """Just the message texts, without blank ones (Discord refuses a message of only whitespace)."""
    return [chunk.text for chunk in split_markdown(text, limit) if chunk.text.strip()]

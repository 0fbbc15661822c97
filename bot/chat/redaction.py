"""Secrets in chat text are masked: in what users send before it is stored or sent to the model, and in
what the model writes before it is shown.

What a secret looks like is bot.chat.secret_rules (Yelp's detect-secrets, plus the few kinds it lacks).

Masking works on segments the text alone determines, so masking a stream gives the same text whatever
its chunk boundaries (see `StreamRedactor`):
- a line (through its line break) is one segment, or several: see SOFT_CHARS;
- a private key block is one segment, from the line holding its BEGIN to the line break after its END
  (or to the end of the text when it never ends);
- a line longer than `WINDOW` characters is cut near `SEGMENT_CHARS`, and the cut moves past any match
  that would straddle it, so a forced cut never splits a secret up to `LONGEST_MATCH` characters.
Single-line rules see one line at a time, as detect-secrets scans files line by line.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from dataclasses import dataclass

from bot.chat.secret_rules import (
    KEY_BEGIN,
    KEY_BLOCK,
    KEY_END,
    PRIVATE_KEY,
    RULES,
    RULES_BY_TRIGGER,
    SPANS_BLANKS,
    TOKEN_TAIL,
    mask_for,
)
from bot.domain import AttachmentKind, Incoming
from bot.text_safety import INVISIBLE

# A line longer than WINDOW is cut after about SEGMENT_CHARS, moved past the end of a match that straddles
# the cut: a secret up to LONGEST_MATCH characters long is never split (the longest fixed-length shapes
# are under 200). A stream holds back at most WINDOW characters of an unfinished line (a private key block
# is held whole until the line break after its END).
SEGMENT_CHARS = 512
LONGEST_MATCH = 512
WINDOW = SEGMENT_CHARS + LONGEST_MATCH
# So prose streams by words, not by lines: a line may also end a segment at its first blank SOFT_CHARS or
# more characters in, unless the segment so far holds one of SPANS_BLANKS. Only the rules those start
# (keyword assignments, AWS secret keys, key blocks, .npmrc lines) can match across a blank; every other
# rule matches a run without blanks, which a cut after a blank never splits.
SOFT_CHARS = 64
_BLANK = re.compile(r"[ \t]")



@dataclass(frozen=True, slots=True)
class Masked:
    """Text with its secrets replaced by placeholders; `count` is how many were replaced."""

    text: str
    count: int


def mask_secrets(text: str) -> Masked:
    """Replace every secret in `text` with `mask_for(kind)`. Deterministic: the same text always gives
    the same result, so stored history stays byte-stable. Linear in the length of the text."""
    masked, count, _rest = _mask_segments(text, final=True)
    return Masked(masked, count)


def redact(text: str) -> str:
    """`mask_secrets(text).text`."""
    return mask_secrets(text).text


def mask_incoming(incoming: Incoming) -> tuple[Incoming, int]:
    """The message with secrets masked in its text, in what the platform says the person is looking
    at (`context`, which goes into the prompt too) and in its text attachments (UTF-8), and how many
    were masked. Attachments that held none keep their original bytes."""
    text = mask_secrets(incoming.text)
    context = mask_secrets(incoming.context)
    count = text.count + context.count
    attachments = []
    for attachment in incoming.attachments:
        if attachment.kind is AttachmentKind.TEXT:
            body = mask_secrets(attachment.text())
            if body.count:
                count += body.count
                data = body.text.encode("utf-8")
                attachment = dataclasses.replace(attachment, data=data, size=len(data))
        attachments.append(attachment)
    if not count:
        return incoming, 0
    return dataclasses.replace(incoming, text=text.text, context=context.text, attachments=tuple(attachments)), count


# Masking runs at about 2 M characters/s (bench/redact_bench.py): above this many characters a message is
# masked in a worker thread so a pasted log file never stalls the event loop.
OFF_LOOP_CHARS = 100_000


async def mask_incoming_async(incoming: Incoming) -> tuple[Incoming, int]:
    """`mask_incoming`, in a worker thread for a message whose text and files exceed OFF_LOOP_CHARS."""
    size = len(incoming.text) + sum(a.size for a in incoming.attachments if a.kind is AttachmentKind.TEXT)
    if size > OFF_LOOP_CHARS:
        return await asyncio.to_thread(mask_incoming, incoming)
    return mask_incoming(incoming)


class StreamRedactor:
    """Masks a stream of deltas. Joining everything `feed` and `flush` return equals
    `mask_secrets(whole text)` whatever the deltas were: text is released a whole segment at a time
    (a line; a private key block through the line break after its END; a piece of a line over
    `WINDOW` characters)."""

    def __init__(self) -> None:
        self._pending = ""
        # Held text that is a line break or a window long can only be an unfinished key block.
        self._key_open = False

    def feed(self, delta: str) -> str:
        """Add a delta; returns the text that is now safe to show (often "")."""
        self._pending += delta
        # A segment ends only at a line break, at a blank past SOFT_CHARS or once the window is full; a key
        # block only at a line break.
        if "\n" not in delta and (self._key_open or (
                len(self._pending) < WINDOW
                and (len(self._pending) <= SOFT_CHARS or (" " not in delta and "\t" not in delta)))):
            return ""
        return self._release(final=False)

    @property
    def held(self) -> int:
        """Characters received but not yet released."""
        return len(self._pending)

    def flush(self) -> str:
        """The stream ended: everything still held, masked."""
        return self._release(final=True)

    def _release(self, *, final: bool) -> str:
        shown, _count, self._pending = _mask_segments(self._pending, final=final)
        self._key_open = "\n" in self._pending or len(self._pending) >= WINDOW
        return shown


def _mask_segments(text: str, *, final: bool) -> tuple[str, int, str]:
    """Mask the complete segments of `text`: (masked text, secrets masked, the unfinished rest)."""
    out: list[str] = []
    count = 0
    start = 0
    while start < len(text):
        end = _segment_end(text, start, final=final)
        if end is None:
            break
        masked, found = _mask_segment(text[start:end])
        out.append(masked)
        count += found
        start = end
    return "".join(out), count, text[start:]


def _segment_end(text: str, start: int, *, final: bool) -> int | None:
    """Where the segment starting at `start` ends, or None if that depends on text not yet seen.
    Looks only at text[start:], so it gives the same answer for a prefix as for the whole text."""
    window_end = start + WINDOW
    newline = text.find("\n", start, window_end)
    blank = _BLANK.search(text, start + SOFT_CHARS, newline if newline != -1 else min(len(text), window_end))
    if blank is not None and not SPANS_BLANKS.search(text[start:blank.start()].casefold()):
        return blank.end()
    if newline != -1:
        end = limit = newline + 1
    elif len(text) >= window_end:
        end = limit = _forced_cut(text, start)
    elif final:
        end = limit = len(text)
    else:
        return None
    begin = KEY_BEGIN.search(text, start, limit if newline != -1 else min(len(text), window_end))
    if begin is None or begin.start() >= limit:
        return end
    key_end = KEY_END.search(text, begin.end())
    line_break = text.find("\n", key_end.end()) if key_end else -1
    if line_break == -1:
        return len(text) if final else None
    return line_break + 1


def _forced_cut(text: str, start: int) -> int:
    """Where a line longer than WINDOW is cut: after the last blank before SEGMENT_CHARS (or at
    SEGMENT_CHARS), then past the end of any match that straddles the cut."""
    cut = start + SEGMENT_CHARS
    blank = text.rfind(" ", start + SEGMENT_CHARS // 2, cut)
    if blank != -1:
        cut = blank + 1
    piece = text[start:start + WINDOW]
    for span_start, span_end, _kind in sorted(_line_spans(piece, 0)):
        if span_start < cut - start < span_end:
            cut = start + span_end
    return cut


def _mask_segment(segment: str) -> tuple[str, int]:
    """The segment with its secrets masked, and how many. A segment holding invisible characters (a zero-width
    space inside a token hides it from every rule, or cuts it short: its tail would show) is masked without them
    too; if that finds as many secrets or more, that wins, so the invisible characters of that segment are dropped
    with its secrets."""
    masked = _mask_spans(segment)
    if not INVISIBLE.intersection(segment):
        return masked
    visible = _mask_spans("".join(ch for ch in segment if ch not in INVISIBLE))
    return visible if visible[1] >= max(masked[1], 1) else masked


def _mask_spans(segment: str) -> tuple[str, int]:
    spans = [(m.start(), m.end(), PRIVATE_KEY) for m in KEY_BLOCK.finditer(segment)]
    offset = 0
    for line in segment.split("\n"):
        if line:
            spans.extend(_line_spans(line, offset))
        offset += len(line) + 1
    if not spans:
        return segment, 0
    # Leftmost first; at one start the longest; then the earlier rule (the order of RULES).
    spans.sort(key=lambda s: (s[0], -s[1]))
    out: list[str] = []
    position = count = 0
    for span_start, span_end, kind in spans:
        if span_start < position:
            continue
        out.append(segment[position:span_start])
        out.append(_mask_lines(segment, span_start, span_end, kind))
        position = span_end
        count += 1
    out.append(segment[position:])
    return "".join(out), count


def _mask_lines(segment: str, start: int, end: int, kind: str) -> str:
    """The placeholder for `segment[start:end]`. A multi-line secret (a private key) inside a diff, its
    first line opened by a diff marker (`+`, `-` or a space), keeps its line count: the placeholder on its
    first line, the marker alone on each later one, so the hunk still adds up and a review's line numbers
    still point at the right lines. Anywhere else it becomes one placeholder."""
    marker = segment[segment.rfind("\n", 0, start) + 1:start]
    if marker not in ("+", "-", " "):
        return mask_for(kind)
    return mask_for(kind) + ("\n" + marker) * segment.count("\n", start, end)


def _line_spans(line: str, offset: int) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every single-line rule match in `line`, shifted by `offset`."""
    spans: list[tuple[int, int, str]] = []
    folded = line.casefold()
    selected = {i for trigger, rules in RULES_BY_TRIGGER if trigger in folded for i in rules}
    for index in sorted(selected):
        rule = RULES[index]
        for match in rule.pattern.finditer(line):
            start, end = _secret_span(match, rule.groups)
            if start >= end:
                continue
            if rule.extend:
                end = TOKEN_TAIL.match(line, end).end()  # type: ignore[union-attr]
            value = line[start:end]
            # Vendors' documented sample keys (AKIAIOSFODNN7EXAMPLE) are not secrets.
            if "EXAMPLE" in value or (rule.keep is not None and not rule.keep(value, line)):
                continue
            spans.append((offset + start, offset + end, rule.kind))
    return spans


def _secret_span(match: re.Match[str], groups: tuple[int | str, ...]) -> tuple[int, int]:
    for group in groups:
        if match.start(group) != -1:
            return match.span(group)
    return match.span() if not groups else (0, 0)

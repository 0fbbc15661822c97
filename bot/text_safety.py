"""Text made safe to store and send: one rule for every edge where outside text comes in.

A lone UTF-16 surrogate (U+D800..U+DFFF, which JSON's `\\ud800` escapes can carry into a Python str)
cannot be encoded as UTF-8, so SQLite and PostgreSQL drivers and every platform API reject it; a NUL
(U+0000) is refused by PostgreSQL's text type. Both become U+FFFD, the Unicode replacement character,
so the text keeps its length and shape and the user can see where something was replaced.
"""

from __future__ import annotations

import re
import unicodedata

REPLACEMENT = "\ufffd"
_UNSAFE = re.compile("[\x00\ud800-\udfff]")
NAME_MAX_CHARS = 200
# Characters that steer or hide text without showing anything (Unicode bidi controls, UAX #9; zero-width
# space, word joiner and invisible operators, BOM).
INVISIBLE = frozenset("\u061c\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064"
                       "\u2066\u2067\u2068\u2069\ufeff")


def clean_text(text: str) -> str:
    """`text` with every NUL and lone surrogate replaced by U+FFFD; the same object when clean.

    A valid surrogate pair never reaches here as two code points (JSON decoding joins it into one),
    so any surrogate code point left in a str is lone."""
    if text.isascii() and "\x00" not in text:
        return text
    return _UNSAFE.sub(REPLACEMENT, text)


def clean_name(name: str) -> str:
    """A display name (a channel's, a person's, a thread's) as it may be shown among other text: without
    control characters (Unicode category Cc, NUL included), bidirectional controls (U+202A-U+202E,
    U+2066-U+2069, U+200E, U+200F, U+061C: an override turns "gnp.exe" into "exe.png" and the text after the
    name around) and invisible ones (zero-width space, word joiner, BOM), runs of white space as one space,
    at most NAME_MAX_CHARS characters, then `clean_text`. Joiners inside emoji and scripts (U+200C, U+200D)
    and tag characters of flags stay. The empty string when nothing printable is left."""
    kept = "".join(" " if ch.isspace() else ch for ch in name
                   if ch.isspace() or (ch not in INVISIBLE and unicodedata.category(ch) != "Cc"))
    return clean_text(" ".join(kept.split())[:NAME_MAX_CHARS])


# The characters with which a name could make Markdown that is not its own text: a link (`[text](url)`), an
# autolink or Slack's `<url|text>` and `<!channel>`, a table cell's end (`|`); and the escape itself.
_MARKDOWN_ACTIVE = re.compile(r"([\\\[\]<>|])")


def markdown_literal(text: str) -> str:
    """`text` (a name anyone may choose) for a Markdown message as the text it is: each of `\\ [ ] < > |`
    backslash-escaped (CommonMark's escapes, which Discord honours), so it can form no link, mention or table cell.
    Emphasis marks are left alone: they can only restyle the name itself. Slack's mrkdwn has no backslash escape:
    a reply sent as mrkdwn also needs Slack's own (adapters.slack.controls.escape_mrkdwn)."""
    return _MARKDOWN_ACTIVE.sub(r"\\\1", text)

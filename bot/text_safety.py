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


def clean_text(text: str) -> str:
    """`text` with every NUL and lone surrogate replaced by U+FFFD; the same object when clean.

    A valid surrogate pair never reaches here as two code points (JSON decoding joins it into one),
    so any surrogate code point left in a str is lone."""
    if text.isascii() and "\x00" not in text:
        return text
    return _UNSAFE.sub(REPLACEMENT, text)


def clean_name(name: str) -> str:
    """A display name (a channel's, a person's) as it may be shown among other text: without control and
    format characters (Unicode categories Cc and Cf: bidi overrides and isolates such as U+202E, which
    reverse the text after the name, zero-width characters, NUL), runs of white space as one space, at
    most NAME_MAX_CHARS characters, then `clean_text`. The empty string when nothing printable is left."""
    kept = "".join(" " if ch.isspace() else ch for ch in name if ch.isspace()
                   or unicodedata.category(ch) not in ("Cc", "Cf"))
    return clean_text(" ".join(kept.split())[:NAME_MAX_CHARS])

"""Text made safe to store and send: one rule for every edge where outside text comes in.

A lone UTF-16 surrogate (U+D800..U+DFFF, which JSON's `\\ud800` escapes can carry into a Python str)
cannot be encoded as UTF-8, so SQLite and PostgreSQL drivers and every platform API reject it; a NUL
(U+0000) is refused by PostgreSQL's text type. Both become U+FFFD, the Unicode replacement character,
so the text keeps its length and shape and the user can see where something was replaced.
"""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"
_UNSAFE = re.compile("[\x00\ud800-\udfff]")


def clean_text(text: str) -> str:
    """`text` with every NUL and lone surrogate replaced by U+FFFD; the same object when clean.

    A valid surrogate pair never reaches here as two code points (JSON decoding joins it into one),
    so any surrogate code point left in a str is lone."""
    if text.isascii() and "\x00" not in text:
        return text
    return _UNSAFE.sub(REPLACEMENT, text)

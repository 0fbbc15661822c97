"""The footer of an answer, as the last line of its last chat message: one rendering for every platform.

The words come from `bot.domain.Footer.text()` (tokens and cost, or that the provider reported no
usage and what was charged; the budget left; notes such as skipped files). Here they become one line
of Markdown: whitespace folded, Markdown's special characters escaped (a file named `my_file.py`
must not start italics), clipped on a grapheme-cluster boundary to the platform's room, and wrapped in
the platform's quiet style: italics after a blank line on Slack, subtext (`-# `) on Discord.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from adapters.common.splitter import clip
from bot.domain import Footer

_MARKDOWN_SPECIALS = re.compile(r"([\\`*_~])")


@dataclass(frozen=True, slots=True)
class FooterStyle:
    """How a platform sets the footer apart: `separator` before it (after the answer's text), `opener`
    and `closer` around it, and `room`, the most characters the whole rendered footer may take."""

    separator: str
    opener: str
    closer: str
    room: int


# Slack's markdown_text: an italic paragraph of its own.
SLACK_FOOTER = FooterStyle("\n\n", "_", "_", 1_400)
# Discord's subtext line (`-# `), which must start a line.
DISCORD_FOOTER = FooterStyle("\n", "-# ", "", 300)


def render_footer(footer: Footer, style: FooterStyle, *, separated: bool = True) -> str:
    """The footer in `style`, at most `style.room` characters; "" when it says nothing. `separated`
    puts the style's separator first (False when the footer starts a message of its own)."""
    text = " ".join(footer.text().split())
    if not text:
        return ""
    separator = style.separator if separated else ""
    room = style.room - len(separator) - len(style.opener) - len(style.closer)
    escaped = _MARKDOWN_SPECIALS.sub(r"\\\1", text)
    if len(escaped) > room:
        escaped = clip(escaped, room)
        body = escaped[:-1]
        if (len(body) - len(body.rstrip("\\"))) % 2:
            escaped = body[:-1] + "…"  # never leave half an escape before the closing marker
    return f"{separator}{style.opener}{escaped}{style.closer}"

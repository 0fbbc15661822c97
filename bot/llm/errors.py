"""The Seed error tree (drawn in `bot.llm`'s docstring) and how an HTTP error response maps onto it.

Error bodies are `{"error": {"code", "message", "type"}}` (the provider's page); 429 means overload (retry,
honour `Retry-After`) or quota exhaustion (never retry), told apart by the words of the error.
"""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any


class SeedError(Exception):
    """Base of every failure talking to the Seed endpoint. `status` is the HTTP status, if any."""

    user_message = "The model could not answer right now."

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class SeedAuthError(SeedError):
    user_message = "The bot's key for the model was refused; an admin needs to check SEED_API_KEY."


class SeedRateLimited(SeedError):
    user_message = "The model is overloaded right now; please try again in a minute."

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class SeedQuotaExhausted(SeedError):
    user_message = "The bot's model account has run out of quota; an admin needs to top it up."


class SeedContextTooLong(SeedError):
    user_message = "This conversation is too long for the model; start a new thread to continue."


class SeedBadRequest(SeedError):
    user_message = "The model rejected the request."


class SeedUnavailable(SeedError):
    user_message = "The model's service is unreachable right now; please try again shortly."


class SeedStreamBroken(SeedError):
    user_message = "The connection to the model broke while it was answering."


class SeedContentFiltered(SeedError):
    user_message = "The model declined to answer this (content filter)."


def classify_error(status: int, body: bytes, *, reason: str | None = None, retry_after: str | None = None) -> SeedError:
    """Map an error response (its status, body and `Retry-After` header) to the exception a caller can act on."""
    try:
        err = (json.loads(body) or {}).get("error") or {}
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError, AttributeError, RecursionError):
        err = {}
    if not isinstance(err, dict):
        err = {"message": str(err)}
    code = str(err.get("code") or "")
    kind = str(err.get("type") or "")
    message = str(err.get("message") or reason or f"HTTP {status}")
    words = f"{code} {kind} {message}".lower()
    text = f"Seed API {status}: {message}"
    if status in (401, 403):
        return SeedAuthError(text, status=status, code=code)
    if status == 429:
        if any(w in words for w in ("quota", "insufficient", "billing", "exhausted")):
            return SeedQuotaExhausted(text, status=status, code=code)
        return SeedRateLimited(
            text, status=status, code=code, retry_after=retry_after_seconds(retry_after)
        )
    if status in (400, 413) and any(w in words for w in ("context", "too long", "maximum", "token limit")):
        return SeedContextTooLong(text, status=status, code=code)
    if status >= 500:
        return SeedUnavailable(text, status=status, code=code)
    return SeedBadRequest(text, status=status, code=code)


def is_retryable(error: SeedError) -> bool:
    return isinstance(error, SeedRateLimited | SeedUnavailable)


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())

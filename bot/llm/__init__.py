"""The Seed model client: the whole public surface of `bot.llm`.

Exception tree (every failure talking to the endpoint is a `SeedError`)::

    SeedError
    ├── SeedAuthError          401/403: the key was refused
    ├── SeedRateLimited        429 overload: retried with Retry-After, then raised
    ├── SeedQuotaExhausted     429 quota: never retried
    ├── SeedContextTooLong     the prompt exceeds the model's window
    ├── SeedBadRequest         any other 4xx
    ├── SeedUnavailable        connect errors and 5xx before the first byte
    ├── SeedStreamBroken       the stream failed after its first byte
    └── SeedContentFiltered    finish_reason "content_filter": a refusal, not an error
"""

from bot.domain import Effort
from bot.llm.client import SeedClient, parse_usage
from bot.llm.errors import (
    SeedAuthError,
    SeedBadRequest,
    SeedContentFiltered,
    SeedContextTooLong,
    SeedError,
    SeedQuotaExhausted,
    SeedRateLimited,
    SeedStreamBroken,
    SeedUnavailable,
    classify_error,
)
from bot.llm.events import ChatRequest, Completion, ContentDelta, Finish, ReasoningDelta, StreamEvent, UsageReport

__all__ = [
    "ChatRequest", "Completion", "ContentDelta", "Effort", "Finish", "ReasoningDelta", "SeedAuthError",
    "SeedBadRequest", "SeedClient", "SeedContentFiltered", "SeedContextTooLong", "SeedError", "SeedQuotaExhausted",
    "SeedRateLimited", "SeedStreamBroken", "SeedUnavailable", "StreamEvent", "UsageReport", "classify_error",
    "parse_usage",
]

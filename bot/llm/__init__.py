"""The Seed model client: the whole public surface of `bot.llm`.

Exception tree (every failure talking to the endpoint is a `SeedError`)::

    SeedError
    ├── SeedAuthError          401/403: the key was refused
    ├── SeedRateLimited        429 overload: retried with Retry-After, then raised
    ├── SeedQuotaExhausted     429 quota: never retried
    ├── SeedContextTooLong     the prompt exceeds the model's window
    ├── SeedBadRequest         any other 4xx
    ├── SeedUnavailable        connect errors, 5xx, and a stream that died before its first event
    ├── SeedStreamBroken       the stream failed after its first event
    └── SeedContentFiltered    finish_reason "content_filter": a refusal, not an error

A usage report the provider sends is validated (`validate_usage`) before it is priced: an invalid one
arrives as `UsageRejected`, never as a `UsageReport`.
"""

from bot.domain import Effort
from bot.llm.client import CONTEXT_WINDOW_TOKENS, RetryPolicy, SeedClient, validate_usage
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
from bot.llm.events import (
    ChatRequest,
    Completion,
    ContentDelta,
    Finish,
    ReasoningDelta,
    StreamEvent,
    UsageRejected,
    UsageReport,
)

__all__ = [
    "CONTEXT_WINDOW_TOKENS", "ChatRequest", "Completion", "ContentDelta", "Effort", "Finish", "ReasoningDelta",
    "RetryPolicy", "SeedAuthError", "SeedBadRequest", "SeedClient", "SeedContentFiltered", "SeedContextTooLong",
    "SeedError", "SeedQuotaExhausted", "SeedRateLimited", "SeedStreamBroken", "SeedUnavailable", "StreamEvent",
    "UsageRejected", "UsageReport", "classify_error", "validate_usage",
]

"""SeedClient: streaming Chat Completions against the Seed endpoint over one shared aiohttp session.

Retries happen only before the first byte of an answer reaches the caller: connect errors, 5xx and
overload 429s, with exponential backoff, full jitter and `Retry-After`. Once a stream has started,
a failure surfaces as `SeedStreamBroken`, since the caller already showed part of the answer.
The client knows nothing of the database or of budgets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.domain import Usage
from bot.llm.errors import (
    SeedContentFiltered,
    SeedError,
    SeedStreamBroken,
    SeedUnavailable,
    classify_error,
    is_retryable,
    retry_after_seconds,
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
from bot.llm.sse import sse_data
from bot.text_safety import clean_text

log = logging.getLogger(__name__)

# seed-2-0-code's context window (the provider's page: 256K tokens); a usage report beyond it is invalid.
CONTEXT_WINDOW_TOKENS = 262_144
# No documented limit; far above any real answer, it only rejects absurd counts before they are priced.
MAX_WEB_SEARCHES_PER_CALL = 100


Sleep = Callable[[float], Awaitable[None]]


# A response body read fails with one of these: a broken or reset connection, a body cut short, or no
# byte for `timeout` seconds (aiohttp's sock_read timeout is a TimeoutError).
_READ_ERRORS = (aiohttp.ClientError, TimeoutError, ConnectionError)
# After [DONE] the body ends at once from a well-behaved server; one that keeps it open loses the connection
# instead of holding a finished answer until the read timeout.
_DRAIN_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When a call that failed before its first byte is tried again: at most `max_retries` more times,
    and only for a retryable `SeedError` (bot.llm.errors.is_retryable). The wait (seconds) is the server's
    `Retry-After` when it sent one, and the call gives up when that asks for more than `max_retry_after`;
    otherwise "full jitter" backoff, uniform in [0, min(backoff_cap, backoff_base * 2**attempt)] (AWS
    Architecture Blog, "Exponential Backoff And Jitter")."""

    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_cap: float = 20.0
    max_retry_after: float = 60.0

    def delay(self, error: SeedError, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before retry number `attempt + 1` (attempt 0 is the first call), or None to give up."""
        if not is_retryable(error) or attempt >= self.max_retries:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * 2**attempt))


class SeedClient:
    """Streams Chat Completions from the Seed endpoint (`stream`, `complete`). `timeout` (seconds) is the
    longest wait for the next byte of a response; connecting may take 10 s, waiting for a free connection
    of the 200 a client keeps 30 s. Raises the `SeedError` tree of bot.llm.errors."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        model: str,
        timeout: float = 120.0,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.model = model
        self._retry = retry
        self._sleep = sleep
        # Stream chunks of the wrong shape, skipped since this client was made (a figure for /metrics).
        self.malformed_chunks = 0
        self._base_url = base_url.rstrip("/") + "/"
        self._url = self._base_url + "chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "text/event-stream"}
        self._timeout = aiohttp.ClientTimeout(total=None, connect=30.0, sock_connect=10.0, sock_read=timeout)
        # Made on first use, inside the event loop that will use it (aiohttp's rule for a ClientSession).
        # aiohttp directly: httpx's layers over it (request building, cookie extraction through urllib,
        # byte-stream adapters, SSE) cost twice the CPU of the request itself.
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    @classmethod
    def from_settings(cls, settings, *, require_key: bool = True, **kw: Any) -> SeedClient:  # noqa: ANN001
        key = settings.require_api_key() if require_key else (
            settings.seed_api_key.get_secret_value() if settings.seed_api_key else "")
        return cls(
            api_key=key,
            base_url=settings.seed_base_url,
            model=settings.seed_model,
            timeout=settings.seed_timeout_seconds,
            retry=RetryPolicy(max_retries=settings.seed_max_retries),
            **kw,
        )

    def __repr__(self) -> str:
        return f"SeedClient(base_url={self._base_url!r}, model={self.model!r})"

    async def aclose(self) -> None:
        """Close the connections; a call after this raises RuntimeError (a late caller after shutdown is a
        bug to see, not a session to leak)."""
        self._closed = True
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> SeedClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Yield the answer as it arrives. Raises a `SeedError` subclass on failure."""
        response = await self._open_stream(request.body(self.model, stream=True))
        try:
            async for event in self._read_events(response, request=request):
                yield event
        finally:
            response.release()  # back to the pool when read to the end, else the connection is closed

    async def complete(self, request: ChatRequest) -> Completion:
        """Collect a streamed answer. A content-filter refusal raises `SeedContentFiltered`."""
        content: list[str] = []
        reasoning: list[str] = []
        usage: Usage | None = None
        finish = ""
        async for event in self.stream(request):
            match event:
                case ContentDelta(text):
                    content.append(text)
                case ReasoningDelta(text):
                    reasoning.append(text)
                case UsageReport(u):
                    usage = u
                case UsageRejected():
                    usage = None
                case Finish(reason):
                    finish = reason
        if finish == "content_filter":
            raise SeedContentFiltered("the answer was stopped by the provider's content filter")
        return Completion("".join(content), "".join(reasoning), usage, finish)

    # -- internals --

    def _http(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("SeedClient is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self._headers, timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=200, limit_per_host=200))
        return self._session

    async def _open_stream(self, body: dict[str, Any]) -> aiohttp.ClientResponse:
        attempt = 0
        while True:
            retry_after = None
            try:
                # Never redirected: a 3xx is an error to show, not a reason to send the conversation elsewhere.
                response = await self._http().post(self._url, json=body, allow_redirects=False)
            except TimeoutError as exc:  # aiohttp's connect timeouts are TimeoutErrors too
                error: SeedError = SeedUnavailable(f"the Seed endpoint did not answer in time: {type(exc).__name__}")
            except (aiohttp.ClientError, ConnectionError) as exc:
                # Any connection-level failure before a response (refused, reset, closed without a
                # response, a protocol error) means the endpoint is unavailable, and may be retried.
                error = SeedUnavailable(f"cannot reach the Seed endpoint: {type(exc).__name__}")
            else:
                if response.status == 200:
                    return response
                try:
                    payload = await response.read()
                except _READ_ERRORS:
                    payload = b""  # the status alone classifies the error
                finally:
                    response.release()
                header = response.headers.get("Retry-After")
                error = classify_error(response.status, payload, reason=response.reason, retry_after=header)
                retry_after = retry_after_seconds(header)
            delay = self._retry.delay(error, attempt, retry_after)
            if delay is None:
                raise error
            attempt += 1
            log.warning("seed call failed (%s), retry %d/%d in %.2fs", error, attempt, self._retry.max_retries, delay)
            await self._sleep(delay)

    async def _read_events(self, response: aiohttp.ClientResponse, *,
                           request: ChatRequest) -> AsyncIterator[StreamEvent]:
        finished = False
        saw_usage = False
        yielded = False
        skipped = 0
        try:
            if response.content_type != "text/event-stream":
                raise SeedUnavailable(f"the Seed endpoint answered {response.content_type!r}, not an event stream")
            async with contextlib.aclosing(sse_data(response.content)) as stream:
                async for data in stream:
                    # [DONE] is the server's own end-of-answer mark: complete, with or without a
                    # finish_reason (several OpenAI-compatible servers leave it null throughout).
                    if data.strip() == "[DONE]":
                        finished = True
                        break
                    try:
                        chunk = json.loads(data)
                    except (json.JSONDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
                        chunk = None
                    if not isinstance(chunk, dict):
                        skipped += 1
                        continue
                    if "error" in chunk:
                        err = chunk["error"]
                        message = err.get("message") if isinstance(err, dict) else err
                        raise SeedStreamBroken(f"the Seed endpoint reported an error mid-answer: {message!r:.200}")
                    events, bad = _chunk_events(chunk)
                    skipped += bad
                    for event in events:
                        finished = finished or isinstance(event, Finish)
                        yielded = True
                        yield event
                    if "usage" in chunk and chunk["usage"] is not None:
                        saw_usage = True
                        usage = validate_usage(chunk["usage"], max_tokens=request.max_tokens,
                                               web_search=request.enable_web_search)
                        if isinstance(usage, Usage):
                            yield UsageReport(usage)
                        else:
                            log.warning("seed usage report rejected: %s", usage)
                            yield UsageRejected(usage)
            if finished:
                await _drain(response)
        except _READ_ERRORS as exc:
            # A connection-level failure: before anything arrived the endpoint was as good as
            # unavailable; after, the caller already showed part of the answer.
            kind = SeedStreamBroken if yielded else SeedUnavailable
            raise kind(f"the answer stream broke: {type(exc).__name__}") from None
        finally:
            if skipped:
                self.malformed_chunks += skipped
                log.warning("skipped %d malformed chunks from the Seed endpoint", skipped)
        if not finished:
            kind = SeedStreamBroken if yielded else SeedUnavailable
            raise kind("the answer stream ended before the model finished")
        if not saw_usage:
            log.warning("seed stream finished without a usage report")


async def _drain(response: aiohttp.ClientResponse) -> None:
    """Read what follows [DONE] to the body's end, for at most _DRAIN_SECONDS, so the connection goes back to
    the pool (a response released unread is a connection closed, and the next call would open a new one)."""
    try:
        async with asyncio.timeout(_DRAIN_SECONDS):
            while await response.content.readany():
                pass
    except _READ_ERRORS:
        pass  # the answer is complete; only the connection is lost


def _chunk_events(chunk: dict[str, Any]) -> tuple[list[StreamEvent], int]:
    """The events of one chunk, and how many of its parts had the wrong shape (skipped)."""
    choices = chunk.get("choices")
    if choices is None:
        return [], 0
    if not isinstance(choices, list):
        return [], 1
    events: list[StreamEvent] = []
    bad = 0
    for choice in choices:
        delta = choice.get("delta") or {} if isinstance(choice, dict) else None
        if not isinstance(choice, dict) or not isinstance(delta, dict):
            bad += 1
            continue
        reasoning, content = delta.get("reasoning_content"), delta.get("content")
        finish = choice.get("finish_reason")
        if not all(isinstance(v, str | None) for v in (reasoning, content, finish)):
            bad += 1
            continue
        if reasoning:
            events.append(ReasoningDelta(clean_text(reasoning)))
        if content:
            events.append(ContentDelta(clean_text(content)))
        if finish:
            events.append(Finish(finish))
    return events, bad


def _token_count(raw: dict[str, Any], key: str) -> int | str:
    """A non-negative integer field of a usage object (absent counts as 0), or why it is invalid."""
    value = raw.get(key, 0)
    if value is None:
        return 0
    # bool is an int in Python; a float like 12.0 is tolerated only when integral and finite.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{key} is {type(value).__name__}, not an integer"
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return f"{key} {value!r} is not an integer"
        value = int(value)
    if value < 0:
        return f"{key} {value} is negative"
    return value


def validate_usage(raw: object, *, max_tokens: int, web_search: bool = False) -> Usage | str:
    """The provider's usage object as `Usage`, or a sentence saying why it cannot be trusted.

    Invalid: not an object; a count missing (prompt or completion), non-integer or negative; a prompt
    above the model's context window (CONTEXT_WINDOW_TOKENS, from the provider's page: 256K); more
    completion tokens than the request allowed (`max_tokens` x 1.01 + 16, a margin for counting
    differences); cached above prompt, reasoning above completion. Invalid usage prices as unknown.
    """
    if not isinstance(raw, dict):
        return f"usage is {type(raw).__name__}, not an object"
    for key in ("prompt_tokens", "completion_tokens"):
        if key not in raw:
            return f"usage has no {key}"
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    if not isinstance(prompt_details, dict) or not isinstance(completion_details, dict):
        return "usage details are not objects"
    searches_key = next((k for k in ("web_search_count", "num_web_searches") if raw.get(k) is not None), None)
    counts = {
        "prompt_tokens": _token_count(raw, "prompt_tokens"),
        "completion_tokens": _token_count(raw, "completion_tokens"),
        "cached_tokens": _token_count(prompt_details, "cached_tokens"),
        "reasoning_tokens": _token_count(completion_details, "reasoning_tokens"),
        # The provider documents no search counter: with search on, bill one so budgets never under-count.
        "web_searches": _token_count(raw, searches_key) if searches_key else (1 if web_search else 0),
    }
    for value in counts.values():
        if isinstance(value, str):
            return value
    usage = Usage(**counts)  # type: ignore[arg-type]
    if usage.prompt_tokens > CONTEXT_WINDOW_TOKENS:
        return f"prompt_tokens {usage.prompt_tokens} is above the {CONTEXT_WINDOW_TOKENS}-token window"
    allowed = max_tokens * 1.01 + 16
    if usage.completion_tokens > allowed:
        return f"completion_tokens {usage.completion_tokens} is above what max_tokens {max_tokens} allows"
    if usage.cached_tokens > usage.prompt_tokens or usage.reasoning_tokens > usage.completion_tokens:
        return "cached or reasoning tokens exceed their totals"
    if usage.web_searches > MAX_WEB_SEARCHES_PER_CALL:
        return f"web_searches {usage.web_searches} is implausible"
    return usage

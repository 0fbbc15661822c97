"""A fake Seed endpoint: a real HTTP server on 127.0.0.1 speaking the OpenAI-compatible Chat
Completions protocol as DESIGN.md describes the provider's, with scripted answers and faults.

Prompt-cache accounting follows the provider's rule as we understand it: while `enable_caching` is
on, the cached tokens of a request are the tokens of the longest byte prefix it shares with an
earlier cached request. Tests use it to measure how cache-friendly our prompts really are.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.chat.tokens import count_tokens

CACHE_TTL_SECONDS = 600
CACHE_ENTRIES = 512


@dataclass
class Reply:
    """One scripted response. `fault` is None or one of FAULTS."""

    content: str = "Hello from the fake Seed model."
    reasoning: str = ""
    chunk_chars: int = 24
    chunk_delay: float = 0.0
    first_token_delay: float = 0.0
    finish_reason: str | None = "stop"  # None: every chunk says null, as some servers do
    fault: str | None = None
    retry_after: float | None = None
    cut_after_chunks: int = 2
    include_usage: bool = True
    send_done: bool = True  # False: the body ends cleanly without `data: [DONE]`
    # Report these instead of counting, to pin a cost exactly.
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    # Hostile provider data: raw `data:` payloads sent before the answer, and a usage value sent
    # as is in place of the counted one (any JSON value).
    extra_chunks: tuple[str, ...] = ()
    usage_raw: Any = None


# "drop": the connection is closed without any response (not an HTTP error: the socket just closes).
# "redirect_307": a 307 back to the same URL (a client that follows it sends the request twice).
# "hold_after_done": the whole answer and [DONE], then the body is kept open for a minute.
FAULTS = ("overload_429", "quota_429", "server_500", "context_400", "auth_401", "cut", "content_filter", "drop",
          "redirect_307", "hold_after_done")


@dataclass
class Recorded:
    body: dict[str, Any]
    headers: dict[str, str]
    at: float
    status: int = 200
    usage: dict[str, Any] | None = None
    peer: tuple[str, int] | None = None  # the client's address: one per TCP connection
    # The client closed the connection before the answer was complete (a stopped answer).
    client_closed: bool = False


@dataclass
class _CacheEntry:
    text: str
    at: float


@dataclass
class FakeSeed:
    api_key: str = "test-seed-key"
    model: str = "seed-2-0-code"
    token_scale: float = 1.0
    default_reply: Reply = field(default_factory=Reply)
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._script: deque[Reply] = deque()
        self._cache: deque[_CacheEntry] = deque(maxlen=CACHE_ENTRIES)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.responder = None  # optional callable(body) -> Reply, used when the script is empty

    # -- control --

    def script(self, *replies: Reply) -> None:
        self._script.extend(replies)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def completions(self) -> list[Recorded]:
        return [r for r in self.requests if r.status == 200]

    async def __aenter__(self) -> FakeSeed:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- accounting --

    def count(self, text: str) -> int:
        return int(count_tokens(text) * self.token_scale)

    @staticmethod
    def serialise(messages: list[dict[str, Any]]) -> str:
        parts = []
        for message in messages:
            content = message.get("content")
            if not isinstance(content, str):
                content = json.dumps(content, sort_keys=True)
            parts.append(f"<|{message.get('role')}|>{content}<|end|>")
        return "".join(parts)

    def _prompt_usage(self, body: dict[str, Any]) -> tuple[int, int]:
        text = self.serialise(body.get("messages") or [])
        prompt_tokens = self.count(text)
        if not body.get("enable_caching"):
            return prompt_tokens, 0
        now = time.monotonic()
        best = 0
        for entry in self._cache:
            if now - entry.at > CACHE_TTL_SECONDS:
                continue
            best = max(best, _common_prefix(entry.text, text))
        self._cache.append(_CacheEntry(text, now))
        cached = min(self.count(text[:best]), prompt_tokens) if best else 0
        return prompt_tokens, cached

    # -- the endpoint --

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return self._error(400, "invalid_request_error", "invalid_json", "Body is not JSON")
        recorded = Recorded(body=body, headers=dict(request.headers), at=time.monotonic(),
                            peer=request.transport.get_extra_info("peername") if request.transport else None)
        self.requests.append(recorded)
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            recorded.status = 401
            return self._error(401, "authentication_error", "invalid_api_key", "Incorrect API key provided")
        reply = self._script.popleft() if self._script else (
            self.responder(body) if self.responder else self.default_reply)
        if (problem := self._validate(body)) is not None:
            recorded.status = 400
            return self._error(400, "invalid_request_error", "invalid_parameter", problem)
        if reply.fault == "drop":
            recorded.status = 0
            request.transport.close()  # type: ignore[union-attr]
            raise asyncio.CancelledError  # aiohttp's way to end a handler that has no response to give
        fault = _fault_response(reply)
        if fault is not None:
            recorded.status = fault.status
            return fault
        prompt_tokens, cached = self._prompt_usage(body)
        content, finish = self._fit(reply, int(body.get("max_tokens") or 4096))
        reasoning = reply.reasoning if body.get("enable_thinking", True) else ""
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": self.count(content) + self.count(reasoning),
            "total_tokens": prompt_tokens + self.count(content) + self.count(reasoning),
            "prompt_tokens_details": {"cached_tokens": cached},
            "completion_tokens_details": {"reasoning_tokens": self.count(reasoning)},
        }
        if reply.prompt_tokens is not None:
            usage["prompt_tokens"] = reply.prompt_tokens
        if reply.completion_tokens is not None:
            usage["completion_tokens"] = reply.completion_tokens
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        recorded.usage = usage
        if not body.get("stream"):
            return web.json_response(self._completion(content, reasoning, finish, usage))
        try:
            return await self._stream(request, reply, content, reasoning, finish, usage, body)
        except (ConnectionResetError, asyncio.CancelledError):
            recorded.client_closed = True
            raise

    def _validate(self, body: dict[str, Any]) -> str | None:
        if body.get("model") != self.model:
            return f"Unknown model {body.get('model')!r}"
        max_tokens = body.get("max_tokens", 4096)
        if not isinstance(max_tokens, int) or not 1 <= max_tokens <= 65536:
            return "max_tokens must be an integer between 1 and 65536"
        if body.get("reasoning_effort") not in (None, "low", "medium", "high"):
            return "reasoning_effort must be low, medium or high"
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return "messages must be a non-empty list"
        return None

    def _fit(self, reply: Reply, max_tokens: int) -> tuple[str, str]:
        if self.count(reply.content) <= max_tokens:
            return reply.content, reply.finish_reason
        words = reply.content.split(" ")
        lo, hi = 0, len(words)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.count(" ".join(words[:mid])) <= max_tokens:
                lo = mid
            else:
                hi = mid - 1
        return " ".join(words[:lo]), "length"

    def _completion(self, content: str, reasoning: str, finish: str, usage: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if reasoning:
            message["reasoning_content"] = reasoning
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": self.model, "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": usage}

    async def _stream(self, request: web.Request, reply: Reply, content: str, reasoning: str, finish: str,
                      usage: dict[str, Any], body: dict[str, Any]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        chunk_id = f"chatcmpl-{uuid.uuid4().hex}"

        async def send(delta: dict[str, Any] | None, finish_reason: str | None = None,
                       usage_block: dict[str, Any] | None = None) -> None:
            chunk: dict[str, Any] = {"id": chunk_id, "object": "chat.completion.chunk", "created": int(time.time()),
                                     "model": self.model,
                                     "choices": [] if delta is None else
                                     [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
            if usage_block is not None:
                chunk["usage"] = usage_block
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        if reply.first_token_delay:
            await asyncio.sleep(reply.first_token_delay)
        await send({"role": "assistant", "content": ""})
        for raw in reply.extra_chunks:
            await response.write(f"data: {raw}\n\n".encode())
        sent = 0
        pieces = [("reasoning_content", reasoning[i:i + reply.chunk_chars])
                  for i in range(0, len(reasoning), reply.chunk_chars)]
        pieces += [("content", content[i:i + reply.chunk_chars]) for i in range(0, len(content), reply.chunk_chars)]
        for key, piece in pieces:
            if reply.fault == "cut" and sent >= reply.cut_after_chunks:
                # Drop the connection mid-body, as a proxy restart or network fault would.
                request.transport.close()  # type: ignore[union-attr]
                return response
            await send({key: piece})
            sent += 1
            if reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
        if reply.fault == "cut":
            request.transport.close()  # type: ignore[union-attr]
            return response
        final_reason = "content_filter" if reply.fault == "content_filter" else finish
        await send({}, final_reason)
        if reply.include_usage and (body.get("stream_options") or {}).get("include_usage"):
            await send(None, usage_block=usage if reply.usage_raw is None else reply.usage_raw)
        if reply.send_done:
            await response.write(b"data: [DONE]\n\n")
        if reply.fault == "hold_after_done":
            # Until the client goes (aiohttp does not cancel a handler whose client left).
            for _ in range(1200):
                if request.transport is None or request.transport.is_closing():
                    return response
                await asyncio.sleep(0.05)
        await response.write_eof()
        return response

    @staticmethod
    def _error(status: int, kind: str, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
        return web.json_response({"error": {"code": code, "message": message, "type": kind}}, status=status,
                                 headers=headers)


def _fault_response(reply: Reply) -> web.Response | None:
    headers = {"Retry-After": str(reply.retry_after)} if reply.retry_after is not None else None
    match reply.fault:
        case "overload_429":
            return FakeSeed._error(429, "rate_limit_error", "server_overloaded",
                                   "The service is overloaded, please retry later", headers)
        case "quota_429":
            return FakeSeed._error(429, "insufficient_quota", "insufficient_quota",
                                   "You exceeded your current quota, please check your plan and billing details")
        case "server_500":
            return FakeSeed._error(500, "server_error", "internal_error", "Internal server error")
        case "context_400":
            return FakeSeed._error(400, "invalid_request_error", "context_length_exceeded",
                                   "This model's maximum context length is 262144 tokens")
        case "auth_401":
            return FakeSeed._error(401, "authentication_error", "invalid_api_key", "Incorrect API key provided")
        case "redirect_307":
            return web.Response(status=307, headers={"Location": "/v1/chat/completions"})
    return None


def _common_prefix(a: str, b: str) -> int:
    limit = min(len(a), len(b))
    if a[:limit] == b[:limit]:
        return limit
    lo, hi = 0, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo

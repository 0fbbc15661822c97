"""Discord's rate-limit headers, honest per-bucket windows, and injected 429s."""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass

from aiohttp import web


@dataclass
class CallPattern:
    """API calls a test singles out: by method (None: any) and path prefix below /api/v10, for the next
    `remaining` of them (None: every one)."""

    method: str | None
    path_prefix: str
    remaining: int | None

    def matches(self, method: str, path: str) -> bool:
        """Whether this call is singled out (and some of the `remaining` are left)."""
        left = self.remaining is None or self.remaining > 0
        return left and self.method in (None, method) and path.startswith(self.path_prefix)

    def take(self, method: str, path: str) -> bool:
        """Whether this call matches; one fewer remain if it does."""
        if not self.matches(method, path):
            return False
        if self.remaining is not None:
            self.remaining -= 1
        return True


@dataclass
class Injection(CallPattern):
    retry_after: float
    is_global: bool
    scope: str


@dataclass
class Window:
    used: int
    resets_at: float  # time.time()


class RateLimits:
    """Counts requests per bucket (route + major parameter) in fixed windows and reports them as Discord does.

    discord.py trusts X-RateLimit-Remaining and waits on its own when it reaches 0, so a client that
    respects the headers never sees a real 429 here; injected 429s test the retry path.
    """

    def __init__(self, *, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._windows: dict[str, Window] = {}
        self._injections: list[Injection] = []
        self.served_429s = 0

    def inject(
        self,
        method: str | None,
        path_prefix: str,
        *,
        times: int,
        retry_after: float,
        is_global: bool,
        scope: str,
    ) -> None:
        self._injections.append(Injection(method, path_prefix, times, retry_after, is_global, scope))

    def admit(self, method: str, path: str, route_key: str, major: str) -> web.Response | None:
        """Returns a 429 response if this request is limited, else counts it and returns None."""
        bucket = bucket_hash(route_key)
        for injection in self._injections:
            if injection.take(method, path):
                return self._too_many(bucket, injection.retry_after, injection.is_global, injection.scope)
        window = self._current(f"{bucket}:{major}")
        if window.used >= self.limit:
            return self._too_many(bucket, window.resets_at - time.time(), False, "user")
        window.used += 1
        return None

    def headers(self, route_key: str, major: str) -> dict[str, str]:
        bucket = bucket_hash(route_key)
        window = self._current(f"{bucket}:{major}")
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(self.limit - window.used, 0)),
            "X-RateLimit-Reset": f"{window.resets_at:.3f}",
            "X-RateLimit-Reset-After": f"{max(window.resets_at - time.time(), 0.0):.3f}",
            "X-RateLimit-Bucket": bucket,
        }

    def _current(self, key: str) -> Window:
        now = time.time()
        window = self._windows.get(key)
        if window is None or window.resets_at <= now:
            window = self._windows[key] = Window(used=0, resets_at=now + self.window)
        return window

    def _too_many(self, bucket: str, retry_after: float, is_global: bool, scope: str) -> web.Response:
        self.served_429s += 1
        retry_after = round(max(retry_after, 0.0), 3)
        headers = {
            "Content-Type": "application/json",
            # discord.py treats a 429 without Via as a Cloudflare ban and gives up.
            "Via": "1.1 google",
            "Retry-After": str(math.ceil(retry_after)),
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
            "X-RateLimit-Reset-After": f"{retry_after:.3f}",
            "X-RateLimit-Bucket": bucket,
            "X-RateLimit-Scope": scope,
        }
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": is_global}
        return web.Response(status=429, body=json.dumps(body).encode(), headers=headers)


def bucket_hash(route_key: str) -> str:
    return hashlib.sha1(route_key.encode()).hexdigest()[:16]

"""Injected refusals: API calls answered with one of Discord's JSON errors instead of being served (a
channel the bot may not post in, one deleted meanwhile), the way limits.py injects 429s."""

from __future__ import annotations

from dataclasses import dataclass

from .limits import CallPattern
from .rest_common import ApiError


@dataclass
class Refusal(CallPattern):
    error: ApiError


class Refusals:
    def __init__(self) -> None:
        self._refusals: list[Refusal] = []

    def add(self, method: str | None, path_prefix: str, error: ApiError, *, times: int | None) -> None:
        """Answer the next `times` calls (every one if None) matching method and path prefix with `error`."""
        self._refusals.append(Refusal(method, path_prefix, times, error))

    def check(self, method: str, path: str) -> None:
        """Raises the ApiError of the first refusal matching this call, if any."""
        for refusal in self._refusals:
            if refusal.take(method, path):
                raise refusal.error

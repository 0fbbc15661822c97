"""What the fake Slack records of the app's requests, for assertions; and the failures tests inject."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .model import JSON


@dataclass(frozen=True)
class ApiCall:
    """One Web API request as the fake received it (params merged from query, form and JSON body)."""

    method: str
    params: JSON
    headers: Mapping[str, str]
    content_type: str
    at: float
    status: int
    response: JSON

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        return self.response.get("error")


@dataclass(frozen=True)
class FileDownload:
    file_id: str
    authorized: bool
    at: float


@dataclass(frozen=True)
class ResponseUrlPost:
    """A POST the app made to a slash command's response_url."""

    url: str
    body: JSON
    at: float


@dataclass(frozen=True)
class SocketAck:
    envelope_id: str
    payload: JSON | None
    at: float
    latency: float


@dataclass
class Injection:
    """The answer the next `remaining` calls (every one if None) of `method` (None: any method) get instead
    of being served; with a `channel`, only calls whose `channel` parameter is that channel."""

    method: str | None
    remaining: int | None
    status: int
    body: JSON
    headers: dict[str, str]
    channel: str | None = None

    def take(self, method: str, params: JSON) -> bool:
        """Whether this call gets the injected answer; one fewer remain if it does."""
        if self.remaining == 0 or self.method not in (None, method):
            return False
        if self.channel is not None and str(params.get("channel") or "") != self.channel:
            return False
        if self.remaining is not None:
            self.remaining -= 1
        return True

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
    method: str | None
    remaining: int
    status: int
    body: JSON
    headers: dict[str, str]

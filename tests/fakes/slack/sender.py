"""Delivering events to an app over HTTP, signed with the signing secret as Slack signs them."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp
from multidict import CIMultiDict
from slack_sdk.signature import SignatureVerifier

from .model import JSON


@dataclass(frozen=True)
class Delivery:
    """The app's answer to a signed request. status is None when Slack's 3 s timeout expired first."""

    status: int | None
    body: str
    headers: Mapping[str, str]
    elapsed: float

    @property
    def timed_out(self) -> bool:
        return self.status is None


class SignedSender:
    """POSTs Events API bodies and slash command forms to an app, signed as Slack signs them."""

    def __init__(self, url: str, signing_secret: str, *, ack_timeout: float = 3.0) -> None:
        self.url = url
        self.verifier = SignatureVerifier(signing_secret)
        self.ack_timeout = ack_timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SignedSender:
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post_event(
        self,
        payload: JSON,
        *,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> Delivery:
        """retry_num/retry_reason add X-Slack-Retry-*; timestamp/signature override the real ones."""
        return await self._post(
            json.dumps(payload), "application/json", retry_num, retry_reason, timestamp, signature
        )

    async def post_interaction(self, payload: JSON) -> Delivery:
        """An interactivity request: Slack POSTs `payload=<json>` form-encoded to the Request URL."""
        return await self._post(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded",
                                None, None, None, None)

    async def post_slash_command(
        self, form: Mapping[str, str], *, timestamp: int | None = None, signature: str | None = None
    ) -> Delivery:
        return await self._post(
            urlencode(form), "application/x-www-form-urlencoded", None, None, timestamp, signature
        )

    async def post_raw(self, body: bytes, content_type: str, *, headers: Mapping[str, str] | None = None) -> Delivery:
        """POST any bytes, signed as Slack signs them (over the raw body); `headers` add or replace
        headers, e.g. a malformed X-Slack-Request-Timestamp."""
        ts = str(int(time.time()))
        signed = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": "v0=" + hmac.new(self.verifier.signing_secret.encode(),
                                                  f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest(),
        }
        signed.update(headers or {})
        async with aiohttp.ClientSession() as session:
            return await self._send(session, body, signed)

    async def _post(
        self,
        body: str,
        content_type: str,
        retry_num: int | None,
        retry_reason: str | None,
        timestamp: int | None,
        signature: str | None,
    ) -> Delivery:
        ts = str(timestamp if timestamp is not None else int(time.time()))
        headers = {
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature or self.verifier.generate_signature(timestamp=ts, body=body),
        }
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
        if self._session is None:
            async with aiohttp.ClientSession() as session:
                return await self._send(session, body, headers)
        return await self._send(self._session, body, headers)

    async def _send(self, session: aiohttp.ClientSession, body: str | bytes, headers: Mapping[str, str]) -> Delivery:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.ack_timeout):
                data = body.encode() if isinstance(body, str) else body
                async with session.post(self.url, data=data, headers=headers) as res:
                    text = await res.text()
                    return Delivery(res.status, text, CIMultiDict(res.headers), time.monotonic() - started)
        except TimeoutError:
            return Delivery(None, "", CIMultiDict(), time.monotonic() - started)

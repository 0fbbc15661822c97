"""A volley of signed Slack events from a process of its own, with as little client work as possible between
the first request and the last, so that what it times is the server's acknowledgement, not the client.

Every event gets its own connection, opened before the clock starts; each request is signed and rendered to
bytes in advance (HTTP/1.1, `Connection: close`); then all are written in one loop with no await between
them, and a request's latency runs from its write to the first byte of its response (asyncio.Protocol,
no HTTP client library on the read side). A response that takes longer than the deadline counts as
None (`ack_deadline`: Slack's own is 3 s).

Reads a JSON list of Events API bodies on stdin; prints a JSON list of latencies in ms (or null), in order.
Run: python -m bench.volley --url http://127.0.0.1:PORT/slack/events --signing-secret S < bodies.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from urllib.parse import urlsplit

from slack_sdk.signature import SignatureVerifier

from bot.ops.heap import freeze_long_lived


class _Timed(asyncio.Protocol):
    """One connection: records when the first byte of the response arrives."""

    def __init__(self) -> None:
        self.first_byte = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        if not self.first_byte.done():
            self.first_byte.set_result(time.perf_counter())

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.first_byte.done():
            self.first_byte.set_exception(exc or ConnectionError("closed before a response"))


def render(url: str, signing_secret: str, body: bytes) -> bytes:
    """A POST of `body` to `url` signed as Slack signs it (slack_sdk's SignatureVerifier, the v0 scheme of
    "Verifying requests from Slack"), as the bytes of an HTTP/1.1 request."""
    parts = urlsplit(url)
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=timestamp, body=body)
    head = (f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nUser-Agent: Slackbot 1.0 (+https://api.slack.com/robots)\r\n"
            f"X-Slack-Request-Timestamp: {timestamp}\r\nX-Slack-Signature: {signature}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


async def volley(url: str, signing_secret: str, bodies: list[bytes], *,
                 ack_deadline: float = 3.0) -> list[float | None]:
    """Latency in ms of each request, from its write to its response's first byte (None: none within
    `ack_deadline` seconds, or the connection closed without one)."""
    loop = asyncio.get_running_loop()
    parts = urlsplit(url)
    requests = [render(url, signing_secret, body) for body in bodies]
    connections = [await loop.create_connection(_Timed, parts.hostname, parts.port) for _ in requests]
    sent: list[float] = []
    for (transport, _), request in zip(connections, requests, strict=True):
        sent.append(time.perf_counter())
        transport.write(request)
    latencies: list[float | None] = []
    for (transport, protocol), at in zip(connections, sent, strict=True):
        try:
            arrived = await asyncio.wait_for(protocol.first_byte, ack_deadline - (time.perf_counter() - at))
            latencies.append((arrived - at) * 1000)
        except (TimeoutError, ConnectionError):
            latencies.append(None)
        transport.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--signing-secret", required=True)
    args = parser.parse_args()
    bodies = [json.dumps(body).encode() for body in json.load(sys.stdin)]
    freeze_long_lived()  # a measuring process that pauses for a full collection measures its own pause
    print(json.dumps(asyncio.run(volley(args.url, args.signing_secret, bodies))))


if __name__ == "__main__":
    main()

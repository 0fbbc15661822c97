"""Socket Mode: the WebSocket endpoint apps connect to, envelopes out, acks in."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from .model import JSON, SlackConfig
from .records import SocketAck
from .state import Changes


@dataclass(frozen=True)
class _Envelope:
    id: str
    type: str
    sent_at: float


class SocketHub:
    """The Socket Mode WebSocket endpoint: hello on connect, envelopes out, acks in."""

    def __init__(self, config: SlackConfig, changes: Changes) -> None:
        self.config = config
        self._changes = changes
        self.tickets: set[str] = set()
        self.sockets: list[web.WebSocketResponse] = []
        self.connections_total = 0
        self.envelopes: dict[str, _Envelope] = {}
        self.acks: list[SocketAck] = []
        self.accepting = True

    def issue_ticket(self) -> str:
        ticket = uuid.uuid4().hex
        self.tickets.add(ticket)
        return ticket

    async def handle(self, request: web.Request) -> web.StreamResponse:
        # Tickets stay valid after use: slack_sdk retries a failed connect() with the same URL.
        if not self.accepting or request.query.get("ticket") not in self.tickets:
            return web.Response(status=401, text="invalid ticket")
        ws = web.WebSocketResponse(timeout=1.0)
        await ws.prepare(request)
        self.sockets.append(ws)
        self.connections_total += 1
        self._changes.notify()
        try:
            await ws.send_json(self._hello())
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self._receive(msg.data)
        finally:
            self.sockets.remove(ws)
            self._changes.notify()
        return ws

    def _hello(self) -> JSON:
        return {
            "type": "hello",
            "num_connections": len(self.sockets),
            "debug_info": {"host": "fake-applink-1", "build_number": 1, "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.config.app_id},
        }

    def _receive(self, data: str) -> None:
        at = time.monotonic()
        try:
            message = json.loads(data)
        except ValueError:
            return
        envelope = self.envelopes.get(message.get("envelope_id", ""))
        if envelope is None:
            return
        latency = at - envelope.sent_at
        self.acks.append(SocketAck(envelope.id, message.get("payload"), at, latency))
        self._changes.notify()

    def open_sockets(self) -> list[web.WebSocketResponse]:
        return [ws for ws in self.sockets if not ws.closed]

    async def send(self, type_: str, payload: JSON, **extra: Any) -> str:
        sockets = self.open_sockets()
        if not sockets:
            raise RuntimeError("no Socket Mode client is connected; await slack.wait_for_socket() first")
        envelope_id = str(uuid.uuid4())
        body = {"envelope_id": envelope_id, "type": type_, "payload": payload, **extra}
        # Slack delivers each envelope on one connection; the newest mirrors a fresh reconnect taking over.
        self.envelopes[envelope_id] = _Envelope(envelope_id, type_, time.monotonic())
        await sockets[-1].send_json(body)
        return envelope_id

    async def request_refresh(self) -> None:
        for ws in self.open_sockets():
            await ws.send_json(
                {
                    "type": "disconnect",
                    "reason": "refresh_requested",
                    "debug_info": {"host": "fake-applink-1"},
                }
            )

    async def close_all(self) -> None:
        self.accepting = False
        for ws in list(self.sockets):
            await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY)

"""The process's HTTP server: /healthz and /metrics here; platform adapters mount their own routes
(Slack's /slack/events) on the same application."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.ops.metrics import Metrics
from bot.storage.engine import Database, DatabaseUnhealthy

log = logging.getLogger(__name__)

# A database that does not answer within this is unhealthy: a probe must get an answer, not hang with it.
HEALTH_TIMEOUT_SECONDS = 5.0


def build_web_app(db: Database, metrics: Metrics, *, read_timeout: float = 10.0) -> web.Application:
    """`read_timeout` (seconds) bounds how long a request's body may take to arrive: a stalled
    connection is answered 408 and closed instead of being held open forever."""

    @web.middleware
    async def bounded_body(request: web.Request, handler):  # noqa: ANN001, ANN202 - aiohttp's middleware shape
        # A body already whole (a Slack event arrives in one packet) needs no deadline: no timer to arm and cancel.
        if request.can_read_body and not request.content.is_eof():
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for runs the read in a task of its own,
                # a loop iteration more for every request (a burst of Slack events waits on each).
                async with asyncio.timeout(read_timeout):
                    await request.read()  # aiohttp keeps it for the handler
            except TimeoutError:
                log.warning("request body for %s not received within %.0f s; connection dropped",
                            request.path, read_timeout)
                return web.Response(status=408, headers={"Connection": "close"})
        return await handler(request)

    app = web.Application(client_max_size=4 * 1024 * 1024, middlewares=[bounded_body])

    async def healthz(_request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
                await db.ping()
        except DatabaseUnhealthy as exc:
            log.warning("health check failed: %s", exc)
            return web.json_response({"status": "unhealthy", "database": "unwritable"}, status=503)
        except Exception as exc:  # noqa: BLE001 - any database failure is "unhealthy"
            log.warning("health check failed: %s", type(exc).__name__)
            return web.json_response({"status": "unhealthy", "database": "unreachable"}, status=503)
        return web.json_response({"status": "ok"})

    async def metrics_page(_request: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_page)
    return app


class WebServer:
    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self.app = app
        self._host = host
        self._port = port
        self._runner = web.AppRunner(app, access_log=None)
        self.port = port

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("HTTP server listening on %s:%d", self._host, self.port)

    async def stop(self) -> None:
        await self._runner.cleanup()

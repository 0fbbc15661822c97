"""A TCP proxy that delays every byte by a fixed time each way, in a process of its own: PostgreSQL "over a
network" where this machine's `tc` has no netem to add latency to loopback.

Run: .venv/bin/python -m bench.delay_proxy --target 127.0.0.1:5432 --one-way-ms 0.5
It prints the port it listens on (127.0.0.1), then forwards until killed. Timers run on the event loop, whose
resolution is about a millisecond (epoll's timeout), so a delay comes out at least as long as asked and up to
a millisecond longer: the bench measures the round trip it really gets (`measured_rtt_ms`).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import sys
import time
from collections.abc import AsyncIterator


class _Delayed(asyncio.Protocol):
    """One direction's reader: what arrives is written to `peer` `delay` seconds later, in order."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.peer: asyncio.Transport | None = None
        self.other: _Delayed | None = None
        self._queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._closing = False

    def data_received(self, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        self._queue.append((loop.time() + self.delay, data))
        if self._timer is None:
            self._timer = loop.call_at(self._queue[0][0], self._release)

    def _release(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = None
        while self._queue and self._queue[0][0] <= loop.time():
            if self.peer is not None:
                self.peer.write(self._queue.popleft()[1])
        if self._queue:
            self._timer = loop.call_at(self._queue[0][0], self._release)
        elif self._closing and self.peer is not None:
            self.peer.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if not self._queue and self.peer is not None:
            self.peer.close()


async def serve(target_host: str, target_port: int, one_way_seconds: float) -> asyncio.Server:
    """A listening proxy on 127.0.0.1 (port 0: any free one) to target_host:target_port."""
    loop = asyncio.get_running_loop()

    class Client(_Delayed):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            transport.pause_reading()
            loop.create_task(self._connect(transport))

        async def _connect(self, client: asyncio.Transport) -> None:
            upstream, server_side = await loop.create_connection(lambda: _Delayed(one_way_seconds),
                                                                 target_host, target_port)
            self.peer, server_side.peer = upstream, client
            client.resume_reading()

    return await loop.create_server(lambda: Client(one_way_seconds), "127.0.0.1", 0)


@contextlib.asynccontextmanager
async def delay_proxy_process(target: str, one_way_ms: float) -> AsyncIterator[int]:
    """The proxy in a child process (so its timers do not share the measured event loop); yields its port."""
    proxy = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.delay_proxy", "--target", target,
                                                 "--one-way-ms", str(one_way_ms), stdout=asyncio.subprocess.PIPE)
    assert proxy.stdout is not None
    try:
        yield int((await proxy.stdout.readline()).decode())
    finally:
        proxy.kill()
        with contextlib.suppress(ProcessLookupError):
            await proxy.wait()


async def measured_rtt_ms(database_url: str, samples: int = 50) -> float:
    """The median time of `SELECT 1` through `database_url` (an asyncpg URL), in milliseconds."""
    import asyncpg  # the bench's only direct use of it

    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            await connection.fetchval("SELECT 1")
            times.append((time.perf_counter() - started) * 1000)
        return sorted(times)[len(times) // 2]
    finally:
        await connection.close()


async def _main(target: str, one_way_ms: float) -> None:
    host, port = target.rsplit(":", 1)
    server = await serve(host, int(port), one_way_ms / 1000)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True, help="host:port to forward to")
    parser.add_argument("--one-way-ms", type=float, required=True, help="delay added in each direction")
    args = parser.parse_args()
    asyncio.run(_main(args.target, args.one_way_ms))


if __name__ == "__main__":
    main()

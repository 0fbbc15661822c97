"""Core benchmark: ChatService against an instant fake Seed model running in another process.

Prints: event -> model request latency (p50/p99), answers per second with 200-token answers, the database
connections the pool opened during the run, the CPU time per answer, and RSS before and after, for one bot
process on SQLite (a new file, which the process migrates as at its first start: by a child process, so the
RSS is the same as at any later start) or the PostgreSQL database given.
Run: .venv/bin/python -m bench.core_bench [--messages 10000] [--concurrency 50] [--database-url URL]
     [--one-way-ms 0.5] (PostgreSQL through bench.delay_proxy: a network's round trip on loopback)
     [--channel-budget 1000/day] (every channel limited, so each has a counter row to open and lock)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import tempfile
import time

from sqlalchemy.engine import make_url

from adapters.core import build_core
from bench.delay_proxy import delay_proxy_process, measured_rtt_ms
from bench.harness import Figure, fake_seed_process, percentile, rss_mib, run_like_seedbot
from bot.config import load_settings
from tests.factories import incoming
from tests.sinks import RecordingSink


class TimedSink(RecordingSink):
    """Records when the core is about to send the model request (it starts the sink right before)."""

    started_at: float = 0.0

    async def start(self) -> None:
        self.started_at = time.monotonic()
        await super().start()


async def run(messages: int = 2000, concurrency: int = 50, database_url: str | None = None,
              one_way_ms: float | None = None, channel_budget: str = "none") -> list[Figure]:
    """With `one_way_ms`, PostgreSQL is reached through `bench.delay_proxy`, each direction delayed that long.
    `channel_budget` is every channel's limit (SEEDBOT_DEFAULT_CHANNEL_BUDGET: "none", or "1000/day" to give each
    channel a counter row without refusing any answer)."""
    async with contextlib.AsyncExitStack() as stack:
        base_url = await stack.enter_async_context(fake_seed_process())
        backend = "PostgreSQL" if database_url else "SQLite"
        if database_url and one_way_ms is not None:
            url = make_url(database_url)
            port = await stack.enter_async_context(delay_proxy_process(f"{url.host}:{url.port or 5432}", one_way_ms))
            database_url = url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
            rtt = await measured_rtt_ms(database_url)
            print(f"round trip to PostgreSQL:           {rtt:.2f} ms (median of SELECT 1 through the proxy)")
            backend = f"PostgreSQL at {rtt:.1f} ms a round trip"
        if database_url is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory())
            database_url = f"sqlite+aiosqlite:///{folder}/bench.db"
        settings = load_settings(_env_file=None, SEED_API_KEY="test-seed-key", SEED_BASE_URL=base_url,
                                 DATABASE_URL=database_url,
                                 SEEDBOT_DEFAULT_CHANNEL_BUDGET=channel_budget)
        core = await build_core(settings)
        try:
            return await measure(core, messages, concurrency, backend)
        finally:
            await core.aclose()


async def measure(core, messages: int, concurrency: int, backend: str) -> list[Figure]:  # noqa: ANN001
    for i in range(20):
        await core.service.handle(incoming("warm up", thread=f"w{i}", message_id=f"warm-{i}"), RecordingSink())
    gc.collect()
    rss_start = rss_mib()
    latencies: list[float] = []
    semaphore = asyncio.Semaphore(concurrency)
    checkpoints: list[tuple[int, float]] = []
    not_ok: list[str] = []
    # Connections the pool opens past its warm set: each costs a login and, on PostgreSQL, statements prepared anew.
    opened_before = core.db.connections().opened

    async def one(i: int) -> None:
        async with semaphore:
            message = incoming(f"question {i}: how do I sort a dict by value?", thread=f"b{i % 500}",
                               channel=f"C{i % 20}", message_id=f"bench-{i}")
            sink = TimedSink()
            received = time.monotonic()
            answer = await core.service.handle(message, sink)
            if answer is None or answer.status != "ok":
                not_ok.append(answer.status if answer else "none")
                return
            latencies.append((sink.started_at - received) * 1000)
            if (i + 1) % max(1, messages // 5) == 0:
                checkpoints.append((i + 1, rss_mib()))

    started, cpu_started = time.monotonic(), time.process_time()
    await asyncio.gather(*(one(i) for i in range(messages)))
    elapsed, cpu_ms = time.monotonic() - started, (time.process_time() - cpu_started) * 1000 / messages
    gc.collect()
    rate, p50, p99 = messages / elapsed, percentile(latencies, 0.5), percentile(latencies, 0.99)
    print(f"messages answered:                  {messages - len(not_ok):,} at concurrency {concurrency}"
          + (f" ({len(not_ok):,} not ok: {', '.join(sorted(set(not_ok)))})" if not_ok else ""))
    print(f"answers per second (200-token):     {rate:,.0f}")
    print(f"event -> model request p50 / p99:   {p50:.1f} ms / {p99:.1f} ms")
    print(f"database connections opened:        {core.db.connections().opened - opened_before:,}")
    # CPU time (all threads) is what a loaded, shared machine distorts least; its inverse is the rate
    # one otherwise idle core would sustain, the GIL serialising the loop and the writer thread.
    print(f"CPU per answer (all threads):       {cpu_ms:.2f} ms (one idle core: ~{1000 / cpu_ms:,.0f} answers/s)")
    print(f"RSS before / after:                 {rss_start:.0f} MiB / {rss_mib():.0f} MiB "
          f"(during: {', '.join(f'{n:,}: {mb:.0f}' for n, mb in sorted(checkpoints))})")
    return [Figure(f"answers per second, {backend}, concurrency {concurrency} (200-token answers)", f"{rate:,.0f}"),
            Figure(f"CPU per answer, {backend} (all threads of the bot process)",
                   f"{cpu_ms:.2f} ms (one idle core: ~{1000 / cpu_ms:,.0f}/s)"),
            Figure(f"event -> model request p50 / p99, {backend}, concurrency {concurrency}",
                   f"{p50:.1f} ms / {p99:.1f} ms"),
            Figure(f"RSS after {messages:,} answers, {backend}", f"{rss_mib():.0f} MiB")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--database-url", help="an empty, migrated database (default: a new SQLite file)")
    parser.add_argument("--one-way-ms", type=float, help="PostgreSQL through a proxy delaying each direction")
    parser.add_argument("--channel-budget", default="none", help="every channel's limit, e.g. 1000/day")
    args = parser.parse_args()
    run_like_seedbot(run(args.messages, args.concurrency, args.database_url, args.one_way_ms, args.channel_budget))


if __name__ == "__main__":
    main()

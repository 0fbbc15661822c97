"""Retention benchmark: one daily sweep over many expired threads, and what it costs the answer path
meanwhile.

Prints: threads deleted per second, the longest single batch transaction (how long the sweep holds
SQLite's write lock, or PostgreSQL's row locks, at a time), and the latency of the answer path's first
transaction (claiming a new message) measured every 10 ms while the sweep runs, p50/p99, against the
same figure with no sweep.
Run: .venv/bin/python -m bench.retention_bench [--threads 20000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from adapters.core import build_core
from bench.harness import percentile, run_like_seedbot
from bot.config import load_settings
from bot.ops.retention import BATCH_SIZE, Retention
from bot.storage.tables import Channel, Message, Thread, UsageEntry, utcnow
from tests.factories import incoming

PROBE_INTERVAL = 0.01


async def fill(core, threads: int) -> None:  # noqa: ANN001 - a Core
    """`threads` expired threads of one question and one answer each, with one ledger row each."""
    old = utcnow() - timedelta(days=400)
    async with core.db.session() as session:
        await session.execute(core.db.insert(Channel).values(platform="slack", workspace_id="W1", channel_id="COLD",
                                                             name="", web_search=False, created_at=old))
    channel_pk = await core.db.run(lambda s: s.query(Channel.id).filter(Channel.channel_id == "COLD").scalar())
    # 1,000 threads per statement keeps under asyncpg's 32,767 bind parameters.
    for start in range(0, threads, 1_000):
        count = min(1_000, threads - start)
        async with core.db.session() as session:
            await session.execute(core.db.insert(Thread).values([
                {"channel_pk": channel_pk, "platform_thread_id": f"old{start + i}", "history_floor_message_pk": 0,
                 "last_prompt_estimate": 0, "last_prompt_actual": 0, "created_at": old, "updated_at": old}
                for i in range(count)]))
        pks = await core.db.run(lambda s, a=start, n=count: [row[0] for row in s.query(Thread.id).filter(
            Thread.platform_thread_id.in_([f"old{a + i}" for i in range(n)]))])
        async with core.db.session() as session:
            await session.execute(core.db.insert(Message).values(
                [{"thread_pk": pk, "role": role, "content": "x" * 400, "token_estimate": 100, "status": "ok",
                  "user_id": "U1", "created_at": old} for pk in pks for role in ("user", "assistant")]))
            await session.execute(core.db.insert(UsageEntry).values(
                [{"channel_pk": channel_pk, "thread_pk": pk, "status": "ok", "cost_nanos": 1_000,
                  "started_at": old} for pk in pks]))


async def probe(core, stop: asyncio.Event, latencies: list[float]) -> None:  # noqa: ANN001
    ids = itertools.count()
    while not stop.is_set():
        started = time.perf_counter()
        await core.store.claim(incoming("probe", thread=f"probe{next(ids)}"), "probe", 10)
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(PROBE_INTERVAL)


async def main(threads: int, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        core = await build_core(load_settings(_env_file=None, DATABASE_URL=url), require_model_key=False)
        try:
            await fill(core, threads)
            idle: list[float] = []
            stop = asyncio.Event()
            task = asyncio.create_task(probe(core, stop, idle))
            await asyncio.sleep(2.0)
            stop.set()
            await task

            batches: list[float] = []
            run = core.db.run

            async def timed_run(work):  # noqa: ANN001, ANN202 - Database.run, timed
                started = time.perf_counter()
                try:
                    return await run(work)
                finally:
                    batches.append(time.perf_counter() - started)

            busy: list[float] = []
            stop = asyncio.Event()
            task = asyncio.create_task(probe(core, stop, busy))
            retention = Retention(core.db)
            core.db.run = timed_run  # type: ignore[method-assign]
            started = time.perf_counter()
            removed = await retention.purge_older_than(utcnow() - timedelta(days=90))
            elapsed = time.perf_counter() - started
            core.db.run = run  # type: ignore[method-assign]
            stop.set()
            await task
        finally:
            await core.aclose()
    backend = "PostgreSQL" if database_url else "SQLite"
    print(f"{backend}: {removed.threads:,} threads ({removed.user_messages + removed.answers:,} messages) deleted in "
          f"{elapsed:.2f} s = {removed.threads / elapsed:,.0f} threads/s, batches of {BATCH_SIZE}")
    # The probe's own claims go through the same timed run: keep the sweep's batches only.
    sweep = sorted(batches)[-(threads // BATCH_SIZE + 1):]
    print(f"longest batch transaction: {max(sweep) * 1000:.0f} ms")
    print(f"message claim latency, idle: p50 {percentile(idle, 0.5) * 1000:.1f} ms, "
          f"p99 {percentile(idle, 0.99) * 1000:.1f} ms ({len(idle)} claims)")
    print(f"message claim latency during the sweep: p50 {percentile(busy, 0.5) * 1000:.1f} ms, "
          f"p99 {percentile(busy, 0.99) * 1000:.1f} ms ({len(busy)} claims)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=20_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    run_like_seedbot(main(args.threads, args.database_url))

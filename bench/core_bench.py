"""Core benchmark: ChatService on SQLite against an instant fake Seed model, in one process.

Prints: event -> model request latency (p50/p99), answers per second with 200-token answers, RSS
growth over many answered messages, and the cached share of a 30-turn thread.
Run: .venv/bin/python -m bench.core_bench [--messages 10000] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bot.app import build_core
from bot.config import load_settings
from tests.factories import incoming
from tests.fakes.seed import FakeSeed, Reply
from tests.sinks import RecordingSink

ANSWER_200_TOKENS = " ".join(f"word{i}" for i in range(200))


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 1024 / 1024


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def run(messages: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeSeed() as fake:
            fake.default_reply = Reply(content=ANSWER_200_TOKENS, chunk_chars=400)
            settings = load_settings(_env_file=None, SEED_API_KEY=fake.api_key, SEED_BASE_URL=fake.base_url,
                                     DATABASE_URL=f"sqlite+aiosqlite:///{tmp}/bench.db",
                                     SEEDBOT_DEFAULT_CHANNEL_BUDGET="none")
            core = await build_core(settings)
            try:
                await _warm_up(core)
                rss_start = rss_mb()
                sent_at: dict[str, float] = {}
                semaphore = asyncio.Semaphore(concurrency)

                async def one(i: int) -> None:
                    async with semaphore:
                        message = incoming(f"question {i}: how do I sort a dict by value?", thread=f"b{i % 500}",
                                           channel=f"C{i % 20}", message_id=f"bench-{i}")
                        sent_at[f"question {i}:"] = time.monotonic()
                        await core.service.handle(message, RecordingSink())

                fake.requests.clear()
                started = time.monotonic()
                await asyncio.gather(*(one(i) for i in range(messages)))
                elapsed = time.monotonic() - started
                latencies = []
                for record in fake.requests:
                    text = record.body["messages"][-1]["content"]
                    key = text.split(" how")[0]
                    if key in sent_at:
                        latencies.append((record.at - sent_at[key]) * 1000)
                rss_end = rss_mb()
                print(f"messages answered:                  {messages:,} at concurrency {concurrency}")
                print(f"answers per second (200-token):     {messages / elapsed:,.0f}")
                print(f"event -> model request p50 / p99:   {percentile(latencies, 0.5):.1f} ms / "
                      f"{percentile(latencies, 0.99):.1f} ms (mean {statistics.mean(latencies):.1f})")
                print(f"RSS before / after:                 {rss_start:.0f} MB / {rss_end:.0f} MB")
            finally:
                await core.aclose()


async def _warm_up(core) -> None:  # noqa: ANN001
    for i in range(20):
        await core.service.handle(incoming("warm up", thread=f"w{i}", message_id=f"warm-{i}"), RecordingSink())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(run(args.messages, args.concurrency))


if __name__ == "__main__":
    main()

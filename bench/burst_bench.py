"""Bursts against `seedbot run` in its own process, answers streaming from the fake Seed model (its own
process) into the fake Slack (this process).

- burst: 200 mentions posted at once while a probe process (bench.probe) keeps sending an unrelated
  signed Slack event and GET /healthz every 20 ms: the probes' latency while the 200 answers start and
  finish, against the quiet second before. Also the acks of the 200 mentions themselves.
- memory: five bursts of 200 streaming answers; the bot's RSS idle and after each burst settles.

Run: .venv/bin/python -m bench.burst_bench burst|memory [--answers 200] [--stream-seconds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bench.harness import BotChild, Figure, fake_seed_process, percentile, rss_mib, seedbot_run, slack_env
from bot.ops.heap import freeze_long_lived
from tests.fakes.slack import FakeSlack

PROBE_EVERY_SECONDS = 0.02
QUIET_BEFORE_SECONDS = 1.0
SETTLE_SECONDS = 2.0


@dataclass
class _Bench:
    slack: FakeSlack
    bot: BotChild
    answered: int = 0

    async def burst(self, answers: int, tag: str) -> tuple[list[float], float]:
        """Post `answers` mentions at once; (their ack latencies in ms, seconds until all were answered)."""
        mentions = [self.slack.events.app_mention(f"question {tag}-{i}: how do I sort a dict by value?",
                                                  channel=f"C{i % 10}") for i in range(answers)]
        started = time.monotonic()
        async with self.slack.sender(f"{self.bot.base_url}/slack/events") as sender:
            deliveries = await asyncio.gather(*(sender.post_event(m) for m in mentions))
        self.answered += answers

        def done() -> bool:
            return len([c for c in self.slack.calls("chat.stopStream") if c.ok]) >= self.answered

        await self.slack.wait_for(done, timeout=300)
        return [d.elapsed * 1000 for d in deliveries], time.monotonic() - started


@asynccontextmanager
async def _running(stream_seconds: float) -> AsyncIterator[_Bench]:
    async with fake_seed_process("--stream-seconds", str(stream_seconds)) as seed_url, FakeSlack() as slack:
        with tempfile.TemporaryDirectory() as tmp:
            async with seedbot_run(slack_env(slack, seed_url, "test-seed-key"), tmp) as bot:
                bench = _Bench(slack, bot)
                await bench.burst(10, "warm")
                yield bench


def _window(samples: list[list[float]], start: float, end: float) -> list[float]:
    return [ms for sent, ms in samples if start <= sent < end]


def _describe(values: list[float]) -> str:
    if not values:
        return "no samples"
    return f"p50 {percentile(values, 0.5):.1f} / p99 {percentile(values, 0.99):.1f} / max {max(values):.1f} ms"


async def burst(answers: int = 200, stream_seconds: float = 2.0) -> list[Figure]:
    async with _running(stream_seconds) as bench:
        seconds = QUIET_BEFORE_SECONDS + stream_seconds + 10.0
        probe = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.probe", "--url", bench.bot.base_url,
            "--signing-secret", bench.slack.config.signing_secret, "--seconds", str(seconds),
            "--every", str(PROBE_EVERY_SECONDS), stdout=asyncio.subprocess.PIPE)
        await asyncio.sleep(QUIET_BEFORE_SECONDS)
        started = time.monotonic()
        acks, took = await bench.burst(answers, "burst")
        output, _ = await probe.communicate()
    found = json.loads(output)
    quiet = _window(found["ack"], started - QUIET_BEFORE_SECONDS + 0.2, started)
    during = _window(found["ack"], started, started + took)
    health = _window(found["healthz"], started, started + took)
    print(f"{answers} mentions posted at once, all answered after {took:.1f} s (streams of {stream_seconds:g} s)")
    print(f"their acks:                              {_describe(acks)}")
    print(f"unrelated ack, quiet second before:      {_describe(quiet)}")
    print(f"unrelated ack, while they start/finish:  {_describe(during)} ({len(during)} probes)")
    print(f"/healthz, while they start/finish:       {_describe(health)} ({len(health)} probes)")
    return [
        Figure(f"unrelated Slack ack while {answers} answers start together, p99 / max",
               f"{percentile(during, 0.99):.0f} ms / {max(during):.0f} ms" if during else "no samples"),
        Figure(f"/healthz while {answers} answers start together, p99 / max",
               f"{percentile(health, 0.99):.0f} ms / {max(health):.0f} ms" if health else "no samples"),
        Figure(f"Slack ack of {answers} mentions posted at once, p50 / p99",
               f"{percentile(acks, 0.5):.0f} ms / {percentile(acks, 0.99):.0f} ms"),
    ]


async def memory(bursts: int = 5, answers: int = 200, stream_seconds: float = 2.0) -> list[Figure]:
    async with _running(stream_seconds) as bench:
        await asyncio.sleep(SETTLE_SECONDS)
        idle = rss_mib(bench.bot.pid)
        after: list[float] = []
        for n in range(bursts):
            await bench.burst(answers, f"m{n}")
            await asyncio.sleep(SETTLE_SECONDS)
            after.append(rss_mib(bench.bot.pid))
            print(f"RSS after burst {n + 1} of {answers} streaming answers: {after[-1]:.1f} MiB")
    print(f"RSS idle {idle:.1f} MiB; after each burst: {' -> '.join(f'{mb:.0f}' for mb in after)} MiB")
    return [Figure(f"RSS over {bursts} bursts of {answers} streaming answers (idle; after each)",
                   f"{idle:.0f}; {' → '.join(f'{mb:.0f}' for mb in after)} MiB "
                   f"(last − first {after[-1] - after[0]:+.0f} MiB)")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=["burst", "memory"])
    parser.add_argument("--answers", type=int, default=200)
    parser.add_argument("--stream-seconds", type=float, default=2.0)
    args = parser.parse_args()
    freeze_long_lived()  # a measuring process that pauses for a full collection measures its own pause
    if args.scenario == "burst":
        asyncio.run(burst(args.answers, args.stream_seconds))
    else:
        asyncio.run(memory(answers=args.answers, stream_seconds=args.stream_seconds))


if __name__ == "__main__":
    main()

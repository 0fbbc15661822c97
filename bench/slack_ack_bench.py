"""Slack ack latency: `seedbot run` in its own process, 100 signed events posted at once.

Prints ack p50/p99 as Slack would see them (the time to the HTTP response), and how long until every
event was answered in its thread. The fake Slack and the fake Seed model run in this process.
Run: .venv/bin/python -m bench.slack_ack_bench [--events 100]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time

from bench.harness import Figure, percentile, seedbot_run, slack_env
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack


async def run(events: int = 100) -> list[Figure]:
    async with FakeSeed() as seed, FakeSlack() as slack:
        seed.default_reply = Reply(content="Use a list comprehension: `[x for x in xs if x]`.")
        with tempfile.TemporaryDirectory() as tmp:
            async with seedbot_run(slack_env(slack, seed.base_url, seed.api_key), tmp) as bot:
                mentions = [slack.events.app_mention(f"question {i}", channel=f"C{i % 10}") for i in range(events)]
                started = time.monotonic()
                async with slack.sender(f"{bot.base_url}/slack/events") as sender:
                    deliveries = await asyncio.gather(*(sender.post_event(m) for m in mentions))
                acks = [d.elapsed * 1000 for d in deliveries]
                late = sum(d.timed_out for d in deliveries)
                print(f"events posted at once:        {events}")
                print(f"ack p50 / p99 / max:          {percentile(acks, 0.5):.1f} ms / {percentile(acks, 0.99):.1f} ms"
                      f" / {max(acks):.1f} ms ({late} over 3 s)")

                def answered() -> bool:
                    return len([c for c in slack.calls("chat.stopStream") if c.ok]) >= events

                await slack.wait_for(answered, timeout=120)
                print(f"all answered in threads after {time.monotonic() - started:.1f} s")
    return [Figure(f"Slack ack at {events} concurrent events, p50 / p99",
                   f"{percentile(acks, 0.5):.1f} ms / {percentile(acks, 0.99):.1f} ms ({late} over 3 s)")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100)
    asyncio.run(run(parser.parse_args().events))


if __name__ == "__main__":
    main()

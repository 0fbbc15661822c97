"""Slack ack latency: `seedbot run` in its own process, 100 signed events posted at once.

Prints ack p50/p99 as Slack would see them (the time to the HTTP response), and how long until every
event was answered in its thread. The fake Slack and the fake Seed model run in this process.
Run: .venv/bin/python -m bench.slack_ack_bench [--events 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
import time

import aiohttp

from bench.core_bench import percentile
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_healthy(url: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError("seedbot run did not become healthy")


async def run(events: int) -> None:
    async with FakeSeed() as seed, FakeSlack() as slack:
        seed.default_reply = Reply(content="Use a list comprehension: `[x for x in xs if x]`.")
        port = free_port()
        with tempfile.TemporaryDirectory() as tmp:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("SEED", "SLACK", "DISCORD"))}
            env |= {"SEED_API_KEY": seed.api_key, "SEED_BASE_URL": seed.base_url,
                    "SLACK_BOT_TOKEN": slack.config.bot_token, "SLACK_SIGNING_SECRET": slack.config.signing_secret,
                    "SLACK_API_URL": slack.api_url, "SEEDBOT_HTTP_HOST": "127.0.0.1", "SEEDBOT_HTTP_PORT": str(port),
                    "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/ack.db", "SEEDBOT_DEFAULT_CHANNEL_BUDGET": "none"}
            bot = await asyncio.create_subprocess_exec(sys.executable, "-m", "adapters.cli", "run", env=env, cwd=tmp)
            try:
                await wait_healthy(f"http://127.0.0.1:{port}/healthz")
                mentions = [slack.events.app_mention(f"question {i}", channel=f"C{i % 10}") for i in range(events)]
                started = time.monotonic()
                async with slack.sender(f"http://127.0.0.1:{port}/slack/events") as sender:
                    deliveries = await asyncio.gather(*(sender.post_event(m) for m in mentions))
                acks = [d.elapsed * 1000 for d in deliveries]
                print(f"events posted at once:        {events}")
                print(f"ack p50 / p99 / max:          {percentile(acks, 0.5):.1f} ms / {percentile(acks, 0.99):.1f} ms"
                      f" / {max(acks):.1f} ms ({sum(d.timed_out for d in deliveries)} over 3 s)")

                def answered() -> bool:
                    return len([c for c in slack.calls("chat.stopStream") if c.ok]) >= events

                await slack.wait_for(answered, timeout=120)
                print(f"all answered in threads after {time.monotonic() - started:.1f} s")
            finally:
                bot.terminate()
                await bot.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100)
    asyncio.run(run(parser.parse_args().events))


if __name__ == "__main__":
    main()

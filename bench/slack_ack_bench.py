"""Slack ack latency: `seedbot run` in its own process, 100 signed events posted at once.

Prints ack p50/p99 as Slack would see them (the time to the HTTP response), and how long until every
event was answered in its thread. The fake Slack and the fake Seed model run in this process. Also
the floor: the same burst, from the same client, against an aiohttp server that only answers 200 (the
client's own work for 100 signed posts at once is most of what this figure measures).
Run: .venv/bin/python -m bench.slack_ack_bench [--events 100]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time

from bench.harness import Figure, free_port, percentile, seedbot_run, slack_env, wait_healthy
from bot.ops.heap import freeze_long_lived
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
        floor = await _floor(slack, mentions)
    print(f"floor (a server that only answers 200): p50 / p99 {percentile(floor, 0.5):.1f} ms / "
          f"{percentile(floor, 0.99):.1f} ms")
    return [Figure(f"Slack ack at {events} concurrent events, p50 / p99 (floor of the bench's client)",
                   f"{percentile(acks, 0.5):.1f} ms / {percentile(acks, 0.99):.1f} ms ({late} over 3 s; floor "
                   f"{percentile(floor, 0.5):.1f} / {percentile(floor, 0.99):.1f} ms)")]


_BARE_SERVER = """
import sys
from aiohttp import web
async def ok(request):
    await request.read()
    return web.Response(status=200)
app = web.Application()
app.router.add_post("/slack/events", ok)
app.router.add_get("/healthz", lambda request: ok(request))
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


async def _floor(slack: FakeSlack, mentions: list[dict]) -> list[float]:
    port = free_port()
    server = await asyncio.create_subprocess_exec(sys.executable, "-c", _BARE_SERVER, str(port))
    try:
        await wait_healthy(f"http://127.0.0.1:{port}/healthz")
        async with slack.sender(f"http://127.0.0.1:{port}/slack/events") as sender:
            await asyncio.gather(*(sender.post_event(m) for m in mentions[:10]))  # warm, like the bot was
            deliveries = await asyncio.gather(*(sender.post_event(m) for m in mentions))
        return [d.elapsed * 1000 for d in deliveries]
    finally:
        server.terminate()
        await server.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100)
    freeze_long_lived()  # a measuring process that pauses for a full collection measures its own pause
    asyncio.run(run(parser.parse_args().events))


if __name__ == "__main__":
    main()

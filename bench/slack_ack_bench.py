"""Slack ack latency: `seedbot run` in its own process, 100 signed events posted at once.

Prints ack p50/p99 as Slack would see them (the time to the HTTP response), and how long until every
event was answered in its thread. The fake Slack and the fake Seed model run in this process; the
events are sent by bench.volley in a process of its own (connections opened and requests signed before
the clock starts, all written in one loop). Also the floor: the same volley against an aiohttp server
that only answers 200.
Run: .venv/bin/python -m bench.slack_ack_bench [--events 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
                timed = await _volley(f"{bot.base_url}/slack/events", slack.config.signing_secret, mentions)
                acks = [ms for ms in timed if ms is not None]
                late = len(timed) - len(acks)
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


async def _volley(url: str, signing_secret: str, bodies: list[dict]) -> list[float | None]:
    """bench.volley in a process of its own: each body's ack latency in ms, None past 3 s."""
    sender = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.volley", "--url", url, "--signing-secret", signing_secret,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    out, _ = await sender.communicate(json.dumps(bodies).encode())
    return json.loads(out)


async def _floor(slack: FakeSlack, mentions: list[dict]) -> list[float]:
    port = free_port()
    server = await asyncio.create_subprocess_exec(sys.executable, "-c", _BARE_SERVER, str(port))
    try:
        await wait_healthy(f"http://127.0.0.1:{port}/healthz")
        url = f"http://127.0.0.1:{port}/slack/events"
        await _volley(url, slack.config.signing_secret, mentions[:10])  # warm, like the bot was
        return [ms for ms in await _volley(url, slack.config.signing_secret, mentions) if ms is not None]
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

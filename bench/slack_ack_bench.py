"""Slack ack latency: `seedbot run` in its own process, volleys of 100 signed events posted at once.

Prints ack p50/p99 as Slack would see them (the time to the HTTP response) for each volley, and how long until
every event was answered in its thread. The fake Slack and the fake Seed model run in this process; the
events are sent by bench.volley in a process of its own (connections opened and requests signed before
the clock starts, all written in one loop). Each volley is paired with one against the floor: an aiohttp
server that only answers 200, sent right after the bot has answered the volley before. On a shared machine a
single volley's p99 (its slowest ack) moves by half between runs, and the floor with it, so the figure is the
median over the volleys, with the floor's beside it.
Run: .venv/bin/python -m bench.slack_ack_bench [--events 100] [--volleys 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator

from bench.harness import Figure, free_port, percentile, seedbot_run, slack_env, wait_healthy
from bot.ops.heap import freeze_long_lived
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack


async def run(events: int = 100, volleys: int = 5) -> list[Figure]:
    bot_p50: list[float] = []
    bot_p99: list[float] = []
    floor_p99: list[float] = []
    late = 0
    async with FakeSeed() as seed, FakeSlack() as slack, _floor_server() as floor_url:
        seed.default_reply = Reply(content="Use a list comprehension: `[x for x in xs if x]`.")
        with tempfile.TemporaryDirectory() as tmp:
            async with seedbot_run(slack_env(slack, seed.base_url, seed.api_key), tmp) as bot:
                await _volley(floor_url, slack.config.signing_secret, [slack.events.app_mention("warm")] * 10)
                for volley in range(volleys):
                    mentions = [slack.events.app_mention(f"question {volley}.{i}", channel=f"C{i % 10}")
                                for i in range(events)]
                    answered_before = len([c for c in slack.calls("chat.stopStream") if c.ok])
                    started = time.monotonic()
                    timed = await _volley(f"{bot.base_url}/slack/events", slack.config.signing_secret, mentions)
                    acks = [ms for ms in timed if ms is not None]
                    late += len(timed) - len(acks)

                    def answered(before: int = answered_before) -> bool:
                        return len([c for c in slack.calls("chat.stopStream") if c.ok]) >= before + events

                    await slack.wait_for(answered, timeout=120)
                    took = time.monotonic() - started
                    await asyncio.sleep(0.5)  # the answers' last writes, off the floor's volley
                    floor = [ms for ms in await _volley(floor_url, slack.config.signing_secret, mentions) if ms]
                    bot_p50.append(percentile(acks, 0.5))
                    bot_p99.append(percentile(acks, 0.99))
                    floor_p99.append(percentile(floor, 0.99))
                    print(f"volley {volley + 1} of {volleys}, {events} events: ack p50 / p99 {bot_p50[-1]:.1f} / "
                          f"{bot_p99[-1]:.1f} ms ({len(timed) - len(acks)} over 3 s), all answered after {took:.1f} s; "
                          f"floor p99 {floor_p99[-1]:.1f} ms")
    median_p99 = statistics.median(bot_p99)
    print(f"ack p50 / p99, median of {volleys} volleys: {statistics.median(bot_p50):.1f} / {median_p99:.1f} ms "
          f"(p99 {min(bot_p99):.1f}–{max(bot_p99):.1f}); floor p99 {statistics.median(floor_p99):.1f} ms "
          f"({min(floor_p99):.1f}–{max(floor_p99):.1f})")
    return [Figure(f"Slack ack at {events} concurrent events, p50 / p99, median of {volleys} volleys (floor of the "
                   "bench's client)",
                   f"{statistics.median(bot_p50):.1f} ms / {median_p99:.1f} ms (p99 {min(bot_p99):.1f}–"
                   f"{max(bot_p99):.1f}; {late} over 3 s; floor p99 {statistics.median(floor_p99):.1f})")]


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


@contextlib.asynccontextmanager
async def _floor_server() -> AsyncIterator[str]:
    """The bare aiohttp server above in a process of its own; yields its events URL."""
    port = free_port()
    server = await asyncio.create_subprocess_exec(sys.executable, "-c", _BARE_SERVER, str(port))
    try:
        await wait_healthy(f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}/slack/events"
    finally:
        server.terminate()
        await server.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--volleys", type=int, default=5)
    args = parser.parse_args()
    freeze_long_lived()  # a measuring process that pauses for a full collection measures its own pause
    asyncio.run(run(args.events, args.volleys))


if __name__ == "__main__":
    main()

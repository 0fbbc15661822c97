"""Probes a running bot from a process of its own, so the probe's timings are not delayed by the
benchmark's fakes: every `--every` seconds one signed Slack event the bot acks and ignores (a channel
message that does not mention it) and one GET /healthz, for `--seconds`.

Prints one JSON object: {"ack": [[monotonic_sent, ms], ...], "healthz": [...]} (CLOCK_MONOTONIC is
system-wide on Linux, so the caller can cut windows out of it).
Run: python -m bench.probe --url http://127.0.0.1:PORT --signing-secret S --seconds 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp

from bot.ops.heap import freeze_long_lived
from tests.fakes.slack import EventFactory, SignedSender, SlackConfig


async def probe(url: str, signing_secret: str, seconds: float, every: float) -> dict[str, list[list[float]]]:
    events = EventFactory(SlackConfig(signing_secret=signing_secret))
    found: dict[str, list[list[float]]] = {"ack": [], "healthz": []}
    deadline = time.monotonic() + seconds

    async def acks(sender: SignedSender) -> None:
        while time.monotonic() < deadline:
            sent = time.monotonic()
            delivery = await sender.post_event(events.message("unrelated chatter", channel="CPROBE",
                                                              channel_type="channel"))
            found["ack"].append([sent, delivery.elapsed * 1000])
            await asyncio.sleep(every)

    async def health(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline:
            sent = time.monotonic()
            async with session.get(f"{url}/healthz") as response:
                await response.read()
            found["healthz"].append([sent, (time.monotonic() - sent) * 1000])
            await asyncio.sleep(every)

    async with SignedSender(f"{url}/slack/events", signing_secret) as sender, aiohttp.ClientSession() as session:
        await asyncio.gather(acks(sender), health(session))
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--signing-secret", required=True)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--every", type=float, default=0.02)
    args = parser.parse_args()
    freeze_long_lived()  # a measuring process that pauses for a full collection measures its own pause
    print(json.dumps(asyncio.run(probe(args.url, args.signing_secret, args.seconds, args.every))))


if __name__ == "__main__":
    main()

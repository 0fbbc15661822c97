"""Discord smoothness: one answer streaming for 20 s (after 3 s of thinking, about 3,000 characters, so it
overflows into a second message) through `seedbot run`'s BotProcess into the fake Discord, at the default
DISCORD_EDIT_INTERVAL. Prints every REST call from the mention to the footer and the gaps between the
edits of each message. `--scale 0.1` runs it ten times faster (interval and stream scaled alike).

Run: .venv/bin/python -m bench.discord_bench [--scale 1.0]
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
from collections import Counter
from pathlib import Path

from adapters.runtime import BotProcess
from bench.harness import Figure, run_like_seedbot
from bot.config import load_settings
from tests.discord.harness import RunningBot, prose
from tests.fakes.discord_fake import FakeDiscord
from tests.fakes.seed import FakeSeed, Reply

STREAM_SECONDS = 20.0
THINKING_SECONDS = 3.0
PIECES = 100


async def run(scale: float = 1.0) -> list[Figure]:
    answer = prose(560, seed=3)
    async with FakeSeed() as seed, FakeDiscord() as fake:
        seed.default_reply = Reply(content=answer, chunk_chars=len(answer) // PIECES + 1,
                                   chunk_delay=STREAM_SECONDS * scale / PIECES,
                                   first_token_delay=THINKING_SECONDS * scale)
        with tempfile.TemporaryDirectory() as tmp:
            defaults = load_settings(_env_file=None, SEED_API_KEY=seed.api_key)
            interval = defaults.discord_edit_interval * scale
            settings = load_settings(
                _env_file=None, SEED_API_KEY=seed.api_key, SEED_BASE_URL=seed.base_url,
                DATABASE_URL=f"sqlite+aiosqlite:///{Path(tmp) / 'discord.db'}", DISCORD_BOT_TOKEN=fake.token,
                DISCORD_API_URL=fake.api_base, DISCORD_GATEWAY_URL=fake.gateway_url, SEEDBOT_HTTP_HOST="127.0.0.1",
                SEEDBOT_HTTP_PORT=0, DISCORD_EDIT_INTERVAL=interval)
            process = BotProcess(settings)
            await process.start()
            try:
                bot = RunningBot(process, fake)
                before = len(fake.records.calls)
                question = await fake.dispatch_message_create(fake.channel, fake.alice, f"{fake.bot.mention} explain")
                messages = await bot.answer_in(int(question["id"]), timeout=60 + 40 * scale)
                calls = fake.records.calls[before:]
            finally:
                await process.stop()
    ids = {int(m["id"]) for m in messages}
    gaps: list[float] = []
    for message_id in sorted(ids):
        times = [e.at for e in fake.records.message_events if e.message_id == message_id]
        gaps += [(b - a) / scale for a, b in zip(times, times[1:], strict=False)]
    kinds = Counter(f"{c.method} {re.sub(r'/[0-9]+', '/…', c.path)}" for c in calls)
    median, spread = statistics.median(gaps), (min(gaps), max(gaps))
    print(f"DISCORD_EDIT_INTERVAL {defaults.discord_edit_interval:g} s, scale {scale:g}: {len(messages)} messages, "
          f"{len(calls)} REST calls {dict(kinds)}")
    print(f"edit gaps per message (s, at full scale): median {median:.2f}, min {spread[0]:.2f}, "
          f"max {spread[1]:.2f}: {' '.join(f'{g:.2f}' for g in gaps)}")
    return [Figure("Discord: edit interval per message, median (min–max)",
                   f"{median:.2f} s ({spread[0]:.2f}–{spread[1]:.2f})"),
            Figure("Discord: REST calls per 20-second answer", f"{len(calls)}")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    run_like_seedbot(run(parser.parse_args().scale))


if __name__ == "__main__":
    main()

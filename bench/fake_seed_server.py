"""The fake Seed server in a process of its own, so a benchmark's bot process is not charged for it.

Prints its base URL on the first line, then serves until killed. Replies are 200 tokens, instant unless
`--stream-seconds` spreads each over that many seconds (a streaming answer). It accepts the key
tests.fakes.seed.FakeSeed.api_key ("test-seed-key"), so `SEED_BASE_URL=<printed URL> SEED_API_KEY=test-seed-key
seedbot ask hello` answers without the network.
Run: python -m bench.fake_seed_server [--stream-seconds 2]
"""

from __future__ import annotations

import argparse
import asyncio

from tests.fakes.seed import FakeSeed, Reply

ANSWER_200_TOKENS = " ".join(f"word{i}" for i in range(200))
STREAM_CHUNK_CHARS = 40


async def main(stream_seconds: float) -> None:
    async with FakeSeed() as fake:
        if stream_seconds > 0:
            chunks = -(-len(ANSWER_200_TOKENS) // STREAM_CHUNK_CHARS)
            fake.default_reply = Reply(content=ANSWER_200_TOKENS, chunk_chars=STREAM_CHUNK_CHARS,
                                       chunk_delay=stream_seconds / chunks)
        else:
            fake.default_reply = Reply(content=ANSWER_200_TOKENS, chunk_chars=400)
        # Keep no history: a long benchmark must not grow the fake's memory or its cache scans.
        fake.requests = _Discard()  # type: ignore[assignment]
        print(fake.base_url, flush=True)
        await asyncio.Event().wait()


class _Discard(list):
    def append(self, _item: object) -> None:
        pass


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stream-seconds", type=float, default=0.0,
                        help="spread each reply over this many seconds (default: all at once)")
    asyncio.run(main(parser.parse_args().stream_seconds))

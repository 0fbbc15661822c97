"""The fake Seed server in a process of its own, so a benchmark's bot process is not charged for it.

Prints its base URL on the first line, then serves until killed. Replies are 200 tokens, instant.
"""

from __future__ import annotations

import asyncio

from tests.fakes.seed import FakeSeed, Reply

ANSWER_200_TOKENS = " ".join(f"word{i}" for i in range(200))


async def main() -> None:
    async with FakeSeed() as fake:
        fake.default_reply = Reply(content=ANSWER_200_TOKENS, chunk_chars=400)
        # Keep no history: a long benchmark must not grow the fake's memory or its cache scans.
        fake.requests = _Discard()  # type: ignore[assignment]
        print(fake.base_url, flush=True)
        await asyncio.Event().wait()


class _Discard(list):
    def append(self, _item: object) -> None:
        pass


if __name__ == "__main__":
    asyncio.run(main())

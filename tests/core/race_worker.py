"""A separate OS process for the budget race: handles COUNT messages at once and prints the outcomes.

Run as `python -m tests.core.race_worker PREFIX COUNT TEXT` with the settings in the environment.
"""

from __future__ import annotations

import asyncio
import json
import sys

from adapters.core import build_core
from bot.config import load_settings
from tests.factories import incoming
from tests.sinks import RecordingSink


async def main(prefix: str, count: int, text: str) -> None:
    core = await build_core(load_settings(_env_file=None), migrate_sqlite=False)
    try:
        results = await asyncio.gather(*(
            core.service.handle(incoming(text, thread=f"{prefix}{i}", message_id=f"{prefix}-m{i}"), RecordingSink())
            for i in range(count)))
    finally:
        await core.aclose()
    print(json.dumps([r.status if r else None for r in results]))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))

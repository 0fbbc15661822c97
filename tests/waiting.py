"""Waiting helpers for end-to-end tests."""

from __future__ import annotations

import asyncio

from adapters.common.tasks import BackgroundTasks


async def wait_until_idle(tasks: BackgroundTasks, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """Wait until no answer is in flight in a bot process."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(tasks):
        if loop.time() > deadline:
            raise TimeoutError("answers still running")
        await asyncio.sleep(0.01)

"""What the process benchmarks share: a free port, `seedbot run` as a child process against the fakes,
the fake Seed model in a process of its own, and a child's resident memory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from adapters.runtime import run_on_event_loop
from bot.config import load_settings


def run_like_seedbot(main: Coroutine[Any, Any, Any]) -> Any:
    """Runs a benchmark's `main` on the event loop `seedbot run` would serve on (SEEDBOT_EVENT_LOOP), so a
    figure measured in the benchmark's own process is the product's."""
    return run_on_event_loop(main, load_settings(_env_file=None).event_loop)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mib(pid: int | str = "self") -> float:
    """Resident set size of a process, MiB (Linux /proc)."""
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024


def clean_environment() -> dict[str, str]:
    """This process's environment without any setting of seedbot's (SEED*, SLACK*, DISCORD*, DATABASE*)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("SEED", "SLACK", "DISCORD", "DATABASE"))}


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


@asynccontextmanager
async def fake_seed_process(*args: str) -> AsyncIterator[str]:
    """The fake Seed model (bench.fake_seed_server) in its own process; yields its base URL."""
    server = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.fake_seed_server", *args,
                                                  stdout=asyncio.subprocess.PIPE)
    assert server.stdout is not None
    try:
        yield (await server.stdout.readline()).decode().strip()
    finally:
        server.kill()
        with contextlib.suppress(ProcessLookupError):
            await server.wait()


@dataclass(frozen=True)
class BotChild:
    pid: int
    base_url: str  # http://127.0.0.1:port


@asynccontextmanager
async def seedbot_run(env: dict[str, str], database_dir: str) -> AsyncIterator[BotChild]:
    """`seedbot run` (python -m adapters.cli run) in a child process with `env` on top of a clean environment,
    SQLite in `database_dir` (a new file the bot migrates, as at every first start); yields once /healthz answers."""
    port = free_port()
    clean = clean_environment() | {"SEEDBOT_HTTP_HOST": "127.0.0.1", "SEEDBOT_HTTP_PORT": str(port),
                                   "DATABASE_URL": f"sqlite+aiosqlite:///{database_dir}/bench.db",
                                   "SEEDBOT_DEFAULT_CHANNEL_BUDGET": "none"} | env
    bot = await asyncio.create_subprocess_exec(sys.executable, "-m", "adapters.cli", "run", env=clean, cwd=database_dir)
    try:
        base_url = f"http://127.0.0.1:{port}"
        await wait_healthy(f"{base_url}/healthz")
        yield BotChild(bot.pid, base_url)
    finally:
        bot.terminate()
        await bot.wait()


@dataclass(frozen=True)
class Figure:
    """One row of the benchmark table: what was measured and the figure, as docs/BENCHMARKS.md shows it."""

    name: str
    value: str


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` (0..1) of `values` fall (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def slack_env(slack: object, seed_url: str, seed_key: str) -> dict[str, str]:
    """`seedbot run`'s environment for the fake Slack (tests.fakes.slack.FakeSlack) and a fake Seed."""
    config = slack.config  # type: ignore[attr-defined]
    return {"SEED_API_KEY": seed_key, "SEED_BASE_URL": seed_url, "SLACK_BOT_TOKEN": config.bot_token,
            "SLACK_SIGNING_SECRET": config.signing_secret, "SLACK_API_URL": slack.api_url}  # type: ignore[attr-defined]

"""Admin console benchmark: how long each page takes over a large ledger.

Seeds a SQLite database with --rows ledger rows (30 days, 20 channels, 50 people), serves the console,
signs in with a one-time link and times each page (median and slowest of --repeat requests), then the
CSV export of the whole ledger.
Run: .venv/bin/python -m bench.console_bench [--rows 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import insert
from sqlalchemy.orm import Session

from adapters.core import build_core
from adapters.web.console import mount_console, sign_in_url
from adapters.web.server import build_web_app
from bench.harness import percentile, run_like_seedbot
from bot.config import load_settings
from bot.storage.tables import Channel, UsageEntry, utcnow
from tests.ops.console_harness import press_sign_in

PAGES = ("/admin/", "/admin/chart.png", "/admin/channels", "/admin/people", "/admin/ledger",
         "/admin/ledger?status=ok&channel=slack:C3", "/admin/conversations", "/admin/health")


def seed(session: Session, rows: int) -> None:
    channels = [{"platform": "slack", "workspace_id": "W1", "channel_id": f"C{i}", "name": f"team-{i}",
                 "web_search": False, "created_at": utcnow()} for i in range(20)]
    session.execute(insert(Channel), channels)
    now = utcnow()
    generator = random.Random(17)
    batch = []
    for i in range(rows):
        batch.append({"channel_pk": generator.randint(1, 20), "user_id": f"U{generator.randint(1, 50)}",
                      "kind": "chat", "model": "seed-2-0-code", "prompt_tokens": 3000, "cached_tokens": 2000,
                      "completion_tokens": 400, "reasoning_tokens": 100, "web_searches": 0,
                      "cost_nanos": generator.randint(100_000, 5_000_000), "reserved_nanos": 0, "usage_known": True,
                      "status": "ok" if i % 20 else "failed",
                      "started_at": now - timedelta(seconds=generator.randint(0, 30 * 86400))})
        if len(batch) == 10_000:
            session.execute(insert(UsageEntry), batch)
            batch = []
    if batch:
        session.execute(insert(UsageEntry), batch)


async def main(rows: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(_env_file=None, DATABASE_URL=f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}",
                                 SEEDBOT_ADMINS="slack:U1", SEEDBOT_HTTP_PORT=0)
        core = await build_core(settings, require_model_key=False)
        try:
            started = time.perf_counter()
            await core.db.run(lambda session: seed(session, rows))
            print(f"seeded {rows:,} ledger rows in {time.perf_counter() - started:.1f} s")
            app = build_web_app(core.db, core.metrics)
            await mount_console(app, core, lambda: [])
            await _measure(app, core, settings, repeat)
        finally:
            await core.aclose()


async def _measure(app: web.Application, core, settings, repeat: int) -> None:  # noqa: ANN001
    async with TestServer(app) as server, aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=aiohttp.ClientTimeout(total=600)) as client:
        base = str(server.make_url("")).rstrip("/")
        link = await sign_in_url(core, "slack:U1")
        await press_sign_in(client, base + link[link.index("/admin/login"):])
        print(f"{'page':<45} {'median ms':>10} {'max ms':>10}")
        for page in PAGES:
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                response = await client.get(base + page)
                await response.read()
                assert response.status == 200, (page, response.status)
                times.append((time.perf_counter() - started) * 1000)
            print(f"{page:<45} {percentile(times, 0.5):>10.1f} {max(times):>10.1f}")
        started = time.perf_counter()
        body = await (await client.get(base + "/admin/ledger.csv")).read()
        lines = body.count(b"\n") - 1
        print(f"CSV of the whole ledger: {lines:,} rows, {len(body) / 1e6:.1f} MB, "
              f"{time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    arguments = parser.parse_args()
    run_like_seedbot(main(arguments.rows, arguments.repeat))

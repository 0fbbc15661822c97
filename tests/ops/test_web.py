from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import make_url, text
from sqlalchemy.exc import OperationalError

from adapters.web.server import build_web_app
from tests.factories import incoming
from tests.fakes.seed import FakeSeed
from tests.sinks import RecordingSink


async def test_healthz_and_metrics_report_what_happened(core_for, sqlite_url: str, fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url)
    message = incoming("hello")
    await core.service.handle(message, RecordingSink())
    await core.service.handle(message, RecordingSink())  # a duplicate delivery
    async with TestClient(TestServer(build_web_app(core.db, core.metrics))) as client:
        health = await client.get("/healthz")
        assert health.status == 200 and (await health.json()) == {"status": "ok"}
        metrics = await (await client.get("/metrics")).text()
    assert 'seedbot_messages_total{outcome="ok",platform="slack"} 1.0' in metrics
    assert 'seedbot_messages_total{outcome="duplicate",platform="slack"} 1.0' in metrics
    cost = next(line for line in metrics.splitlines()
                if line.startswith('seedbot_cost_nanodollars_total{platform="slack"}'))
    assert float(cost.split()[-1]) > 0
    assert fake_seed.api_key not in metrics
    assert "process_resident_memory_bytes" in metrics and "python_gc_collections_total" in metrics
    figures = {line.rpartition(" ")[0]: float(line.rpartition(" ")[2]) for line in metrics.splitlines()
               if line.startswith("seedbot_database_connections")}
    assert figures['seedbot_database_connections{state="in_use"}'] == 0  # nothing runs while /metrics is read
    assert figures['seedbot_database_connections{state="idle"}'] >= 1
    assert figures["seedbot_database_connections_opened_total"] >= figures['seedbot_database_connections{state="idle"}']


async def test_healthz_is_unhealthy_without_a_database(core_for, sqlite_url: str, tmp_path) -> None:  # noqa: ANN001
    from bot.storage.engine import Database

    core = await core_for(sqlite_url)
    broken = Database(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/x.db")
    try:
        async with TestClient(TestServer(build_web_app(broken, core.metrics))) as client:
            response = await client.get("/healthz")
            assert response.status == 503
            assert (await response.json())["status"] == "unhealthy"
    finally:
        await broken.dispose()


async def test_healthz_answers_while_a_writer_holds_the_sqlite_lock(core_for, sqlite_url: str) -> None:  # noqa: ANN001
    """A burst of answers keeps SQLite's one write lock busy; the health check must not queue behind it."""
    core = await core_for(sqlite_url)
    async with TestClient(TestServer(build_web_app(core.db, core.metrics))) as client, core.db.session() as session:
        await session.execute(text("UPDATE channels SET name = name"))  # BEGIN IMMEDIATE: the lock is held
        health = await client.get("/healthz")
        assert health.status == 200 and (await health.json()) == {"status": "ok"}


async def test_healthz_is_unhealthy_while_sqlite_cannot_keep_writes_and_healthy_again_after(
        core_for, sqlite_url: str, fake_seed: FakeSeed) -> None:  # noqa: ANN001
    core = await core_for(sqlite_url)
    await core.service.handle(incoming("hello"), RecordingSink())

    def readonly_write(connection) -> None:  # noqa: ANN001
        # What a full disk or a read-only file does to a write: SQLITE_READONLY here.
        connection.exec_driver_sql("PRAGMA query_only = ON")
        try:
            connection.execute(text("UPDATE channels SET name = name"))
        finally:
            connection.exec_driver_sql("PRAGMA query_only = OFF")

    async with TestClient(TestServer(build_web_app(core.db, core.metrics))) as client:
        with pytest.raises(OperationalError):
            await core.db.run_core(readonly_write)
        refused = await client.get("/healthz")
        assert refused.status == 503 and (await refused.json())["database"] == "unwritable"
        await core.service.handle(incoming("hello again", message_id="m2"), RecordingSink())  # a write that works
        assert (await client.get("/healthz")).status == 200


async def test_healthz_is_unhealthy_once_the_sqlite_file_is_removed(core_for, sqlite_url: str,
                                                                   fake_seed: FakeSeed) -> None:  # noqa: ANN001
    core = await core_for(sqlite_url)
    await core.service.handle(incoming("hello"), RecordingSink())
    async with TestClient(TestServer(build_web_app(core.db, core.metrics))) as client:
        assert (await client.get("/healthz")).status == 200
        path = Path(make_url(core.db.url).database or "")
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        removed = await client.get("/healthz")
        assert removed.status == 503 and (await removed.json())["database"] == "unwritable"

"""Fixtures shared by several test folders: the fake Seed server, settings pointed at it, databases on
SQLite and on the PostgreSQL server named by SEEDBOT_TEST_POSTGRES_URL (each test gets its own
database), the fake Slack and the fake Discord, and the real bot process running against either.
Fixtures one folder alone uses are in that folder's conftest.py."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route
from slack_sdk.web.async_client import AsyncWebClient

from adapters.core import Core, build_core
from adapters.discord import client as discord_client
from bot.config import Settings, load_settings
from bot.llm import SeedClient
from bot.ports import Notifier
from bot.storage import migrate
from tests.discord import harness as discord_harness
from tests.fakes.discord_fake import FakeDiscord
from tests.fakes.seed import FakeSeed
from tests.fakes.slack import FakeSlack
from tests.slack import harness as slack_harness

POSTGRES_URL_ENV = "SEEDBOT_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV = "SEEDBOT_REQUIRE_POSTGRES"
CHECKOUT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    # Child processes (`python -m adapters.cli` in a temporary directory) must import this checkout, not
    # the one the virtualenv's editable install points at: git worktrees share one virtualenv.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CHECKOUT), os.environ.get("PYTHONPATH")]))


@pytest.fixture
async def fake_seed() -> AsyncIterator[FakeSeed]:
    async with FakeSeed() as fake:
        yield fake


def _postgres_admin_url() -> str | None:
    return os.environ.get(POSTGRES_URL_ENV)


async def create_postgres_database() -> tuple[str, Callable[[], object]]:
    """A new empty database on the test server; returns its URL and an async dropper."""
    admin = _postgres_admin_url()
    if not admin:
        if os.environ.get(REQUIRE_POSTGRES_ENV):
            pytest.fail(f"{POSTGRES_URL_ENV} is not set but {REQUIRE_POSTGRES_ENV} is")
        pytest.skip(f"set {POSTGRES_URL_ENV} to run the PostgreSQL tests")
    name = f"seedbot_test_{uuid.uuid4().hex[:12]}"
    try:
        conn = await asyncpg.connect(admin)
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get(REQUIRE_POSTGRES_ENV):
            pytest.fail(f"cannot reach PostgreSQL at {admin}: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = admin.rsplit("/", 1)[0]

    async def drop() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    return f"{base}/{name}", drop


@asynccontextmanager
async def migrated_postgres_database() -> AsyncIterator[str]:
    url, drop = await create_postgres_database()
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        yield url
    finally:
        await drop()  # type: ignore[misc]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'seedbot.db'}"
        return
    async with migrated_postgres_database() as url:
        yield url


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'seedbot.db'}"


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with migrated_postgres_database() as url:
        yield url


def make_settings(fake: FakeSeed, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "_env_file": None,
        "SEED_API_KEY": fake.api_key,
        "SEED_BASE_URL": fake.base_url,
        "DATABASE_URL": database_url,
        "SEED_MAX_RETRIES": 2,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def settings_for(fake_seed: FakeSeed) -> Callable[..., Settings]:
    def build(database_url: str, **overrides: object) -> Settings:
        return make_settings(fake_seed, database_url, **overrides)

    return build


@pytest.fixture
async def core_for(settings_for: Callable[..., Settings]) -> AsyncIterator[Callable[..., object]]:
    """Build a Core (and close it after the test) for a database URL and setting overrides."""
    built: list[Core] = []

    async def build(database_url: str, *, notifiers: dict[str, Notifier] | None = None, **overrides: object) -> Core:
        settings = settings_for(database_url, **overrides)
        # Retries in tests need not wait out real backoff.
        core = await build_core(settings, llm=SeedClient.from_settings(settings, sleep=_no_sleep), notifiers=notifiers)
        built.append(core)
        return core

    yield build
    for core in built:
        await core.aclose()


async def _no_sleep(_seconds: float) -> None:
    await asyncio.sleep(0)


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> AsyncWebClient:
    """slack_sdk's async Web API client, with the bot token, pointed at the fake Slack."""
    return AsyncWebClient(token=slack.config.bot_token, base_url=slack.api_url)


@pytest.fixture
def discord_urls_restored(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The adapter points discord.py's class attributes at the fake; they must be Discord's again after.
    (Also: discord.py's wait for late guilds after READY, 1 s in the adapter, shortened for tests.)"""
    api, gateway = discord_harness.DISCORD_API, discord_harness.DISCORD_GATEWAY
    monkeypatch.setattr(discord_client, "GUILD_READY_TIMEOUT", 0.05)
    assert (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY) == (api, gateway)
    yield
    assert (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY) == (api, gateway)
    assert gateway == yarl.URL("wss://gateway.discord.gg/")


@pytest.fixture
async def fake(discord_urls_restored: None) -> AsyncIterator[FakeDiscord]:
    """The fake Discord."""
    async with FakeDiscord() as fake:
        yield fake


@pytest.fixture
async def slack_bot(slack: FakeSlack, settings_for: Callable[..., Settings],
                    tmp_path: Path) -> AsyncIterator[slack_harness.RunningBot]:
    """The bot process running against the fake Slack (`bot` in tests/slack)."""
    async with slack_harness.running_bot(slack, settings_for, tmp_path) as running:
        yield running


@pytest.fixture
async def discord_bot(fake: FakeDiscord, settings_for: Callable[..., Settings],
                      tmp_path: Path) -> AsyncIterator[discord_harness.RunningBot]:
    """The bot process running against the fake Discord (`bot` in tests/discord)."""
    async with discord_harness.running_bot(fake, settings_for, tmp_path) as running:
        yield running

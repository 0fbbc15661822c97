"""The composition root: builds one of everything a process needs, from Settings."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from bot.budget.pricing import PriceBook
from bot.budget.reservations import BudgetManager
from bot.chat.service import ChatService
from bot.config import ConfigError, Settings
from bot.llm import SeedClient
from bot.ops.admin import AdminCommands
from bot.ops.metrics import Metrics
from bot.ops.reports import Reports
from bot.review.service import ReviewService
from bot.storage import migrate
from bot.storage.claimants import Claimants
from bot.storage.conversations import ConversationStore
from bot.storage.engine import Database
from bot.storage.names import NameBook

log = logging.getLogger(__name__)


@dataclass
class Core:
    settings: Settings
    db: Database
    llm: SeedClient
    prices: PriceBook
    budget: BudgetManager
    store: ConversationStore
    metrics: Metrics
    service: ChatService
    reports: Reports
    admin: AdminCommands
    names: NameBook
    claimants: Claimants | None = None

    async def aclose(self) -> None:
        await self.llm.aclose()
        await self.db.dispose()


async def build_core(settings: Settings, *, llm: SeedClient | None = None, metrics: Metrics | None = None,
                     migrate_sqlite: bool = True, require_model_key: bool = True) -> Core:
    """`require_model_key=False` is for admin commands, which never call the model."""
    db = Database(settings.database_url)
    try:
        await ensure_schema(db, upgrade_sqlite=migrate_sqlite)
        llm = llm or SeedClient.from_settings(settings, require_key=require_model_key)
    except BaseException:
        await db.dispose()
        raise
    prices = PriceBook.from_settings(settings)
    budget = BudgetManager(db, settings, prices)
    await budget.expire_stale()
    claimants = Claimants(db, settings.reservation_ttl_seconds)
    await claimants.register()
    store = ConversationStore(db, settings.workspace_scoped_platforms, claimant=claimants.id)
    metrics = metrics or Metrics()
    reviewer = ReviewService(settings=settings, llm=llm, budget=budget, store=store, prices=prices)
    service = ChatService(settings=settings, llm=llm, budget=budget, store=store, prices=prices, metrics=metrics,
                          reviewer=reviewer)
    names = NameBook(db)
    reports = Reports(db, settings, prices, budget, names)
    admin = AdminCommands(settings, budget, reports, store)
    return Core(settings, db, llm, prices, budget, store, metrics, service, reports, admin, names, claimants)


async def ensure_schema(db: Database, *, upgrade_sqlite: bool = True) -> None:
    """SQLite (one process) is brought up to date on start; PostgreSQL, shared by replicas, is
    migrated by `seedbot db upgrade`, so a replica never races another one's migration."""
    head = ScriptDirectory.from_config(migrate.alembic_config(db.url)).get_current_head()

    def current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with db.engine.connect() as connection:
        revision = await connection.run_sync(current)
    if revision == head:
        return
    if db.is_sqlite and upgrade_sqlite:
        await asyncio.to_thread(migrate.upgrade, db.url)
        return
    raise ConfigError(f"DATABASE_URL: the database schema is at {revision or 'nothing'}, not {head}; "
                      "run `seedbot db upgrade` first")

"""The core's builder: one of everything bot/ provides, from Settings. `seedbot run` (adapters.runtime)
adds the platforms, the HTTP server and the scheduler around it; the other commands use it alone."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from bot.budget.pricing import PriceBook
from bot.budget.reservations import BudgetManager
from bot.chat.service import ChatService
from bot.config import Settings
from bot.llm import SeedClient
from bot.ops.admin import AdminCommands
from bot.ops.metrics import Metrics
from bot.ops.reports import Reports
from bot.ops.scheduler import BudgetAlerts, Deliveries
from bot.ports import Notifier
from bot.review.service import ReviewService
from bot.storage.claimants import Claimants
from bot.storage.conversations import ConversationStore
from bot.storage.engine import Database, database_unreachable
from bot.storage.names import NameBook
from bot.storage.revision import ensure_schema

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
                     notifiers: Mapping[str, Notifier] | None = None, migrate_sqlite: bool = True,
                     require_model_key: bool = True) -> Core:
    """Build one of everything the core needs, each collaborator passed in through its constructor.

    `notifiers` (platform name -> Notifier) is how budget alerts reach admins; `seedbot run` passes the
    mapping its platform adapters fill as they are built, one-off commands pass none (no alerts).
    `require_model_key=False` is for admin commands, which never call the model. Raises ConfigError
    for a missing key or a database schema that is behind (see bot.storage.revision.ensure_schema)."""
    db = Database(settings.database_url, pool_size=settings.database_pool_size)
    try:
        try:
            await ensure_schema(db, upgrade_sqlite=migrate_sqlite)
        except OSError as exc:  # the first connection: say which service did not answer
            raise database_unreachable(settings.database_url, exc) from None
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
    metrics = metrics or Metrics(malformed_chunks=lambda: llm.malformed_chunks, connections=db.connections)
    names = NameBook(db)
    reports = Reports(db, settings, prices, budget, names)
    alerts = None if notifiers is None else BudgetAlerts(settings, Deliveries(db), notifiers, reports)
    reviewer = ReviewService(settings=settings, llm=llm, budget=budget, store=store, prices=prices)
    service = ChatService(settings=settings, llm=llm, budget=budget, store=store, prices=prices, metrics=metrics,
                          reviewer=reviewer, budget_watcher=alerts)
    admin = AdminCommands(settings, budget, reports, store)
    return Core(settings, db, llm, prices, budget, store, metrics, service, reports, admin, names, claimants)

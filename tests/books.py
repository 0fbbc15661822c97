"""Reading the books in tests: ledger rows, budget counters, reservations and message statuses."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from bot.budget.scopes import GLOBAL_SCOPE, split_person_scope
from bot.storage.engine import Database
from bot.storage.tables import BudgetCounter, Channel, Message, Reservation, UsageEntry


@dataclass
class Books:
    ledger: list[UsageEntry]
    counters: list[BudgetCounter]
    reservations: list[Reservation]
    messages: list[Message]
    channels: list[Channel]

    def counter(self, scope_key: str) -> BudgetCounter:
        (counter,) = [c for c in self.counters if c.scope_key == scope_key]
        return counter

    @property
    def user_statuses(self) -> list[str]:
        return [m.status for m in self.messages if m.role == "user"]

    @property
    def active_reservations(self) -> list[Reservation]:
        return [r for r in self.reservations if r.status == "active"]

    def balanced(self) -> bool:
        """Nothing is reserved, and every counter's spend equals the ledger's sum of its scope (all counters share
        one period in a test)."""
        return all(c.reserved_nanos == 0 and c.spent_nanos == self.ledger_spent(c.scope_key) for c in self.counters)

    def ledger_spent(self, scope_key: str) -> int:
        """The ledger's nano-dollars of a scope (global, a channel `platform:[workspace:]id`, or a person in one)."""
        person = split_person_scope(scope_key)
        channel_key = person[1] if person is not None else scope_key
        platform, *ids = channel_key.split(":")
        channels = {c.id for c in self.channels if c.platform == platform and c.channel_id == ids[-1]
                    and (len(ids) == 1 or c.workspace_id == ids[0])}
        return sum(row.cost_nanos for row in self.ledger if scope_key == GLOBAL_SCOPE or (
            row.channel_pk in channels and (person is None or row.user_id == person[0])))


async def read_books(db: Database) -> Books:
    async with db.session() as session:
        return Books(
            list(await session.scalars(select(UsageEntry).order_by(UsageEntry.id))),
            list(await session.scalars(select(BudgetCounter))),
            list(await session.scalars(select(Reservation).order_by(Reservation.id))),
            list(await session.scalars(select(Message).order_by(Message.id))),
            list(await session.scalars(select(Channel))),
        )


async def read_books_at(database_url: str) -> Books:
    """The books of a database another process (or a finished one) writes."""
    db = Database(database_url)
    try:
        return await read_books(db)
    finally:
        await db.dispose()

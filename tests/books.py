"""Reading the books in tests: ledger rows, budget counters, reservations and message statuses."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from bot.storage.engine import Database
from bot.storage.tables import BudgetCounter, Message, Reservation, UsageEntry


@dataclass
class Books:
    ledger: list[UsageEntry]
    counters: list[BudgetCounter]
    reservations: list[Reservation]
    messages: list[Message]

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
        """Every counter's spend equals the ledger's sum and nothing is reserved (all scopes share
        one period in a test)."""
        spent = sum(row.cost_nanos for row in self.ledger)
        return all(c.reserved_nanos == 0 and (c.scope_key != "global" or c.spent_nanos == spent)
                   for c in self.counters)


async def read_books(db: Database) -> Books:
    async with db.session() as session:
        return Books(
            list(await session.scalars(select(UsageEntry).order_by(UsageEntry.id))),
            list(await session.scalars(select(BudgetCounter))),
            list(await session.scalars(select(Reservation).order_by(Reservation.id))),
            list(await session.scalars(select(Message).order_by(Message.id))),
        )


async def read_books_at(database_url: str) -> Books:
    """The books of a database another process (or a finished one) writes."""
    db = Database(database_url)
    try:
        return await read_books(db)
    finally:
        await db.dispose()

"""Each budget scope's limit: its own budget row, else the default for its kind (SEEDBOT_DEFAULT_CHANNEL_BUDGET,
SEEDBOT_DEFAULT_USER_BUDGET or a channel's `*` row, SEEDBOT_GLOBAL_BUDGET); setting one records who changed what.
Amounts are nano-dollars."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.budget.counters import budget_keys_in
from bot.budget.limits import BudgetLimit, Period, parse_budget
from bot.budget.scopes import EVERYONE, GLOBAL_SCOPE, person_scope, split_person_scope
from bot.config import Settings
from bot.storage.engine import Database
from bot.storage.precompiled import Precompiled, ResultRow
from bot.storage.tables import Budget, BudgetChange

_BUDGETS = Budget.__table__


@functools.cache
def _limits_of(n: int) -> Precompiled:
    """The budget rows of n scope keys (parameters k0, k1, ...): one shape per n, compiled once."""
    return Precompiled(select(_BUDGETS.c.scope_key, _BUDGETS.c.limit_nanos, _BUDGETS.c.period).where(
        budget_keys_in(n)))


def budget_row_keys(scope_keys: Iterable[str]) -> list[str]:
    """The budget rows the scopes' limits are read from, sorted: each scope's own and, for a person, the
    channel's `*` row (the default of everyone there)."""
    wanted = set(scope_keys)
    return sorted(wanted | {person_scope(person[1], EVERYONE) for key in wanted
                            if (person := split_person_scope(key)) is not None and person[0] != EVERYONE})


class LimitStore:
    """The limits of budget scopes, read and set (`BudgetManager.limits`)."""

    def __init__(self, db: Database, settings: Settings, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock

    def limit_for(self, connection: Connection, scope_key: str) -> BudgetLimit:
        """The limit a scope has: its own budget row, else the default for its kind (a person's default
        is the channel's `*` row if an admin set one)."""
        return self.limits(connection, [scope_key])[scope_key]

    def limits(self, connection: Connection, scope_keys: Iterable[str]) -> dict[str, BudgetLimit]:
        """Each scope's limit (scope key -> BudgetLimit), from one read of their budget rows."""
        wanted = list(scope_keys)
        keys = budget_row_keys(wanted)
        return self.from_rows(wanted, _limits_of(len(keys)).rows(
            connection, {f"k{i}": key for i, key in enumerate(keys)}))

    def from_rows(self, scope_keys: Iterable[str], rows: Iterable[ResultRow]) -> dict[str, BudgetLimit]:
        """Each scope's limit, given the budget rows (scope_key, limit_nanos, period) that exist of
        `budget_row_keys(scope_keys)`."""
        found = {row.scope_key: BudgetLimit(row.limit_nanos, Period(row.period)) for row in rows}
        return {key: self.resolve(key, found) for key in scope_keys}

    def resolve(self, scope_key: str, rows: dict[str, BudgetLimit]) -> BudgetLimit:
        """A scope's limit given the budget rows found (scope key -> limit): its own, else its kind's default."""
        if scope_key in rows:
            return rows[scope_key]
        if scope_key == GLOBAL_SCOPE:
            return self._settings.global_budget_limit
        person = split_person_scope(scope_key)
        if person is None:
            return self._settings.default_budget
        channel_default = rows.get(person_scope(person[1], EVERYONE))
        return channel_default or self._settings.default_user_budget

    async def limit_for_scope(self, scope_key: str) -> BudgetLimit:
        """`limit_for` in a transaction of its own."""
        return await self._db.run_core(lambda connection: self.limit_for(connection, scope_key))

    async def explicit_limits(self) -> list[tuple[str, BudgetLimit]]:
        """Every budget row an admin set, as (scope key, limit), by scope key."""
        def work(session: Session) -> Any:
            rows = session.scalars(select(Budget).order_by(Budget.scope_key))
            return [(row.scope_key, BudgetLimit(row.limit_nanos, Period(row.period))) for row in rows]

        return await self._db.run(work)

    async def set_limit(self, scope_key: str, limit: BudgetLimit | str, changed_by: str) -> tuple[str, str]:
        """Set a scope's budget and record the change. Returns (old, new) as people read them. Raises
        ValueError for a malformed `limit` text (parse_budget)."""
        if isinstance(limit, str):
            limit = parse_budget(limit)

        def work(session: Session) -> Any:
            old = self.limit_for(session.connection(), scope_key)
            row = session.get(Budget, scope_key)
            if row is None:
                row = Budget(scope_key=scope_key)
                session.add(row)
            row.limit_nanos = limit.limit_nanos
            row.period = limit.period.value
            row.updated_by = changed_by
            row.updated_at = self._clock()
            session.add(BudgetChange(scope_key=scope_key, changed_by=changed_by, old_value=old.describe(),
                                     new_value=limit.describe(), changed_at=self._clock()))
            return old.describe(), limit.describe()

        try:
            return await self._db.run(work)
        except IntegrityError:
            # Another admin inserted this scope's row between our read and our insert (PostgreSQL; SQLite
            # writes one at a time): again, now as an update of theirs, so the change history reads A -> X -> Y.
            return await self._db.run(work)

    async def changes(self, scope_key: str, limit: int = 10) -> list[BudgetChange]:
        """A scope's last `limit` budget changes, newest first."""
        def work(session: Session) -> Any:
            rows = session.scalars(select(BudgetChange).where(BudgetChange.scope_key == scope_key)
                                   .order_by(BudgetChange.id.desc()).limit(limit))
            return list(rows)

        return await self._db.run(work)

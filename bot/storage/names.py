"""Display names of channels and people, learned from the platforms and kept in SQL (display_names).

Reports, alerts and admin commands say `#backend` and `Ada Lovelace` instead of `slack:C0123`. A name
is asked of the platform at most once a day per id (Slack's conversations.info and users.info are rate
limited per method and workspace); Discord hands names over in its events, so nothing is asked there.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from bot.storage.engine import Database
from bot.storage.tables import DisplayName, utcnow
from bot.text_safety import clean_name

log = logging.getLogger(__name__)

CHANNEL = "channel"
USER = "user"
REFRESH_AFTER = timedelta(days=1)
# After a failed lookup (rate limited, no access) the id is left alone this long.
RETRY_AFTER = timedelta(hours=1)
MEMO_SIZE = 10_000

NameKey = tuple[str, str, str]  # (platform, kind, platform id)


class NameBook:
    """Names in SQL, with a bounded per-process memo of when each id is next due, so a busy channel
    costs no SQL per message for its name."""

    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow, memo_size: int = MEMO_SIZE) -> None:
        self._db = db
        self._clock = clock
        self._memo_size = memo_size
        self._next_due: OrderedDict[NameKey, datetime] = OrderedDict()

    def __len__(self) -> int:
        """How many ids the per-process memo holds (at most `memo_size`)."""
        return len(self._next_due)

    async def learn(self, platform: str, kind: str, platform_id: str,
                    fetch: Callable[[], Awaitable[str | None]]) -> None:
        """Ask `fetch` for the name if it is due (never seen, or older than a day) and store it.
        `fetch` returns None (or raises) when the platform cannot say; nothing is stored then."""
        key = (platform, kind, platform_id)
        now = self._clock()
        due_at = self._next_due.get(key)
        if not platform_id or (due_at is not None and now < due_at):
            return
        # Claimed before any await, so that concurrent messages from one channel make one lookup.
        self._remember_due(key, now + RETRY_AFTER)
        if due_at is None:
            refreshed = await self._refreshed_at(key)
            if refreshed is not None and now < refreshed + REFRESH_AFTER:
                self._remember_due(key, refreshed + REFRESH_AFTER)
                return
        try:
            name = await fetch()
        except Exception as exc:  # noqa: BLE001 - a name is a nicety; the id will do meanwhile
            log.info("no %s name for %s:%s (%s)", kind, platform, platform_id, type(exc).__name__)
            name = None
        if not name:
            return
        await self.remember(platform, kind, platform_id, name)

    async def note(self, platform: str, kind: str, platform_id: str, name: str) -> None:
        """Store a name the platform already gave us (in an event), if the stored one is due."""
        if name:
            await self.learn(platform, kind, platform_id, lambda: _given(name))

    async def remember(self, platform: str, kind: str, platform_id: str, name: str) -> None:
        """Store `name` as the platform gave it, made safe to show (bot.text_safety.clean_name); a name
        with nothing printable left is not stored."""
        name = clean_name(name)
        if not name:
            return
        now = self._clock()
        statement = self._db.insert(DisplayName).values(
            platform=platform, kind=kind, platform_id=platform_id, name=name, refreshed_at=now)
        statement = statement.on_conflict_do_update(
            index_elements=["platform", "kind", "platform_id"],
            set_={"name": statement.excluded.name, "refreshed_at": statement.excluded.refreshed_at})
        await self._db.run(lambda session: session.execute(statement))
        self._remember_due((platform, kind, platform_id), now + REFRESH_AFTER)

    async def names(self, keys: Iterable[NameKey]) -> dict[NameKey, str]:
        """The stored names of `keys` (those without one are left out)."""
        wanted = list(set(keys))
        if not wanted:
            return {}

        def work(session: Session) -> Any:
            rows = session.execute(select(DisplayName.platform, DisplayName.kind, DisplayName.platform_id,
                                          DisplayName.name)
                                   .where(tuple_(DisplayName.platform, DisplayName.kind,
                                                 DisplayName.platform_id).in_(wanted)))
            return {(p, k, i): n for p, k, i, n in rows}

        return await self._db.run(work)

    async def _refreshed_at(self, key: NameKey) -> datetime | None:
        def work(session: Session) -> Any:
            return session.scalar(select(DisplayName.refreshed_at).where(
                DisplayName.platform == key[0], DisplayName.kind == key[1], DisplayName.platform_id == key[2]))

        return await self._db.run(work)

    def _remember_due(self, key: NameKey, at: datetime) -> None:
        self._next_due[key] = at
        self._next_due.move_to_end(key)
        if len(self._next_due) > self._memo_size:
            self._next_due.popitem(last=False)


async def _given(name: str) -> str:
    return name


def channel_label(name: str | None, address: str) -> str:
    """`#backend` for a named channel, else its address (`slack:C0123`)."""
    return f"#{name.lstrip('#')}" if name else address


def person_label(name: str | None, address: str) -> str:
    return name or address

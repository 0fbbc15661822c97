"""Once-only signed requests. A signature is valid for Slack's replay window (five minutes), so a
captured request can be sent again within it; the first copy to insert its key runs, the others
are dropped, whichever replica each reaches."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from bot.storage.engine import Database
from bot.storage.tables import RequestClaim, utcnow

# Longer than any signature window we accept (Slack's is 5 minutes), so a replay always finds its key.
KEEP_CLAIMS = timedelta(minutes=15)


class RequestClaims:
    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._clock = clock

    async def claim(self, key: str) -> bool:
        """True for the first request with `key` (at most 128 characters), False for a replay."""
        now = self._clock()

        def work(session: Session) -> bool:
            session.execute(delete(RequestClaim).where(RequestClaim.claimed_at < now - KEEP_CLAIMS))
            inserted = session.scalar(self._db.insert(RequestClaim).values(key=key[:128], claimed_at=now)
                                      .on_conflict_do_nothing(index_elements=["key"]).returning(RequestClaim.key))
            return inserted is not None

        return await self._db.run(work)

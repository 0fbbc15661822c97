"""Which process answers which message, and whether that process still lives.

Every process that answers registers a claimant row and beats its heartbeat from the maintenance
loop; every user message it claims carries its claimant id. A claimant silent for longer than the
reservation TTL is dead: its messages still "pending" are interrupted answers, which crash recovery
takes over (exactly once, by a conditional update) and finishes on the platform.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.storage.engine import Database
from bot.storage.tables import Channel, Claimant, Message, Thread, utcnow

INTERRUPTED = "interrupted"
RECOVERY_BATCH = 100


@dataclass(frozen=True, slots=True)
class InterruptedAnswer:
    """A message whose claimant died mid-answer, and where its reply lives (`reply_location` is what
    the adapter stored when the reply opened, e.g. Slack's channel/ts/streaming; empty if none)."""

    message_pk: int
    claimant: str
    platform: str
    workspace_id: str
    channel_id: str
    thread_id: str
    reply_location: dict[str, Any]


class Claimants:
    def __init__(self, db: Database, ttl_seconds: float, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._ttl = timedelta(seconds=ttl_seconds)
        self._clock = clock
        # host:pid:random, so a restarted process (same pid in a container) is a new claimant.
        self.id = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    async def register(self) -> None:
        """Insert this process's claimant row (at start, before it claims any message)."""
        now = self._clock()
        await self._db.run(lambda session: session.execute(
            self._db.insert(Claimant).values(claimant=self.id, started_at=now, heartbeat_at=now)
            .on_conflict_do_nothing()))

    async def heartbeat(self) -> None:
        """Say this process is alive (every keep-alive tick of `seedbot run`)."""
        statement = update(Claimant).where(Claimant.claimant == self.id).values(heartbeat_at=self._clock())
        await self._db.run(lambda session: session.execute(statement))

    async def interrupted(self) -> list[InterruptedAnswer]:
        """Pending messages of dead claimants (at most RECOVERY_BATCH, oldest first)."""
        dead = select(Claimant.claimant).where(Claimant.heartbeat_at < self._clock() - self._ttl)
        query = (select(Message.id, Message.claimant, Message.reply_location, Channel.platform,
                        Channel.workspace_id, Channel.channel_id, Thread.platform_thread_id)
                 .join(Thread, Message.thread_pk == Thread.id).join(Channel, Thread.channel_pk == Channel.id)
                 .where(Message.status == "pending", Message.claimant.in_(dead))
                 .order_by(Message.id).limit(RECOVERY_BATCH))

        def work(session: Session) -> list[InterruptedAnswer]:
            return [InterruptedAnswer(pk, claimant, platform, workspace, channel, thread, _location(location))
                    for pk, claimant, location, platform, workspace, channel, thread in session.execute(query)]

        return await self._db.run(work)

    async def take(self, answer: InterruptedAnswer) -> bool:
        """Mark an interrupted answer's message "interrupted"; True for the one process that did."""
        statement = (update(Message).where(Message.id == answer.message_pk, Message.status == "pending",
                                           Message.claimant == answer.claimant).values(status=INTERRUPTED))
        return await self._db.run(lambda session: session.execute(statement).rowcount == 1)


def _location(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}

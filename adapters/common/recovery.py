"""Crash recovery on the platform side: where each answer's reply lives is stored as it opens
(`ReplyTracker`), and answers whose process died are finished with a notice (`Recovery`), on
start-up and from the maintenance loop. The money side needs nothing here: a dead process's
reservations expire at their reserved amount (BudgetManager.expire_stale)."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from bot.chat.inflight import InFlight
from bot.storage.claimants import Claimants, InterruptedAnswer
from bot.storage.conversations import ConversationStore

log = logging.getLogger(__name__)

# A sink's hook, called with where a message of the answer lives when it opens (each platform's own keys).
OnOpen = Callable[[dict[str, Any]], Awaitable[None]]
INTERRUPTED_NOTICE = "I was interrupted while answering this (the bot restarted). Ask again and I'll answer in full."


class InterruptedFinisher(Protocol):
    """A platform adapter that can finish an interrupted answer: stop the half message where it
    can and show `notice` in it, else post `notice` in the answer's thread."""

    async def finish_interrupted(self, answer: InterruptedAnswer, notice: str) -> None: ...


class ReplyTracker:
    """Handed to a sink as its `on_open` and to the supervisor: stores the location of each platform message
    the answer opens, the last one kept (Slack's {"channel", "thread_ts", "ts", "streaming", "controls"},
    Discord's {"channel", "message", "controls"}; "controls": it carries the Stop button)."""

    def __init__(self, store: ConversationStore) -> None:
        self._store = store
        self.inflight: InFlight | None = None

    async def opened(self, location: dict[str, Any]) -> None:
        if self.inflight is None or self.inflight.message_pk is None:
            return
        try:
            await self._store.set_reply_location(self.inflight.message_pk, json.dumps(location))
        except Exception:  # noqa: BLE001 - recovery then posts its notice in the thread instead
            log.warning("could not store where message %s's reply lives", self.inflight.message_pk,
                        exc_info=True)


class Recovery:
    """Finishes the answers of dead processes, each exactly once across replicas."""

    def __init__(self, claimants: Claimants, finishers: Mapping[str, InterruptedFinisher]) -> None:
        self._claimants = claimants
        self._finishers = finishers

    async def run_once(self) -> int:
        """Recover what is due now; returns how many answers this process finished."""
        finished = 0
        for answer in await self._claimants.interrupted():
            if not await self._claimants.take(answer):
                continue  # another replica took it
            finisher = self._finishers.get(answer.platform)
            if finisher is not None:
                try:
                    await finisher.finish_interrupted(answer, INTERRUPTED_NOTICE)
                except Exception:  # noqa: BLE001 - the message is marked; the platform may be down
                    log.warning("could not post the interruption notice for message %s", answer.message_pk,
                                exc_info=True)
            log.warning("answer to message %s was interrupted (its process %s died); finished with a notice",
                        answer.message_pk, answer.claimant)
            finished += 1
        return finished

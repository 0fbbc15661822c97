"""Stopping an answer while it streams: one `StopSwitch` per answer in flight, found by its answer key.

The answer key is the asked message's dedup key (`Incoming.dedup_key`), which platform buttons carry
as their value, so a click finds the answer it belongs to. Only the asker and admins may stop an
answer. The switches live in this process: a click that reaches another replica finds nothing and is
told the answer already finished.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import StrEnum

from bot.llm import SeedError, StreamEvent

# What a person who clicked is told, on every platform.
STOP_REFUSED = "Only the person who asked, or a seedbot admin, can stop this answer."
STOP_TOO_LATE = "This answer has already finished."
STOP_UNSUPPORTED = "A review cannot be stopped once its model calls run; it will finish shortly."
RATED = {True: "Thanks! Noted that this answer helped.",
         False: "Thanks! Noted that this answer did not help; asking again with more detail often does."}
RATING_LOST = "Sorry, I could not find that answer any more, so the rating was not stored."


class StopOutcome(StrEnum):
    STOPPED = "stopped"
    NOT_ALLOWED = "not_allowed"
    FINISHED = "finished"  # no answer in flight under that key (done, or on another replica)
    UNSUPPORTED = "unsupported"  # an answer that cannot be stopped (a review's concurrent calls)


def stop_reply(outcome: StopOutcome) -> str:
    """What the person who clicked Stop is told ("" when the answer stops: it says so itself)."""
    return {StopOutcome.NOT_ALLOWED: STOP_REFUSED, StopOutcome.FINISHED: STOP_TOO_LATE,
            StopOutcome.UNSUPPORTED: STOP_UNSUPPORTED}.get(outcome, "")


@dataclass(frozen=True, slots=True)
class Stopper:
    """Who stopped an answer: platform user id and the name shown in "stopped by @name"."""

    user_id: str
    name: str


class StopSwitch:
    """One answer's stop switch. `stopped` resolves once someone allowed to stop it did. An answer
    that cannot honour a stop (a review) sets `stoppable` False while it runs, so clicks are told; `ended`
    turns true once the model's stream is over (`until_stopped`), after which a click changes nothing and is
    told the answer has finished, while its last words are still being posted."""

    def __init__(self, key: str, asker_id: str, place: str = "") -> None:
        self.key = key
        self.asker_id = asker_id
        self.place = place
        self.stoppable = True
        self.ended = False
        self.stopper: Stopper | None = None
        self._event = asyncio.Event()

    def stop(self, stopper: Stopper) -> None:
        if self.stopper is None:
            self.stopper = stopper
            self._event.set()

    async def stopped(self) -> Stopper:
        await self._event.wait()
        assert self.stopper is not None
        return self.stopper


class StopSwitches:
    """The answers in flight in this process, by answer key."""

    def __init__(self) -> None:
        self._open: dict[str, StopSwitch] = {}
        self._holders: dict[str, int] = {}

    def open(self, key: str, asker_id: str, place: str = "") -> StopSwitch:
        """A switch for the answer to the message `key`, in the conversation `place` (the
        platform:workspace:channel:thread of a ThreadKey); `close` it when the answer is final. Every delivery
        of the same message in this process (a gateway replay, a Slack retry) holds the one switch: whichever
        of them wins the claim and answers, Stop reaches it (the others find the message taken and close)."""
        switch = self._open.setdefault(key, StopSwitch(key, asker_id, place))
        self._holders[key] = self._holders.get(key, 0) + 1
        return switch

    def close(self, switch: StopSwitch) -> None:
        """One holder of `switch` is done; the last one takes it out of reach."""
        if self._open.get(switch.key) is not switch:
            return
        self._holders[switch.key] -= 1
        if not self._holders[switch.key]:
            del self._open[switch.key], self._holders[switch.key]

    def request_stop(self, key: str, stopper: Stopper, *, is_admin: bool) -> StopOutcome:
        """Stop the answer under `key` if `stopper` asked the question or is an admin."""
        switch = self._open.get(key)
        if switch is None:
            return StopOutcome.FINISHED
        if stopper.user_id != switch.asker_id and not is_admin:
            return StopOutcome.NOT_ALLOWED
        if switch.ended:
            return StopOutcome.FINISHED
        if not switch.stoppable:
            return StopOutcome.UNSUPPORTED
        switch.stop(stopper)
        return StopOutcome.STOPPED

    def keys_at(self, place: str) -> list[str]:
        """The answer keys in flight in one conversation."""
        return [key for key, switch in self._open.items() if switch.place == place]

    def __len__(self) -> int:
        return len(self._open)


_END = object()


async def until_stopped(events: AsyncIterator[StreamEvent], stop: StopSwitch, *,
                        on_cut: Callable[[Stopper], None]) -> AsyncIterator[StreamEvent]:
    """`events` until someone throws the stop switch: then the model's stream is closed at once (the
    provider sees its connection close), what arrived before the stop is still yielded, and `on_cut`
    gets who stopped it. The reader task never touches the sink, so a stop cannot cut a platform call
    in half. A SeedError from `events` is raised to the caller as it would be without the switch."""
    queue: asyncio.Queue[object] = asyncio.Queue()
    cut = False

    async def read() -> None:
        nonlocal cut
        try:
            async for event in events:
                queue.put_nowait(event)
        except SeedError as exc:
            queue.put_nowait(exc)
        except asyncio.CancelledError:
            cut = True
            raise
        finally:
            stop.ended = True  # however it ended (done, broken, stopped), a later click changes nothing
            queue.put_nowait(_END)

    reader = asyncio.create_task(read(), name="seed-stream")
    watcher = asyncio.create_task(stop.stopped(), name="stop-switch")
    watcher.add_done_callback(lambda _: reader.cancel())
    try:
        while (item := await queue.get()) is not _END:
            if isinstance(item, SeedError):
                raise item
            yield item  # type: ignore[misc]
    finally:
        watcher.cancel()
        reader.cancel()
        if cut and stop.stopper is not None:
            on_cut(stop.stopper)

"""The one thread that runs the process's hot-path SQLite transactions, committing them in groups.

SQLite has one writer at a time, so the hot path's transactions (claim, reserve, settle) queue for one
thread anyway. Under a burst, each paid for its own BEGIN IMMEDIATE ... COMMIT and its own wake-up of
the event loop (a write to the loop's self-pipe, and a wait for the GIL). Here the work that queued up
while one group ran becomes the next group: each function runs in its own SAVEPOINT, so its effects
stand or fall alone as before; the group shares one BEGIN IMMEDIATE ... COMMIT; and its callers are
woken by one callback per event loop. A function that runs alone costs what it did before plus a
SAVEPOINT. A function given the group's `Connection` (`run(work, on_connection=True)`, Core statements
only) gets a SAVEPOINT issued straight to sqlite3, not through SQLAlchemy's nested-transaction
machinery, which costs more than the hot path's own statements; with no ORM Session there is nothing
that could roll back the group's transaction behind the savepoint's back.
A caller's result is delivered only after the COMMIT that made it durable; if that COMMIT
fails, every caller of the group gets its error (nothing of the group was written).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_GROUP = 64  # transactions per COMMIT: enough for a burst, small enough that one group stays short


@dataclass(slots=True)
class _Job:
    work: Callable[[Any], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    on_connection: bool = False
    ok: bool = False
    outcome: Any = None


class GroupCommitWriter:
    """Runs synchronous transaction functions (`work(session)`) in one thread, grouped as described above.

    `engine` is a synchronous SQLite engine whose transactions begin IMMEDIATE (bot.storage.engine configures it);
    its connections are made, used and closed in the writer thread only.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="sqlite-writer", daemon=True)
        self._thread.start()

    async def run(self, work: Callable[[Session], T] | Callable[[Connection], T], *, on_connection: bool = False) -> T:
        """Run `work` in its own savepoint of the next group; its return value once the group is committed.
        Cancelled before its group starts, `work` is not run at all; once started, it commits with its group.
        `work` is given an ORM `Session`, or with `on_connection` the group's `Connection`.
        Raises what `work` raised (its savepoint rolled back), or the group's COMMIT error; RuntimeError
        once the writer is closed."""
        if self._closed:
            raise RuntimeError("the SQLite writer is closed")
        loop = asyncio.get_running_loop()
        job = _Job(work, loop.create_future(), loop, on_connection)
        self._queue.put(job)
        return await job.future

    async def close(self) -> None:
        """Finish what is queued, close the engine's connections (in their thread) and stop the thread."""
        self._closed = True
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)

    def _serve(self) -> None:
        stopping = False
        while not stopping:
            job = self._queue.get()
            if job is None:
                break
            group = [job]
            while len(group) < MAX_GROUP:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                group.append(more)
            self._run_group(group)
            self._wake(group)
        self._engine.dispose()

    def _run_group(self, group: list[_Job]) -> None:
        try:
            with self._engine.connect() as connection, connection.begin():
                for job in group:
                    if job.future.cancelled():
                        # Its caller is gone (a shutdown, a task cancelled): nobody would learn what it wrote,
                        # such as a claim and a reservation no supervisor knows of. Reading a Future's state
                        # from this thread is safe: only the loop's thread changes it.
                        continue
                    try:
                        if job.on_connection:
                            job.outcome, job.ok = _in_savepoint(connection, job.work), True
                            continue
                        with Session(bind=connection, join_transaction_mode="create_savepoint",
                                     expire_on_commit=False) as session, session.begin():
                            job.outcome, job.ok = job.work(session), True
                    except Exception as exc:  # noqa: BLE001 - handed to that job's caller
                        job.outcome, job.ok = exc, False
        except Exception as exc:  # noqa: BLE001 - BEGIN or COMMIT failed: nothing of the group stands
            for job in group:
                job.outcome, job.ok = exc, False

    @staticmethod
    def _wake(group: list[_Job]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in group:
            by_loop.setdefault(job.loop, []).append(job)
        for loop, jobs in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, jobs)
            except RuntimeError:  # that event loop is closed: nobody is waiting any more
                log.debug("%d SQLite results for a closed event loop dropped", len(jobs))


def _in_savepoint(connection: Connection, work: Callable[[Connection], T]) -> T:
    sqlite = connection.connection.driver_connection
    sqlite.execute("SAVEPOINT job")
    try:
        result = work(connection)
    except BaseException:
        sqlite.execute("ROLLBACK TO job")
        sqlite.execute("RELEASE job")
        raise
    sqlite.execute("RELEASE job")
    return result


def _settle(jobs: list[_Job]) -> None:
    for job in jobs:
        if job.future.cancelled():
            continue
        if job.ok:
            job.future.set_result(job.outcome)
        else:
            job.future.set_exception(job.outcome)

"""A SQL function that stops a statement in the middle of its run until the test lets it go."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


class Hold:
    """`hold(x)` in SQL on every connection `engine` opens from now on: sets `started`, waits for `release`
    (10 s at most, so a failing test cannot hang), then returns x. It runs in the driver's thread."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.started, self.release = threading.Event(), threading.Event()
        event.listen(engine.sync_engine, "connect", self._register)

    def _register(self, dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.create_function("hold", 1, self._hold)

    def _hold(self, value: int) -> int:
        self.started.set()
        self.release.wait(10)
        return value

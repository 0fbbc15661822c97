"""NameBook: names in SQL, asked of the platform at most once a day per id."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from bot.storage.names import NameBook


async def test_a_name_is_asked_at_most_daily_and_a_failure_retried_later(core_for, sqlite_url: str) -> None:
    now = datetime(2026, 11, 30, 9, 0)
    asked: list[str] = []
    answers = iter(["backend", None, "backend-v2"])

    async def fetch() -> str | None:
        asked.append("C1")
        await asyncio.sleep(0.01)
        return next(answers)

    db = (await core_for(sqlite_url)).db
    book = NameBook(db, clock=lambda: now)
    await asyncio.gather(*(book.learn("slack", "channel", "C1", fetch) for _ in range(5)))
    assert asked == ["C1"]  # five messages at once: one lookup
    assert await book.names([("slack", "channel", "C1")]) == {("slack", "channel", "C1"): "backend"}
    now += timedelta(hours=23)
    await book.learn("slack", "channel", "C1", fetch)
    assert len(asked) == 1
    # Another process (no memo) reads the refresh time from SQL.
    await NameBook(db, clock=lambda: now).learn("slack", "channel", "C1", fetch)
    assert len(asked) == 1
    now += timedelta(hours=2)
    await book.learn("slack", "channel", "C1", fetch)  # due; the platform cannot say
    assert len(asked) == 2
    assert await book.names([("slack", "channel", "C1")]) == {("slack", "channel", "C1"): "backend"}
    now += timedelta(minutes=30)
    await book.learn("slack", "channel", "C1", fetch)
    assert len(asked) == 2  # a failed lookup waits an hour
    now += timedelta(minutes=31)
    await book.learn("slack", "channel", "C1", fetch)
    assert await book.names([("slack", "channel", "C1")]) == {("slack", "channel", "C1"): "backend-v2"}


async def test_memo_stays_bounded(core_for, sqlite_url: str) -> None:
    book = NameBook((await core_for(sqlite_url)).db, memo_size=3)
    for i in range(10):
        await book.note("discord", "user", str(i), f"user {i}")
    assert len(book) == 3
    assert len(await book.names([("discord", "user", str(i)) for i in range(10)])) == 10



async def test_a_hostile_name_is_stored_as_plain_text_and_an_empty_one_not_at_all(core_for, sqlite_url: str) -> None:
    book = NameBook((await core_for(sqlite_url)).db)
    # U+202E reverses what follows it on screen ("Budget for #... changed" would read backwards).
    await book.note("slack", "user", "U1", "Ada\u202e\u200b Love\nlace\x00" + "x" * 500)
    await book.note("slack", "user", "U2", "\u2066\u202e\u200b")
    stored = await book.names([("slack", "user", "U1"), ("slack", "user", "U2")])
    assert stored == {("slack", "user", "U1"): ("Ada Love lace" + "x" * 500)[:200]}

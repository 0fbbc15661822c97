"""Ratings of answers (the thumbs under each answer): stored one per person per answer, last click
wins, and counted for the daily summary and `seedbot report`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from bot.storage.engine import Database
from bot.storage.tables import AnswerFeedback, Message, Thread, utcnow


@dataclass(frozen=True, slots=True)
class FeedbackCounts:
    """Ratings whose last click fell in a period: each is one person's verdict on one answer."""

    helpful: int = 0
    not_helpful: int = 0

    @property
    def rated(self) -> int:
        return self.helpful + self.not_helpful

    def sentence(self) -> str:
        """"12 answers rated: 10 helpful, 2 not" (empty when nothing was rated)."""
        if not self.rated:
            return ""
        answers = "answer" if self.rated == 1 else "answers"
        return f"{self.rated} {answers} rated: {self.helpful} helpful, {self.not_helpful} not"


class FeedbackStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def rate(self, answer_key: str, user_id: str, *, helpful: bool) -> bool:
        """Store `user_id`'s rating of the answer to the message `answer_key` (an Incoming.dedup_key),
        replacing their earlier one. False, and nothing stored, if no such message was answered here:
        the key comes from a platform payload and is not trusted."""
        return await self._db.run(lambda session: self._rate(session, answer_key, user_id, helpful))

    def _rate(self, session: Session, answer_key: str, user_id: str, helpful: bool) -> bool:
        known = session.scalar(select(Message.id).where(Message.dedup_key == answer_key).limit(1))
        if known is None or not user_id:
            return False
        now = utcnow()
        statement = self._db.insert(AnswerFeedback).values(
            answer_key=answer_key, user_id=user_id, helpful=helpful, created_at=now, updated_at=now)
        session.execute(statement.on_conflict_do_update(
            index_elements=["answer_key", "user_id"], set_={"helpful": helpful, "updated_at": now}))
        return True

    async def counts(self, since: datetime, until: datetime, *, channel_pks: Select[Any] | None = None
                     ) -> FeedbackCounts:
        """Ratings last changed in [since, until) (naive UTC); with `channel_pks` (a subquery of channel
        row ids) only of answers in those channels, so one workspace's summary counts its own."""
        query = select(
            func.coalesce(func.sum(case((AnswerFeedback.helpful.is_(True), 1), else_=0)), 0),
            func.coalesce(func.sum(case((AnswerFeedback.helpful.is_(False), 1), else_=0)), 0),
        ).where(AnswerFeedback.updated_at >= since, AnswerFeedback.updated_at < until)
        if channel_pks is not None:
            query = (query.join(Message, Message.dedup_key == AnswerFeedback.answer_key)
                     .join(Thread, Thread.id == Message.thread_pk).where(Thread.channel_pk.in_(channel_pks)))
        helpful, not_helpful = await self._db.run(lambda session: session.execute(query).one())
        return FeedbackCounts(int(helpful), int(not_helpful))

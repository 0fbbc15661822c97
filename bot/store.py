"""Conversations in SQL: channels, threads and messages. The database is the memory of a thread;
no platform history API is ever asked."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.budget import channel_scope
from bot.db import Database
from bot.domain import Incoming
from bot.models import Channel, Message, Thread, utcnow
from bot.prompt import HistoryTurn

HISTORY_STATUSES = ("ok", "cut")


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    pk: int
    platform: str
    channel_id: str
    web_search: bool
    reasoning_effort: str | None
    workspace_id: str | None = None  # set where the platform's ids carry the workspace

    @property
    def scope_key(self) -> str:
        return channel_scope(self.platform, self.channel_id, self.workspace_id)


@dataclass(frozen=True, slots=True)
class ThreadInfo:
    pk: int
    floor_pk: int
    last_prompt_estimate: int
    last_prompt_actual: int


@dataclass(frozen=True, slots=True)
class Claimed:
    """A message this process won the right to answer, with the thread's history before it."""

    channel: ChannelInfo
    thread: ThreadInfo
    message_pk: int
    history: list[HistoryTurn]


class ConversationStore:
    """Each method is one transaction, run by `Database.run` as a synchronous function."""

    def __init__(self, db: Database, workspace_scoped: frozenset[str] = frozenset()) -> None:
        """`workspace_scoped`: platforms whose channel budgets are keyed with the workspace."""
        self._db = db
        self._workspace_scoped = workspace_scoped

    async def claim(self, incoming: Incoming, text: str, token_estimate: int) -> Claimed | None:
        """Record the user's message, or return None if this message was seen before (a retry, a
        replay, another replica). One transaction: the unique dedup key decides."""
        return await self._db.run(lambda session: self._claim(session, incoming, text, token_estimate))

    def _claim(self, session: Session, incoming: Incoming, text: str, token_estimate: int) -> Claimed | None:
        channel = self._channel(session, incoming)
        thread = self._thread(session, channel.id, incoming.thread.thread_id)
        message_pk = session.scalar(
            self._db.insert(Message).values(
                thread_pk=thread.id, role="user", dedup_key=incoming.dedup_key, user_id=incoming.user_id,
                user_name=incoming.user_name, content=text, token_estimate=token_estimate,
                status="pending", created_at=utcnow(),
            ).on_conflict_do_nothing(index_elements=["dedup_key"]).returning(Message.id)
        )
        if message_pk is None:
            return None
        rows = session.execute(
            select(Message.id, Message.role, Message.content, Message.token_estimate)
            .where(Message.thread_pk == thread.id, Message.id >= thread.history_floor_message_pk,
                   Message.id < message_pk, Message.status.in_(HISTORY_STATUSES))
            .order_by(Message.id)
        )
        history = [HistoryTurn(*row) for row in rows]
        return Claimed(
            ChannelInfo(channel.id, channel.platform, channel.channel_id, channel.web_search,
                        channel.reasoning_effort,
                        channel.workspace_id if channel.platform in self._workspace_scoped else None),
            ThreadInfo(thread.id, thread.history_floor_message_pk, thread.last_prompt_estimate,
                       thread.last_prompt_actual),
            message_pk, history,
        )

    @staticmethod
    def record_answer(session: Session, *, claimed: Claimed, answer: str, answer_tokens: int,
                      status: str, floor_pk: int, prompt_estimate: int, prompt_actual: int | None) -> None:
        """Persist the outcome of one turn inside the caller's transaction (the settlement's)."""
        user_status = "ok" if status in HISTORY_STATUSES else status
        session.execute(update(Message).where(Message.id == claimed.message_pk).values(status=user_status))
        if answer:
            session.add(Message(thread_pk=claimed.thread.pk, role="assistant", content=answer,
                                token_estimate=answer_tokens, status=status, created_at=utcnow(),
                                reply_to_pk=claimed.message_pk))
        values: dict[str, object] = {"history_floor_message_pk": floor_pk, "updated_at": utcnow()}
        if prompt_actual:
            values |= {"last_prompt_estimate": prompt_estimate, "last_prompt_actual": prompt_actual}
        session.execute(update(Thread).where(Thread.id == claimed.thread.pk).values(**values))

    async def save_answer(self, claimed: Claimed, answer: str, answer_tokens: int, status: str) -> None:
        """Persist an answer that was settled elsewhere (reviews settle one reservation per call)."""
        await self._db.run(lambda session: self.record_answer(
            session, claimed=claimed, answer=answer, answer_tokens=answer_tokens, status=status,
            floor_pk=claimed.thread.floor_pk, prompt_estimate=0, prompt_actual=None))

    async def has_thread(self, platform: str, workspace_id: str, channel_id: str, thread_id: str) -> bool:
        """Whether the bot already holds a conversation in this thread: how adapters tell a thread the
        bot is in from one it is not, without asking the platform's history API."""
        query = (select(Thread.id).join(Channel, Thread.channel_pk == Channel.id)
                 .where(Channel.platform == platform, Channel.workspace_id == workspace_id,
                        Channel.channel_id == channel_id, Thread.platform_thread_id == thread_id)
                 .limit(1))
        return await self._db.run(lambda session: session.scalar(query) is not None)

    async def thread_of_message(self, platform: str, workspace_id: str, channel_id: str,
                                message_id: str) -> str | None:
        """The platform thread id of the conversation a user message (by its platform id) was part of,
        or None if the bot never received it. Looked up by the message's dedup key (Incoming.dedup_key)."""
        query = (select(Thread.platform_thread_id).join(Message, Message.thread_pk == Thread.id)
                 .where(Message.dedup_key == f"{platform}:{workspace_id}:{channel_id}:{message_id}")
                 .limit(1))
        return await self._db.run(lambda session: session.scalar(query))

    async def set_channel_options(self, platform: str, channel_id: str, *, web_search: bool | None = None,
                                  reasoning_effort: str | None = None) -> bool:
        """Change a channel's defaults; False if the bot has not seen the channel yet."""
        values: dict[str, object] = {}
        if web_search is not None:
            values["web_search"] = web_search
        if reasoning_effort is not None:
            values["reasoning_effort"] = reasoning_effort
        statement = update(Channel).where(Channel.platform == platform, Channel.channel_id == channel_id)
        return await self._db.run(lambda session: session.execute(statement.values(**values)).rowcount > 0)

    async def mark_user_message(self, message_pk: int, status: str) -> None:
        statement = update(Message).where(Message.id == message_pk).values(status=status)
        await self._db.run(lambda session: session.execute(statement))

    def _channel(self, session: Session, incoming: Incoming) -> Channel:
        key = incoming.thread
        query = select(Channel).where(Channel.platform == key.platform.value,
                                      Channel.workspace_id == key.workspace_id, Channel.channel_id == key.channel_id)
        channel = session.scalars(query).one_or_none()
        if channel is None:
            session.execute(self._db.insert(Channel).values(
                platform=key.platform.value, workspace_id=key.workspace_id, channel_id=key.channel_id,
                name=incoming.channel_name, web_search=False, created_at=utcnow(),
            ).on_conflict_do_nothing())
            channel = session.scalars(query).one()
        return channel

    def _thread(self, session: Session, channel_pk: int, thread_id: str) -> Thread:
        query = select(Thread).where(Thread.channel_pk == channel_pk, Thread.platform_thread_id == thread_id)
        thread = session.scalars(query).one_or_none()
        if thread is None:
            now = utcnow()
            session.execute(self._db.insert(Thread).values(
                channel_pk=channel_pk, platform_thread_id=thread_id, history_floor_message_pk=0,
                last_prompt_estimate=0, last_prompt_actual=0, created_at=now, updated_at=now,
            ).on_conflict_do_nothing())
            thread = session.scalars(query).one()
        return thread

"""Conversations in SQL: channels, threads and messages. The database is the memory of a thread;
no platform history API is ever asked."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Select, and_, bindparam, func, insert, or_, select, true, update
from sqlalchemy.engine import Connection

from bot.budget.scopes import channel_scope, deployment_channel_scope
from bot.chat.prompt import HistoryTurn
from bot.domain import Incoming, ThreadKey
from bot.storage.engine import Database
from bot.storage.precompiled import Precompiled, Prelude
from bot.storage.tables import Channel, Message, Thread, utcnow

T = TypeVar("T")

# A stopped answer stays in the conversation, like a cut one: "go on" should know what was said.
HISTORY_STATUSES = ("ok", "cut", "stopped")

_CHANNELS, _THREADS, _MESSAGES = Channel.__table__, Thread.__table__, Message.__table__
# A channel and, if the bot has one there, the thread: one statement for the usual claim.
_PLACE_QUERY = (
    select(_CHANNELS.c.id.label("channel_pk"), _CHANNELS.c.web_search, _CHANNELS.c.reasoning_effort,
           _THREADS.c.id.label("thread_pk"), _THREADS.c.history_floor_message_pk.label("floor_pk"),
           _THREADS.c.last_prompt_estimate, _THREADS.c.last_prompt_actual)
    .select_from(_CHANNELS.outerjoin(_THREADS, and_(_THREADS.c.channel_pk == _CHANNELS.c.id,
                                                   _THREADS.c.platform_thread_id == bindparam("thread_id"))))
    .where(_CHANNELS.c.platform == bindparam("platform"), _CHANNELS.c.workspace_id == bindparam("workspace_id"),
           _CHANNELS.c.channel_id == bindparam("channel_id"))
)
_PLACE = Precompiled(_PLACE_QUERY)


@functools.cache
def _place_after(first: Select) -> Precompiled:
    """`_PLACE` run after `first` (a one-row select; its parameters given with the place's) in one statement:
    `first` on the left of a LEFT JOIN, so it runs whether or not the place exists (then every column is NULL)."""
    found = _PLACE_QUERY.subquery("found")
    return Precompiled(select(*found.c).select_from(first.cte("first").outerjoin(found, true())))


_SET_STATUS = Precompiled(update(_MESSAGES).where(_MESSAGES.c.id == bindparam("m_id"))
                          .values(status=bindparam("m_status")))
_ADD_MESSAGE = Precompiled(insert(_MESSAGES))
_TOUCH_THREAD = Precompiled(update(_THREADS).where(_THREADS.c.id == bindparam("t_id")))  # columns come as parameters
# Each answer right after its question (the order the thread shows), not in the order the answers were settled:
# two questions asked at once in a thread are answered in either order. A turn's place is its question's pk.
_QUESTION_PK = func.coalesce(_MESSAGES.c.reply_to_pk, _MESSAGES.c.id)
_HISTORY = Precompiled(
    select(_QUESTION_PK.label("question_pk"), _MESSAGES.c.role, _MESSAGES.c.content, _MESSAGES.c.token_estimate)
    .where(_MESSAGES.c.thread_pk == bindparam("thread_pk"), _QUESTION_PK >= bindparam("floor_pk"),
           _MESSAGES.c.id < bindparam("before_pk"),
           _MESSAGES.c.status.in_([bindparam(f"h{i}", status) for i, status in enumerate(HISTORY_STATUSES)]))
    .order_by(_QUESTION_PK, _MESSAGES.c.id)
)


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

    def __init__(self, db: Database, workspace_scoped: frozenset[str] = frozenset(), *,
                 claimant: str | None = None) -> None:
        """`workspace_scoped`: platforms whose channel budgets are keyed with the workspace; `claimant`:
        this process's id (bot.storage.claimants), written on every message it claims."""
        self._db = db
        self._workspace_scoped = workspace_scoped
        self._claimant = claimant
        # The unique dedup key decides who answers (built once: it runs for every message).
        self._claim_message = Precompiled(db.insert(_MESSAGES).on_conflict_do_nothing(
            index_elements=["dedup_key"]).returning(_MESSAGES.c.id))
        # Most messages open a thread (a Slack mention in a channel, a Discord mention), so this is hot too.
        self._add_thread = Precompiled(db.insert(_THREADS).on_conflict_do_nothing().returning(_THREADS.c.id))

    def channel_scope_of(self, key: ThreadKey) -> str:
        """The budget key of the channel `key`'s thread is in (`scopes.deployment_channel_scope`), as a claim of it
        gives it in `ChannelInfo.scope_key`."""
        return deployment_channel_scope(key.platform.value, key.channel_id, key.workspace_id, self._workspace_scoped)

    def _budget_workspace(self, key: ThreadKey) -> str | None:
        return key.workspace_id if key.platform.value in self._workspace_scoped else None

    async def claim(self, incoming: Incoming, text: str, token_estimate: int) -> Claimed | None:
        """Record the user's message, or return None if this message was seen before (a retry, a
        replay, another replica). One transaction: the unique dedup key decides."""
        return await self._db.run_core(lambda connection: self._claim(connection, incoming, text, token_estimate))

    async def claim_then(self, incoming: Incoming, text: str, token_estimate: int,
                         then: Callable[[Connection, Claimed], T], *,
                         first: Prelude | None = None) -> tuple[Claimed, T] | None:
        """`claim`, and if the message is this process's to answer, `then(connection, claimed)` in the same
        transaction (an answer's reservation: one transaction where there were two). `first`, a one-row select
        and its parameters (locks the transaction must take before any other), runs inside the transaction's
        first statement. None for a message seen before; whatever `then` raises rolls the claim back too."""
        def work(connection: Connection) -> tuple[Claimed, T] | None:
            claimed = self._claim(connection, incoming, text, token_estimate, first)
            return None if claimed is None else (claimed, then(connection, claimed))

        return await self._db.run_core(work)

    def _claim(self, connection: Connection, incoming: Incoming, text: str, token_estimate: int,
               first: Prelude | None = None) -> Claimed | None:
        # Core statements: the hot path needs rows, not ORM entities (identity map, unit of work), and
        # each statement here runs once per answer.
        key = incoming.thread
        where = {"platform": key.platform.value, "workspace_id": key.workspace_id, "channel_id": key.channel_id,
                 "thread_id": key.thread_id}
        found = (_PLACE.first(connection, where) if first is None else
                 _place_after(first.statement).first(connection, where | dict(first.params)))
        if found is None or found.channel_pk is None:
            connection.execute(self._db.insert(_CHANNELS).values(
                platform=key.platform.value, workspace_id=key.workspace_id, channel_id=key.channel_id,
                name=incoming.channel_name, web_search=False, created_at=utcnow(),
            ).on_conflict_do_nothing())
            found = _PLACE.one(connection, where)
        place = found._asdict()
        new_thread = place["thread_pk"] is None
        if new_thread:
            now = utcnow()
            inserted = self._add_thread.scalar(connection, dict(
                channel_pk=place["channel_pk"], platform_thread_id=key.thread_id, history_floor_message_pk=0,
                last_prompt_estimate=0, last_prompt_actual=0, created_at=now, updated_at=now,
            ))
            if inserted is None:  # another transaction created it first
                new_thread = False
                place = _PLACE.one(connection, where)._asdict()
            else:
                place |= {"thread_pk": inserted, "floor_pk": 0, "last_prompt_estimate": 0, "last_prompt_actual": 0}
        message_pk = self._claim_message.scalar(connection, dict(
            thread_pk=place["thread_pk"], role="user", dedup_key=incoming.dedup_key, user_id=incoming.user_id,
            user_name=incoming.user_name, content=text, token_estimate=token_estimate,
            status="pending", created_at=utcnow(), claimant=self._claimant,
        ))
        if message_pk is None:
            # Seen before. Only an answer that was interrupted (its process died, or stopped) is
            # answered again; one whose claimant is alive or that finished stays silent.
            message_pk = connection.scalar(
                update(Message).where(Message.dedup_key == incoming.dedup_key, Message.status == "interrupted")
                .values(status="pending", claimant=self._claimant, reply_location=None).returning(Message.id))
        if message_pk is None:
            return None
        history = [] if new_thread else [HistoryTurn(*row) for row in _HISTORY.rows(
            connection, {"thread_pk": place["thread_pk"], "floor_pk": place["floor_pk"], "before_pk": message_pk})]
        return Claimed(
            ChannelInfo(place["channel_pk"], key.platform.value, key.channel_id, place["web_search"],
                        place["reasoning_effort"], self._budget_workspace(key)),
            ThreadInfo(place["thread_pk"], place["floor_pk"], place["last_prompt_estimate"],
                       place["last_prompt_actual"]),
            message_pk, history,
        )

    @staticmethod
    def record_answer(connection: Connection, *, claimed: Claimed, answer: str, answer_tokens: int,
                      status: str, floor_pk: int, prompt_estimate: int, prompt_actual: int | None) -> None:
        """Persist the outcome of one turn inside the caller's transaction (the settlement's)."""
        user_status = "ok" if status in HISTORY_STATUSES else status
        _SET_STATUS.run(connection, {"m_id": claimed.message_pk, "m_status": user_status})
        if answer:
            _ADD_MESSAGE.run(connection, dict(
                thread_pk=claimed.thread.pk, role="assistant", content=answer, token_estimate=answer_tokens,
                status=status, created_at=utcnow(), reply_to_pk=claimed.message_pk))
        values: dict[str, object] = {"t_id": claimed.thread.pk, "history_floor_message_pk": floor_pk,
                                     "updated_at": utcnow()}
        if prompt_actual:
            values |= {"last_prompt_estimate": prompt_estimate, "last_prompt_actual": prompt_actual}
        _TOUCH_THREAD.run(connection, values)

    @staticmethod
    def restate_turn(connection: Connection, claimed: Claimed, status: str) -> None:
        """Give a recorded turn (the user message and the answer to it) another final `status`, inside the
        caller's transaction: an answer the platform refused after it was recorded."""
        connection.execute(update(Message).where(or_(Message.id == claimed.message_pk,
                                                     Message.reply_to_pk == claimed.message_pk))
                           .values(status=status))

    async def save_answer(self, claimed: Claimed, answer: str, answer_tokens: int, status: str) -> None:
        """Persist an answer that was settled elsewhere (reviews settle one reservation per call)."""
        await self._db.run_core(lambda connection: self.record_answer(
            connection, claimed=claimed, answer=answer, answer_tokens=answer_tokens, status=status,
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

    async def set_reply_location(self, message_pk: int, location: str) -> None:
        """Where the reply to a user message lives on the platform (JSON), for crash recovery."""
        statement = update(Message).where(Message.id == message_pk).values(reply_location=location)
        await self._db.run(lambda session: session.execute(statement))

    async def finish_pending(self, message_pk: int, status: str) -> None:
        """Give a user message `status` unless it already has a final one (it is not "pending")."""
        statement = (update(Message).where(Message.id == message_pk, Message.status == "pending")
                     .values(status=status))
        await self._db.run(lambda session: session.execute(statement))

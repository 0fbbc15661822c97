"""The schema. Money is integer nano-dollars (BigInteger); timestamps are naive UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Channel(Base):
    """A place people talk to the bot: a Slack or Discord channel, a DM, or the terminal."""

    __tablename__ = "channels"
    __table_args__ = (UniqueConstraint("platform", "workspace_id", "channel_id", name="uq_channels_platform_ids"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    workspace_id: Mapped[str] = mapped_column(String(64))
    channel_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")
    web_search: Mapped[bool] = mapped_column(Boolean, default=False)
    reasoning_effort: Mapped[str | None] = mapped_column(String(8), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    @property
    def address(self) -> str:
        return f"{self.platform}:{self.channel_id}"


class Thread(Base):
    __tablename__ = "threads"
    __table_args__ = (UniqueConstraint("channel_pk", "platform_thread_id", name="uq_threads_channel_thread"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_pk: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    platform_thread_id: Mapped[str] = mapped_column(String(128))
    # The first message still in the prompt. It only moves forward, in large steps, so that the
    # prompt's prefix stays byte-identical between steps and the provider's cache keeps hitting.
    history_floor_message_pk: Mapped[int] = mapped_column(Integer, default=0)
    # The last prompt as we estimated it and as the provider counted it: their ratio corrects the
    # next estimate, since Seed's tokenizer is not the one we count with.
    last_prompt_estimate: Mapped[int] = mapped_column(Integer, default=0)
    last_prompt_actual: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_thread_id", "thread_pk", "id"),
                      Index("ix_messages_status_claimant", "status", "claimant"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    thread_pk: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    # platform:workspace:channel:message id of a user's message. The unique constraint is the
    # deduplication of retries, replays and a second replica: whoever inserts first answers.
    dedup_key: Mapped[str | None] = mapped_column(String(300), unique=True, default=None)
    user_id: Mapped[str] = mapped_column(String(64), default="")
    user_name: Mapped[str] = mapped_column(String(200), default="")
    content: Mapped[str] = mapped_column(Text, default="")
    token_estimate: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="ok")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # The process answering a user message (see Claimant), and where its reply lives on the
    # platform (JSON, written when the reply opens): what crash recovery needs to finish it.
    claimant: Mapped[str | None] = mapped_column(String(80), default=None)
    reply_location: Mapped[str | None] = mapped_column(Text, default=None)
    # An assistant message's user message: forgetting a person removes the answers to them too.
    reply_to_pk: Mapped[int | None] = mapped_column(Integer, default=None, index=True)


class Claimant(Base):
    """A running process that claims messages; its heartbeat says it is alive. A claimant silent for
    longer than the reservation TTL is dead, and its unfinished answers are recovered."""

    __tablename__ = "claimants"

    claimant: Mapped[str] = mapped_column(String(80), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class UsageEntry(Base):
    """The ledger: one row per model call, whatever happened to it."""

    __tablename__ = "usage_ledger"
    __table_args__ = (Index("ix_usage_ledger_channel_started", "channel_pk", "started_at"),
                      Index("ix_usage_ledger_started", "started_at"),
                      # Deleting a thread clears its ledger rows' reference (retention, forget).
                      Index("ix_usage_ledger_thread", "thread_pk"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_pk: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    thread_pk: Mapped[int | None] = mapped_column(ForeignKey("threads.id", ondelete="SET NULL"), default=None)
    reservation_pk: Mapped[int | None] = mapped_column(Integer, default=None, unique=True)
    user_id: Mapped[str] = mapped_column(String(64), default="")
    kind: Mapped[str] = mapped_column(String(16), default="chat")
    model: Mapped[str] = mapped_column(String(64), default="")
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cached_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(Integer, default=0)
    web_searches: Mapped[int] = mapped_column(Integer, default=0)
    cost_nanos: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved_nanos: Mapped[int] = mapped_column(BigInteger, default=0)
    usage_known: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text, default=None)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    first_token_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    duration_ms: Mapped[int | None] = mapped_column(Integer, default=None)


class Refusal(Base):
    """A message the budget refused: no model call, so no ledger row, but admins want the count."""

    __tablename__ = "budget_refusals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_pk: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(64), default="")
    scope_key: Mapped[str] = mapped_column(String(64))
    needed_nanos: Mapped[int] = mapped_column(BigInteger)
    available_nanos: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class Budget(Base):
    """An explicit budget. Channels without a row use SEEDBOT_DEFAULT_CHANNEL_BUDGET."""

    __tablename__ = "budgets"

    scope_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    limit_nanos: Mapped[int | None] = mapped_column(BigInteger, default=None)
    period: Mapped[str] = mapped_column(String(8), default="day")
    updated_by: Mapped[str] = mapped_column(String(100), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class BudgetChange(Base):
    __tablename__ = "budget_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope_key: Mapped[str] = mapped_column(String(64), index=True)
    changed_by: Mapped[str] = mapped_column(String(100))
    old_value: Mapped[str] = mapped_column(String(40))
    new_value: Mapped[str] = mapped_column(String(40))
    changed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class BudgetCounter(Base):
    """Running totals of one scope in one period; the row that reservers lock."""

    __tablename__ = "budget_counters"

    scope_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[str] = mapped_column(String(8), primary_key=True)
    period_start: Mapped[datetime] = mapped_column(DateTime, primary_key=True)
    reserved_nanos: Mapped[int] = mapped_column(BigInteger, default=0)
    spent_nanos: Mapped[int] = mapped_column(BigInteger, default=0)
    # The highest reservation id there was when this counter opened from the books: an active reservation up to
    # it was counted in reserved then, though it names no counter of this one's (bot.budget.counters).
    opened_through: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # When the period ends (naive UTC), for the same rule: a reservation made after it was not counted here.
    period_end: Mapped[datetime | None] = mapped_column(DateTime, default=None)


class Reservation(Base):
    __tablename__ = "budget_reservations"
    __table_args__ = (Index("ix_budget_reservations_status_expires", "status", "expires_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_pk: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    thread_pk: Mapped[int | None] = mapped_column(Integer, default=None)
    user_id: Mapped[str] = mapped_column(String(64), default="")
    kind: Mapped[str] = mapped_column(String(16), default="chat")
    # The counters this reservation holds money in, as "scope|period|iso start" joined by ";".
    counter_keys: Mapped[str] = mapped_column(Text)
    # The call's budget scopes (channel, person, global) joined by ";", limited or not.
    scope_keys: Mapped[str] = mapped_column(Text, default="", server_default="")
    amount_nanos: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class Delivery(Base):
    """A claimed once-only delivery (daily summary, budget alert): the unique key is the claim."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="claimed")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)


class ConsoleKey(Base):
    """The admin console's signing key, made on first use and shared through the database, so the CLI
    that prints a sign-in link and every replica serving the console sign and check with the same key."""

    __tablename__ = "console_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ConsoleLinkUse(Base):
    """A redeemed one-time sign-in link: the unique nonce is what makes the link single-use."""

    __tablename__ = "console_link_uses"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    admin_id: Mapped[str] = mapped_column(String(100))
    used_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ConsoleSessionRecord(Base):
    """A live console session, named by the random id its signed cookie carries. Signing out deletes the
    row, so a copy of the cookie stops working on every replica; `expires_at` (when the cookie's own
    maximum age runs out) is when the row may be purged."""

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    admin_id: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)
class RequestClaim(Base):
    """A signed request that must run at most once (a Slack slash command), keyed by its signature:
    a replay reaching any replica finds the key taken."""

    __tablename__ = "request_claims"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    claimed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class DisplayName(Base):
    """A channel's or a person's name as the platform shows it, for reports. `kind` is "channel" or
    "user"; `refreshed_at` is when the platform last told us, so a name is looked up at most daily."""

    __tablename__ = "display_names"

    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    platform_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    refreshed_at: Mapped[datetime] = mapped_column(DateTime)
class AnswerFeedback(Base):
    """One person's rating of one answer; their last click wins. `answer_key` is the asked message's
    dedup key (Message.dedup_key), which names the answer to it."""

    __tablename__ = "answer_feedback"
    __table_args__ = (UniqueConstraint("answer_key", "user_id", name="uq_answer_feedback_answer_user"),
                      Index("ix_answer_feedback_updated", "updated_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    answer_key: Mapped[str] = mapped_column(String(300))
    user_id: Mapped[str] = mapped_column(String(64))
    helpful: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

"""Which Discord messages the bot answers, and where. PURE: plain data in, a decision out.

The client turns a discord.Message into `MessageFacts` (listeners.py); the tests build the same facts
from recorded gateway payloads (tests/discord/payloads). `route` then decides:

- its own messages, other bots' and system messages: ignored (edits never reach here: the client
  only listens to new messages);
- a direct message: answered in the DM, one continuing conversation per DM channel;
- a mention in a guild channel: a thread is opened from the message and the answer goes there;
- a message in a thread: answered if it mentions or replies to the bot, else only if our database
  already holds a conversation in that thread (`needs_thread_check`; never Discord's history);
- a reply in a guild channel to one of the bot's messages: continues that message's conversation,
  answered as a reply in the channel.

Thread keys. Guild conversations are keyed (guild id, PARENT channel id, thread id), so a channel's
budget (`discord:<channel id>`) covers all threads in it. A thread opened from a message has the
message's id, so the key is known before the thread exists. A DM is ("dm", channel, channel). An
/ask outside a thread is keyed by the interaction id (see `interaction_key`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from adapters.common.splitter import clip
from bot.chat.redaction import redact
from bot.domain import Platform, ThreadKey
from bot.text_safety import clean_name

DM_WORKSPACE = "dm"
THREAD_NAME_LIMIT = 100
# Discord message types a person writes; everything else (joins, pins, boosts ...) is a system message.
DEFAULT_MESSAGE, REPLY_MESSAGE = 0, 19
PERSON_MESSAGE_TYPES = frozenset({DEFAULT_MESSAGE, REPLY_MESSAGE})

_MARKUP = re.compile(r"[*_~`>#|]+")
# Discord's markup for a person, a role or a channel (`<@id>`, `<@&id>`, `<#id>`), a timestamp (`<t:…>`) and a
# custom emoji (`<:name:id>`, its name kept): a thread's name shows none of them rendered, only the raw ids.
_MENTION = re.compile(r"<(?:@[!&]?|#)\d+>|<t:-?\d+(?::[tTdDfFR])?>")
_CUSTOM_EMOJI = re.compile(r"<a?:(\w+):\d+>")
_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_PUNCTUATION = re.compile(r" +([,.;!?])")


class Place(StrEnum):
    DM = "dm"
    CHANNEL = "channel"
    THREAD = "thread"


class Placement(StrEnum):
    NEW_THREAD = "new_thread"  # open a thread from the message and answer in it
    IN_THREAD = "in_thread"  # answer in the thread the message was written in
    IN_DM = "in_dm"
    REPLY_IN_CHANNEL = "reply_in_channel"  # answer in the channel, as a reply to the message


@dataclass(frozen=True, slots=True)
class Referenced:
    """The message a reply points at, as far as the event tells (author None: not resolved/deleted)."""

    message_id: int
    author_id: int | None = None
    replied_to_id: int | None = None  # the referenced message's own reply target
    interaction_id: int | None = None  # the slash command the referenced message answered


@dataclass(frozen=True, slots=True)
class MessageFacts:
    message_id: int
    channel_id: int
    guild_id: int | None
    place: Place
    author_id: int
    author_is_bot: bool
    message_type: int
    content: str
    parent_id: int | None = None  # a thread's parent channel
    author_name: str = ""
    channel_name: str = ""
    mention_ids: frozenset[int] = frozenset()
    role_mention_ids: frozenset[int] = frozenset()
    referenced: Referenced | None = None


@dataclass(frozen=True, slots=True)
class Ignore:
    """`route`'s answer for a message seedbot leaves alone; `reason` is for the debug log only."""

    reason: str


@dataclass(frozen=True, slots=True)
class Reply:
    """`route`'s answer for a message seedbot answers: the conversation it belongs to, where the answer
    goes (`placement`), and the text with the bot's mention removed."""

    key: ThreadKey
    placement: Placement
    text: str
    is_direct: bool = False
    needs_thread_check: bool = False
    # A reply to the bot: the user message (by platform id) whose conversation this continues, to be
    # looked up in our database; `key.thread_id` holds the same id as the fallback.
    conversation_anchor: str | None = None
    thread_name: str = ""


def route(facts: MessageFacts, *, bot_id: int, bot_role_ids: frozenset[int] = frozenset()) -> Ignore | Reply:
    if facts.author_id == bot_id:
        return Ignore("our own message")
    if facts.author_is_bot:
        return Ignore("another bot")
    if facts.message_type not in PERSON_MESSAGE_TYPES:
        return Ignore(f"system message (type {facts.message_type})")
    text = strip_mentions(facts.content, bot_id, bot_role_ids)
    if facts.place is Place.DM:
        channel = str(facts.channel_id)
        return Reply(ThreadKey(Platform.DISCORD, DM_WORKSPACE, channel, channel), Placement.IN_DM, text,
                     is_direct=True)
    guild = str(facts.guild_id)
    mentioned = bot_id in facts.mention_ids or bool(bot_role_ids & facts.role_mention_ids)
    replying = facts.referenced is not None and facts.referenced.author_id == bot_id
    if facts.place is Place.THREAD:
        if facts.parent_id is None:
            return Ignore("a thread without a known parent channel")
        key = ThreadKey(Platform.DISCORD, guild, str(facts.parent_id), str(facts.channel_id))
        return Reply(key, Placement.IN_THREAD, text, needs_thread_check=not (mentioned or replying))
    channel = str(facts.channel_id)
    if replying:
        assert facts.referenced is not None
        anchor = str(conversation_anchor(facts.referenced))
        return Reply(ThreadKey(Platform.DISCORD, guild, channel, anchor), Placement.REPLY_IN_CHANNEL, text,
                     conversation_anchor=anchor)
    if mentioned:
        key = ThreadKey(Platform.DISCORD, guild, channel, str(facts.message_id))
        return Reply(key, Placement.NEW_THREAD, text, thread_name=thread_name(text, facts.author_name))
    return Ignore("not addressed to the bot")


def conversation_anchor(referenced: Referenced) -> int:
    """The id that names the conversation a bot message belongs to: the slash command it answered
    (an /ask's conversation is keyed by the interaction id), else the user message it replied to,
    else the bot message itself (e.g. a notice nobody asked for)."""
    return referenced.interaction_id or referenced.replied_to_id or referenced.message_id


def interaction_key(*, interaction_id: int, guild_id: int | None, channel_id: int, place: Place,
                    parent_id: int | None) -> ThreadKey:
    """Where an /ask or /review belongs: a DM continues the DM's conversation, a thread continues the
    thread's; in a guild channel the command starts a conversation keyed by the interaction id, which
    a reply to any of the answer's messages continues (they carry the interaction's id)."""
    if place is Place.DM or guild_id is None:
        return ThreadKey(Platform.DISCORD, DM_WORKSPACE, str(channel_id), str(channel_id))
    if place is Place.THREAD and parent_id is not None:
        return ThreadKey(Platform.DISCORD, str(guild_id), str(parent_id), str(channel_id))
    return ThreadKey(Platform.DISCORD, str(guild_id), str(channel_id), str(interaction_id))


def strip_mentions(content: str, bot_id: int, bot_role_ids: frozenset[int] = frozenset()) -> str:
    """The text without the bot's mention (user or role) and the spaces after it; nothing else changes,
    so code in the message keeps its exact spacing."""
    text = re.sub(rf"<@!?{bot_id}>[ \t]*", "", content)
    for role_id in bot_role_ids:
        text = re.sub(rf"<@&{role_id}>[ \t]*", "", text)
    return text.strip()


def thread_name(text: str, author_name: str = "") -> str:
    """The first words of the question (no Markdown, no mentions' raw ids, secrets masked), at most 100
    characters, cut between words. The bot creates the thread, so its name is the bot's output too."""
    for line in text.split("\n"):
        stripped = redact(line).strip()
        if not stripped or stripped.startswith(("```", "~~~")):
            continue
        stripped = _CUSTOM_EMOJI.sub(r":\1:", _MENTION.sub(" ", stripped))
        # clean_name: no NUL, no bidi override turning "gnp.exe" around, no zero-width-only name.
        words = clean_name(_SPACE_BEFORE_PUNCTUATION.sub(r"\1", _SPACES.sub(" ", _MARKUP.sub(" ", stripped))))
        if words:
            return _shorten(words, THREAD_NAME_LIMIT)
    author_name = clean_name(author_name)
    fallback = f"Question from {author_name}" if author_name else "Question for seedbot"
    return _shorten(fallback, THREAD_NAME_LIMIT)


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = clip(text, limit).removesuffix("…")  # whole characters (grapheme clusters) only
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:-") + "…"

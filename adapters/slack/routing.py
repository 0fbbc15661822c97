"""Which Slack events the bot answers, and the `Incoming` each becomes. Pure: payload in, decision out.

Rules:
- `app_mention` in a channel is answered in a thread under the mention (or in the thread it was
  written in). Mentions in DMs are left to the DM's `message` event.
- `message` in a DM (`channel_type` "im") is answered. A conversation is a Slack thread everywhere:
  the key is the message's `thread_ts`, or its own `ts` when it starts one. (Slack's chat streaming
  can only answer inside a thread, so the answer to a top-level DM opens a thread under it; keying
  the conversation by that thread means a reply there continues it, as the user expects.)
- `message` in a channel thread without a mention continues the conversation if the bot is already
  in that thread, which only the database can say: the decision comes back as `needs_thread_check`.
  A thread message that mentions the bot is left to its `app_mention` twin (Slack sends both); one
  that mentions other people but not the bot is a conversation between people and is left alone.
- Ignored: the bot's own messages, other bots' (`bot_id`, subtype `bot_message`), edits
  (`message_changed`), deletions (`message_deleted`) and every other subtype except `file_share`
  and `thread_broadcast` (a thread reply also sent to the channel is still a user's reply).
- Slack retries are not dropped here: the core deduplicates on the message `ts`, which the
  `app_mention` and `message` twins of one message share.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from bot.domain import Incoming, Platform, ThreadKey

JSON = dict[str, Any]

ANSWERED_SUBTYPES = (None, "file_share", "thread_broadcast")

ASSISTANT_TITLE = "Ask seedbot about code"
ASSISTANT_PROMPTS: tuple[dict[str, str], ...] = (
    {"title": "Explain an error", "message": "Explain this error and how to fix it:\n"},
    {"title": "Review a diff", "message": "Review this diff for bugs and risky changes:\n"},
    {"title": "Write a test", "message": "Write a pytest test for this function:\n"},
    {"title": "Speed up a query", "message": "Why is this SQL query slow, and how would you index for it?\n"},
)


@dataclass(frozen=True, slots=True)
class BotIdentity:
    """Who the bot is in the workspace, from auth.test."""

    user_id: str
    bot_id: str
    team_id: str = ""


@dataclass(frozen=True, slots=True)
class Addressed:
    """A user message the bot should answer (subject to `needs_thread_check`)."""

    incoming: Incoming  # without user_name and attachments, which need Web API calls
    reply_channel: str
    reply_thread_ts: str
    recipient_team_id: str
    files: tuple[JSON, ...] = field(default_factory=tuple)
    needs_thread_check: bool = False
    assistant: bool = False


@dataclass(frozen=True, slots=True)
class Ignored:
    reason: str


Decision = Addressed | Ignored


def decide(body: JSON, me: BotIdentity, *, assistant: bool = False) -> Decision:
    """What to do with one Events API body (`event_callback`). `assistant` marks a user message in an
    assistant-pane thread (Bolt's Assistant middleware routed it)."""
    event = body.get("event") if body.get("type") == "event_callback" else None
    if not isinstance(event, dict):
        return Ignored("not an event callback")
    kind = event.get("type")
    if kind not in ("app_mention", "message"):
        return Ignored(f"event type {kind}")
    subtype = event.get("subtype")
    if subtype not in ANSWERED_SUBTYPES:
        return Ignored(f"subtype {subtype}")
    user = event.get("user")
    if event.get("bot_id") == me.bot_id or (user and user == me.user_id):
        return Ignored("own message")
    if event.get("bot_id") or event.get("bot_profile") or subtype == "bot_message":
        return Ignored("from another bot")
    channel, ts = event.get("channel"), event.get("ts")
    if not user or not channel or not ts:
        return Ignored("no user, channel or ts")
    thread_ts = event.get("thread_ts") or None
    text = event.get("text") or ""
    if not all(isinstance(v, str) for v in (user, channel, ts, text, thread_ts or "")):
        return Ignored("malformed event: user, channel, ts, thread_ts and text must be strings")
    direct = event.get("channel_type") == "im"
    needs_thread_check = False
    if kind == "app_mention":
        if str(channel).startswith("D"):
            return Ignored("mention in a DM: the message event answers it")
    elif not direct:
        if mentions(text, me.user_id):
            return Ignored("mentions the bot: the app_mention event answers it")
        if thread_ts is None:
            return Ignored("not addressed to the bot")
        if _OTHER_MENTION.search(text):
            return Ignored("addressed to someone else")
        needs_thread_check = True
    team = str(body.get("team_id") or event.get("team") or me.team_id)
    thread_id = str(thread_ts or ts)
    incoming = Incoming(
        thread=ThreadKey(Platform.SLACK, team, str(channel), thread_id),
        message_id=str(ts),
        user_id=str(user),
        text=clean_text(text, me.user_id),
        is_direct=direct,
    )
    app_context = event.get("app_context")
    context = viewing_context(app_context) if direct and isinstance(app_context, dict) else ""
    incoming = replace(incoming, context=context) if context else incoming
    files = tuple(f for f in event.get("files") or () if isinstance(f, dict))
    recipient_team = str(event.get("user_team") or event.get("team") or team)
    return Addressed(incoming, str(channel), thread_id, recipient_team, files, needs_thread_check,
                     assistant and direct)


def mentions(text: str, user_id: str) -> bool:
    return bool(user_id) and re.search(rf"<@{re.escape(user_id)}(?:\|[^>]*)?>", text) is not None


_OTHER_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
_ANGLE = re.compile(r"<([^<>\n]+)>")


def clean_text(text: str, bot_user_id: str) -> str:
    """Slack's message text as a person wrote it: the bot's mention removed, links, channels and
    special mentions in plain Markdown, and Slack's &amp; &lt; &gt; escapes undone."""

    def replace(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            return f"@{label}" if label else f"<{inner}>"
        if target.startswith("#"):
            return f"#{label or target[1:]}"
        if target.startswith("!"):
            special = target[1:].split("^", 1)[0]
            if special in ("here", "channel", "everyone"):
                return f"@{special}"
            return label or f"@{special}"
        if target.startswith("mailto:"):
            return label or target.removeprefix("mailto:")
        if label and label != target:
            return f"[{label}]({target})"
        return target

    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>[ \t]?", "", text)
    cleaned = _ANGLE.sub(replace, text)
    return cleaned.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()


@dataclass(frozen=True, slots=True)
class AssistantThread:
    channel_id: str
    thread_ts: str
    user_id: str


def assistant_thread_started(body: JSON) -> AssistantThread | None:
    """The assistant-pane thread an `assistant_thread_started` event opened."""
    event = body.get("event") or {}
    thread = event.get("assistant_thread") if event.get("type") == "assistant_thread_started" else None
    if not isinstance(thread, dict) or not thread.get("channel_id") or not thread.get("thread_ts"):
        return None
    return AssistantThread(str(thread["channel_id"]), str(thread["thread_ts"]), str(thread.get("user_id") or ""))


ENTITY_WORDS = {"slack#/types/channel_id": "channel", "slack#/types/canvas_id": "canvas",
                "slack#/types/list_id": "list"}


def viewing_context(context: JSON) -> str:
    """What an `app_context` (or app_context_changed `context`) says the user is viewing, in words for
    the model: "The user is viewing Slack channel <#C0123>." Entities come most relevant first
    (https://docs.slack.dev/reference/events/app_context_changed); unknown kinds are skipped, and
    only ids that look like Slack ids are passed on."""
    seen: list[str] = []
    entities = context.get("entities")
    for entity in entities if isinstance(entities, list) else ():
        if not isinstance(entity, dict):
            continue
        kind, value = entity.get("type"), entity.get("value")
        if kind == "slack#/types/message_context" and isinstance(value, dict):
            channel, ts = value.get("channel_id"), value.get("message_ts")
            if _slack_id(channel) and isinstance(ts, str) and _TS.fullmatch(ts):
                seen.append(f"a message ({ts}) in Slack conversation <#{channel}>")
        elif kind in ENTITY_WORDS and _slack_id(value):
            seen.append(f"Slack {ENTITY_WORDS[kind]} <#{value}>" if kind.endswith("channel_id")
                        else f"Slack {ENTITY_WORDS[kind]} {value}")
    return f"The user is viewing {'; '.join(seen[:3])}." if seen else ""


_ID = re.compile(r"[A-Z][A-Z0-9]{2,30}")
_TS = re.compile(r"\d{9,12}\.\d{6}")


def _slack_id(value: object) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None

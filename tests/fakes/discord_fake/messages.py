"""Messages: creating and editing them as Discord does (replies, mentions), and their gateway form."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from . import payloads
from .model import DEFAULT_MESSAGE, JSON, REPLY, Channel, User, World, iso_now

USER_MENTION = re.compile(r"<@!?(\d+)>")


@dataclass
class MessageBody:
    """What a sender controls in a message; the fake fills in the rest."""

    content: str = ""
    embeds: list[JSON] = field(default_factory=list)
    attachments: list[JSON] = field(default_factory=list)
    allowed_mentions: JSON | None = None
    message_reference: JSON | None = None
    flags: int = 0
    nonce: str | int | None = None
    tts: bool = False
    components: list[JSON] = field(default_factory=list)
    mention_ids: list[int] | None = None  # explicit mentions instead of parsing the content


class UnknownReference(LookupError):
    """A reply points at a message the channel does not hold."""


def create(
    world: World,
    channel: Channel,
    author: User,
    body: MessageBody,
    *,
    message_type: int | None = None,
    **extra: Any,
) -> JSON:
    """Stores a new message as Discord's REST API returns it (no guild_id/member: see gateway_view)."""
    referenced = _resolve_reference(world, channel, body.message_reference)
    message_id = world.snowflakes.next()
    message: JSON = {
        "id": str(message_id),
        "channel_id": str(channel.id),
        "author": author.to_payload(),
        "content": body.content,
        "timestamp": iso_now(),
        "edited_timestamp": None,
        "tts": body.tts,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": body.attachments,
        "embeds": body.embeds,
        "components": body.components,
        "pinned": False,
        "type": message_type if message_type is not None else (REPLY if referenced else DEFAULT_MESSAGE),
        "flags": body.flags,
    }
    if body.nonce is not None:
        message["nonce"] = body.nonce
    if referenced is not None:
        message["message_reference"] = {
            "type": 0,
            "message_id": referenced["id"],
            "channel_id": referenced["channel_id"],
            **({"guild_id": str(channel.guild_id)} if channel.guild_id else {}),
        }
        message["referenced_message"] = referenced
    message.update(extra)
    _apply_mentions(world, message, body, referenced)
    world.messages[message_id] = message
    channel.last_message_id = message_id
    channel.message_count += 1
    return message


def edit(world: World, message: JSON, body: JSON, new_files: list[JSON]) -> JSON:
    """Applies a PATCH body: only the fields present change, as on Discord."""
    if "content" in body:
        message["content"] = body["content"] or ""
        edited = MessageBody(content=message["content"], allowed_mentions=body.get("allowed_mentions"))
        _apply_mentions(world, message, edited, None)
    if "embeds" in body:
        message["embeds"] = body["embeds"] or []
    if "components" in body:
        message["components"] = body["components"] or []
    if "flags" in body and body["flags"] is not None:
        message["flags"] = body["flags"]
    if "attachments" in body:
        kept = {str(a.get("id")) for a in body["attachments"] or []}
        message["attachments"] = [a for a in message["attachments"] if a["id"] in kept]
    message["attachments"] = message["attachments"] + new_files
    message["edited_timestamp"] = iso_now()
    return message


def gateway_view(world: World, message: JSON) -> JSON:
    """The MESSAGE_CREATE/UPDATE form: adds guild_id and member objects in guild channels."""
    channel = world.channels.get(int(message["channel_id"]))
    if channel is None or channel.guild_id is None:
        return dict(message)
    guild = world.guilds[channel.guild_id]
    view = dict(message, guild_id=str(guild.id))
    author_id = int(message["author"]["id"])
    if author_id in world.users and author_id in guild.member_ids:
        view["member"] = payloads.member_object(guild, world.users[author_id], with_user=False)
    view["mentions"] = [
        dict(m, member=payloads.member_object(guild, world.users[int(m["id"])], with_user=False))
        if int(m["id"]) in guild.member_ids
        else m
        for m in message["mentions"]
    ]
    return view


def _resolve_reference(world: World, channel: Channel, reference: JSON | None) -> JSON | None:
    if not reference or reference.get("message_id") is None:
        return None
    target = world.messages.get(int(reference["message_id"]))
    if target is not None and int(target["channel_id"]) in (channel.id, channel.parent_id):
        return {k: v for k, v in target.items() if k != "referenced_message"}
    if reference.get("fail_if_not_exists", True):
        raise UnknownReference(reference["message_id"])
    return None


def _apply_mentions(world: World, message: JSON, body: MessageBody, referenced: JSON | None) -> None:
    allowed = body.allowed_mentions
    if body.mention_ids is not None:
        ids = list(body.mention_ids)
    else:
        ids = [int(m) for m in USER_MENTION.findall(body.content)]
        if allowed is not None and "users" not in allowed.get("parse", []):
            permitted = {int(u) for u in allowed.get("users", [])}
            ids = [i for i in ids if i in permitted]
    # A reply pings its target unless allowed_mentions says otherwise.
    if referenced is not None and (allowed is None or allowed.get("replied_user", False)):
        ids.append(int(referenced["author"]["id"]))
    unique = list(dict.fromkeys(i for i in ids if i in world.users))
    message["mentions"] = [world.users[i].to_payload() for i in unique]
    everyone_allowed = allowed is None or "everyone" in allowed.get("parse", [])
    content = message["content"]
    message["mention_everyone"] = everyone_allowed and ("@everyone" in content or "@here" in content)

"""The fake Discord's world: the users, guilds, channels, messages and files it holds, and their ids."""

from __future__ import annotations

import mimetypes
import struct
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

JSON = dict[str, Any]

DISCORD_EPOCH_MS = 1420070400000

# Channel types (https://discord.com/developers/docs/resources/channel#channel-object-channel-types).
GUILD_TEXT = 0
DM = 1
PUBLIC_THREAD = 11
PRIVATE_THREAD = 12
THREAD_TYPES = (PUBLIC_THREAD, PRIVATE_THREAD)

# Message types and flags used by the fake.
DEFAULT_MESSAGE = 0
REPLY = 19
CHAT_INPUT_COMMAND = 20
HAS_THREAD = 1 << 5
EPHEMERAL = 1 << 6
LOADING = 1 << 7

# What a chat bot needs in its guild: add reactions, view, send, embed, attach, read history,
# use application commands, create public threads, send in threads.
DEFAULT_EVERYONE_PERMISSIONS = sum(1 << bit for bit in (6, 10, 11, 14, 15, 16, 31, 35, 38))


def iso_now() -> str:
    return datetime.now(UTC).isoformat()


def shard_for(guild_id: int | None, shard_count: int) -> int:
    # DMs always go to shard 0; guilds by Discord's documented formula.
    return 0 if guild_id is None else (guild_id >> 22) % shard_count


class Snowflakes:
    """Issues strictly increasing snowflakes whose timestamp part is the current time, as Discord's do."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last = max(candidate, self._last + 1)
        return self._last


@dataclass
class User:
    id: int
    username: str
    bot: bool = False
    global_name: str | None = None

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"

    def to_payload(self) -> JSON:
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "bot": self.bot,
            "system": False,
            "public_flags": 0,
        }


@dataclass
class Role:
    id: int
    name: str
    permissions: int = DEFAULT_EVERYONE_PERMISSIONS
    position: int = 0

    def to_payload(self) -> JSON:
        return {
            "id": str(self.id),
            "name": self.name,
            "color": 0,
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }


@dataclass
class Channel:
    id: int
    type: int
    name: str | None = None
    guild_id: int | None = None
    parent_id: int | None = None
    owner_id: int | None = None
    recipient_ids: list[int] = field(default_factory=list)
    position: int = 0
    auto_archive_duration: int = 1440
    created_at: str = field(default_factory=iso_now)
    last_message_id: int | None = None
    message_count: int = 0

    @property
    def is_thread(self) -> bool:
        return self.type in THREAD_TYPES


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    roles: list[Role]
    member_ids: list[int] = field(default_factory=list)
    channel_ids: list[int] = field(default_factory=list)
    joined_at: str = field(default_factory=iso_now)


@dataclass
class StoredFile:
    id: int
    filename: str
    content_type: str
    data: bytes

    def to_payload(self, base_url: str) -> JSON:
        payload: JSON = {
            "id": str(self.id),
            "filename": self.filename,
            "size": len(self.data),
            "url": f"{base_url}/attachments/{self.id}/{self.filename}",
            "proxy_url": f"{base_url}/media/attachments/{self.id}/{self.filename}",
            "content_type": self.content_type,
        }
        size = png_size(self.data)
        if size is not None:
            payload["width"], payload["height"] = size
        return payload


def sniff_content_type(filename: str, data: bytes, declared: str | None) -> str:
    # Discord reports a detected type, not what the uploader declared (discord.py always says octet-stream).
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if declared and declared != "application/octet-stream":
        return declared
    guessed, _ = mimetypes.guess_type(filename)
    return guessed or "application/octet-stream"


def png_size(data: bytes) -> tuple[int, int] | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    return None


class World:
    """Everything the fake knows: users, guilds, channels, messages (as Discord JSON) and stored files."""

    def __init__(self, *, base_url: str, bot_name: str = "seedbot") -> None:
        self.base_url = base_url
        self.snowflakes = Snowflakes()
        self.users: dict[int, User] = {}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.messages: dict[int, JSON] = {}
        self.files: dict[int, StoredFile] = {}
        self.bot = self.add_user(bot_name, bot=True)
        self.application_id = self.snowflakes.next()
        self.application_owner = self.bot

    # -- building the world ------------------------------------------------------------------------

    def add_user(self, username: str, *, bot: bool = False, user_id: int | None = None) -> User:
        user = User(id=user_id or self.snowflakes.next(), username=username, bot=bot)
        self.users[user.id] = user
        return user

    def add_guild(self, name: str, owner: User, *, guild_id: int | None = None) -> Guild:
        gid = guild_id or self.snowflakes.next()
        guild = Guild(id=gid, name=name, owner_id=owner.id, roles=[Role(id=gid, name="@everyone")])
        self.guilds[gid] = guild
        self.add_member(guild, owner)
        self.add_member(guild, self.bot)
        return guild

    def add_member(self, guild: Guild, user: User) -> None:
        if user.id not in guild.member_ids:
            guild.member_ids.append(user.id)

    def add_text_channel(self, guild: Guild, name: str) -> Channel:
        channel = Channel(
            id=self.snowflakes.next(),
            type=GUILD_TEXT,
            name=name,
            guild_id=guild.id,
            position=len(guild.channel_ids),
        )
        self.channels[channel.id] = channel
        guild.channel_ids.append(channel.id)
        return channel

    def add_thread(
        self,
        parent: Channel,
        name: str,
        owner: User,
        *,
        thread_id: int | None = None,
        private: bool = False,
        auto_archive_duration: int = 1440,
    ) -> Channel:
        thread = Channel(
            id=thread_id or self.snowflakes.next(),
            type=PRIVATE_THREAD if private else PUBLIC_THREAD,
            name=name,
            guild_id=parent.guild_id,
            parent_id=parent.id,
            owner_id=owner.id,
            auto_archive_duration=auto_archive_duration,
        )
        self.channels[thread.id] = thread
        return thread

    def open_dm(self, user: User) -> Channel:
        for channel in self.channels.values():
            if channel.type == DM and channel.recipient_ids == [user.id]:
                return channel
        channel = Channel(id=self.snowflakes.next(), type=DM, recipient_ids=[user.id])
        self.channels[channel.id] = channel
        return channel

    def store_file(self, filename: str, data: bytes, content_type: str | None = None) -> JSON:
        stored = StoredFile(
            id=self.snowflakes.next(),
            filename=filename,
            content_type=sniff_content_type(filename, data, content_type),
            data=data,
        )
        self.files[stored.id] = stored
        return stored.to_payload(self.base_url)

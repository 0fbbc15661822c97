"""Discord's JSON shapes for the fake's channels, members and guilds."""

from __future__ import annotations

from .model import DM, JSON, Channel, Guild, User, World


def member_object(guild: Guild, user: User, *, with_user: bool = True) -> JSON:
    payload: JSON = {
        "nick": None,
        "avatar": None,
        "roles": [],
        "joined_at": guild.joined_at,
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
    }
    if with_user:
        payload["user"] = user.to_payload()
    return payload


def channel_object(world: World, channel: Channel) -> JSON:
    if channel.type == DM:
        return {
            "id": str(channel.id),
            "type": DM,
            "last_message_id": _opt_id(channel.last_message_id),
            "recipients": [world.users[uid].to_payload() for uid in channel.recipient_ids],
            "flags": 0,
        }
    payload: JSON = {
        "id": str(channel.id),
        "type": channel.type,
        "guild_id": str(channel.guild_id),
        "name": channel.name,
        "last_message_id": _opt_id(channel.last_message_id),
        "rate_limit_per_user": 0,
        "flags": 0,
        "parent_id": _opt_id(channel.parent_id),
    }
    if channel.is_thread:
        payload.update(
            owner_id=str(channel.owner_id),
            message_count=channel.message_count,
            member_count=1,
            total_message_sent=channel.message_count,
            thread_metadata={
                "archived": False,
                "auto_archive_duration": channel.auto_archive_duration,
                "archive_timestamp": channel.created_at,
                "locked": False,
                "create_timestamp": channel.created_at,
            },
        )
    else:
        payload.update(
            position=channel.position,
            permission_overwrites=[],
            nsfw=False,
            topic=None,
            default_auto_archive_duration=1440,
        )
    return payload


def thread_member_object(thread: Channel, user: User) -> JSON:
    return {
        "id": str(thread.id),
        "user_id": str(user.id),
        "join_timestamp": thread.created_at,
        "flags": 0,
    }


def guild_create(world: World, guild: Guild, *, all_members: bool) -> JSON:
    # Without the GUILD_MEMBERS intent Discord only sends the bot's own member.
    member_ids = guild.member_ids if all_members else [world.bot.id]
    channels = [world.channels[cid] for cid in guild.channel_ids]
    threads = [c for c in world.channels.values() if c.guild_id == guild.id and c.is_thread]
    return {
        "id": str(guild.id),
        "name": guild.name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": str(guild.owner_id),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
        "premium_tier": 0,
        "premium_progress_bar_enabled": False,
        "preferred_locale": "en-US",
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "safety_alerts_channel_id": None,
        "vanity_url_code": None,
        "application_id": None,
        "features": [],
        "roles": [role.to_payload() for role in guild.roles],
        "emojis": [],
        "stickers": [],
        "joined_at": guild.joined_at,
        "large": False,
        "lazy": True,
        "unavailable": False,
        "member_count": len(guild.member_ids),
        "members": [member_object(guild, world.users[uid]) for uid in member_ids],
        "channels": [channel_object(world, c) for c in channels],
        "threads": [channel_object(world, t) for t in threads],
        "voice_states": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
    }


def _opt_id(value: int | None) -> str | None:
    return None if value is None else str(value)

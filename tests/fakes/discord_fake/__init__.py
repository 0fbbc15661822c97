"""A fake Discord (REST API + gateway) that the unmodified discord.py talks to over 127.0.0.1.

async with running_fake_discord(heartbeat_interval_ms=500) as fake:
    client = discord.Client(intents=...)
    ... await client.start(fake.token) in a task ...
    await fake.dispatch_message_create(fake.channel, fake.alice, f"{fake.bot.mention} hi")
"""

from .model import JSON, Channel, Guild, User
from .opcodes import Close, Intent
from .records import GatewayConnection, InteractionCallback, MessageEvent, Records, RestCall, TypingCall
from .server import FakeDiscord, point_discord_py_at, running_fake_discord

__all__ = [
    "JSON",
    "Channel",
    "Close",
    "FakeDiscord",
    "GatewayConnection",
    "Guild",
    "Intent",
    "InteractionCallback",
    "MessageEvent",
    "Records",
    "RestCall",
    "TypingCall",
    "User",
    "point_discord_py_at",
    "running_fake_discord",
]

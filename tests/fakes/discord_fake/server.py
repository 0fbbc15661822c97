"""FakeDiscord: one aiohttp server on 127.0.0.1 serving Discord's REST API, gateway and attachment files."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Any, Self

from aiohttp import web

from . import messages, payloads
from .backend import Backend
from .gateway import Gateway
from .interactions import Interactions
from .limits import RateLimits
from .messages import MessageBody
from .model import JSON, Channel, Guild, User, World
from .opcodes import Close, Intent, Op
from .records import Records
from .refusals import Refusals
from .rest_app import AppRoutes
from .rest_channels import ChannelRoutes
from .rest_common import FORBIDDEN_MESSAGES, MISSING_PERMISSIONS, ApiError
from .rest_interactions import InteractionRoutes
from .routing import API_PREFIX, Routes, api_middleware


class FakeDiscord:
    """A Discord for tests: start it, point discord.py at it (point_discord_py_at), drive it, assert on it.

    The default world: a bot user, a human "alice" who owns the application and the guild
    "Seed Test Guild", and its text channel "general". Build more with add_user/add_guild/...
    before a client connects; guilds added later are not announced over the gateway.
    """

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        heartbeat_interval_ms: int = 41250,
        enabled_privileged_intents: int = Intent.PRIVILEGED,
        recommended_shards: int = 1,
        bucket_limit: int = 50,
        bucket_window: float = 1.0,
        interaction_ack_deadline: float = 3.0,
        interaction_token_lifetime: float = 15 * 60,
    ) -> None:
        self.token = token
        self.records = Records()
        self.world = World(base_url="")
        self.alice = self.world.add_user("alice")
        self.world.application_owner = self.alice
        self.guild = self.world.add_guild("Seed Test Guild", self.alice)
        self.channel = self.world.add_text_channel(self.guild, "general")
        self.limits = RateLimits(limit=bucket_limit, window=bucket_window)
        self.refusals = Refusals()
        self.gateway = Gateway(
            self.world,
            self.records,
            token=token,
            heartbeat_interval_ms=heartbeat_interval_ms,
            enabled_privileged_intents=enabled_privileged_intents,
            resume_url=lambda: self.resume_gateway_url,
        )
        self.interactions = Interactions(
            self.world, ack_deadline=interaction_ack_deadline, token_lifetime=interaction_token_lifetime
        )
        self._backend = Backend(
            token, self.world, self.gateway, self.records, self.interactions, recommended_shards
        )
        self._runner: web.AppRunner | None = None
        self._port = 0

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> Self:
        app = web.Application(
            middlewares=[api_middleware(self.token, self.limits, self.records, self.refusals)],
            client_max_size=64 * 1024 * 1024,
        )
        routes = Routes()
        AppRoutes(self._backend, lambda: self.gateway_url).register(routes)
        ChannelRoutes(self._backend).register(routes)
        InteractionRoutes(self._backend).register(routes)
        routes.add("GET", "/gateway", self.gateway.handle, api=False)
        routes.add("GET", "/gateway-resume", self.gateway.handle, api=False)
        routes.install(app.router)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        self.world.base_url = self.base_url
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self.gateway.close_all()
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_base(self) -> str:
        """What discord.http.Route.BASE must be."""
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        """What discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY must be (also served by GET /gateway/bot)."""
        return f"ws://127.0.0.1:{self._port}/gateway"

    @property
    def resume_gateway_url(self) -> str:
        # A different path from gateway_url so tests can tell that a RESUME went where READY said.
        return f"ws://127.0.0.1:{self._port}/gateway-resume"

    # -- the world ---------------------------------------------------------------------------------

    @property
    def bot(self) -> User:
        return self.world.bot

    @property
    def application_id(self) -> int:
        return self.world.application_id

    def add_user(self, username: str, *, bot: bool = False, guild: Guild | None = None) -> User:
        """A new user, made a member of `guild` (default: the default guild)."""
        user = self.world.add_user(username, bot=bot)
        self.world.add_member(guild or self.guild, user)
        return user

    def add_guild(self, name: str, *, owner: User | None = None, guild_id: int | None = None) -> Guild:
        """A guild with the bot and the owner as members and a text channel "general" (see channels_of)."""
        guild = self.world.add_guild(name, owner or self.alice, guild_id=guild_id)
        self.world.add_text_channel(guild, "general")
        return guild

    def add_text_channel(self, guild: Guild, name: str) -> Channel:
        return self.world.add_text_channel(guild, name)

    def channels_of(self, guild: Guild) -> list[Channel]:
        return [self.world.channels[cid] for cid in guild.channel_ids]

    def open_dm(self, user: User) -> Channel:
        """The DM channel between the bot and `user` (type 1), created on first use."""
        return self.world.open_dm(user)

    def add_attachment(self, filename: str, data: bytes, content_type: str | None = None) -> JSON:
        """Stores a file; returns an attachment object whose url (and proxy_url) this server serves."""
        return self.world.store_file(filename, data, content_type)

    def file_bytes(self, attachment: JSON) -> bytes:
        """The bytes behind an attachment object, e.g. one the bot uploaded."""
        return self.world.files[int(attachment["id"])].data

    def message(self, message_id: int | str) -> JSON | None:
        """The stored message as it is now (after edits), or None if unknown or deleted."""
        return self.world.messages.get(int(message_id))

    def messages_in(self, channel: Channel | int, *, author: User | None = None) -> list[JSON]:
        channel_id = channel.id if isinstance(channel, Channel) else channel
        found = [m for m in self.world.messages.values() if int(m["channel_id"]) == channel_id]
        return [m for m in found if author is None or int(m["author"]["id"]) == author.id]

    def thread(self, thread_id: int | str) -> Channel | None:
        channel = self.world.channels.get(int(thread_id))
        return channel if channel is not None and channel.is_thread else None

    def commands(self, guild: Guild | None = None) -> list[JSON]:
        """Application commands as last synced: global ones, or those of `guild`."""
        return self.interactions.commands.list(guild.id if guild else None)

    # -- gateway events ----------------------------------------------------------------------------

    async def dispatch_message_create(
        self,
        channel: Channel | int,
        author: User | int,
        content: str,
        *,
        mentions: Sequence[User | int] | None = None,
        attachments: Sequence[JSON] = (),
        embeds: Sequence[JSON] = (),
        message_reference: JSON | int | None = None,
    ) -> JSON:
        """A user posts a message: it is stored, and MESSAGE_CREATE goes to the sessions that should see it.

        mentions=None derives mentions from <@id> in the content, as Discord does. message_reference may be
        a message id in the same channel. Returns the message as the gateway sent it (with guild_id, member).
        """
        target = self._channel(channel)
        reference: JSON | None
        if isinstance(message_reference, int):
            reference = {"message_id": str(message_reference), "channel_id": str(target.id)}
        else:
            reference = message_reference
        body = MessageBody(
            content=content,
            embeds=list(embeds),
            attachments=list(attachments),
            message_reference=reference,
            mention_ids=None if mentions is None else [m.id if isinstance(m, User) else m for m in mentions],
        )
        message = messages.create(self.world, target, self._user(author), body)
        await self.gateway.dispatch_message("MESSAGE_CREATE", message)
        return messages.gateway_view(self.world, message)

    async def dispatch_interaction_create(
        self,
        command_name: str,
        *,
        user: User | None = None,
        channel: Channel | None = None,
        options: Mapping[str, Any] | list[JSON] | None = None,
    ) -> JSON:
        """A user runs /command_name (it must have been synced). Options: {"name": value} for
        string/integer/boolean/number options, or a list of raw option dicts. Returns the event's data.
        """
        target = channel or self.channel
        _, payload = self.interactions.application_command(command_name, user or self.alice, target, options)
        await self.gateway.dispatch("INTERACTION_CREATE", payload, guild_id=target.guild_id)
        return payload

    async def click(self, message_id: int | str, custom_id: str, *, user: User | None = None) -> JSON:
        """A user clicks the button `custom_id` on a stored message: INTERACTION_CREATE (type 3,
        MESSAGE_COMPONENT) goes to the bot. Raises LookupError if the message has no such button."""
        message = self.world.messages[int(message_id)]
        _, payload = self.interactions.component(message, custom_id, user or self.alice)
        channel = self.world.channels[int(message["channel_id"])]
        await self.gateway.dispatch("INTERACTION_CREATE", payload, guild_id=channel.guild_id)
        return payload

    async def dispatch_thread_create(self, parent: Channel, name: str, owner: User) -> Channel:
        """A user opens a thread (without a starter message) in `parent`."""
        thread = self.world.add_thread(parent, name, owner, private=False)
        payload = dict(payloads.channel_object(self.world, thread), newly_created=True)
        await self.gateway.dispatch("THREAD_CREATE", payload, guild_id=thread.guild_id, intent=Intent.GUILDS)
        return thread

    async def dispatch(self, event: str, data: JSON, *, guild_id: int | None = None) -> int:
        """Any raw event; returns how many sessions got it."""
        return await self.gateway.dispatch(event, data, guild_id=guild_id)

    # -- connection faults -------------------------------------------------------------------------

    async def force_disconnect(
        self, close_code: int = Close.UNKNOWN_ERROR, *, replay_last: int = 0, shard_id: int | None = None
    ) -> None:
        """Closes the gateway socket(s) with close_code; 4000 makes discord.py RESUME, 4014 ends the client
        with PrivilegedIntentsRequired. On the RESUME, the fake replays what the client missed, and first
        re-sends the last `replay_last` events it had already received, as Discord sometimes does.
        """
        await self.gateway.disconnect(
            close_code, replay_last=replay_last, shard_id=shard_id, reason="Fake disconnect"
        )

    async def request_reconnect(self, *, shard_id: int | None = None) -> None:
        """Sends op 7 RECONNECT: discord.py closes and RESUMEs."""
        await self.gateway.send_op(Op.RECONNECT, None, shard_id=shard_id)

    async def invalidate_session(self, *, resumable: bool = False, shard_id: int | None = None) -> None:
        """Sends op 9 INVALID_SESSION; not resumable makes discord.py IDENTIFY afresh."""
        await self.gateway.invalidate(resumable=resumable, shard_id=shard_id)

    def hold_gateway(self) -> AbstractAsyncContextManager[None]:
        """`async with fake.hold_gateway():` new gateway connections wait for HELLO until the block ends."""
        return self.gateway.held()

    def inject_rate_limit(
        self,
        method: str | None = None,
        path_prefix: str = "/",
        *,
        times: int = 1,
        retry_after: float = 0.5,
        global_: bool = False,
        scope: str = "user",
    ) -> None:
        """The next `times` API calls matching method and path prefix (below /api/v10) get a 429."""
        self.limits.inject(
            method, path_prefix, times=times, retry_after=retry_after, is_global=global_, scope=scope
        )

    def inject_error(
        self,
        method: str | None = None,
        path_prefix: str = "/",
        *,
        status: int,
        code: int,
        message: str,
        times: int | None = None,
    ) -> None:
        """The next `times` API calls (every one if None) matching method and path prefix (below /api/v10)
        are answered `status` with Discord's JSON error body {"message": message, "code": code} instead of
        being served (https://discord.com/developers/docs/topics/opcodes-and-status-codes#json)."""
        self.refusals.add(method, path_prefix, ApiError(status, code, message), times=times)

    def refuse_posts(self, channel: Channel | int, *, code: int = MISSING_PERMISSIONS) -> None:
        """The bot may not post in `channel` from now on: every POST under it (messages, threads from its
        messages, typing) is answered 403 {"message": "Missing Permissions", "code": 50013}, or with
        code=MISSING_ACCESS 403 {"message": "Missing Access", "code": 50001}, as Discord answers them."""
        channel_id = channel.id if isinstance(channel, Channel) else channel
        self.inject_error("POST", f"/channels/{channel_id}/", status=403, code=code, message=FORBIDDEN_MESSAGES[code])

    # -- observations ------------------------------------------------------------------------------

    @property
    def identify_count(self) -> int:
        return len(self.records.identifies)

    @property
    def resume_count(self) -> int:
        return len(self.records.resumes)

    async def wait_until(self, predicate: Callable[[], bool], *, seconds: float = 5.0) -> None:
        """Polls predicate until it holds; raises TimeoutError after `seconds`."""
        deadline = time.monotonic() + seconds
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {seconds:.1f}s")
            await asyncio.sleep(0.01)

    def _channel(self, channel: Channel | int) -> Channel:
        return channel if isinstance(channel, Channel) else self.world.channels[channel]

    def _user(self, user: User | int) -> User:
        return user if isinstance(user, User) else self.world.users[user]


@contextmanager
def point_discord_py_at(fake: FakeDiscord) -> Iterator[None]:
    """Points the installed discord.py at `fake` for the duration, then restores Discord's URLs.

    Two class attributes decide where discord.py goes: Route.BASE for every REST call (interaction
    webhooks included) and DiscordWebSocket.DEFAULT_GATEWAY for a Client's first connection (an
    AutoShardedClient without shard_count asks GET /gateway/bot instead). Both are process-wide.
    """
    import yarl
    from discord.gateway import DiscordWebSocket
    from discord.http import Route

    saved = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = fake.api_base
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        yield
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved


@asynccontextmanager
async def running_fake_discord(**options: Any) -> AsyncIterator[FakeDiscord]:
    """Starts a FakeDiscord(**options), points discord.py at it, and undoes both afterwards."""
    async with FakeDiscord(**options) as fake:
        with point_discord_py_at(fake):
            yield fake

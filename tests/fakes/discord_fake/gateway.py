"""The fake gateway: HELLO/IDENTIFY/READY, heartbeats, dispatches with sequence numbers, RESUME and replay."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
import zlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from . import messages, payloads
from .model import JSON, World, shard_for
from .opcodes import Close, Intent, Op
from .records import GatewayConnection, Records

API_VERSION = "10"
HISTORY = 1000


@dataclass(frozen=True)
class Frame:
    seq: int
    event: str
    data: JSON

    def to_payload(self) -> JSON:
        return {"op": Op.DISPATCH, "s": self.seq, "t": self.event, "d": self.data}


class Connection:
    """One WebSocket; serialises sends because a zlib stream must be written in order."""

    def __init__(self, ws: web.WebSocketResponse, compression: str | None) -> None:
        self.ws = ws
        self.session: Session | None = None
        self.closed_by_server = False
        self._zlib = zlib.compressobj() if compression == "zlib-stream" else None
        self._lock = asyncio.Lock()

    async def send(self, payload: JSON) -> None:
        text = json.dumps(payload, separators=(",", ":"))
        async with self._lock:
            if self.ws.closed:
                return
            with contextlib.suppress(ConnectionResetError):
                if self._zlib is None:
                    await self.ws.send_str(text)
                else:
                    data = self._zlib.compress(text.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
                    await self.ws.send_bytes(data)

    async def close(self, code: int, reason: str = "") -> None:
        self.closed_by_server = True
        await self.ws.close(code=code, message=reason.encode())


@dataclass
class Session:
    id: str
    shard_id: int
    shard_count: int
    intents: int
    connection: Connection | None = None
    seq: int = 0
    history: deque[Frame] = field(default_factory=lambda: deque(maxlen=HISTORY))
    replay_on_resume: int = 0

    async def push(self, event: str, data: JSON) -> Frame:
        # Frames are numbered and kept even while disconnected, so a RESUME can replay them.
        self.seq += 1
        frame = Frame(self.seq, event, data)
        self.history.append(frame)
        if self.connection is not None:
            await self.connection.send(frame.to_payload())
        return frame


SessionView = Callable[[Session], JSON]


class Gateway:
    def __init__(
        self,
        world: World,
        records: Records,
        *,
        token: str,
        heartbeat_interval_ms: int,
        enabled_privileged_intents: int,
        resume_url: Callable[[], str],
    ) -> None:
        self.world = world
        self.records = records
        self.token = token
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.enabled_privileged_intents = enabled_privileged_intents
        self.ack_heartbeats = True
        self.sessions: dict[str, Session] = {}
        self._resume_url = resume_url
        self._live: set[Connection] = set()
        self._gate = asyncio.Event()
        self._gate.set()

    # -- connection lifecycle ----------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        compression = "zlib-stream" if request.query.get("compress") == "zlib-stream" else None
        self.records.connections.append(GatewayConnection(request.path, dict(request.query), compression))
        conn = Connection(ws, compression)
        self._live.add(conn)
        try:
            await self._gate.wait()
            if request.query.get("v", API_VERSION) != API_VERSION:
                await conn.close(Close.INVALID_API_VERSION, "Invalid API version.")
            elif request.query.get("encoding", "json") != "json":
                await conn.close(Close.DECODE_ERROR, "Only the json encoding is served by the fake.")
            else:
                await conn.send({"op": Op.HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
                await self._read(conn)
        finally:
            self._live.discard(conn)
            self._detach(conn)
        return ws

    async def _read(self, conn: Connection) -> None:
        async for msg in conn.ws:
            if msg.type is not WSMsgType.TEXT:
                await conn.close(Close.DECODE_ERROR, "Error while decoding payload.")
                return
            try:
                payload = json.loads(msg.data)
            except json.JSONDecodeError:
                await conn.close(Close.DECODE_ERROR, "Error while decoding payload.")
                return
            await self._on_payload(conn, payload)

    def _detach(self, conn: Connection) -> None:
        session = conn.session
        if session is None or session.connection is not conn:
            return
        session.connection = None
        # A client closing with 1000/1001 ends its session; any other close keeps it resumable.
        if not conn.closed_by_server and conn.ws.close_code in (1000, 1001):
            self.sessions.pop(session.id, None)

    async def _on_payload(self, conn: Connection, payload: JSON) -> None:
        op, data = payload.get("op"), payload.get("d")
        if op == Op.HEARTBEAT:
            self.records.heartbeats += 1
            if self.ack_heartbeats:
                await conn.send({"op": Op.HEARTBEAT_ACK})
        elif op in (Op.IDENTIFY, Op.RESUME):
            if conn.session is not None:
                await conn.close(Close.ALREADY_AUTHENTICATED, "Already authenticated.")
            elif op == Op.IDENTIFY:
                await self._identify(conn, data or {})
            else:
                await self._resume(conn, data or {})
        elif conn.session is None:
            await conn.close(Close.NOT_AUTHENTICATED, "Not authenticated.")
        elif op == Op.PRESENCE_UPDATE:
            self.records.presence_updates.append(data or {})
        elif op == Op.REQUEST_GUILD_MEMBERS:
            await self._send_members(conn.session, data or {})
        elif op != Op.VOICE_STATE_UPDATE:
            await conn.close(Close.UNKNOWN_OPCODE, "Unknown opcode.")

    # -- IDENTIFY / RESUME -------------------------------------------------------------------------

    async def _identify(self, conn: Connection, data: JSON) -> None:
        self.records.identifies.append(data)
        shard_id, shard_count = data.get("shard") or (0, 1)
        intents = data.get("intents")
        if data.get("token") != self.token:
            await conn.close(Close.AUTHENTICATION_FAILED, "Authentication failed.")
        elif not 0 <= shard_id < shard_count:
            await conn.close(Close.INVALID_SHARD, "Invalid shard.")
        elif not isinstance(intents, int) or intents < 0:
            await conn.close(Close.INVALID_INTENTS, "Invalid intent(s).")
        elif intents & Intent.PRIVILEGED & ~self.enabled_privileged_intents:
            await conn.close(Close.DISALLOWED_INTENTS, "Disallowed intent(s).")
        else:
            self._forget_detached(shard_id, shard_count)
            session = Session(uuid.uuid4().hex, shard_id, shard_count, intents)
            self.sessions[session.id] = session
            self._attach(conn, session)
            await session.push("READY", self._ready(session, announce_shard="shard" in data))
            for guild in self.world.guilds.values():
                if shard_for(guild.id, shard_count) == shard_id:
                    all_members = bool(intents & Intent.GUILD_MEMBERS)
                    await session.push(
                        "GUILD_CREATE", payloads.guild_create(self.world, guild, all_members=all_members)
                    )

    def _forget_detached(self, shard_id: int, shard_count: int) -> None:
        # A fresh IDENTIFY replaces a dropped session of its shard; connected ones (another replica) stay.
        for session in list(self.sessions.values()):
            same_shard = (session.shard_id, session.shard_count) == (shard_id, shard_count)
            if same_shard and session.connection is None:
                del self.sessions[session.id]

    def _ready(self, session: Session, *, announce_shard: bool) -> JSON:
        guilds = [
            g for g in self.world.guilds.values() if shard_for(g.id, session.shard_count) == session.shard_id
        ]
        ready: JSON = {
            "v": int(API_VERSION),
            "user": dict(self.world.bot.to_payload(), verified=True, mfa_enabled=False, flags=0),
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self._resume_url(),
            "application": {"id": str(self.world.application_id), "flags": 0},
            "geo_ordered_rtc_regions": [],
        }
        if announce_shard:
            ready["shard"] = [session.shard_id, session.shard_count]
        return ready

    async def _resume(self, conn: Connection, data: JSON) -> None:
        self.records.resumes.append(data)
        session = self.sessions.get(str(data.get("session_id")))
        seq = data.get("seq") or 0
        if data.get("token") != self.token:
            await conn.close(Close.AUTHENTICATION_FAILED, "Authentication failed.")
            return
        if session is None or (session.history and seq < session.history[0].seq - 1):
            await conn.send({"op": Op.INVALID_SESSION, "d": False})
            return
        if seq > session.seq:
            await conn.close(Close.INVALID_SEQ, "Invalid seq.")
            return
        previous = session.connection
        self._attach(conn, session)
        if previous is not None:
            await previous.close(Close.UNKNOWN_ERROR, "Session resumed elsewhere.")
        extra, session.replay_on_resume = session.replay_on_resume, 0
        # Discord never replays READY, so the "already seen" re-sends skip it.
        seen = [f for f in session.history if f.seq <= seq and f.event != "READY"]
        missed = [f for f in session.history if f.seq > seq]
        for frame in (seen[-extra:] if extra else []) + missed:
            self.records.replayed.append((frame.event, frame.seq))
            await conn.send(frame.to_payload())
        await session.push("RESUMED", {})

    @staticmethod
    def _attach(conn: Connection, session: Session) -> None:
        conn.session = session
        session.connection = conn

    async def _send_members(self, session: Session, data: JSON) -> None:
        guild = self.world.guilds.get(int(data.get("guild_id", 0)))
        if guild is None:
            return
        wanted = {int(u) for u in data.get("user_ids") or []}
        query = (data.get("query") or "").lower()
        users = [self.world.users[uid] for uid in guild.member_ids]
        if wanted:
            users = [u for u in users if u.id in wanted]
        else:
            users = [u for u in users if u.username.lower().startswith(query)]
        limit = data.get("limit") or len(users)
        chunk: JSON = {
            "guild_id": str(guild.id),
            "members": [payloads.member_object(guild, u) for u in users[:limit]],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        await session.push("GUILD_MEMBERS_CHUNK", chunk)

    # -- dispatching -------------------------------------------------------------------------------

    async def dispatch(
        self,
        event: str,
        data: JSON,
        *,
        guild_id: int | None,
        intent: int | None = None,
        view: SessionView | None = None,
    ) -> int:
        """Sends an event to each session whose shard owns guild_id (DMs: shard 0) and whose intents want it.

        Returns how many sessions got it.
        """
        reached = 0
        for session in list(self.sessions.values()):
            if shard_for(guild_id, session.shard_count) != session.shard_id:
                continue
            if intent is not None and not session.intents & intent:
                continue
            await session.push(event, view(session) if view else data)
            reached += 1
        return reached

    async def dispatch_message(self, event: str, message: JSON) -> int:
        view = messages.gateway_view(self.world, message)
        guild_id = int(view["guild_id"]) if "guild_id" in view else None
        intent = Intent.GUILD_MESSAGES if guild_id else Intent.DIRECT_MESSAGES

        def for_session(session: Session) -> JSON:
            return view if session.intents & Intent.MESSAGE_CONTENT else self._without_content(view)

        return await self.dispatch(event, view, guild_id=guild_id, intent=intent, view=for_session)

    def _without_content(self, message: JSON) -> JSON:
        # Without MESSAGE_CONTENT Discord blanks these, except in DMs, the bot's own messages, its mentions.
        bot_id = str(self.world.bot.id)
        exempt = (
            "guild_id" not in message
            or message["author"]["id"] == bot_id
            or any(m["id"] == bot_id for m in message.get("mentions", []))
        )
        if exempt:
            return message
        return dict(message, content="", embeds=[], attachments=[], components=[])

    # -- test controls -----------------------------------------------------------------------------

    def connected_sessions(self, shard_id: int | None = None) -> list[Session]:
        return [
            s for s in self.sessions.values() if s.connection is not None and shard_id in (None, s.shard_id)
        ]

    async def disconnect(
        self, close_code: int, *, replay_last: int, shard_id: int | None, reason: str
    ) -> None:
        sessions = self.connected_sessions(shard_id)
        if not sessions:
            raise RuntimeError("no connected gateway session to disconnect")
        for session in sessions:
            session.replay_on_resume = replay_last
            assert session.connection is not None
            await session.connection.close(close_code, reason)

    async def send_op(self, op: int, data: object, *, shard_id: int | None) -> None:
        for session in self.connected_sessions(shard_id):
            assert session.connection is not None
            await session.connection.send({"op": op, "d": data})

    async def invalidate(self, *, resumable: bool, shard_id: int | None) -> None:
        sessions = self.connected_sessions(shard_id)
        await self.send_op(Op.INVALID_SESSION, resumable, shard_id=shard_id)
        if not resumable:
            for session in sessions:
                self.sessions.pop(session.id, None)

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """New connections get no HELLO until the block exits, so tests can act while a client is away."""
        self._gate.clear()
        try:
            yield
        finally:
            self._gate.set()

    async def close_all(self) -> None:
        self._gate.set()
        for conn in list(self._live):
            await conn.close(1001, "Fake Discord is shutting down.")

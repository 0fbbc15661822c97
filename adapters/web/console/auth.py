"""Who may see the admin console: one-time sign-in links, session cookies and CSRF tokens.

Tokens are signed and time-stamped with itsdangerous (HMAC-SHA256 over a URL-safe payload, checked with
a maximum age); single use of a sign-in link is a unique row in `console_link_uses`. The signing key is
one random row in `console_keys`, made on first use, so `seedbot admin link` and every replica agree.
A session cookie also names a row in `console_sessions`: signing out deletes it, so a copy of the cookie
is refused from then on, by every replica and after restarts (a signature alone stays valid until it expires).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import delete, select
from sqlalchemy.orm import Session as DbSession

from bot.storage.engine import Database
from bot.storage.tables import ConsoleKey, ConsoleLinkUse, ConsoleSessionRecord, utcnow

LINK_MAX_AGE_SECONDS = 10 * 60
SESSION_MAX_AGE_SECONDS = 12 * 60 * 60
STATE_MAX_AGE_SECONDS = 10 * 60
SESSION_COOKIE = "seedbot_console"
STATE_COOKIE = "seedbot_console_state"
KEY_ROW_ID = 1


_LINK_USED = "This sign-in link was already used; each link signs in once. Run `seedbot admin link` for a new one."


class LinkRefused(Exception):
    """A sign-in link that is forged, expired, already used, or for someone who is no longer an admin.
    The message says which, for the page the browser shows."""


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A signed-in admin (`slack:U0123`), the session's CSRF token, which every form posts back, and its
    id (the key of its `console_sessions` row)."""

    admin_id: str
    csrf_token: str
    session_id: str

    def csrf_ok(self, submitted: str | None) -> bool:
        # Bytes: compare_digest refuses str with characters outside ASCII (a hostile form's token).
        return submitted is not None and hmac.compare_digest(submitted.encode(), self.csrf_token.encode())


async def signing_key(db: Database) -> str:
    """The console's signing key, creating it on first use. Two processes creating it at once both
    insert-or-ignore the same row id, then read the winner."""

    def work(session: DbSession) -> str:
        session.execute(db.insert(ConsoleKey).values(id=KEY_ROW_ID, secret=secrets.token_urlsafe(48),
                                                     created_at=utcnow()).on_conflict_do_nothing())
        return session.scalar(select(ConsoleKey.secret).where(ConsoleKey.id == KEY_ROW_ID))

    return await db.run(work)


def _signer_issued_at(timestamp: int) -> type[TimestampSigner]:
    class IssuedAt(TimestampSigner):
        def get_timestamp(self) -> int:
            return timestamp

    return IssuedAt


class ConsoleAuth:
    """Signs and checks the console's tokens with one key; `admin_ids` is SEEDBOT_ADMINS, checked again
    on every request so that removing an admin ends their sessions."""

    def __init__(self, db: Database, secret: str, admin_ids: Collection[str]) -> None:
        self._db = db
        self._secret = secret
        self._admins = admin_ids

    def _serializer(self, purpose: str, issued_at: int | None = None) -> URLSafeTimedSerializer:
        signer = TimestampSigner if issued_at is None else _signer_issued_at(issued_at)
        return URLSafeTimedSerializer(self._secret, salt=f"seedbot-console-{purpose}", signer=signer,
                                      signer_kwargs={"digest_method": hashlib.sha256})

    def is_admin(self, admin_id: str) -> bool:
        return admin_id in self._admins

    def link_token(self, admin_id: str, *, issued_at: int | None = None) -> str:
        """A one-time sign-in token for `admin_id`, valid for LINK_MAX_AGE_SECONDS from `issued_at`
        (Unix seconds, default now)."""
        return self._serializer("link", issued_at).dumps({"admin": admin_id, "nonce": secrets.token_hex(16)})

    async def check_link(self, token: str) -> str:
        """The admin a sign-in token names, if it could sign in now; nothing is marked used (a link
        preview fetching the address must not spend the link). Raises LinkRefused."""
        admin_id, nonce = self._link_fields(token)

        def used(session: DbSession) -> bool:
            return session.get(ConsoleLinkUse, nonce) is not None

        if await self._db.run(used):
            raise LinkRefused(_LINK_USED)
        return admin_id

    async def redeem_link(self, token: str) -> str:
        """The admin a sign-in token names, marking it used. Raises LinkRefused."""
        admin_id, nonce = self._link_fields(token)

        def use(session: DbSession) -> bool:
            inserted = session.scalar(self._db.insert(ConsoleLinkUse).values(
                nonce=nonce, admin_id=admin_id, used_at=utcnow(),
            ).on_conflict_do_nothing(index_elements=["nonce"]).returning(ConsoleLinkUse.nonce))
            return inserted is not None

        if not await self._db.run(use):
            raise LinkRefused(_LINK_USED)
        return admin_id

    def _link_fields(self, token: str) -> tuple[str, str]:
        """(admin id, nonce) of a well-signed, unexpired link for a current admin. Raises LinkRefused."""
        try:
            payload = self._serializer("link").loads(token, max_age=LINK_MAX_AGE_SECONDS)
        except SignatureExpired:
            raise LinkRefused("This sign-in link has expired (links last 10 minutes). "
                              "Run `seedbot admin link` for a new one.") from None
        except BadSignature:
            raise LinkRefused("This sign-in link is not valid.") from None
        admin_id, nonce = _fields(payload, "admin", "nonce")
        if admin_id is None or nonce is None:
            raise LinkRefused("This sign-in link is not valid.")
        if not self.is_admin(admin_id):
            raise LinkRefused(f"{admin_id} is not in SEEDBOT_ADMINS.")
        return admin_id, nonce

    async def start_session(self, admin_id: str, *, replacing: str | None = None) -> str:
        """Record a new session for `admin_id` and return its signed cookie value (a fresh session id and
        CSRF token). `replacing` is the session cookie the browser signed in with, if any: its session ends
        (a copy of the old cookie is refused once this browser holds the new one). The same transaction
        purges sessions past SESSION_MAX_AGE_SECONDS, so the table never holds more than the sign-ins of one
        maximum age before the latest."""
        session_id = secrets.token_urlsafe(24)
        now = utcnow()
        previous = self._session_id(replacing)

        def record(session: DbSession) -> None:
            # A purged row may end its session up to a second (or the replicas' clock skew) before the
            # cookie's own timestamp would: harmless at the end of 12 hours.
            session.execute(delete(ConsoleSessionRecord).where(ConsoleSessionRecord.expires_at < now))
            if previous is not None:
                session.execute(delete(ConsoleSessionRecord).where(ConsoleSessionRecord.id == previous))
            session.add(ConsoleSessionRecord(id=session_id, admin_id=admin_id, created_at=now,
                                             expires_at=now + timedelta(seconds=SESSION_MAX_AGE_SECONDS)))

        await self._db.run(record)
        return self._serializer("session").dumps({"admin": admin_id, "csrf": secrets.token_urlsafe(24),
                                                  "session": session_id})

    async def read_session(self, cookie: str | None) -> ConsoleSession | None:
        """The session a cookie carries, or None if it is missing, forged, older than
        SESSION_MAX_AGE_SECONDS, signed out (its row is gone), or its admin was removed from
        SEEDBOT_ADMINS. A well-signed cookie costs one primary-key read; there is no per-process cache,
        so a sign-out on one replica holds on all of them at once. Database errors propagate."""
        fields = self._cookie_fields(cookie)
        if fields is None or not self.is_admin(fields[0]):
            return None
        admin_id, csrf, session_id = fields

        def owner(session: DbSession) -> str | None:
            return session.scalar(select(ConsoleSessionRecord.admin_id).where(ConsoleSessionRecord.id == session_id))

        if await self._db.run(owner) != admin_id:
            return None
        return ConsoleSession(admin_id, csrf, session_id)

    def _session_id(self, cookie: str | None) -> str | None:
        fields = self._cookie_fields(cookie)
        return fields[2] if fields is not None else None

    def _cookie_fields(self, cookie: str | None) -> tuple[str, str, str] | None:
        """(admin, CSRF token, session id) of a well-signed session cookie younger than its maximum age."""
        if not cookie:
            return None
        try:
            payload = self._serializer("session").loads(cookie, max_age=SESSION_MAX_AGE_SECONDS)
        except BadSignature:
            return None
        # Cookies signed before sessions had ids have no "session" field: they are refused like signed-out ones.
        admin_id, csrf, session_id = _fields(payload, "admin", "csrf", "session")
        if admin_id is None or csrf is None or session_id is None:
            return None
        return admin_id, csrf, session_id

    async def end_session(self, session: ConsoleSession) -> None:
        """Sign `session` out: delete its row, so its cookie and every copy of it are refused from now
        on. The admin's other sessions (other browsers) and other admins' sessions go on."""

        def forget(db_session: DbSession) -> None:
            db_session.execute(delete(ConsoleSessionRecord).where(ConsoleSessionRecord.id == session.session_id))

        await self._db.run(forget)

    def state_cookie(self, state: str) -> str:
        """The signed cookie that ties a Sign in with Slack redirect to this browser (OAuth `state`)."""
        return self._serializer("state").dumps(state)

    def state_matches(self, cookie: str | None, state: str | None) -> bool:
        if not cookie or not state:
            return False
        try:
            expected = self._serializer("state").loads(cookie, max_age=STATE_MAX_AGE_SECONDS)
        except BadSignature:
            return False
        # compare_digest takes str only when both are ASCII (it raises TypeError otherwise): compare bytes.
        return isinstance(expected, str) and hmac.compare_digest(expected.encode(), state.encode())


def _fields(payload: object, *names: str) -> tuple[str | None, ...]:
    if not isinstance(payload, dict):
        return tuple(None for _ in names)
    return tuple(value if isinstance(value := payload.get(name), str) and value else None for name in names)

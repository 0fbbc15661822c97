"""Where an answer's messages go: a channel or thread, a thread still to be opened, or the response
to a slash command. The sink (sink.py) paces and splits; a target only sends and edits.

Model text never pings anyone: every send and edit carries AllowedMentions.none().
"""

from __future__ import annotations

import logging
from typing import Protocol, TypeGuard

import discord
from discord.utils import MISSING

log = logging.getLogger(__name__)

NO_PINGS = discord.AllowedMentions.none()
# Discord's JSON error codes: https://discord.com/developers/docs/topics/opcodes-and-status-codes#json-json-error-codes
THREAD_EXISTS = 160004  # "A thread has already been created for this message"
UNKNOWN_CHANNEL = 10003
MISSING_ACCESS = 50001
# Refusals of the channel itself, not only of a thread in it: answering in the channel instead would fail too.
CHANNEL_REFUSED = frozenset({UNKNOWN_CHANNEL, MISSING_ACCESS})
ARCHIVE_MINUTES = 1440


# Refusals as final as a 403, under other statuses (Discord's JSON error codes,
# https://discord.com/developers/docs/topics/opcodes-and-status-codes#json-json-error-codes): an interaction's
# token past its 15 minutes answers 401 Invalid Webhook Token (50027) to every call; a thread archived (and
# locked) under the answer answers 400 to every edit and post in it (50083).
_REFUSED_FOR_GOOD = frozenset({(401, 50027), (400, 50083)})


def forbidden_or_not_found(exc: BaseException) -> TypeGuard[discord.HTTPException]:
    """Whether Discord refused a call for good: HTTP 403 FORBIDDEN (Missing Access 50001, Missing Permissions
    50013, ...) or 404 NOT FOUND (Unknown Channel 10003, Unknown Message 10008, Unknown Webhook 10015, ...), as
    https://discord.com/developers/docs/topics/opcodes-and-status-codes#http-http-response-codes lists them, or
    one of `_REFUSED_FOR_GOOD`. Not 429 or 5xx: discord.py waits and retries those itself, and one that outlasts
    its retries says nothing about the channel."""
    return isinstance(exc, discord.Forbidden | discord.NotFound) or (
        isinstance(exc, discord.HTTPException) and (exc.status, exc.code) in _REFUSED_FOR_GOOD)


class Posted(Protocol):
    """A message we sent and may edit, in the channel (or thread) `channel_id`."""

    id: int
    channel_id: int

    async def edit(self, content: str, *, view: discord.ui.View | None = MISSING) -> None:
        """Replace the text; a `view` replaces the buttons (None removes them, MISSING keeps them)."""

    async def remove_components(self) -> None:
        """Remove the message's buttons and nothing else: one PATCH with `components: []`."""


class Target(Protocol):
    wants_typing: bool

    @property
    def channel_id(self) -> int:
        """The channel (or thread) the answer is posted in, for the log."""

    async def open(self) -> None:
        """Get ready to send (open a thread); idempotent. Raises discord.HTTPException only when Discord
        refuses the channel itself (CHANNEL_REFUSED): nowhere in it could take the answer."""

    async def typing(self) -> None: ...

    async def send(self, content: str, *, view: discord.ui.View | None = None) -> Posted: ...


class _Message:
    """A sent discord.Message, WebhookMessage or InteractionMessage: all edit the same way."""

    def __init__(self, message: discord.Message) -> None:
        self._message = message
        self.id = message.id
        self.channel_id = message.channel.id

    async def edit(self, content: str, *, view: discord.ui.View | None = MISSING) -> None:
        await self._message.edit(content=content, allowed_mentions=NO_PINGS, view=view)

    async def remove_components(self) -> None:
        await self._message.edit(view=None)


class ChannelTarget:
    """A channel, thread or DM; optionally every message a reply to `reply_to`."""

    wants_typing = True

    def __init__(self, channel: discord.abc.Messageable, *, reply_to: discord.Message | None = None) -> None:
        self.channel = channel
        self.reply_to = reply_to

    @property
    def channel_id(self) -> int:
        return self.channel.id

    async def open(self) -> None:
        return None

    async def typing(self) -> None:
        await self.channel.typing()

    async def send(self, content: str, *, view: discord.ui.View | None = None) -> Posted:
        reference = self.reply_to.to_reference(fail_if_not_exists=False) if self.reply_to else None
        sent = await self.channel.send(content, allowed_mentions=NO_PINGS, reference=reference,  # type: ignore[arg-type]
                                       view=view or MISSING)
        return _Message(sent)


class NewThreadTarget(ChannelTarget):
    """A thread to open from the user's message on first use (so a replayed duplicate opens none).
    If Discord will not open it (no permission, a channel type without threads), the answer goes to
    the channel as a reply instead; the conversation key is the same either way (the message id).
    If Discord refuses the channel itself (Missing Access, Unknown Channel), `open` raises that error."""

    def __init__(self, message: discord.Message, name: str, client: discord.Client) -> None:
        super().__init__(message.channel)
        self._message = message
        self._client = client
        self._name = name
        self._opened = False

    async def open(self) -> None:
        if self._opened:
            return
        self._opened = True
        try:
            self.channel = await self._message.create_thread(name=self._name, auto_archive_duration=ARCHIVE_MINUTES)
            return
        except discord.HTTPException as exc:
            if exc.code in CHANNEL_REFUSED:
                raise
            if exc.code == THREAD_EXISTS and await self._existing_thread():
                return
            # Info, not a warning: replies in the channel are the designed fallback, and if the channel
            # refuses those too, the sink says so once.
            log.info("could not open a thread from message %s (%s); answering in the channel",
                     self._message.id, exc)
        self.reply_to = self._message

    async def _existing_thread(self) -> bool:
        guild = self._message.guild
        thread = guild.get_thread(self._message.id) if guild else None
        if thread is None:
            try:
                fetched = await self._client.fetch_channel(self._message.id)
            except discord.HTTPException:
                return False
            thread = fetched if isinstance(fetched, discord.Thread) else None
        if thread is not None:
            self.channel = thread
        return thread is not None


class InteractionTarget:
    """The response to a deferred slash command: the first message replaces "thinking…", the rest
    are followups. Both are edited through the interaction's webhook token (valid 15 minutes)."""

    wants_typing = False  # the deferred response already shows "seedbot is thinking…"

    def __init__(self, interaction: discord.Interaction) -> None:
        self._interaction = interaction
        self._first = True

    @property
    def channel_id(self) -> int:
        return self._interaction.channel_id or 0

    async def open(self) -> None:
        return None

    async def typing(self) -> None:
        return None

    async def send(self, content: str, *, view: discord.ui.View | None = None) -> Posted:
        if self._first:
            original = await self._interaction.edit_original_response(content=content, allowed_mentions=NO_PINGS,
                                                                      view=view or MISSING)
            self._first = False  # only once it is taken: "thinking…" is replaced by the next send otherwise
            return _Message(original)
        followup = await self._interaction.followup.send(content, wait=True, allowed_mentions=NO_PINGS,
                                                         view=view or MISSING)
        return _Message(followup)

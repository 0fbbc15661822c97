"""From a Discord message or slash command to ChatService.handle, and the answer back.

`on_message` stays cheap: it reads the message into MessageFacts and lets routing decide. Only
messages the bot answers get a task (tracked by BackgroundTasks, so shutdown waits for them); in it,
our database settles what the event cannot (is this a thread we are in? which conversation does
this reply continue?), the attachments are read and the core answers into a DiscordSink.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import replace
from typing import Any

import discord

from adapters.common.recovery import ReplyTracker
from adapters.common.supervisor import AnswerSupervisor
from adapters.common.tasks import BackgroundTasks
from adapters.core import Core
from adapters.discord.files import AttachmentReader
from adapters.discord.routing import (
    Ignore,
    MessageFacts,
    Place,
    Placement,
    Referenced,
    Reply,
    interaction_key,
    route,
)
from adapters.discord.sink import DiscordSink
from adapters.discord.transport import ChannelTarget, InteractionTarget, NewThreadTarget, Target
from bot.chat.controls import StopSwitches
from bot.config import Settings
from bot.domain import Incoming, ThreadKey
from bot.storage.names import CHANNEL, USER

log = logging.getLogger(__name__)

RESTARTING = "seedbot is restarting; please ask again in a moment."

DM_CHANNEL_NAME = "direct messages"


class Conversations:
    def __init__(self, client: discord.Client, core: Core, tasks: BackgroundTasks, settings: Settings) -> None:
        self._client = client
        self._supervisor = AnswerSupervisor(core.service)
        self._store = core.store
        self._names = core.names
        self._tasks = tasks
        self._interval = settings.discord_edit_interval
        self._files = AttachmentReader(max_text_bytes=settings.max_attachment_bytes,
                                       max_image_bytes=settings.max_image_bytes)
        self._in_flight: set[asyncio.Task[Any]] = set()
        self.switches = StopSwitches()
        self.accepting = True

    # -- messages ----------------------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        if self._client.user is None:
            return
        facts = facts_from_message(message)
        if facts is None:  # a guild channel not in the cache: ask Discord what it is, off the event
            self.spawn(self._uncached(message), f"discord-channel-{message.channel.id}")
            return
        self._route(message, facts)

    def _route(self, message: discord.Message, facts: MessageFacts) -> None:
        assert self._client.user is not None
        role = message.guild.self_role if message.guild is not None else None
        decision = route(facts, bot_id=self._client.user.id,
                         bot_role_ids=frozenset({role.id}) if role is not None else frozenset())
        if isinstance(decision, Ignore):
            log.debug("message %s ignored: %s", message.id, decision.reason)
            return
        if not self.accepting:  # Discord never delivers it again: the person is told, as /ask's are
            self.spawn(self._decline(message, decision), f"discord-restarting-{message.id}")
            return
        self.spawn(self._answer_message(message, facts, decision), f"discord-message-{message.id}")

    async def _uncached(self, message: discord.Message) -> None:
        try:
            channel = await self._client.fetch_channel(message.channel.id)
        except discord.HTTPException as exc:
            log.warning("cannot look up channel %s: %s", message.channel.id, exc)
            return
        facts = facts_from_message(message, channel)
        if facts is not None:
            self._route(message, facts)

    async def _decline(self, message: discord.Message, decision: Reply) -> None:
        """A message that would be answered, arriving while the process shuts down: one reply saying so."""
        if not await self._in_the_bots_thread(decision):
            return
        log.info("message %s arrived while shutting down; told to ask again", message.id)
        try:
            await message.reply(RESTARTING, mention_author=False, allowed_mentions=discord.AllowedMentions.none())
        except discord.HTTPException as exc:
            log.info("could not tell message %s's author to ask again: %s", message.id, exc)

    async def _in_the_bots_thread(self, decision: Reply) -> bool:
        """False for a reply without a mention in a thread the bot holds no conversation in (only the database
        can say); True for every other message `route` addressed."""
        key = decision.key
        return not decision.needs_thread_check or await self._store.has_thread(
            key.platform.value, key.workspace_id, key.channel_id, key.thread_id)

    async def _answer_message(self, message: discord.Message, facts: MessageFacts, decision: Reply) -> None:
        if not await self._in_the_bots_thread(decision):
            log.debug("message %s is in a thread the bot is not in", message.id)
            return
        key = decision.key
        if decision.conversation_anchor is not None:
            key = await self._continued(key, decision.conversation_anchor)
        incoming = Incoming(
            thread=key, message_id=str(message.id), user_id=str(message.author.id), text=decision.text,
            user_name=facts.author_name, channel_name=facts.channel_name, is_direct=decision.is_direct,
        )
        tracker = ReplyTracker(self._store)
        await self._run(incoming, DiscordSink(self._target(message, decision), interval=self._interval,
                                              answer_key=incoming.dedup_key, on_open=tracker.opened),
                        message.attachments, tracker)

    async def _continued(self, key: ThreadKey, anchor: str) -> ThreadKey:
        """A reply to the bot continues the conversation its anchor message was part of."""
        known = await self._store.thread_of_message(key.platform.value, key.workspace_id, key.channel_id, anchor)
        return replace(key, thread_id=known) if known else key

    def _target(self, message: discord.Message, decision: Reply) -> Target:
        if decision.placement is Placement.NEW_THREAD:
            return NewThreadTarget(message, decision.thread_name, self._client)
        if decision.placement is Placement.REPLY_IN_CHANNEL:
            return ChannelTarget(message.channel, reply_to=message)
        return ChannelTarget(message.channel)

    # -- slash commands ----------------------------------------------------------------------------

    async def answer_command(self, interaction: discord.Interaction, *, text: str,
                             files: Sequence[discord.Attachment] = (), web: bool | None = None,
                             force_review: bool = False) -> None:
        """/ask and /review: acknowledge at once (Discord allows 3 s), then answer like a message,
        streaming into the command's response."""
        if not self.accepting:
            await interaction.response.send_message(RESTARTING, ephemeral=True)
            return
        try:
            await interaction.response.defer(thinking=True)
        except discord.HTTPException as exc:
            log.warning("could not acknowledge interaction %s: %s", interaction.id, exc)
            return
        self.spawn(self._answer_interaction(interaction, text, files, web, force_review),
                    f"discord-interaction-{interaction.id}")

    async def _answer_interaction(self, interaction: discord.Interaction, text: str,
                                  files: Sequence[discord.Attachment], web: bool | None, force_review: bool) -> None:
        place, parent_id = place_of_channel(interaction.channel, interaction.guild_id)
        key = interaction_key(interaction_id=interaction.id, guild_id=interaction.guild_id,
                              channel_id=interaction.channel_id or 0, place=place, parent_id=parent_id)
        incoming = Incoming(
            thread=key, message_id=str(interaction.id), user_id=str(interaction.user.id), text=text.strip(),
            user_name=interaction.user.display_name, channel_name=channel_name(interaction.channel, place),
            is_direct=place is Place.DM, force_review=force_review, web_search=True if web else None,
        )
        tracker = ReplyTracker(self._store)
        sink = DiscordSink(InteractionTarget(interaction), interval=self._interval, answer_key=incoming.dedup_key,
                           on_open=tracker.opened)
        if not await self._run(incoming, sink, files, tracker):
            # Seen before (cannot happen for a fresh interaction id); do not leave "thinking…" behind.
            try:
                await interaction.delete_original_response()
            except discord.HTTPException:
                pass

    # -- running answers ---------------------------------------------------------------------------

    async def _run(self, incoming: Incoming, sink: DiscordSink, files: Sequence[discord.Attachment],
                   tracker: ReplyTracker) -> bool:
        """Answer through the core under the answer supervisor, attachments read inside it, `tracker` keeping
        where the reply lives for crash recovery; False if the message was a duplicate (nothing was sent)."""

        async def prepare(incoming: Incoming) -> Incoming:
            return replace(incoming, attachments=await self._files.read_all(files))

        self.spawn(self._learn_names(incoming), f"discord-names-{incoming.message_id}")
        key = incoming.thread
        switch = self.switches.open(incoming.dedup_key, incoming.user_id,
                                    f"{key.platform.value}:{key.workspace_id}:{key.channel_id}:{key.thread_id}")
        try:
            return await self._supervisor.answer(incoming, sink, prepare=prepare, tracker=tracker,
                                                 stop=switch) is not None
        finally:
            self.switches.close(switch)

    async def _learn_names(self, incoming: Incoming) -> None:
        """Discord's events carry the channel's and the member's names: keep them for reports."""
        platform = incoming.platform.value
        await self._names.note(platform, CHANNEL, incoming.thread.channel_id, incoming.channel_name)
        await self._names.note(platform, USER, incoming.user_id, incoming.user_name)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        """Run `coro` as an answer in flight: logged if it fails, waited for at shutdown."""
        task = self._tasks.spawn(coro, name=name)
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def drain(self, seconds: float) -> None:
        """Stop taking messages and wait (up to `seconds`) for answers in flight, while the client can
        still post them."""
        self.accepting = False
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=seconds)


def place_of_channel(channel: object, guild_id: int | None) -> tuple[Place, int | None]:
    if guild_id is None or isinstance(channel, discord.DMChannel | discord.GroupChannel):
        return Place.DM, None
    if isinstance(channel, discord.Thread):
        return Place.THREAD, channel.parent_id
    return Place.CHANNEL, None


def channel_name(channel: object, place: Place) -> str:
    if place is Place.DM:
        return DM_CHANNEL_NAME
    if isinstance(channel, discord.Thread):
        return channel.parent.name if channel.parent is not None else ""
    return str(getattr(channel, "name", "") or "")


def facts_from_message(message: discord.Message, channel: object | None = None) -> MessageFacts | None:
    """The facts routing needs, read from a discord.Message; None if its guild channel is unknown
    to the cache (then `channel` must be fetched and passed)."""
    channel = channel if channel is not None else message.channel
    guild_id = message.guild.id if message.guild is not None else None
    if guild_id is not None and not isinstance(channel, discord.Thread | discord.abc.GuildChannel):
        return None
    place, parent_id = place_of_channel(channel, guild_id)
    author = message.author
    return MessageFacts(
        message_id=message.id, channel_id=message.channel.id, guild_id=guild_id, place=place,
        author_id=author.id, author_is_bot=author.bot, message_type=message.type.value,
        content=message.content, parent_id=parent_id, author_name=author.display_name,
        channel_name=channel_name(channel, place),
        mention_ids=frozenset(user.id for user in message.mentions),
        role_mention_ids=frozenset(message.raw_role_mentions),
        referenced=_referenced(message),
    )


def _referenced(message: discord.Message) -> Referenced | None:
    reference = message.reference
    if reference is None or reference.message_id is None or reference.type is not discord.MessageReferenceType.reply:
        return None
    target = reference.resolved if isinstance(reference.resolved, discord.Message) else reference.cached_message
    if target is None:
        return Referenced(reference.message_id)
    return Referenced(
        message_id=reference.message_id,
        author_id=target.author.id,
        replied_to_id=target.reference.message_id if target.reference is not None else None,
        interaction_id=target.interaction_metadata.id if target.interaction_metadata is not None else None,
    )

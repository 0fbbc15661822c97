"""The slash commands: /ask and /review answer like a message; /budget show|set and /spend answer
privately (ephemeral) with the text from bot.ops.admin, which also checks who may change budgets.

Budgets are per parent channel: used in a thread, /budget means the thread's channel; the optional
`channel` option names another one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import discord
from discord import app_commands

from adapters.common.splitter import split_markdown
from adapters.discord.listeners import Conversations, place_of_channel
from adapters.discord.sink import LIMIT
from adapters.discord.transport import NO_PINGS
from bot.budget.scopes import EVERYONE, channel_scope, person_scope
from bot.domain import Platform
from bot.ops.admin import AdminCommands

log = logging.getLogger(__name__)

FAILED = "That did not work because of an error on seedbot's side; the logs say more."


def install_commands(tree: app_commands.CommandTree, conversations: Conversations, admin: AdminCommands) -> None:
    @tree.command(name="ask", description="Ask seed-2-0-code a code question")
    @app_commands.describe(question="Your question", file="A text, source or image file to include",
                           web="Let the model search the web")
    async def ask(interaction: discord.Interaction, question: str, file: discord.Attachment | None = None,
                  web: bool | None = None) -> None:
        await conversations.answer_command(interaction, text=question, files=[file] if file else [], web=web)

    @tree.command(name="review", description="Review a diff with seed-2-0-code")
    @app_commands.describe(diff="A unified diff (or attach it as a .diff/.patch file)", file="A .diff or .patch file")
    async def review(interaction: discord.Interaction, diff: str | None = None,
                     file: discord.Attachment | None = None) -> None:
        await conversations.answer_command(interaction, text=diff or "", files=[file] if file else [],
                                           force_review=True)

    budget = app_commands.Group(name="budget", description="This channel's seedbot budget")

    @budget.command(name="show", description="Show a channel's budget and what it has spent")
    @app_commands.describe(channel="Another channel (default: this one)")
    async def budget_show(interaction: discord.Interaction, channel: discord.TextChannel | None = None) -> None:
        scope, here = budget_scope(interaction, channel), budget_scope(interaction, None)
        user_id = str(interaction.user.id)
        conversations.spawn(reply_privately(interaction, lambda: admin.budget_view(
            Platform.DISCORD.value, user_id, here, scope)), "discord-budget-show")

    @budget.command(name="set", description="Set a channel's budget, e.g. 5/day, 12.50/week, none (admins)")
    @app_commands.describe(value="5/day, 12.50/week, 100/month or none", channel="Another channel (default: this one)",
                           each_person="Set each person's own limit in the channel instead",
                           person="Set this person's own limit in the channel instead")
    async def budget_set(interaction: discord.Interaction, value: str, channel: discord.TextChannel | None = None,
                         each_person: bool = False, person: discord.User | None = None) -> None:
        scope = budget_scope(interaction, channel)
        if person is not None or each_person:
            scope = person_scope(scope, str(person.id) if person is not None else EVERYONE)
        user_id = str(interaction.user.id)
        conversations.spawn(reply_privately(
            interaction, lambda: admin.budget_set(Platform.DISCORD.value, user_id, scope, value)), "discord-budget-set")

    tree.add_command(budget)

    @tree.command(name="spend", description="What seedbot spent over the last 7 days (here; everywhere for admins)")
    async def spend(interaction: discord.Interaction) -> None:
        here, user_id = budget_scope(interaction, None), str(interaction.user.id)
        conversations.spawn(reply_privately(
            interaction, lambda: admin.spend_view(Platform.DISCORD.value, user_id, here)), "discord-spend")


def budget_scope(interaction: discord.Interaction, channel: discord.abc.Snowflake | None) -> str:
    """The budget key of the channel named, else of the channel the command was used in (a thread's
    parent: budgets are per channel, threads included)."""
    if channel is not None:
        return channel_scope(Platform.DISCORD.value, str(channel.id))
    _, parent_id = place_of_channel(interaction.channel, interaction.guild_id)
    return channel_scope(Platform.DISCORD.value, str(parent_id or interaction.channel_id))


async def reply_privately(interaction: discord.Interaction, produce: Callable[[], Awaitable[str]]) -> None:
    """Acknowledge at once (privately), then send what `produce` says as followups only the user sees."""
    try:
        await interaction.response.defer(ephemeral=True, thinking=True)
    except discord.HTTPException as exc:
        log.warning("could not acknowledge interaction %s: %s", interaction.id, exc)
        return
    try:
        text = await produce()
    except Exception:  # noqa: BLE001 - the user gets a sentence, the log the traceback
        log.exception("/%s failed", interaction.command.qualified_name if interaction.command else "command")
        text = FAILED
    try:
        for part in split_markdown(text, LIMIT):
            await interaction.followup.send(part, ephemeral=True, allowed_mentions=NO_PINGS)
    except discord.HTTPException as exc:  # the interaction's token expired, or Discord refused the reply
        log.warning("could not answer interaction %s: %s", interaction.id, exc)

"""The buttons on a Discord answer and the clicks on them.

While an answer streams, the message being edited carries a Stop button; the finished answer's last
message carries 👍 and 👎 instead. The buttons ride in the sends and edits made anyway, so they cost
no REST call. A button's custom_id names the action and the answer key (the asked message's dedup
key); Discord caps a custom_id at 100 characters, so an answer whose key is longer gets no buttons.
Clicks arrive as MESSAGE_COMPONENT interactions (https://discord.com/developers/docs/interactions/
receiving-and-responding): a stop is acknowledged without a message (DEFERRED_UPDATE_MESSAGE, the
answer itself says "stopped by @name"); a refusal and a rating are answered ephemerally.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import discord

from bot.chat.controls import RATED, RATING_LOST, StopOutcome, Stopper, StopSwitches, stop_reply
from bot.storage.feedback import FeedbackStore

log = logging.getLogger(__name__)

STOP_PREFIX = "seedbot:stop:"
RATE_PREFIX = "seedbot:rate:"
CUSTOM_ID_LIMIT = 100


class _Buttons(discord.ui.View):
    """Components only: discord.py keeps no dispatchable view per message (clicks are handled in
    on_interaction by custom_id), so no View object lives on per answer."""

    def is_dispatchable(self) -> bool:
        return False


def _view(*buttons: discord.ui.Button[discord.ui.View]) -> discord.ui.View:
    view = _Buttons(timeout=None)
    for button in buttons:
        view.add_item(button)
    return view


def stop_view(answer_key: str) -> discord.ui.View | None:
    custom_id = STOP_PREFIX + answer_key
    if len(custom_id) > CUSTOM_ID_LIMIT:
        return None
    return _view(discord.ui.Button(style=discord.ButtonStyle.danger, label="Stop", custom_id=custom_id))


def feedback_view(answer_key: str) -> discord.ui.View | None:
    helpful, not_helpful = f"{RATE_PREFIX}+:{answer_key}", f"{RATE_PREFIX}-:{answer_key}"
    if len(helpful) > CUSTOM_ID_LIMIT:
        return None
    return _view(discord.ui.Button(style=discord.ButtonStyle.secondary, emoji="👍", custom_id=helpful),
                 discord.ui.Button(style=discord.ButtonStyle.secondary, emoji="👎", custom_id=not_helpful))


@dataclass(frozen=True, slots=True)
class ControlClick:
    """A parsed custom_id: `helpful` is None for a stop."""

    answer_key: str
    helpful: bool | None = None


def parse_custom_id(custom_id: str) -> ControlClick | None:
    """Our buttons' custom_ids; anything else (another app's, malformed) is None."""
    if custom_id.startswith(STOP_PREFIX) and len(custom_id) > len(STOP_PREFIX):
        return ControlClick(custom_id.removeprefix(STOP_PREFIX))
    verdict, _, key = custom_id.removeprefix(RATE_PREFIX).partition(":")
    if custom_id.startswith(RATE_PREFIX) and verdict in ("+", "-") and key:
        return ControlClick(key, verdict == "+")
    return None


class DiscordControls:
    """Handles clicks on answer buttons: stop (asker or admin only) and ratings (last click wins)."""

    def __init__(self, switches: StopSwitches, feedback: FeedbackStore, is_admin: Callable[[str], bool]) -> None:
        self.switches = switches
        self._feedback = feedback
        self._is_admin = is_admin

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type is not discord.InteractionType.component or not isinstance(interaction.data, dict):
            return
        click = parse_custom_id(str(interaction.data.get("custom_id") or ""))
        if click is None:
            return
        user = interaction.user
        try:
            if click.helpful is None:
                stopper = Stopper(str(user.id), user.name)
                outcome = self.switches.request_stop(click.answer_key, stopper, is_admin=self._is_admin(str(user.id)))
                if outcome is StopOutcome.STOPPED:
                    await interaction.response.defer()
                else:
                    await interaction.response.send_message(stop_reply(outcome), ephemeral=True)
                return
            stored = await self._feedback.rate(click.answer_key, str(user.id), helpful=click.helpful)
            await interaction.response.send_message(RATED[click.helpful] if stored else RATING_LOST, ephemeral=True)
        except discord.HTTPException as exc:
            log.info("answering a button click failed: %s", exc)

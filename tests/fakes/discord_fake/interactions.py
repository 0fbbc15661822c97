"""Application commands the bot registered, and the interactions the fake sends for them."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import payloads
from .model import DEFAULT_EVERYONE_PERMISSIONS, JSON, Channel, User, World
from .rest_common import UNKNOWN_INTERACTION, UNKNOWN_WEBHOOK, form_error, unknown

APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
BUTTON = 2
ACTION_ROW = 1
CHAT_INPUT = 1
COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$")
MAX_COMMANDS = 100
# Option types by Python value, for options given as a mapping without a registered schema.
OPTION_TYPES: dict[type, int] = {str: 3, int: 4, bool: 5, float: 10}
PRIMITIVE_OPTION_TYPES = {3, 4, 5, 10}


class CommandStore:
    """Global and per-guild commands; a bulk overwrite keeps the ids of commands it keeps, as Discord does."""

    def __init__(self, world: World) -> None:
        self._world = world
        self._global: list[JSON] = []
        self._guild: dict[int, list[JSON]] = {}

    def list(self, guild_id: int | None) -> list[JSON]:
        return list(self._global if guild_id is None else self._guild.get(guild_id, []))

    def overwrite(self, guild_id: int | None, submitted: list[JSON]) -> list[JSON]:
        if len(submitted) > MAX_COMMANDS:
            raise form_error([], "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_COMMANDS} or fewer in length.")
        existing = {_key(c): c for c in self.list(guild_id)}
        seen: set[tuple[str, int]] = set()
        stored: list[JSON] = []
        for index, command in enumerate(submitted):
            _validate(index, command)
            if _key(command) in seen:
                raise form_error(
                    [index, "name"],
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    "Application command names must be unique",
                )
            seen.add(_key(command))
            stored.append(self._normalise(guild_id, command, existing.get(_key(command))))
        if guild_id is None:
            self._global = stored
        else:
            self._guild[guild_id] = stored
        return stored

    def upsert(self, guild_id: int | None, command: JSON) -> JSON:
        _validate(0, command)
        others = [c for c in self.list(guild_id) if _key(c) != _key(command)]
        prior = next((c for c in self.list(guild_id) if _key(c) == _key(command)), None)
        stored = self._normalise(guild_id, command, prior)
        if guild_id is None:
            self._global = [*others, stored]
        else:
            self._guild[guild_id] = [*others, stored]
        return stored

    def find(self, name: str, guild_id: int | None) -> tuple[JSON, int | None] | None:
        # Discord shows a guild's own command over a global one of the same name.
        if guild_id is not None:
            for command in self._guild.get(guild_id, []):
                if command["name"] == name:
                    return command, guild_id
        for command in self._global:
            if command["name"] == name:
                return command, None
        return None

    def _normalise(self, guild_id: int | None, command: JSON, prior: JSON | None) -> JSON:
        stored: JSON = {
            "type": CHAT_INPUT,
            "description": "",
            "options": [],
            "default_member_permissions": None,
            "nsfw": False,
            **command,
            "id": prior["id"] if prior else str(self._world.snowflakes.next()),
            "application_id": str(self._world.application_id),
            "version": str(self._world.snowflakes.next()),
        }
        if guild_id is not None:
            stored["guild_id"] = str(guild_id)
        return stored


def _key(command: JSON) -> tuple[str, int]:
    return command.get("name", ""), command.get("type", CHAT_INPUT)


def _validate(index: int, command: JSON) -> None:
    name = command.get("name") or ""
    if not COMMAND_NAME.match(name) or (
        command.get("type", CHAT_INPUT) == CHAT_INPUT and name != name.lower()
    ):
        raise form_error([index, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
    if (
        command.get("type", CHAT_INPUT) == CHAT_INPUT
        and not 1 <= len(command.get("description") or "") <= 100
    ):
        raise form_error(
            [index, "description"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
        )


@dataclass
class InteractionState:
    id: int
    token: str
    channel_id: int
    guild_id: int | None
    user_id: int
    command_name: str
    created_at: float = field(default_factory=time.monotonic)
    response_type: int | None = None
    original_message_id: int | None = None
    message_ids: list[int] = field(default_factory=list)
    kind: int = APPLICATION_COMMAND
    # For a component interaction: the message whose button was clicked.
    component_message_id: int | None = None


class Interactions:
    def __init__(self, world: World, *, ack_deadline: float, token_lifetime: float) -> None:
        self.world = world
        self.commands = CommandStore(world)
        self.ack_deadline = ack_deadline
        self.token_lifetime = token_lifetime
        self.states: dict[int, InteractionState] = {}

    def application_command(
        self, name: str, user: User, channel: Channel, options: Mapping[str, Any] | list[JSON] | None
    ) -> tuple[InteractionState, JSON]:
        """Builds an INTERACTION_CREATE for /name as Discord would, and starts tracking its token."""
        found = self.commands.find(name, channel.guild_id)
        if found is None:
            raise LookupError(f"/{name} is not registered with the fake; sync the command tree first")
        command, command_guild_id = found
        state = self._track(channel, user, command_name=name)
        data: JSON = {
            "id": command["id"],
            "name": name,
            "type": command.get("type", CHAT_INPUT),
            "options": _options(command, options),
        }
        if command_guild_id is not None:
            data["guild_id"] = str(command_guild_id)
        return state, self._payload(state, APPLICATION_COMMAND, data, channel, user)

    def component(self, message: JSON, custom_id: str, user: User) -> tuple[InteractionState, JSON]:
        """A MESSAGE_COMPONENT interaction for clicking the button `custom_id` on `message`, as Discord
        sends it; LookupError if the message has no such button (no one could click it)."""
        buttons = [c for row in message.get("components") or () if row.get("type") == ACTION_ROW
                   for c in row.get("components") or () if c.get("type") == BUTTON]
        if not any(b.get("custom_id") == custom_id and not b.get("disabled") for b in buttons):
            raise LookupError(f"message {message['id']} has no enabled button {custom_id!r}")
        channel = self.world.channels[int(message["channel_id"])]
        state = self._track(channel, user, command_name="", kind=MESSAGE_COMPONENT,
                            component_message_id=int(message["id"]))
        payload = self._payload(state, MESSAGE_COMPONENT, {"custom_id": custom_id, "component_type": BUTTON},
                                channel, user)
        payload["message"] = dict(message)
        return state, payload

    def _track(self, channel: Channel, user: User, **fields: Any) -> InteractionState:
        """A new interaction with its token, tracked until it expires."""
        state = InteractionState(id=self.world.snowflakes.next(),
                                 token=f"aW50ZXJhY3Rpb246{secrets.token_urlsafe(48)}", channel_id=channel.id,
                                 guild_id=channel.guild_id, user_id=user.id, **fields)
        self.states[state.id] = state
        return state

    def _payload(self, state: InteractionState, kind: int, data: JSON, channel: Channel, user: User) -> JSON:
        """An INTERACTION_CREATE's data: the interaction, where it happened and who acted (the guild
        and member in a guild, the user in a DM)."""
        payload: JSON = {
            "id": str(state.id),
            "application_id": str(self.world.application_id),
            "type": kind,
            "data": data,
            "channel_id": str(channel.id),
            "channel": payloads.channel_object(self.world, channel),
            "token": state.token,
            "version": 1,
            "locale": "en-US",
            "app_permissions": str(DEFAULT_EVERYONE_PERMISSIONS),
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if channel.guild_id is not None:
            guild = self.world.guilds[channel.guild_id]
            member = payloads.member_object(guild, user)
            member["permissions"] = str(DEFAULT_EVERYONE_PERMISSIONS)
            payload.update(
                guild_id=str(guild.id),
                guild_locale="en-US",
                guild={"id": str(guild.id), "locale": "en-US", "features": []},
                member=member,
                context=0,
                authorizing_integration_owners={"0": str(guild.id)},
            )
        else:
            payload.update(user=user.to_payload(), context=1, authorizing_integration_owners={"0": "0"})
        return payload

    def live_state(self, interaction_id: int, token: str) -> InteractionState:
        state = self.states.get(interaction_id)
        if state is None or state.token != token or time.monotonic() - state.created_at > self.ack_deadline:
            raise unknown("interaction", UNKNOWN_INTERACTION)
        return state

    def webhook_state(self, application_id: int, token: str) -> InteractionState:
        """The interaction behind a followup token: acknowledged, and within its 15 minutes."""
        if application_id == self.world.application_id:
            for state in self.states.values():
                fresh = time.monotonic() - state.created_at <= self.token_lifetime
                if state.token == token and state.response_type is not None and fresh:
                    return state
        raise unknown("Webhook", UNKNOWN_WEBHOOK)


def _options(command: JSON, options: Mapping[str, Any] | list[JSON] | None) -> list[JSON]:
    if options is None:
        return []
    if isinstance(options, list):
        return options
    schema = {o["name"]: o for o in command.get("options", [])}
    built: list[JSON] = []
    for name, value in options.items():
        option_type = schema[name]["type"] if name in schema else OPTION_TYPES.get(type(value))
        if option_type not in PRIMITIVE_OPTION_TYPES:
            raise ValueError(
                f"option {name!r}: pass a list of raw option dicts (with resolved data) for this type"
            )
        built.append({"name": name, "type": option_type, "value": value})
    return built

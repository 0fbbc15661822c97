"""Budget keys ("scopes"), as people write them and the ledger stores them.

`global` is the deployment's cap; a channel is `slack:C0123`, `discord:4567` (or `slack:T0123:C0456` where
several workspaces share the deployment); a person's limit inside a channel is `slack:U0456@slack:C0123`,
and `slack:*@slack:C0123` is everyone in that channel without a limit of their own.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from sqlalchemy import false, select

from bot.domain import Platform
from bot.storage.tables import Channel

GLOBAL_SCOPE = "global"
# A platform's id of a channel or a workspace: Slack's C0123/T0123, Discord's snowflakes, the CLI's "cli".
_PLATFORM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def channel_scope(platform: str, channel_id: str, workspace_id: str | None = None) -> str:
    """A channel's budget key, as people write it: `slack:C0123`, `discord:4567`, or `slack:T0123:C0456`
    when given the workspace (several of the platform's workspaces share the deployment). Keyed by the
    platform's ids rather than our row id, so a budget can be set before the bot has seen the channel."""
    return f"{platform}:{workspace_id}:{channel_id}" if workspace_id else f"{platform}:{channel_id}"


def deployment_channel_scope(platform: str, channel_id: str, workspace_id: str | None,
                             workspace_scoped: Collection[str]) -> str:
    """The budget key this deployment gives a channel: `channel_scope` with the workspace only where it keys
    `platform`'s budgets by workspace (`workspace_scoped`: Settings.workspace_scoped_platforms, the platforms
    several of whose workspaces share the deployment), as the bot reserves in it."""
    return channel_scope(platform, channel_id, workspace_id if platform in workspace_scoped else None)


def is_scope_key(text: str) -> bool:
    """Whether `text` names a budget: `global`, or a channel as `slack:C0123`, `discord:4567`, `cli:cli`,
    or `slack:T0123:C0456` (platform, optional workspace, channel; each id letters, digits, `_` or `-`)."""
    if text == GLOBAL_SCOPE:
        return True
    platform, *ids = text.split(":")
    return platform in tuple(Platform) and len(ids) in (1, 2) and all(_PLATFORM_ID.fullmatch(i) for i in ids)


EVERYONE = "*"


def person_scope(channel_scope_key: str, user_id: str) -> str:
    """A person's budget key inside a channel: `slack:U0456@slack:C0123`. A person's spend is
    limited per channel (not across channels), so the key holds both; `slack:*@slack:C0123` is the
    limit of everyone in that channel who has no limit of their own."""
    platform = channel_scope_key.partition(":")[0]
    return f"{platform}:{user_id}@{channel_scope_key}"


def call_scopes(channel_scope_key: str, user_id: str) -> list[str]:
    """The scopes a call of this person in this channel reserves in, sorted: the channel's, the person's there
    (`person_scope`), and `global`."""
    return sorted([channel_scope_key, person_scope(channel_scope_key, user_id), GLOBAL_SCOPE])


def split_person_scope(scope_key: str) -> tuple[str, str] | None:
    """`slack:U0456@slack:C0123` -> ("U0456", "slack:C0123"); None for a channel or global key."""
    person, at, channel = scope_key.partition("@")
    if not at:
        return None
    return person.partition(":")[2], channel


def is_budget_key(text: str) -> bool:
    """Whether `text` names any budget: a scope key (`is_scope_key`), or a person's limit inside a channel of the
    same platform (`slack:U0456@slack:C0123`, everyone's: `slack:*@slack:C0123`)."""
    person = split_person_scope(text)
    if person is None:
        return is_scope_key(text)
    user_id, channel = person
    return (channel != GLOBAL_SCOPE and is_scope_key(channel) and channel.partition(":")[0] == text.partition(":")[0]
            and (user_id == EVERYONE or _PLATFORM_ID.fullmatch(user_id) is not None))


def channel_pks(scope_key: str):  # noqa: ANN202 - a scalar subquery
    """The row ids of the channel a `platform:id` (or `platform:workspace:id`) scope key names, as a
    subquery."""
    parts = scope_key.split(":")
    if len(parts) not in (2, 3):  # a key stored before keys were checked names no channel
        return select(Channel.id).where(false())
    platform, *workspace, channel_id = parts
    query = select(Channel.id).where(Channel.platform == platform, Channel.channel_id == channel_id)
    return query.where(Channel.workspace_id == workspace[0]) if workspace else query


def scope_filter(table: Any, scope_key: str) -> list[Any]:
    """WHERE clauses picking the rows of `table` (the ledger, or reservations: both have channel_pk and
    user_id) that belong to a channel or a person scope."""
    person = split_person_scope(scope_key)
    if person is None:
        return [table.c.channel_pk.in_(channel_pks(scope_key))]
    return [table.c.channel_pk.in_(channel_pks(person[1])), table.c.user_id == person[0]]


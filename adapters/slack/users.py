"""People's names for the conversation record, from users.info, remembered per process."""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

CACHE_SIZE = 2_000


def display_name(user: dict[str, Any]) -> str:
    profile = user.get("profile") or {}
    for name in (profile.get("display_name"), profile.get("real_name"), user.get("real_name"), user.get("name")):
        if name:
            return str(name)
    return ""


class UserNames:
    """users.info behind a bounded LRU. A failed lookup answers the user id and is not remembered,
    so the next message tries again; it never stops a message from being answered."""

    def __init__(self, client: AsyncWebClient, size: int = CACHE_SIZE) -> None:
        self._client = client
        self._size = size
        self._names: OrderedDict[str, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._names)

    async def name(self, user_id: str) -> str:
        if user_id in self._names:
            self._names.move_to_end(user_id)
            return self._names[user_id]
        try:
            response = await self._client.users_info(user=user_id)
            name = display_name(response.get("user") or {}) or user_id
        except Exception as exc:  # noqa: BLE001 - a name is a nicety; the id will do
            log.info("users.info for %s failed (%s); using the id", user_id, type(exc).__name__)
            return user_id
        self._names[user_id] = name
        if len(self._names) > self._size:
            self._names.popitem(last=False)
        return name

"""Builders for normalised messages used across tests."""

from __future__ import annotations

import itertools

from bot.domain import Attachment, Incoming, Platform, ThreadKey

_ids = itertools.count(1)


def incoming(text: str = "How do I reverse a list in Python?", *, thread: str = "t1", channel: str = "C1",
             message_id: str | None = None, user: str = "U1", platform: Platform = Platform.SLACK,
             attachments: tuple[Attachment, ...] = (), **kw: object) -> Incoming:
    return Incoming(
        thread=ThreadKey(platform, "W1", channel, thread), message_id=message_id or f"m{next(_ids)}",
        user_id=user, user_name="Ada", text=text, attachments=attachments, **kw,  # type: ignore[arg-type]
    )

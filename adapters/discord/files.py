"""Attachments: read, or refused in a sentence, by the one attachment policy (adapters.common.attachments).

A file is refused by its name and announced size before any download (Discord's content_type is a guess,
and absent on some uploads), so a 5 MB log is never fetched; what is downloaded is judged by its bytes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Protocol

import aiohttp
import discord

from adapters.common.attachments import AttachmentLimits, download_failed, skipped
from bot.domain import Attachment

log = logging.getLogger(__name__)

DISCORD = "Discord"


class Downloadable(Protocol):
    """What we use of a discord.Attachment."""

    filename: str
    size: int

    async def read(self, *, use_cached: bool = False) -> bytes: ...


class AttachmentReader:
    """Reads a message's attachments concurrently, within the size limits from Settings."""

    def __init__(self, *, max_text_bytes: int, max_image_bytes: int) -> None:
        self._limits = AttachmentLimits(max_text_bytes, max_image_bytes)

    async def read_all(self, attachments: Iterable[Downloadable]) -> tuple[Attachment, ...]:
        return tuple(await asyncio.gather(*(self.read(a) for a in attachments)))

    async def read(self, attachment: Downloadable) -> Attachment:
        name = attachment.filename
        refusal = self._limits.refuse_before_download(name, attachment.size)
        if refusal is not None:
            return skipped(name, attachment.size, refusal)
        try:
            data = await attachment.read()
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("could not download attachment %s: %s", name, exc)
            return skipped(name, attachment.size, download_failed(DISCORD))
        return self._limits.classify(name, data)

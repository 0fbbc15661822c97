"""Files shared with a message: fetched through the bot token, capped, and judged by the one attachment
policy (adapters.common.attachments) into text, image, or a skip note for the user.

Slack answers a download without a valid token with a redirect to its sign-in page (or a 403), and a
client that follows redirects gets a 200 HTML page. Redirects are therefore never followed (the token
is never sent anywhere else either), and an HTML body for a file that is not HTML counts as a refusal.
A file object whose fields have the wrong shape (a `size` of "abc") gets a skip note, never an error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from adapters.common.attachments import (
    AttachmentLimits,
    download_failed,
    extension,
    malformed,
    skipped,
    too_big,
)
from bot.domain import Attachment

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_SECONDS = 30.0
SLACK = "Slack"

HTML_EXTENSIONS = frozenset({"html", "htm", "xhtml"})
# Sources that may legitimately start with <html> (templates, markup, notes).
MARKUP_EXTENSIONS = frozenset({"xml", "svg", "vue", "jsx", "tsx", "php", "erb", "jinja", "j2", "hbs", "md", "txt"})

SIGN_IN = "Slack sent a sign-in page instead of the file (does the bot have the files:read scope?)"


def looks_like_html_page(data: bytes) -> bool:
    head = data[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def is_sign_in_page(filename: str, data: bytes, content_type: str) -> bool:
    """An HTML page where a non-HTML file was expected: Slack's sign-in page, not the file."""
    ext = extension(filename)
    if ext in HTML_EXTENSIONS:
        return False
    if content_type.lower().startswith("text/html"):
        return True
    return ext not in MARKUP_EXTENSIONS and looks_like_html_page(data)


def declared_size(file: dict[str, Any]) -> int | None:
    """The file object's `size` in bytes (0 when absent), or None when it is not a whole number >= 0."""
    size = file.get("size")
    if size is None:
        return 0
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        return None
    return size


def file_name(file: dict[str, Any]) -> str:
    for key in ("name", "title", "id"):
        if isinstance(file.get(key), str) and file[key]:
            return str(file[key])
    return "file"


class FileFetcher:
    """Downloads the files of one message concurrently over the process's shared session."""

    def __init__(self, session: Callable[[], aiohttp.ClientSession], token: str, client: AsyncWebClient, *,
                 max_text_bytes: int, max_image_bytes: int) -> None:
        self._session = session
        self._token = token
        self._client = client
        self._limits = AttachmentLimits(max_text_bytes, max_image_bytes)
        # The bot token goes to Slack's file hosts and to the Web API's own host (a proxy, a test fake).
        self._api_host = urlsplit(client.base_url).hostname or ""

    def trusted(self, url: str) -> bool:
        host = urlsplit(url).hostname or ""
        return host == self._api_host or host == "slack.com" or host.endswith((".slack.com", ".slack-edge.com"))

    async def fetch_all(self, files: Iterable[dict[str, Any]]) -> tuple[Attachment, ...]:
        return tuple(await asyncio.gather(*(self.fetch(f) for f in files)))

    async def fetch(self, file: dict[str, Any]) -> Attachment:
        try:
            return await self._fetch(file)
        except Exception as exc:  # noqa: BLE001 - one bad file must not lose the message
            log.warning("downloading Slack file %s failed: %s", file.get("id"), type(exc).__name__)
            return skipped(file_name(file), declared_size(file) or 0, download_failed(SLACK))

    async def _fetch(self, file: dict[str, Any]) -> Attachment:
        if file.get("file_access") == "check_file_info" or not _url(file):
            if file.get("id"):
                file = (await self._client.files_info(file=file["id"]))["file"]
        name = file_name(file)
        declared = declared_size(file)
        if declared is None:
            return skipped(name, 0, malformed(SLACK, "size"))
        if file.get("mode") in ("tombstone", "hidden_by_limit") or file.get("is_external"):
            return skipped(name, declared, "Slack does not let bots read this file (deleted, external or "
                                           "hidden by the workspace's plan)")
        refusal = self._limits.refuse_before_download(name, declared)
        if refusal is not None:
            return skipped(name, declared, refusal)
        url = _url(file)
        if not url:
            return skipped(name, declared, "Slack gave no download link for it")
        if not self.trusted(url):
            return skipped(name, declared, "its download link does not point at Slack")
        cap = self._limits.download_cap(name)
        data, content_type, refused = await self._download(url, cap)
        if refused:
            return skipped(name, declared, SIGN_IN)
        if data is None:
            return skipped(name, max(declared, cap + 1), too_big(max(declared, cap + 1), cap, None))
        if is_sign_in_page(name, data, content_type):
            return skipped(name, len(data), SIGN_IN)
        return self._limits.classify(name, data)

    async def _download(self, url: str, cap: int) -> tuple[bytes | None, str, bool]:
        """(bytes or None when over `cap`, content type, refused by Slack)."""
        headers = {"Authorization": f"Bearer {self._token}"}
        timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT_SECONDS)
        async with self._session().get(url, headers=headers, allow_redirects=False, timeout=timeout) as response:
            if response.status in (301, 302, 303, 307, 308, 401, 403):
                return None, "", True
            response.raise_for_status()
            body = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > cap:
                    return None, "", False
            return bytes(body), response.headers.get("Content-Type", ""), False


def _url(file: dict[str, Any]) -> str:
    url = file.get("url_private_download") or file.get("url_private")
    return url if isinstance(url, str) else ""

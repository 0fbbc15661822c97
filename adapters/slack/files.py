"""Files shared with a message: fetched through the bot token, capped, and classified by name and
content (never by Slack's mimetype alone) into text, image, or a skip note for the user.

Slack answers a download without a valid token with a redirect to its sign-in page (or a 403), and a
client that follows redirects gets a 200 HTML page. Redirects are therefore never followed (the token
is never sent anywhere else either), and an HTML body for a file that is not HTML counts as a refusal.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bot.chat.markdown import language_for
from bot.domain import Attachment, AttachmentKind

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_SECONDS = 30.0

IMAGE_EXTENSIONS = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
                    "webp": "image/webp"}
# Not worth a download: formats that are never plain text.
TEXT_EXTENSIONS = frozenset("txt text log csv tsv cfg conf env properties lock rst adoc".split())
BINARY_EXTENSIONS = frozenset(
    "pdf zip gz tgz bz2 xz 7z rar tar jar war class exe dll so dylib bin o a whl egg iso dmg img "
    "doc docx xls xlsx ppt pptx odt ods key numbers pages mp3 mp4 mov avi mkv wav flac ogg webm "
    "heic tif tiff bmp ico psd sqlite db pyc".split()
)
HTML_EXTENSIONS = frozenset({"html", "htm", "xhtml"})
# Sources that may legitimately start with <html> (templates, markup, notes).
MARKUP_EXTENSIONS = frozenset({"xml", "svg", "vue", "jsx", "tsx", "php", "erb", "jinja", "j2", "hbs", "md", "txt"})

SIGN_IN = "Slack sent a sign-in page instead of the file (does the bot have the files:read scope?)"
BINARY = "binary file (I read text files and PNG, JPEG, GIF or WebP images)"


def extension(filename: str) -> str:
    name = filename.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name.lstrip(".") else ""


def image_type(data: bytes) -> str | None:
    """The image format from the file's first bytes."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def is_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def looks_like_html_page(data: bytes) -> bool:
    head = data[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def kb(size: int) -> str:
    return f"{size / 1024:,.0f} KB" if size >= 1024 else f"{size} bytes"


def skipped(filename: str, size: int, reason: str) -> Attachment:
    return Attachment(filename=filename, kind=AttachmentKind.SKIPPED, size=size, skipped_reason=reason)


def is_sign_in_page(filename: str, data: bytes, content_type: str) -> bool:
    """An HTML page where a non-HTML file was expected: Slack's sign-in page, not the file."""
    ext = extension(filename)
    if ext in HTML_EXTENSIONS:
        return False
    if content_type.lower().startswith("text/html"):
        return True
    return ext not in MARKUP_EXTENSIONS and looks_like_html_page(data)


def classify(filename: str, data: bytes, *, content_type: str = "") -> Attachment:
    """Downloaded bytes -> TEXT, IMAGE or SKIPPED, by extension and content together."""
    if is_sign_in_page(filename, data, content_type):
        return skipped(filename, len(data), SIGN_IN)
    ext = extension(filename)
    sniffed = image_type(data)
    if ext in IMAGE_EXTENSIONS or sniffed:
        if sniffed is None:
            return skipped(filename, len(data), "it is named like an image but is not a PNG, JPEG, GIF or WebP")
        return Attachment(filename, AttachmentKind.IMAGE, len(data), data, content_type=sniffed)
    if not is_text(data):
        return skipped(filename, len(data), BINARY)
    return Attachment(filename, AttachmentKind.TEXT, len(data), data, content_type="text/plain")


class FileFetcher:
    """Downloads the files of one message concurrently over the process's shared session."""

    def __init__(self, session: Callable[[], aiohttp.ClientSession], token: str, client: AsyncWebClient, *,
                 max_text_bytes: int, max_image_bytes: int) -> None:
        self._session = session
        self._token = token
        self._client = client
        self.max_text_bytes = max_text_bytes
        self.max_image_bytes = max_image_bytes
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
            name = str(file.get("name") or file.get("title") or file.get("id") or "file")
            log.warning("downloading Slack file %s failed: %s", file.get("id"), type(exc).__name__)
            return skipped(name, int(file.get("size") or 0), "downloading it from Slack failed")

    async def _fetch(self, file: dict[str, Any]) -> Attachment:
        if file.get("file_access") == "check_file_info" or not _url(file):
            if file.get("id"):
                file = (await self._client.files_info(file=file["id"]))["file"]
        name = str(file.get("name") or file.get("title") or file.get("id") or "file")
        declared = int(file.get("size") or 0)
        if file.get("mode") in ("tombstone", "hidden_by_limit") or file.get("is_external"):
            return skipped(name, declared, "Slack does not let bots read this file (deleted, external or "
                                           "hidden by the workspace's plan)")
        ext = extension(name)
        if ext in BINARY_EXTENSIONS:
            return skipped(name, declared, BINARY)
        cap = self._cap(ext)
        if declared > cap:
            return skipped(name, declared, f"it is {kb(declared)}, over the {kb(cap)} limit")
        url = _url(file)
        if not url:
            return skipped(name, declared, "Slack gave no download link for it")
        if not self.trusted(url):
            return skipped(name, declared, "its download link does not point at Slack")
        data, content_type, refused = await self._download(url, cap)
        if refused:
            return skipped(name, declared, SIGN_IN)
        if data is None:
            return skipped(name, max(declared, cap + 1), f"it is over the {kb(cap)} limit")
        attachment = classify(name, data, content_type=content_type)
        limit = self.max_image_bytes if attachment.kind is AttachmentKind.IMAGE else self.max_text_bytes
        if attachment.kind is not AttachmentKind.SKIPPED and attachment.size > limit:
            return skipped(name, attachment.size, f"it is {kb(attachment.size)}, over the {kb(limit)} limit")
        return attachment

    def _cap(self, ext: str) -> int:
        """The most bytes worth downloading: by extension, or the larger cap until the content decides."""
        if ext in IMAGE_EXTENSIONS:
            return self.max_image_bytes
        if ext in TEXT_EXTENSIONS or language_for(f"x.{ext}"):
            return self.max_text_bytes
        return max(self.max_text_bytes, self.max_image_bytes)

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
    return str(file.get("url_private_download") or file.get("url_private") or "")

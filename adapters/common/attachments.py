"""One attachment policy for Slack files, Discord attachments and the CLI's --file. Pure: no I/O.

Before a download, only what the platform declares is known: a file whose name says it is a format
that is never text (an archive, an executable, an office document) or whose declared size is over the
limit for its kind is refused without fetching a byte. After it, the bytes decide, in this order:

1. content: the first bytes name an image format (PNG, JPEG, GIF, WebP), or the bytes are UTF-8 text
   without NUL bytes, or neither (binary);
2. extension: a file named like an image must really be one;
3. size: the limit for what the content turned out to be (text or image).

Every refusal is one clause in the same words wherever the file came from; the core shows it to the
user as "NAME was skipped: CLAUSE" (`Attachment.skipped_reason`), so nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from bot.chat.markdown import language_for
from bot.domain import Attachment, AttachmentKind

IMAGE_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "gif", "webp"})
# Formats that are never plain text: not worth a download.
BINARY_EXTENSIONS = frozenset(
    "pdf zip gz tgz bz2 xz 7z rar tar jar war class exe dll so dylib bin o a whl egg iso dmg img msi apk "
    "doc docx xls xlsx ppt pptx odt ods key numbers pages mp3 mp4 mov avi mkv wav flac ogg webm "
    "heic tif tiff bmp ico psd sqlite db pyc".split()
)
# Names that say text, beyond the source languages bot.chat.markdown knows: only a smaller cap is worth
# downloading for them.
TEXT_EXTENSIONS = frozenset(
    "txt text log csv tsv cfg conf env properties lock rst adoc md diff patch sum mod svg j2 tmpl tpl ipynb "
    "fish bat mk cmake graphql gql svelte pm tex nix zig jl clj el vim less sass mm hcl".split()
)
TEXT_NAMES = frozenset({"dockerfile", "makefile", "gemfile", "procfile", "rakefile", "vagrantfile", "jenkinsfile",
                        "readme", "license", "changelog", "codeowners", ".gitignore", ".dockerignore",
                        ".editorconfig", ".gitattributes", ".npmrc", ".bashrc", ".zshrc", ".profile"})
READABLE = "text, source code and PNG, JPEG, GIF or WebP images"
BINARY = f"it looks like a binary file, not text (I read {READABLE})"
NOT_AN_IMAGE = "it is named like an image but is not a PNG, JPEG, GIF or WebP"


def extension(filename: str) -> str:
    """The lower-case extension without its dot ("" for `Makefile` or `.gitignore`)."""
    name = PurePosixPath(filename).name
    return name.rsplit(".", 1)[-1].lower() if "." in name.lstrip(".") else ""


def human_size(size: int) -> str:
    """Bytes for people: `812 bytes`, `5 KB`, `1.5 MB`."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB".replace(".0 MB", " MB")
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} bytes"


def too_big(size: int, limit: int, kind: AttachmentKind | None) -> str:
    """`size` and `limit` in bytes; `kind` None when only the name was known, and it said nothing."""
    what = {AttachmentKind.IMAGE: "images", AttachmentKind.TEXT: "text files"}.get(kind, "files")
    return f"it is {human_size(size)}, over the {human_size(limit)} limit for {what}"


def unreadable_format(filename: str) -> str:
    return f"a .{extension(filename)} file is not something I can read ({READABLE} only)"


def download_failed(platform: str) -> str:
    return f"it could not be downloaded from {platform}"


def malformed(platform: str, field: str) -> str:
    """For a file the platform described with a value of the wrong shape (a `size` of "abc")."""
    return f"{platform} described it with an unreadable {field}"


def skipped(filename: str, size: int, reason: str) -> Attachment:
    return Attachment(filename=filename, kind=AttachmentKind.SKIPPED, size=max(size, 0), skipped_reason=reason)


def image_type(data: bytes) -> str | None:
    """The image format named by the file's first bytes (its magic number), or None."""
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
    """UTF-8 without NUL bytes."""
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def named_kind(filename: str) -> AttachmentKind | None:
    """What the file's name says it is: IMAGE, TEXT (a text or source name), or None (nothing)."""
    ext = extension(filename)
    if ext in IMAGE_EXTENSIONS:
        return AttachmentKind.IMAGE
    name = PurePosixPath(filename).name.lower()
    if ext in TEXT_EXTENSIONS or name in TEXT_NAMES or language_for(filename):
        return AttachmentKind.TEXT
    return None


@dataclass(frozen=True, slots=True)
class AttachmentLimits:
    """The most bytes read per file, from Settings: `max_text_bytes` (SEEDBOT_MAX_ATTACHMENT_BYTES) and
    `max_image_bytes` (SEEDBOT_MAX_IMAGE_BYTES)."""

    max_text_bytes: int
    max_image_bytes: int

    def limit(self, kind: AttachmentKind) -> int:
        return self.max_image_bytes if kind is AttachmentKind.IMAGE else self.max_text_bytes

    def download_cap(self, filename: str) -> int:
        """The most bytes worth fetching: the limit of the kind the name says, or the larger limit
        when the name says nothing (the content decides)."""
        kind = named_kind(filename)
        return self.limit(kind) if kind is not None else max(self.max_text_bytes, self.max_image_bytes)

    def refuse_before_download(self, filename: str, declared_size: int) -> str | None:
        """A skip clause from the name and the declared size (bytes) alone, or None: download it."""
        if extension(filename) in BINARY_EXTENSIONS:
            return unreadable_format(filename)
        cap = self.download_cap(filename)
        if declared_size > cap:
            return too_big(declared_size, cap, named_kind(filename))
        return None

    def classify(self, filename: str, data: bytes) -> Attachment:
        """Downloaded bytes -> TEXT or IMAGE, or SKIPPED with its clause: content, then extension, then size."""
        sniffed = image_type(data)
        if sniffed is not None:
            kind = AttachmentKind.IMAGE
        elif extension(filename) in IMAGE_EXTENSIONS:
            return skipped(filename, len(data), NOT_AN_IMAGE)
        elif is_text(data):
            kind = AttachmentKind.TEXT
        else:
            return skipped(filename, len(data), BINARY)
        if len(data) > self.limit(kind):
            return skipped(filename, len(data), too_big(len(data), self.limit(kind), kind))
        return Attachment(filename, kind, len(data), data, content_type=sniffed or "text/plain")

"""adapters.common.attachments, the one policy for Slack files, Discord attachments and the CLI's --file:
content first, then the name, then the size; one wording for every refusal. Pure."""

from __future__ import annotations

import pytest

from adapters.common.attachments import (
    BINARY,
    NOT_AN_IMAGE,
    AttachmentLimits,
    image_type,
    named_kind,
    unreadable_format,
)
from bot.domain import AttachmentKind

MB = 1024 * 1024
LIMITS = AttachmentLimits(max_text_bytes=MB, max_image_bytes=5 * MB)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
SOURCE = b"def retry(fn):\n    return fn()\n"


def test_content_decides_first() -> None:
    text = LIMITS.classify("retry.py", SOURCE)
    assert (text.kind, text.data, text.size, text.content_type) == (AttachmentKind.TEXT, SOURCE, len(SOURCE),
                                                                   "text/plain")
    assert LIMITS.classify("Makefile", b"all:\n\tmake test\n").kind is AttachmentKind.TEXT
    renamed = LIMITS.classify("screenshot", PNG)  # an image without an image name
    assert (renamed.kind, renamed.content_type) == (AttachmentKind.IMAGE, "image/png")
    for name, data in (("notes.txt", b"abc\x00def"), ("legacy.py", "café = 1\n".encode("latin-1")),
                       ("tool.py", b"\x7fELF\x02\x01\x00\x00binary")):
        refused = LIMITS.classify(name, data)
        assert (refused.kind, refused.skipped_reason, refused.data) == (AttachmentKind.SKIPPED, BINARY, b"")
    assert image_type(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert image_type(b"GIF89a....") == "image/gif"
    assert image_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"


def test_then_the_extension_then_the_size() -> None:
    fake = LIMITS.classify("photo.jpg", b"not really a jpeg")
    assert (fake.kind, fake.skipped_reason) == (AttachmentKind.SKIPPED, NOT_AN_IMAGE)
    big_text = LIMITS.classify("dump.log", b"x" * (MB + 1))
    assert big_text.skipped_reason == "it is 1 MB, over the 1 MB limit for text files"
    big_image = AttachmentLimits(MB, 16).classify("shot.png", PNG)
    assert big_image.skipped_reason == "it is 56 bytes, over the 16 bytes limit for images"
    assert LIMITS.classify("shot.png", PNG).kind is AttachmentKind.IMAGE


@pytest.mark.parametrize(("filename", "size", "refused"), [
    ("main.py", 300_000, ""),
    ("app.ts", 10, ""),
    ("Dockerfile", 10, ""),
    ("NOTES", 10, ""),  # no extension: downloaded, then judged by its bytes
    ("fix.patch", 10, ""),
    ("shot.PNG", 2 * MB, ""),
    ("data.weird", 10, ""),  # unknown name: the content decides
    ("big.log", 5 * MB, "it is 5 MB, over the 1 MB limit for text files"),
    ("huge.png", 6 * MB, "it is 6 MB, over the 5 MB limit for images"),
    ("blob.weird", 6 * MB, "it is 6 MB, over the 5 MB limit for files"),
    ("tool.exe", 10, "a .exe file is not something I can read (text, source code and PNG, JPEG, GIF or WebP "
                     "images only)"),
])
def test_before_a_download_only_the_name_and_the_declared_size(filename: str, size: int, refused: str) -> None:
    assert (LIMITS.refuse_before_download(filename, size) or "") == refused


def test_download_caps_follow_what_the_name_says() -> None:
    assert (named_kind("a.py"), named_kind("a.PNG"), named_kind("a.weird")) == (
        AttachmentKind.TEXT, AttachmentKind.IMAGE, None)
    assert [LIMITS.download_cap(n) for n in ("a.py", "a.png", "a.weird")] == [MB, 5 * MB, 5 * MB]
    assert unreadable_format("build.tar.gz").startswith("a .gz file")

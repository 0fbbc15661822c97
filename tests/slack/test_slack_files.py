"""Files shared with a message: classification (pure), downloads through the bot token, and the
whole path into the model's prompt."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.common.attachments import BINARY, unreadable_format
from adapters.slack.files import SIGN_IN, FileFetcher, is_sign_in_page
from bot.config import Settings
from bot.domain import AttachmentKind
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack
from tests.slack.harness import answer_part, running_bot, wait_for_answer

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
SOURCE = b"def retry(fn, attempts=3):\n    for i in range(attempts):\n        try:\n            return fn()\n" \
         b"        except OSError:\n            continue\n"
SIGN_IN_PAGE = b"<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in</body></html>"


# the sign-in page (the rest of the policy: tests/core/test_attachments.py) -------------------------------


def test_a_sign_in_page_is_never_file_content() -> None:
    for name, content_type in (("retry.py", "text/html; charset=utf-8"), ("retry.py", ""), ("notes", "")):
        assert is_sign_in_page(name, SIGN_IN_PAGE, content_type)
    assert not is_sign_in_page("index.html", SIGN_IN_PAGE, "text/html")
    assert not is_sign_in_page("page.vue", b"<html><template/></html>", "")


# downloads ------------------------------------------------------------------------------------------


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def fetcher(slack: FakeSlack, session: aiohttp.ClientSession, token: str | None = None, **caps: int) -> FileFetcher:
    token = token or slack.config.bot_token
    client = AsyncWebClient(token=token, base_url=slack.api_url)
    return FileFetcher(lambda: session, token, client, max_text_bytes=caps.get("text", 4096),
                       max_image_bytes=caps.get("image", 8192))


async def test_download_uses_the_bot_token(slack: FakeSlack, session: aiohttp.ClientSession) -> None:
    file = slack.add_file("retry.py", SOURCE, "text/plain", "python")
    got = await fetcher(slack, session).fetch(file)
    assert (got.kind, got.data, got.filename) == (AttachmentKind.TEXT, SOURCE, "retry.py")
    assert [d.authorized for d in slack.file_downloads] == [True]


@pytest.mark.parametrize("failure", ["redirect", "forbidden"])
async def test_a_refused_download_is_a_skip_note_not_content(
        slack: FakeSlack, session: aiohttp.ClientSession, failure: str) -> None:
    slack.config.file_auth_failure = failure  # type: ignore[assignment]
    file = slack.add_file("retry.py", SOURCE, "text/plain", "python")
    got = await fetcher(slack, session, token="xoxb-revoked").fetch(file)
    assert (got.kind, got.skipped_reason, got.data) == (AttachmentKind.SKIPPED, SIGN_IN, b"")
    assert [d.authorized for d in slack.file_downloads] == [False]


async def test_size_caps_apply_before_and_during_the_download(
        slack: FakeSlack, session: aiohttp.ClientSession) -> None:
    big = slack.add_file("big.log", b"x" * 5000)
    got = await fetcher(slack, session).fetch(big)
    assert got.kind is AttachmentKind.SKIPPED and got.skipped_reason == "it is 5 KB, over the 4 KB limit for text files"
    assert slack.file_downloads == []  # the declared size was enough to decide
    lying = dict(slack.add_file("small.log", b"y" * 5000), size=10)
    got = await fetcher(slack, session).fetch(lying)
    assert got.kind is AttachmentKind.SKIPPED and "over the 4 KB limit" in got.skipped_reason
    image = slack.add_file("shot.png", PNG, "image/png", "png")
    assert (await fetcher(slack, session, image=16).fetch(image)).kind is AttachmentKind.SKIPPED
    assert (await fetcher(slack, session).fetch(image)).kind is AttachmentKind.IMAGE


async def test_binaries_are_skipped_and_known_formats_are_not_even_downloaded(
        slack: FakeSlack, session: aiohttp.ClientSession) -> None:
    archive = slack.add_file("build.zip", b"PK\x03\x04" + b"\x00" * 20, "application/zip", "zip")
    blob = slack.add_file("blob.dat", b"\x00\x01\x02binary", "text/plain", "text")
    got = await fetcher(slack, session).fetch_all([archive, blob])
    assert [(a.kind, a.skipped_reason) for a in got] == [(AttachmentKind.SKIPPED, unreadable_format("build.zip")),
                                                         (AttachmentKind.SKIPPED, BINARY)]
    assert [d.file_id for d in slack.file_downloads] == [blob["id"]]


async def test_the_token_is_only_sent_to_slack(slack: FakeSlack, session: aiohttp.ClientSession) -> None:
    file = dict(slack.add_file("retry.py", SOURCE), url_private_download="https://files.example.net/retry.py")
    got = await fetcher(slack, session).fetch(file)
    assert (got.kind, got.skipped_reason) == (AttachmentKind.SKIPPED, "its download link does not point at Slack")
    trusted = fetcher(slack, session).trusted
    assert trusted("https://files.slack.com/files-pri/T1-F1/x.py") and not trusted("https://slack.com.evil.io/x")


async def test_a_file_event_without_urls_is_looked_up_with_files_info(
        slack: FakeSlack, session: aiohttp.ClientSession) -> None:
    file = slack.add_file("retry.py", SOURCE, "text/plain", "python")
    got = await fetcher(slack, session).fetch({"id": file["id"], "file_access": "check_file_info"})
    assert got.data == SOURCE and len(slack.calls("files.info")) == 1


# end to end ------------------------------------------------------------------------------------------


async def test_shared_files_reach_the_prompt_or_come_back_as_notes(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    fake_seed.script(Reply(content="The retry loop swallows the last error."))
    files = [
        slack.add_file("retry.py", SOURCE, "text/plain", "python"),
        slack.add_file("big.log", b"line\n" * 1000, "text/plain", "text"),
        slack.add_file("blob.dat", b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 64, "text/plain", "text"),
        slack.add_file("diagram.png", PNG, "image/png", "png"),
        # A link that lands on Slack's sign-in page, as an unauthenticated download would.
        dict(slack.add_file("secret.py", b"TOKEN = 'x'\n"), url_private_download=f"{slack.base_url}/signin",
             url_private=f"{slack.base_url}/signin"),
    ]
    async with running_bot(slack, settings_for, tmp_path, SEEDBOT_MAX_ATTACHMENT_BYTES=2048) as bot:
        shared = slack.events.file_share("<@UBOT> what is wrong here?", files)
        async with slack.sender(bot.events_url) as sender:
            assert (await sender.post_event(shared)).status == 200
        [reply] = await wait_for_answer(slack, "D1", shared["event"]["ts"])

    assert answer_part(reply.visible_text) == "The retry loop swallows the last error."
    user_turn = fake_seed.completions[-1].body["messages"][-1]
    parts = user_turn["content"]
    text = parts[0]["text"]
    assert text.startswith("what is wrong here?")
    assert SOURCE.decode().rstrip() in text and "File `retry.py`" in text
    assert "line\nline" not in text and "ELF" not in text and "Sign in" not in text and "TOKEN" not in text
    assert [p["image_url"]["url"][:22] for p in parts[1:]] == ["data:image/png;base64,"]
    footer = reply.visible_text.rsplit("\n", 1)[-1]
    assert "big.log was skipped: it is 5 KB, over the 2 KB limit" in footer
    assert "blob.dat was skipped: it looks like a binary file, not text" in footer
    assert "secret.py was skipped: Slack sent a sign-in page instead of the file" in footer
    assert json.dumps(user_turn).count("data:image/png") == 1


@pytest.mark.parametrize("size", ["abc", {"bytes": 10}, -5, True, "12"])
async def test_a_file_with_a_malformed_size_is_a_skip_note(
        slack: FakeSlack, session: aiohttp.ClientSession, size: object) -> None:
    file = dict(slack.add_file("retry.py", SOURCE, "text/plain", "python"), size=size)
    got = await fetcher(slack, session).fetch(file)
    assert (got.kind, got.size, got.skipped_reason) == (AttachmentKind.SKIPPED, 0,
                                                        "Slack described it with an unreadable size")
    assert slack.file_downloads == []


async def test_a_question_with_a_malformed_file_is_still_answered(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    fake_seed.script(Reply(content="The loop never retries."))
    files = [dict(slack.add_file("retry.py", SOURCE, "text/plain", "python"), size="abc"),
             dict(slack.add_file("notes.txt", b"notes\n", "text/plain", "text"), size={"bytes": 6}),
             slack.add_file("main.py", SOURCE, "text/plain", "python")]
    async with running_bot(slack, settings_for, tmp_path) as bot:
        shared = slack.events.file_share("<@UBOT> why?", files)
        async with slack.sender(bot.events_url) as sender:
            assert (await sender.post_event(shared)).status == 200
        [reply] = await wait_for_answer(slack, "D1", shared["event"]["ts"])
    assert answer_part(reply.visible_text) == "The loop never retries."
    footer = reply.visible_text.rsplit("\n", 1)[-1]
    assert "retry.py was skipped: Slack described it with an unreadable size" in footer
    assert "notes.txt was skipped: Slack described it with an unreadable size" in footer
    assert "File `main.py`" in fake_seed.completions[-1].body["messages"][-1]["content"]

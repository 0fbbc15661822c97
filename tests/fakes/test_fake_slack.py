"""The fake Slack, exercised with the real slack_sdk and slack_bolt clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import FakeSlack

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


async def api_error(call: Awaitable[object]) -> str:
    with pytest.raises(SlackApiError) as info:
        await call
    return info.value.response["error"]


# Web API: identity and auth -----------------------------------------------------------------------


async def test_auth_test_identifies_the_bot_and_checks_tokens(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    me = await client.auth_test()
    assert (me["user_id"], me["bot_id"], me["team_id"]) == ("UBOT", "BBOT", "T1")

    wrong = AsyncWebClient(token="xoxb-wrong", base_url=slack.api_url)
    app_level = AsyncWebClient(token=slack.config.app_token, base_url=slack.api_url)
    anonymous = AsyncWebClient(base_url=slack.api_url)
    assert await api_error(wrong.auth_test()) == "invalid_auth"
    assert await api_error(app_level.auth_test()) == "not_allowed_token_type"
    assert await api_error(anonymous.auth_test()) == "not_authed"
    assert await api_error(client.apps_connections_open(app_token=slack.config.bot_token)) == (
        "not_allowed_token_type"
    )
    assert await api_error(client.api_call("chat.teleport", json={"channel": "C1"})) == "unknown_method"

    first = slack.calls("auth.test")[0]
    assert first.headers["Authorization"] == "Bearer xoxb-fake-bot-token"
    assert [c.error for c in slack.calls("auth.test")] == [
        None,
        "invalid_auth",
        "not_allowed_token_type",
        "not_authed",
    ]


async def test_users_info_and_conversations_open(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.add_user("U7", "grace", real_name="Grace Hopper", display_name="grace")
    user = (await client.users_info(user="U7"))["user"]
    assert (user["name"], user["real_name"], user["profile"]["display_name"], user["is_bot"]) == (
        "grace",
        "Grace Hopper",
        "grace",
        False,
    )
    assert (await client.users_info(user="UBOT"))["user"]["is_bot"] is True
    assert await api_error(client.users_info(user="U404")) == "user_not_found"
    assert slack.calls("users.info")[0].params == {"user": "U7"}  # sent as GET query parameters

    opened = await client.conversations_open(users="U7")
    again = await client.conversations_open(users=["U7"])
    assert opened["channel"]["id"] == again["channel"]["id"] == slack.dm_channel("U7") == "D7"
    assert (opened["already_open"], again["already_open"]) == (False, True)
    assert await api_error(client.conversations_open(users="U404")) == "user_not_found"


# Web API: messages ---------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
async def test_post_and_update_messages(slack: FakeSlack, client: AsyncWebClient) -> None:
    parent = slack.events.app_mention("how do I rebase?", channel="C1")["event"]
    first = await client.chat_postMessage(channel="C1", text="thinking…", thread_ts=parent["ts"])
    second = await client.chat_postMessage(channel="C1", markdown_text="**done**", thread_ts=parent["ts"])
    assert first["ts"] < second["ts"]
    assert first["message"]["bot_id"] == "BBOT" and first["message"]["thread_ts"] == parent["ts"]
    assert slack.calls("chat.postMessage")[0].content_type == "application/json"

    updated = await client.chat_update(channel="C1", ts=first["ts"], text="Use `git rebase -i`.")
    assert updated["text"] == "Use `git rebase -i`."
    assert slack.final_text("C1", first["ts"]) == "Use `git rebase -i`."
    assert slack.final_text("C1", second["ts"]) == "**done**"
    message = slack.message("C1", first["ts"])
    assert message is not None and [r.method for r in message.revisions] == [
        "chat.postMessage",
        "chat.update",
    ]
    assert len(message.update_times) == 1 and message.update_times[0] >= message.revisions[0].at

    thread = slack.thread("C1", parent["ts"])
    assert [m.ts for m in thread] == [parent["ts"], first["ts"], second["ts"]]
    assert [m.is_bot for m in thread] == [False, True, True]

    assert await api_error(client.chat_update(channel="C1", ts="1.000000", text="x")) == "message_not_found"
    assert (
        await api_error(client.chat_update(channel="C1", ts=parent["ts"], text="x")) == "cant_update_message"
    )
    conflict = client.chat_postMessage(channel="C1", text="a", markdown_text="b")
    assert await api_error(conflict) == "markdown_text_conflict"
    assert (
        await api_error(client.chat_postMessage(channel="C1", markdown_text="x" * 12_001)) == "msg_too_long"
    )
    assert await api_error(client.chat_postMessage(channel="C1", text="")) == "no_text"


async def test_form_encoded_calls_are_parsed_like_json(slack: FakeSlack) -> None:
    blocks = '[{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]'
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{slack.api_url}chat.postMessage",
            data={"token": slack.config.bot_token, "channel": "C9", "text": "hi", "blocks": blocks},
        ) as res:
            body = await res.json()
    assert body["ok"] is True
    call = slack.calls("chat.postMessage")[0]
    assert call.content_type == "application/x-www-form-urlencoded"
    assert call.params["blocks"][0]["text"]["text"] == "hi" and "token" not in call.params
    assert slack.messages("C9")[0].blocks == call.params["blocks"]


# Web API: streaming --------------------------------------------------------------------------------


async def test_chat_stream_helper_streams_end_to_end(slack: FakeSlack, client: AsyncWebClient) -> None:
    question = slack.events.message("explain asyncio")["event"]
    streamer = await client.chat_stream(channel=question["channel"], thread_ts=question["ts"], buffer_size=20)
    pieces = ["Asyncio ", "runs coroutines ", "on an event loop, ", "one at a time ", "per thread."]
    for piece in pieces:
        await streamer.append(markdown_text=piece)
    done = await streamer.stop(markdown_text=" Done.", blocks=[{"type": "divider"}])

    ts = streamer.ts
    assert ts is not None and done["ts"] == ts
    assert slack.final_text("D1", ts) == "".join(pieces) + " Done."
    assert done["message"]["text"] == slack.final_text("D1", ts)
    methods = [c.method for c in slack.calls() if c.method.startswith("chat.")]
    assert methods[0] == "chat.startStream" and methods[-1] == "chat.stopStream"
    assert "chat.appendStream" in methods and len(methods) < len(pieces) + 1  # the helper buffers
    message = slack.message("D1", ts)
    assert message is not None
    assert (message.stream_state, message.thread_ts, message.blocks) == (
        "stopped",
        question["ts"],
        [{"type": "divider"}],
    )

    late = client.chat_appendStream(channel="D1", ts=ts, markdown_text="more")
    assert await api_error(late) == "message_not_in_streaming_state"
    assert await api_error(client.chat_stopStream(channel="D1", ts=ts)) == "message_not_in_streaming_state"
    unknown = client.chat_appendStream(channel="D1", ts="1.000001", markdown_text="x")
    assert await api_error(unknown) == "message_not_found"
    plain = await client.chat_postMessage(channel="D1", text="not streamed")
    never = client.chat_appendStream(channel="D1", ts=plain["ts"], markdown_text="x")
    assert await api_error(never) == "message_not_in_streaming_state"


async def test_stream_rules_limits_and_expiry(slack: FakeSlack, client: AsyncWebClient) -> None:
    in_channel = client.chat_startStream(channel="C1", thread_ts="1.000000", markdown_text="hi")
    assert await api_error(in_channel) == "missing_recipient_user_id"
    started = await client.chat_startStream(
        channel="C1",
        thread_ts="1.000000",
        markdown_text="Part one. ",
        recipient_user_id="U1",
        recipient_team_id="T1",
    )
    ts = started["ts"]
    assert await api_error(client.chat_appendStream(channel="C1", ts=ts, markdown_text="x" * 12_001)) == (
        "msg_too_long"
    )
    await client.chat_appendStream(channel="C1", ts=ts, markdown_text="Part two.")

    slack.expire_stream("C1", ts)
    expired = client.chat_appendStream(channel="C1", ts=ts, markdown_text=" Lost?")
    assert await api_error(expired) == "message_not_in_streaming_state"
    assert slack.final_text("C1", ts) == "Part one. Part two."  # what was streamed stays visible
    await client.chat_update(channel="C1", ts=ts, markdown_text="Part one. Part two. Recovered.")
    assert slack.final_text("C1", ts) == "Part one. Part two. Recovered."

    slack.config.stream_ttl = 0.05
    short = await client.chat_startStream(channel="D1", thread_ts="1.000000", markdown_text="a")
    await asyncio.sleep(0.1)
    timed_out = client.chat_appendStream(channel="D1", ts=short["ts"], markdown_text="b")
    assert await api_error(timed_out) == "message_not_in_streaming_state"

    slack.config.streaming_enabled = False
    streamer = await client.chat_stream(channel="D1", thread_ts="1.000000")
    assert await api_error(streamer.stop(markdown_text="fallback")) == "unknown_method"


# Web API: assistant threads ------------------------------------------------------------------------


async def test_assistant_thread_status_prompts_and_title(slack: FakeSlack, client: AsyncWebClient) -> None:
    await client.assistant_threads_setStatus(channel_id="D1", thread_ts="5.000000", status="is thinking…")
    await client.assistant_threads_setSuggestedPrompts(
        channel_id="D1", thread_ts="5.000000", prompts=[{"title": "Review", "message": "Review my diff"}]
    )
    await client.assistant_threads_setTitle(channel_id="D1", thread_ts="5.000000", title="Rebasing")
    thread = slack.assistant_thread("D1", "5.000000")
    assert (thread.status, thread.title, thread.prompts) == (
        "is thinking…",
        "Rebasing",
        [{"title": "Review", "message": "Review my diff"}],
    )
    missing = client.api_call("assistant.threads.setStatus", json={"channel_id": "D1", "status": "x"})
    assert await api_error(missing) == "invalid_arguments"

    await client.chat_postMessage(channel="D1", thread_ts="5.000000", text="answer")
    assert slack.assistant_thread("D1", "5.000000").status == ""  # a reply clears the status


# Files ---------------------------------------------------------------------------------------------


async def test_file_download_needs_the_bot_token(slack: FakeSlack) -> None:
    file = slack.add_file("fix.diff", b"--- a\n+++ b\n", "text/x-diff", "diff")
    assert file["size"] == 12 and file["url_private"].startswith(slack.base_url)
    auth = {"Authorization": f"Bearer {slack.config.bot_token}"}
    async with aiohttp.ClientSession() as session:
        async with session.get(file["url_private_download"], headers=auth) as res:
            assert (res.status, await res.read()) == (200, b"--- a\n+++ b\n")
        async with session.get(file["url_private"], allow_redirects=False) as res:
            assert res.status == 302
        async with session.get(file["url_private"]) as res:
            # The classic bug: following the redirect yields a 200 HTML page instead of the file.
            assert res.status == 200 and res.content_type == "text/html"
        slack.config.file_auth_failure = "forbidden"
        async with session.get(file["url_private"], headers={"Authorization": "Bearer xoxb-other"}) as res:
            assert res.status == 403
    assert [d.authorized for d in slack.file_downloads] == [True, False, False, False]


async def test_files_upload_v2_stores_bytes_and_shares_in_thread(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    parent = slack.events.app_mention("spend chart please", channel="C1")["event"]
    result = await client.files_upload_v2(
        content=PNG,
        filename="spend.png",
        title="Spend",
        channel="C1",
        initial_comment="Here it is",
        thread_ts=parent["ts"],
    )
    file_id = result["file"]["id"]
    stored = slack.file(file_id)
    assert stored.content == PNG and stored.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert (stored.title, stored.declared_length, stored.mimetype) == ("Spend", len(PNG), "image/png")
    reply = slack.thread("C1", parent["ts"])[-1]
    assert (reply.text, reply.is_bot, reply.files[0]["id"]) == ("Here it is", True, file_id)
    assert [c.method for c in slack.calls()] == ["files.getUploadURLExternal", "files.completeUploadExternal"]

    bad = client.files_completeUploadExternal(files=[{"id": "F404"}], channel_id="C1")
    assert await api_error(bad) == "file_not_found"


# Failure injection ---------------------------------------------------------------------------------


async def test_rate_limit_is_retried_by_the_sdk_handler(slack: FakeSlack) -> None:
    slack.inject_rate_limit(method="chat.postMessage", times=1, retry_after=1)
    patient = AsyncWebClient(
        token=slack.config.bot_token,
        base_url=slack.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    posted = await patient.chat_postMessage(channel="C1", text="eventually")
    assert posted["ok"] is True
    refused, accepted = slack.calls("chat.postMessage")
    assert (refused.status, refused.error, accepted.status) == (429, "ratelimited", 200)
    assert accepted.at - refused.at >= 1.0  # Retry-After was honoured
    assert len(slack.messages("C1")) == 1

    slack.inject_rate_limit("chat.update", times=1, retry_after=7)
    impatient = AsyncWebClient(token=slack.config.bot_token, base_url=slack.api_url, retry_handlers=[])
    with pytest.raises(SlackApiError) as info:
        await impatient.chat_update(channel="C1", ts=posted["ts"], text="x")
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] == "7"


async def test_injected_errors_and_latency(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.inject_error("chat.postMessage", "channel_not_found", times=2)
    assert await api_error(client.chat_postMessage(channel="C1", text="a")) == "channel_not_found"
    assert await api_error(client.chat_postMessage(channel="C1", text="b")) == "channel_not_found"
    await client.chat_postMessage(channel="C1", text="c")
    assert [m.text for m in slack.messages("C1")] == ["c"]

    slack.set_latency(0.2, "auth.test")
    started = time.monotonic()
    await client.auth_test()
    assert time.monotonic() - started >= 0.2


async def test_refused_posts_and_deleted_messages_get_slacks_errors(slack: FakeSlack, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="C1", text="before")
    slack.refuse_posts("C1", "is_archived")
    assert await api_error(client.chat_postMessage(channel="C1", text="a")) == "is_archived"
    assert await api_error(client.chat_update(channel="C1", ts=posted["ts"], text="b")) == "is_archived"
    assert await api_error(client.chat_startStream(channel="C1", thread_ts=posted["ts"], recipient_user_id="U1",
                                                   recipient_team_id="T1", markdown_text="c")) == "is_archived"
    [refused] = slack.calls("chat.update")
    assert (refused.status, refused.response) == (200, {"ok": False, "error": "is_archived"})
    await client.chat_postMessage(channel="C2", text="elsewhere")  # other channels are not refused
    assert (await client.conversations_open(channel="C1"))["ok"]  # nor is anything but posting

    stream = await client.chat_startStream(channel="C2", thread_ts="1.000001", recipient_user_id="U1",
                                           recipient_team_id="T1", markdown_text="streaming")
    slack.delete_message("C2", stream["ts"])
    assert await api_error(client.chat_appendStream(channel="C2", ts=stream["ts"], markdown_text="more")) \
        == "message_not_found"
    assert [m.text for m in slack.messages("C1")] == ["before"] and [m.text for m in slack.messages("C2")] == [
        "elsewhere"]


async def test_wait_for_returns_value_or_times_out(slack: FakeSlack, client: AsyncWebClient) -> None:
    async def post_later() -> None:
        await asyncio.sleep(0.05)
        await client.chat_postMessage(channel="C2", text="late")

    task = asyncio.create_task(post_later())
    messages = await slack.wait_for(lambda: slack.messages("C2"), timeout=2)
    await task
    assert messages[0].text == "late"
    with pytest.raises(TimeoutError):
        await slack.wait_for(lambda: slack.messages("C3"), timeout=0.1)

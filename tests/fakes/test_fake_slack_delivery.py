"""The fake Slack's two ways of delivering events (Socket Mode and signed HTTP), exercised with the real
slack_sdk and slack_bolt clients."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltRequest, AsyncRespond, AsyncSay
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import FakeSlack

# Socket Mode ---------------------------------------------------------------------------------------


async def test_socket_mode_client_gets_hello_envelopes_and_acks(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    socket = SocketModeClient(app_token=slack.config.app_token, web_client=client)
    raw_types: list[str] = []
    requests: list[SocketModeRequest] = []

    async def on_message(_: object, message: dict, raw: str | None) -> None:
        raw_types.append(message.get("type", ""))

    async def on_request(sm: SocketModeClient, req: SocketModeRequest) -> None:
        requests.append(req)
        await sm.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))

    socket.message_listeners.append(on_message)
    socket.socket_mode_request_listeners.append(on_request)
    with pytest.raises(RuntimeError):
        await slack.socket_send_event(slack.events.message("nobody listens"))
    try:
        await socket.connect()
        await slack.wait_for_socket()
        await slack.wait_for(lambda: "hello" in raw_types)
        # The SDK pings right after connecting and only trusts the link once the pong comes back.
        await slack.wait_for(lambda: socket.last_ping_pong_time is not None)

        payload = slack.events.app_mention("hi", channel="C1")
        envelope_id = await slack.socket_send_event(payload, retry_attempt=1, retry_reason="timeout")
        ack = await slack.wait_for_ack(envelope_id)
        assert 0 <= ack.latency < 1.0
        event_request = requests[0]
        assert (event_request.type, event_request.retry_attempt, event_request.retry_reason) == (
            "events_api",
            1,
            "timeout",
        )
        assert event_request.payload["event"]["text"] == "<@UBOT> hi"

        command_id = await slack.socket_send_slash_command(slack.events.slash_command("usage"))
        await slack.wait_for_ack(command_id)
        assert (requests[1].type, requests[1].payload["text"], requests[1].accepts_response_payload) == (
            "slash_commands",
            "usage",
            True,
        )

        await slack.socket_refresh()
        await slack.wait_for(lambda: slack.socket_connections_total == 2 and slack.socket_connections == 1)
        after = await slack.socket_send_event(slack.events.message("still there?"))
        await slack.wait_for_ack(after)
        assert len(slack.calls("apps.connections.open")) == 2
    finally:
        await socket.close()


async def test_bolt_socket_mode_app_replies_in_thread(slack: FakeSlack, client: AsyncWebClient) -> None:
    app = AsyncApp(client=client)

    @app.event("app_mention")
    async def mention(event: dict, say: AsyncSay) -> None:
        await say(text=f"you said: {event['text']}", thread_ts=event["ts"])

    handler = AsyncSocketModeHandler(app, slack.config.app_token)
    try:
        await handler.connect_async()
        await slack.wait_for_socket()
        payload = slack.events.app_mention("ping", channel="C5")
        envelope_id = await slack.socket_send_event(payload)
        await slack.wait_for_ack(envelope_id)
        replies = await slack.wait_for(lambda: [m for m in slack.messages("C5") if m.is_bot])
        assert replies[0].text == "you said: <@UBOT> ping"
        assert replies[0].thread_ts == payload["event"]["ts"]
    finally:
        await handler.close_async()


# HTTP mode -----------------------------------------------------------------------------------------


@pytest.fixture
async def bolt_http(slack: FakeSlack, client: AsyncWebClient) -> AsyncIterator[tuple[str, list[dict]]]:
    app = AsyncApp(client=client, signing_secret=slack.config.signing_secret)
    seen: list[dict] = []

    @app.event("app_mention")
    async def mention(event: dict, say: AsyncSay, request: AsyncBoltRequest) -> None:
        seen.append({"event": event, "retry_num": request.headers.get("x-slack-retry-num", [None])[0]})
        await say(text="on it", thread_ts=event["ts"])

    @app.event("message")
    async def message(event: dict) -> None:
        seen.append({"event": event})

    @app.command("/seed")
    async def seed(ack: AsyncAck, respond: AsyncRespond, command: dict) -> None:
        await ack()
        await respond(text=f"usage for {command['user_id']}", response_type="ephemeral")

    runner = web.AppRunner(app.web_app(path="/slack/events"))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events", seen
    finally:
        await runner.cleanup()


async def test_signed_events_reach_bolt_and_forgeries_do_not(
    slack: FakeSlack, bolt_http: tuple[str, list[dict]]
) -> None:
    url, seen = bolt_http
    async with slack.sender(url) as sender:
        ok = await sender.post_event(slack.events.app_mention("review this", channel="C1"))
        assert ok.status == 200 and not ok.timed_out
        retried = await sender.post_event(
            slack.events.app_mention("again", channel="C1"), retry_num=1, retry_reason="http_timeout"
        )
        assert retried.status == 200
        forged = await sender.post_event(slack.events.app_mention("evil"), signature="v0=" + "0" * 64)
        stale = await sender.post_event(slack.events.app_mention("old"), timestamp=int(time.time()) - 360)
        challenge = await sender.post_event(slack.events.url_verification("c-123"))
        assert challenge.status == 200 and "c-123" in challenge.body
        assert (forged.status, stale.status) == (401, 401)

    assert [s["event"]["text"] for s in seen] == ["<@UBOT> review this", "<@UBOT> again"]
    assert [s["retry_num"] for s in seen] == [None, "1"]
    assert [m.text for m in slack.messages("C1") if m.is_bot] == ["on it", "on it"]


async def test_file_share_and_slash_command_over_http(
    slack: FakeSlack, bolt_http: tuple[str, list[dict]]
) -> None:
    url, seen = bolt_http
    diff = slack.add_file("change.patch", b"diff --git a/x b/x\n", "text/x-diff", "patch")
    shared = slack.events.file_share("please review", [diff], user="U2")
    assert shared["event"]["channel"] == "D2" and shared["event"]["subtype"] == "file_share"
    async with slack.sender(url) as sender:
        assert (await sender.post_event(shared)).status == 200
        form = slack.events.slash_command("budget", user_id="U2")
        assert (await sender.post_slash_command(form)).status == 200

    assert seen[0]["event"]["files"][0]["url_private_download"] == diff["url_private_download"]
    assert slack.messages("D2")[0].files[0]["id"] == diff["id"]
    post = (await slack.wait_for(lambda: slack.response_url_posts))[0]
    assert post.url == form["response_url"]
    assert post.body["text"] == "usage for U2" and post.body["response_type"] == "ephemeral"

"""The HTTP edge answers, never crashes (point 7 of the failure contract): malformed signature
headers 401, undecodable bodies 400, signed malformed payloads 200 with one WARNING and no
traceback, stalled connections dropped, a replayed signed slash command run once."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.slack.http_edge import event_callback_problem, examine_payload, header_problem, needs_bolt
from bot.config import Settings
from bot.storage.tables import BudgetChange
from tests.books import read_books
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack
from tests.slack.harness import mention_answered, running_bot

SIG = "v0=" + "a" * 64


def test_header_checks() -> None:
    assert header_problem({"X-Slack-Request-Timestamp": "1700000000", "X-Slack-Signature": SIG}) is None
    assert header_problem({"X-Slack-Request-Timestamp": "abc", "X-Slack-Signature": SIG})
    assert header_problem({"X-Slack-Request-Timestamp": "1700000000", "X-Slack-Signature": "v0=zz"})
    assert header_problem({})


def test_payload_shapes() -> None:
    good = {"type": "event_callback", "event": {"type": "app_mention", "text": "hi"}}
    examined = examine_payload(json.dumps(good), "application/json")
    assert examined.problem is None and examined.envelope == good and event_callback_problem(good) is None
    assert examine_payload("command=%2Fseed&text=spend", "application/x-www-form-urlencoded").problem is None
    for bad in ("[1,2,3]", '"x"', "null", "{{", json.dumps({**good, "event": "abc"}), json.dumps({"type": 5})):
        assert examine_payload(bad, "application/json").problem, bad
    # An event_callback's fields are checked after its ack, where Bolt would read it whole: before.
    for fields in ({"authorizations": "x"}, {"event": {"type": "message", "files": ["x"]}},
                   {"event": {"type": "message", "ts": 5}}, {"team_id": 7}):
        bad = {**good, **fields}
        examined = examine_payload(json.dumps(bad), "application/json")
        assert examined.problem is None and event_callback_problem(bad), fields
        assert examine_payload(json.dumps(bad), "text/plain").problem, fields
    assert examine_payload(json.dumps({"type": "url_verification", "challenge": 5}), "application/json").problem
    # Bolt's own payloads are checked whole: an `event` that is not an object broke its middleware.
    assert examine_payload(json.dumps({"type": "url_verification", "challenge": "c", "event": 5}),
                           "application/json").problem
    # Nested past the interpreter's stack, json raises RecursionError, which became a 500 and a traceback.
    assert examine_payload('{"type": "event_callback", "x": ' + "[" * 5000 + "]" * 5000 + "}", "application/json"
                           ).problem == "body is not JSON"
    assert examine_payload("%%%===", "application/x-www-form-urlencoded").problem
    assert examine_payload("payload=%7B%7B", "application/x-www-form-urlencoded").problem


def test_only_mentions_and_channel_messages_skip_bolt(slack: FakeSlack) -> None:
    mention = slack.events.app_mention("hi")
    examined = examine_payload(json.dumps(mention), "application/json")
    assert examined.event_callback and examined.envelope == mention and not needs_bolt(mention)
    channel_message = {**mention, "event": {**mention["event"], "type": "message", "channel_type": "channel"}}
    assert not needs_bolt(channel_message)
    # A DM may be an Assistant thread (Bolt's middleware tells); other events have Bolt listeners of their own.
    for event in ({"type": "message", "channel_type": "im"}, {"type": "message"}, {"type": "app_home_opened"},
                  {"type": "assistant_thread_started"}):
        assert needs_bolt({**mention, "event": event}), event


def hostile_payloads(slack: FakeSlack) -> dict[str, bytes]:
    base = slack.events.app_mention("hi")
    event = base["event"]
    return {
        "list": b"[1,2,3]", "string": b'"x"', "null": b"null", "number": b"5", "not json": b"{{{",
        "event string": json.dumps({**base, "event": "abc"}).encode(),
        "event list": json.dumps({**base, "event": [1]}).encode(),
        "type int": json.dumps({**base, "type": 5}).encode(),
        "text int": json.dumps({**base, "event": {**event, "text": 5}}).encode(),
        "user list": json.dumps({**base, "event": {**event, "user": [1]}}).encode(),
        "team object": json.dumps({**base, "team_id": {"a": 1}}).encode(),
        "authorizations string": json.dumps({**base, "authorizations": "x"}).encode(),
        "files string": json.dumps({**base, "event": {**event, "files": "x"}}).encode(),
        "ts int": json.dumps({**base, "event": {**event, "ts": 5}}).encode(),
        "blocks string": json.dumps({**base, "event": {**event, "blocks": "x"}}).encode(),
        "nested too deep": b'{"type":"event_callback","event":{"type":"message","x":' + b"[" * 5000 + b"]" * 5000
                           + b"}}",
        "url_verification with event int": json.dumps({"type": "url_verification", "challenge": "c",
                                                       "event": 5}).encode(),
    }


def odd_contexts(slack: FakeSlack) -> dict[str, bytes]:
    """Signed events whose `app_context`/`context` holds `entities` that are not a list: read as no context."""
    base = slack.events.app_mention("hi")
    dm = {**base["event"], "type": "message", "channel": "D1", "channel_type": "im"}
    return {
        "DM message": json.dumps({**base, "event": {**dm, "app_context": {"entities": 5}}}).encode(),
        "app_context_changed": json.dumps({**base, "event": {"type": "app_context_changed", "user": "U2",
                                                             "context": {"entities": 5}}}).encode(),
        "app_home_opened": json.dumps({**base, "event": {"type": "app_home_opened", "user": "U2", "tab": "messages",
                                                         "channel": "D1", "app_context": {"entities": 7}}}).encode(),
    }


@pytest.mark.parametrize("name", ["DM message", "app_context_changed", "app_home_opened"])
async def test_entities_that_are_not_a_list_are_no_context_not_a_traceback(
        name: str, slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    fake_seed.script(Reply(content="Still here."))
    async with running_bot(slack, settings_for, tmp_path) as bot, slack.sender(bot.events_url) as sender:
        caplog.clear()
        assert (await sender.post_raw(odd_contexts(slack)[name], "application/json")).status == 200
        await bot.idle()
        assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING], \
            [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        if name == "DM message":  # answered, without a context
            assert len(fake_seed.requests) == 1


async def test_slack_http_edge_answers_every_malformed_request_without_a_traceback(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    fake_seed.script(Reply(content="Still here."))
    async with running_bot(slack, settings_for, tmp_path) as bot, slack.sender(bot.events_url) as sender:
        caplog.clear()
        for header, value in (("X-Slack-Request-Timestamp", "abc"), ("X-Slack-Signature", "zzz"),
                              ("X-Slack-Request-Timestamp", "")):
            delivery = await sender.post_raw(b"{}", "application/json", headers={header: value})
            assert delivery.status == 401, (header, value)
        assert (await sender.post_raw("{}".encode("utf-16"), "application/json; charset=utf-16")).status == 400
        assert (await sender.post_raw(b"\xff\xfe{}", "application/json")).status == 400
        unsigned = await sender.post_raw(b"{}", "application/json", headers={"X-Slack-Signature": SIG})
        assert unsigned.status == 401
        for name, body in hostile_payloads(slack).items():
            before = len(caplog.records)
            delivery = await sender.post_raw(body, "application/json")
            assert delivery.status == 200, name
            await bot.idle()
            warnings = [r for r in caplog.records[before:] if r.levelno >= logging.WARNING]
            assert len(warnings) == 1 and "ignored" in warnings[0].getMessage(), (name, warnings)
        assert not [r for r in caplog.records if r.exc_info], "no tracebacks"
        # The process is alive and answers a well-formed mention.
        await mention_answered(sender, slack, "are you alive?")
        await bot.idle()
        assert bot.process.core is not None
        books = await read_books(bot.process.core.db)
        assert books.user_statuses == ["ok"] and books.balanced()


async def test_a_stalled_connection_is_dropped_after_the_read_timeout(
        slack: FakeSlack, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    async with running_bot(slack, settings_for, tmp_path, SEEDBOT_HTTP_READ_TIMEOUT=0.5) as bot:
        assert bot.process.server is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", bot.process.server.port)
        ts = str(int(time.time()))
        writer.write((f"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      f"X-Slack-Request-Timestamp: {ts}\r\nX-Slack-Signature: {SIG}\r\n"
                      "Content-Length: 100\r\n\r\n{").encode())
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), timeout=30)  # returns once the server closes
        writer.close()
        assert response.startswith(b"HTTP/1.1 408")


async def test_a_replayed_signed_slash_command_runs_once(
        slack: FakeSlack, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    async with running_bot(slack, settings_for, tmp_path, SEEDBOT_ADMINS="slack:U1") as bot, \
            slack.sender(bot.events_url) as sender:
        form = slack.events.slash_command("budget 7/day")
        now = int(time.time())
        statuses = [(await sender.post_slash_command(form, timestamp=now)).status for _ in range(5)]
        await bot.idle()
        assert statuses == [200] * 5
        assert bot.process.core is not None
        async with bot.process.core.db.session() as session:
            changes = list(await session.scalars(select(BudgetChange)))
        assert [(c.scope_key, c.new_value) for c in changes] == [("slack:C1", "$7/day")]
        # A new command (new timestamp, new signature) runs again.
        await sender.post_slash_command(slack.events.slash_command("budget 8/day"), timestamp=now + 1)
        await bot.idle()
        async with bot.process.core.db.session() as session:
            assert len(list(await session.scalars(select(BudgetChange)))) == 2

"""SlackSink and SlackNotifier against the fake Slack, without the rest of the bot."""

from __future__ import annotations

import logging

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.notifier import SlackNotifier
from adapters.slack.sink import SlackSink
from adapters.slack.transport import StreamingSwitch, Target
from adapters.slack.users import UserNames
from bot.domain import Footer, Usage
from bot.ports import SinkBroken
from tests.fakes.slack import FakeSlack

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
FOOTER = Footer(usage=Usage(prompt_tokens=100, completion_tokens=20), cost_nanos=88_000)


def sink_for(client: AsyncWebClient, thread_ts: str, *, channel: str = "C1", assistant: bool = False) -> SlackSink:
    return SlackSink(client, Target(channel, thread_ts, "U1", "T1"), switch=StreamingSwitch(), assistant=assistant)


async def test_fail_posts_the_reason_without_a_stream(slack: FakeSlack, client: AsyncWebClient) -> None:
    parent = slack.events.app_mention("spend it all")["event"]["ts"]
    sink = sink_for(client, parent)
    await sink.start()
    await sink.status("thinking…")
    await sink.fail("This channel's budget is used up.")
    assert [c.method for c in slack.calls()] == ["chat.postMessage"]
    assert slack.calls()[0].params["markdown_text"] == "This channel's budget is used up."
    [reply] = [m for m in slack.thread("C1", parent) if m.is_bot]
    assert (reply.visible_text, reply.thread_ts) == ("This channel's budget is used up.", parent)


async def test_fail_after_some_text_ends_the_stream_then_explains(slack: FakeSlack, client: AsyncWebClient) -> None:
    parent = slack.events.app_mention("q")["event"]["ts"]
    sink = sink_for(client, parent)
    await sink.append("```python\nprint(")
    await sink.fail("The model stopped answering.")
    first, notice = [m for m in slack.thread("C1", parent) if m.is_bot]
    assert (first.stream_state, first.visible_text) == ("stopped", "```python\nprint(\n```")
    assert notice.visible_text == "The model stopped answering." and notice.stream_state is None


async def test_assistant_status_is_set_in_assistant_threads_only(slack: FakeSlack, client: AsyncWebClient) -> None:
    await sink_for(client, "1.000001").status("thinking…")
    assert slack.calls() == []
    assistant = sink_for(client, "2.000002", channel="D1", assistant=True)
    await assistant.status("thinking…")
    assert slack.assistant_thread("D1", "2.000002").status == "thinking…"
    await assistant.append("Answer. ")  # (a word with nothing after it yet waits for its end)
    await assistant.finish(FOOTER)
    assert slack.assistant_thread("D1", "2.000002").status == ""
    assert [c.method for c in slack.calls()] == ["assistant.threads.setStatus", "chat.startStream",
                                                 "chat.stopStream"]


async def test_a_message_slack_does_not_take_ends_the_answer(slack: FakeSlack, client: AsyncWebClient) -> None:
    """Streaming fails, then so does the post it falls back to: the answer ends there (SinkBroken, so the core
    asks the model for no more), and its closing sentence is tried once more, not the answer."""
    slack.inject_error("chat.startStream", "internal_error")
    slack.inject_error("chat.postMessage", "fatal_error", times=5)
    sink = sink_for(client, "1.000001", channel="C404", assistant=True)
    await sink.status("thinking…")
    with pytest.raises(SinkBroken, match=r"Slack did not take chat.postMessage in channel C404 \(fatal_error\)"):
        await sink.append("Answer.\n")
    await sink.fail("nope")
    assert slack.messages("C404") == []
    assert [c.params.get("markdown_text") for c in slack.calls("chat.postMessage")] == ["Answer.\n", "nope"]
    # Nothing could be posted, so the status the sink set is cleared by the sink itself.
    assert [c.params["status"] for c in slack.calls("assistant.threads.setStatus")] == ["thinking…", ""]


async def test_a_channel_refusing_the_bot_raises_at_start_and_gets_nothing_more(
        slack: FakeSlack, client: AsyncWebClient, caplog: pytest.LogCaptureFixture) -> None:
    slack.refuse_posts("C404", "not_in_channel")
    sink = SlackSink(client, Target("C404", "1.000001", "U1", "T1"), answer_key="slack:T1:C404:1.000001")
    with pytest.raises(SinkBroken, match="Slack refused chat.startStream in channel C404: not_in_channel"):
        await sink.start()  # the stream with the Stop button opens before the model is asked
    with pytest.raises(SinkBroken):
        await sink.append("an answer nobody will see")
    await sink.fail("Not posted either.")
    assert [(c.method, c.error) for c in slack.calls()] == [("chat.startStream", "not_in_channel")]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "C404" in warning and "not_in_channel" in warning


async def test_a_refused_post_after_streaming_is_unavailable_raises(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.inject_error("chat.startStream", "missing_scope")  # streaming is the fallback's to answer: posted instead
    slack.inject_error("chat.postMessage", "is_archived", channel="C404")
    sink = sink_for(client, "1.000001", channel="C404")
    with pytest.raises(SinkBroken, match="Slack refused chat.postMessage in channel C404: is_archived"):
        await sink.append("first words")
    assert [c.method for c in slack.calls()] == ["chat.startStream", "chat.postMessage"]


@pytest.mark.parametrize(("streaming", "refused_method", "calls"), [
    (True, "chat.appendStream", ["chat.startStream", "chat.appendStream"]),
    (False, "chat.update", ["chat.startStream", "chat.postMessage", "chat.update"]),
])
async def test_a_message_deleted_while_it_is_written_is_not_posted_again(
        slack: FakeSlack, client: AsyncWebClient, streaming: bool, refused_method: str, calls: list[str]) -> None:
    slack.config.streaming_enabled = streaming
    parent = slack.events.app_mention("q")["event"]["ts"]
    now = [0.0]
    sink = SlackSink(client, Target("C1", parent, "U1", "T1"), clock=lambda: now[0])
    await sink.append("first part ")
    [written] = [m for m in slack.thread("C1", parent) if m.is_bot]
    slack.delete_message("C1", written.ts)
    now[0] += 10  # the next paced write is due
    with pytest.raises(SinkBroken, match=f"{refused_method} of message {written.ts} in channel C1: message_not_found"):
        await sink.append("second part ")
    await sink.fail("Not posted.")
    assert [c.method for c in slack.calls()] == calls
    assert [m for m in slack.thread("C1", parent) if m.is_bot] == []


async def test_a_refused_last_write_raises_from_finish(slack: FakeSlack, client: AsyncWebClient) -> None:
    parent = slack.events.app_mention("q")["event"]["ts"]
    sink = sink_for(client, parent)
    await sink.append("A short answer. ")
    slack.refuse_posts("C1", "restricted_action_thread_locked")  # an admin locked the thread meanwhile
    with pytest.raises(SinkBroken, match=r"chat.stopStream of message \S+ in channel C1: restricted_action_thread"):
        await sink.finish(FOOTER)
    await sink.fail("Not posted.")
    assert [c.method for c in slack.calls()] == ["chat.startStream", "chat.stopStream"]


async def test_short_final_text_after_a_cut_is_posted_not_streamed(slack: FakeSlack, client: AsyncWebClient) -> None:
    parent = slack.events.app_mention("q")["event"]["ts"]
    # `limit` is the whole message now (footer room included), and a short tail after a cut joins the
    # message before it: the tail here is longer than the half footer room a cut waits for.
    sink = SlackSink(client, Target("C1", parent, "U1", "T1"), limit=1_400)
    await sink.append("x" * 990 + "\n")
    await sink.append("tail " * 40)
    await sink.finish(FOOTER)
    first, second = [m for m in slack.thread("C1", parent) if m.is_bot]
    assert first.visible_text == "x" * 990 + "\n" and first.stream_state == "stopped"
    assert second.visible_text.startswith("tail tail") and "\n\n_120 tokens" in second.visible_text


# notifier --------------------------------------------------------------------------------------------


async def test_send_direct_opens_a_dm_posts_markdown_and_uploads_the_chart(
        slack: FakeSlack, client: AsyncWebClient) -> None:
    notifier = SlackNotifier(client)
    await notifier.send_direct("U2", "**Daily spend**: $1.23", png=PNG, filename="seedbot-spend-2026-11-25.png")
    assert [c.method for c in slack.calls()] == ["conversations.open", "chat.postMessage",
                                                 "files.getUploadURLExternal", "files.completeUploadExternal"]
    text, upload = slack.messages("D2")
    assert text.markdown_text == "**Daily spend**: $1.23" and text.is_bot
    stored = slack.file(upload.files[0]["id"])
    assert (stored.content, stored.name) == (PNG, "seedbot-spend-2026-11-25.png")


async def test_send_channel_posts_and_long_text_is_split(slack: FakeSlack, client: AsyncWebClient) -> None:
    notifier = SlackNotifier(client)
    await notifier.send_channel("T1", "C9", "Paused until midnight.")
    await notifier.send_channel("T1", "C9", "".join(f"line {i}\n" for i in range(3000)))
    texts = [m.markdown_text or "" for m in slack.messages("C9")]
    assert texts[0] == "Paused until midnight." and len(texts) >= 4
    assert all(len(t) <= 12_000 for t in texts)
    assert "".join(texts[1:]) == "".join(f"line {i}\n" for i in range(3000))


async def test_notifier_failures_raise_for_the_scheduler_to_retry(slack: FakeSlack, client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError):
        await SlackNotifier(client).send_direct("U404", "hello")


# user names -------------------------------------------------------------------------------------------


async def test_user_names_are_cached_in_a_bounded_lru_and_failures_fall_back_to_the_id(
        slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.add_user("U3", "carol", real_name="Carol Shaw", display_name="")
    names = UserNames(client, size=2)
    assert [await names.name(u) for u in ("U1", "U1", "U2", "U3")] == ["alice", "alice", "bob", "Carol Shaw"]
    assert len(slack.calls("users.info")) == 3 and len(names) == 2
    assert await names.name("U1") == "alice"  # evicted as least recently used, so asked again
    assert len(slack.calls("users.info")) == 4
    assert await names.name("U404") == "U404"
    assert await names.name("U404") == "U404"
    assert len(slack.calls("users.info")) == 6  # a failure is not remembered


def test_streaming_switch_is_tried_again_after_a_while() -> None:
    now = [100.0]
    switch = StreamingSwitch(recheck_seconds=600, clock=lambda: now[0])
    assert switch.available()
    switch.refused()
    now[0] += 599
    assert not switch.available()
    now[0] += 1
    assert switch.available()

"""When Slack pushes back: rate limits, streaming unavailable or expired, answers past one message."""

from __future__ import annotations

import random
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

from adapters.slack.sink import MESSAGE_LIMIT
from bot.config import Settings
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack, Message
from tests.slack.harness import (
    RunningBot,
    answer_part,
    answers_to,
    bot_replies,
    fence_count,
    rejoin,
    running_bot,
    wait_for_answer,
)

# ~1,200 characters streamed over ~2.5 s: long enough for several paced writes.
PACED = "".join(f"Line {i}: keep retries idempotent and bounded.\n" for i in range(28))


def edit_gaps(message: Message) -> list[float]:
    """Seconds between each chat.update and the write to the same message before it."""
    return [b.at - a.at for a, b in pairwise(message.revisions) if b.method == "chat.update"]


async def test_rate_limited_start_stream_is_retried_after_retry_after(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    fake_seed.script(Reply(content="Patience pays."))
    slack.inject_rate_limit("chat.startStream", times=1, retry_after=1)
    [reply] = await answers_to(bot, slack, "hello?")
    assert answer_part(reply.visible_text) == "Patience pays."
    refused, accepted = slack.calls("chat.startStream")
    assert (refused.status, refused.error, accepted.status) == (429, "ratelimited", 200)
    assert accepted.at - refused.at >= 1.0
    assert reply.stream_state == "stopped"


async def test_rate_limited_post_message_is_retried_when_streaming_is_off(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    slack.config.streaming_enabled = False
    fake_seed.script(Reply(content="Posted after a wait."))
    slack.inject_rate_limit("chat.postMessage", times=1, retry_after=1)
    [reply] = await answers_to(bot, slack, "hello?")
    assert answer_part(reply.visible_text) == "Posted after a wait."
    refused, accepted = slack.calls("chat.postMessage")
    assert (refused.status, accepted.status) == (429, 200) and accepted.at - refused.at >= 1.0


async def test_without_streaming_the_answer_is_posted_and_edited_at_most_once_a_second(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    slack.config.streaming_enabled = False
    fake_seed.script(Reply(content=PACED, chunk_chars=12, chunk_delay=0.02), Reply(content="Second."))
    [reply] = await answers_to(bot, slack, "explain retries")
    assert answer_part(reply.visible_text) == PACED
    methods = [r.method for r in reply.revisions]
    assert methods[0] == "chat.postMessage" and set(methods[1:]) == {"chat.update"} and len(methods) >= 3
    gaps = edit_gaps(reply)
    assert gaps and min(gaps) >= 0.95, gaps
    assert [c.error for c in slack.calls("chat.startStream")] == ["unknown_method"]

    # The process remembers that streaming is unavailable: the next answer does not try it again.
    [second] = await answers_to(bot, slack, "again")
    assert answer_part(second.visible_text) == "Second."
    assert len(slack.calls("chat.startStream")) == 1


async def test_an_expired_stream_continues_as_edits_of_the_same_message(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    slack.config.stream_ttl = 1.5  # Slack ends streams on its own; here, mid-answer
    fake_seed.script(Reply(content=PACED, chunk_chars=12, chunk_delay=0.03))
    [reply] = await answers_to(bot, slack, "explain retries")
    assert answer_part(reply.visible_text) == PACED
    methods = [r.method for r in reply.revisions]
    assert methods[0] == "chat.startStream" and "chat.update" in methods
    assert any(c.error == "message_not_in_streaming_state" for c in slack.calls())
    assert methods.index("chat.update") > methods.index("chat.startStream")
    assert min(edit_gaps(reply)) >= 0.95
    assert all(r.method == "chat.update" for r in reply.revisions[methods.index("chat.update"):])


def long_answer(size: int = 30_000, seed: int = 3) -> str:
    rng = random.Random(seed)
    parts: list[str] = []
    i = 0
    while sum(map(len, parts)) < size:
        parts.append(f"### Step {i}\n\n" + " ".join(rng.choice(["Open", "the", "file", "and", "retry", "it"])
                                                      for _ in range(rng.randint(30, 120))) + "\n\n")
        lines = "".join(f"    result_{j} = fetch(url, attempt={j})\n" for j in range(rng.randint(20, 90)))
        parts.append(f"```python\ndef step_{i}():\n{lines}```\n\n")
        i += 1
    return "".join(parts).rstrip() + "\n\nThat is all."


async def test_a_30000_character_answer_arrives_complete_over_several_messages_with_fences_intact(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    answer = long_answer()
    assert len(answer) >= 30_000
    fake_seed.script(Reply(content=answer, chunk_chars=200))
    mention = slack.events.app_mention("walk me through it")
    async with running_bot(slack, settings_for, tmp_path, SEED_MAX_TOKENS=32_000) as bot:
        async with slack.sender(bot.events_url) as sender:
            await sender.post_event(mention)
        await wait_for_answer(slack, "C1", mention["event"]["ts"], count=3, timeout=15)
        await bot.idle()
    replies = bot_replies(slack, "C1", mention["event"]["ts"])
    texts = [m.visible_text for m in replies]
    assert len(texts) >= 3
    assert all(len(t) <= MESSAGE_LIMIT for t in texts)
    assert all(fence_count(t) % 2 == 0 for t in texts), [fence_count(t) for t in texts]
    assert all(m.stream_state == "stopped" for m in replies)
    assert any(t.startswith("```python\n") for t in texts[1:])  # at least one cut fell inside code
    assert rejoin(texts[:-1] + [answer_part(texts[-1])]) == answer


async def test_model_text_cannot_ping_the_channel_through_a_notification_text(
        bot: RunningBot, slack: FakeSlack, fake_seed: FakeSeed) -> None:
    # Without streaming, the last message carries the feedback buttons: its `text` is the notification,
    # mrkdwn, where <!channel> would notify everyone in the channel.
    slack.config.streaming_enabled = False
    fake_seed.script(Reply(content="Done. <!channel> & <@U2> see <https://evil.example|this>."))
    [reply] = await answers_to(bot, slack, "hello?")
    with_blocks = [c for c in slack.calls()
                   if c.method in ("chat.postMessage", "chat.update") and c.params.get("blocks")]
    assert with_blocks, "the answer was expected to carry its feedback buttons"
    for call in with_blocks:
        assert "<!channel>" not in call.params["text"] and "<@U2>" not in call.params["text"]
        assert "&lt;!channel&gt; &amp; &lt;@U2&gt;" in call.params["text"]
    assert "Done. <!channel> & <@U2>" in reply.visible_text  # the markdown block shows the text as written

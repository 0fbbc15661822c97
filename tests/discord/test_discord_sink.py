"""DiscordSink against an in-memory target: pacing, splitting, the footer, failures. (The end-to-end
tests run the same sink against the fake Discord.)"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import discord
import pytest
from discord.utils import MISSING

from adapters.common.delivery import INCOMPLETE
from adapters.common.footer import DISCORD_FOOTER, render_footer
from adapters.discord.sink import DiscordSink
from adapters.discord.transport import MISSING_ACCESS, THREAD_EXISTS, NewThreadTarget
from bot.domain import Footer, Usage
from bot.ports import SinkBroken

FOOTER = Footer(usage=Usage(prompt_tokens=1000, completion_tokens=234), cost_nanos=1_200_000)


def footer_line(footer: Footer) -> str:
    return render_footer(footer, DISCORD_FOOTER, separated=False)


def not_found() -> discord.NotFound:
    return discord.NotFound(SimpleNamespace(status=404, reason="Not Found"),  # type: ignore[arg-type]
                            {"code": 10008, "message": "Unknown Message"})


@dataclass
class Memo:
    id: int
    target: MemoryTarget
    content: str = ""
    view: object = None

    async def edit(self, content: str, *, view: object = MISSING) -> None:
        self.target.calls.append(("edit", self.id, content, time.monotonic()))
        await asyncio.sleep(self.target.edit_seconds)
        if self.id in self.target.gone:
            raise not_found()
        if self.id in self.target.failing:
            raise http_error(503, 0)  # what discord.py raises once its own retries of a 5xx are spent
        assert len(content) <= 2000
        self.content = content
        if view is not MISSING:
            self.view = view

    async def remove_components(self) -> None:
        self.target.calls.append(("remove_components", self.id, "", time.monotonic()))
        self.view = None


@dataclass
class MemoryTarget:
    wants_typing: bool = True
    channel_id: int = 7
    messages: list[Memo] = field(default_factory=list)
    calls: list[tuple[str, int, str, float]] = field(default_factory=list)
    gone: set[int] = field(default_factory=set)
    failing: set[int] = field(default_factory=set)
    refusal: discord.HTTPException | None = None  # what every send (and open) raises, if set
    passing: list[discord.HTTPException] = field(default_factory=list)  # what the next sends raise, once each
    typing_calls: int = 0
    opened: int = 0
    edit_seconds: float = 0.0  # how long Discord takes to answer an edit

    async def open(self) -> None:
        self.opened += 1

    async def typing(self) -> None:
        self.typing_calls += 1

    async def send(self, content: str, *, view: object = None) -> Memo:
        assert 0 < len(content) <= 2000 and content.strip()
        if self.refusal is not None or self.passing:
            self.calls.append(("refused", 0, content, time.monotonic()))
            raise self.refusal or self.passing.pop(0)
        memo = Memo(len(self.messages) + 1, self, content, view)
        self.messages.append(memo)
        self.calls.append(("send", memo.id, content, time.monotonic()))
        return memo

    def touches(self, message_id: int) -> list[float]:
        return [at for _, mid, _, at in self.calls if mid == message_id]


async def stream(sink: DiscordSink, text: str, *, pieces: int, seconds: float) -> None:
    step = max(1, len(text) // pieces)
    for i in range(0, len(text), step):
        await sink.append(text[i:i + step])
        await asyncio.sleep(seconds / pieces)


async def test_edits_are_paced_and_the_final_text_carries_the_footer() -> None:
    target = MemoryTarget()
    sink = DiscordSink(target, interval=0.1)
    await sink.start()
    await asyncio.sleep(0.05)
    assert target.typing_calls == 1 and target.opened == 1  # typing while waiting for the first token
    answer = " ".join(f"word{i}" for i in range(150))
    await stream(sink, answer, pieces=30, seconds=0.9)
    await sink.finish(FOOTER)
    (message,) = target.messages
    assert message.content == answer + "\n" + footer_line(FOOTER)
    assert footer_line(FOOTER) == "-# 1,234 tokens · $0.0012"
    touches = target.touches(message.id)
    assert len(touches) >= 4
    assert all(b - a >= 0.1 - 0.005 for a, b in zip(touches, touches[1:], strict=False))
    assert target.typing_calls == 1  # stopped once text flowed


async def test_edits_keep_a_steady_pace_through_a_long_answer_with_slow_edits() -> None:
    """Edits start one interval apart however long Discord takes to answer each (paced from when an
    edit was sent), and the pace does not slow down as the answer grows."""
    target = MemoryTarget(edit_seconds=0.05)
    sink = DiscordSink(target, interval=0.1)
    await stream(sink, "x " * 400, pieces=80, seconds=2.0)
    await sink.finish(FOOTER)
    touches = target.touches(1)
    gaps = [b - a for a, b in zip(touches, touches[1:], strict=False)]
    assert all(gap >= 0.1 - 0.005 for gap in gaps), gaps  # never faster than the interval
    # Paced from each edit's end, or growing, this would be at most ~13 edits; steady, about 20.
    assert len(touches) >= 15, gaps


async def test_long_answer_continues_in_new_messages_each_within_the_limit() -> None:
    target = MemoryTarget()
    sink = DiscordSink(target, interval=0.01)
    code = "\n".join(f"    value_{i} = compute({i})" for i in range(150))
    answer = f"Intro.\n\n```python\n{code}\n```\n\n" + "Closing words. " * 100
    await stream(sink, answer, pieces=40, seconds=0.2)
    await sink.finish(FOOTER)
    contents = [m.content for m in target.messages]
    assert len(contents) >= 3 and all(len(c) <= 2000 for c in contents)
    assert contents[-1].endswith(footer_line(FOOTER))
    assert contents[0].endswith("\n```") and contents[1].startswith("```python\n")
    # Frozen messages are never touched again once the next one exists.
    for memo in target.messages[:-1]:
        last_touch = target.touches(memo.id)[-1]
        assert last_touch <= target.touches(memo.id + 1)[0]


async def test_a_deleted_message_ends_the_answer_and_the_core_hears_it() -> None:
    target = MemoryTarget()
    sink = DiscordSink(target, interval=0.02, answer_key="k")
    await sink.append("first part of the answer ")
    await target_has(target, 1)
    target.gone.add(1)  # a moderator deleted it
    await sink.append("second part ")
    with pytest.raises(SinkBroken, match=r"editing message 1 in channel 7: 404 Unknown Message \(error code 10008\)"):
        for _ in range(200):  # until the pump's next edit has met the 404
            await sink.append("more ")
            await asyncio.sleep(0.005)
    await sink.fail("This sentence is never posted.")
    assert len(target.messages) == 1 and [kind for kind, *_ in target.calls].count("send") == 1


async def test_an_edit_discord_keeps_failing_loses_its_stop_button_and_the_rest_moves_on() -> None:
    target = MemoryTarget()
    sink = DiscordSink(target, interval=0.02, answer_key="k")
    await sink.append("first part of the answer ")
    await target_has(target, 1)
    assert isinstance(target.messages[0].view, discord.ui.View)  # the Stop button
    target.failing.add(1)
    await sink.append("second part")
    await sink.finish(FOOTER)
    first, second = target.messages
    assert first.view is None and ("remove_components", 1) in [(kind, mid) for kind, mid, *_ in target.calls]
    assert second.content == "second part\n" + footer_line(FOOTER) and isinstance(second.view, discord.ui.View)


async def test_a_last_message_discord_does_not_take_ends_the_answer_with_a_sentence() -> None:
    """An edit fails, so the rest moves to a new message, and Discord does not take that one either (a 503 past
    discord.py's retries): finish says the answer is incomplete, and raises so the core books it failed."""
    target = MemoryTarget()
    sink = DiscordSink(target, interval=0.02, answer_key="k")
    await sink.append("first part of the answer ")
    await target_has(target, 1)
    target.failing.add(1)
    target.passing.append(http_error(503, 0))
    await sink.append("second part")
    with pytest.raises(SinkBroken, match="Discord did not take a message in channel 7"):
        await sink.finish(FOOTER)
    first, notice = target.messages
    assert first.content == "first part of the answer " and first.view is None
    assert notice.content == INCOMPLETE


@dataclass
class SlowSendTarget(MemoryTarget):
    """Discord takes each new message at once, but its answer comes `send_seconds` later."""

    send_seconds: float = 0.0

    async def send(self, content: str, *, view: object = None) -> Memo:
        memo = Memo(len(self.messages) + 1, self, content, view)
        self.messages.append(memo)
        self.calls.append(("send", memo.id, content, time.monotonic()))
        await asyncio.sleep(self.send_seconds)
        return memo


async def test_a_shutdown_while_the_last_message_is_sent_does_not_send_it_twice() -> None:
    """finish is cancelled (a shutdown past its grace) while the answer's only message is on its way; fail then
    posts the notice alone: the message may exist, and a second copy would show the answer twice."""
    target = SlowSendTarget(send_seconds=0.5)
    sink = DiscordSink(target, interval=0.02, answer_key="k")
    await sink.append("The whole answer, in one piece.")
    finishing = asyncio.create_task(sink.finish(FOOTER))
    for _ in range(100):
        if target.messages:
            break
        await asyncio.sleep(0.01)
    finishing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await finishing
    await sink.fail("The bot was restarted while answering; please ask again.")
    answer, notice = target.messages  # not the answer twice
    assert answer.content.startswith("The whole answer")
    assert notice.content == "The bot was restarted while answering; please ask again."


async def test_a_channel_refusing_the_first_message_raises_and_posts_nothing_more() -> None:
    target = MemoryTarget(refusal=http_error(403, 50013))
    sink = DiscordSink(target, interval=0.02)
    await sink.start()
    await sink.append("an answer nobody will see ")
    with pytest.raises(SinkBroken, match="sending the answer in channel 7: 403"):
        for _ in range(200):
            await sink.append("more ")
            await asyncio.sleep(0.005)
    await sink.fail("Not posted either.")
    assert [kind for kind, *_ in target.calls] == ["refused"]  # one try, no sentence after it


async def test_start_raises_when_the_thread_cannot_be_opened_in_a_channel_refused_for_good() -> None:
    target = MemoryTarget()

    async def refused() -> None:
        raise http_error(403, MISSING_ACCESS)

    target.open = refused  # type: ignore[method-assign]
    sink = DiscordSink(target, interval=0.02)
    with pytest.raises(SinkBroken, match=r"opening the answer's thread in channel 7: 403 x \(error code 50001\)"):
        await sink.start()
    await sink.fail("Not posted.")
    assert target.calls == [] and target.typing_calls == 0


async def test_fail_sends_the_reason_even_without_start() -> None:
    target = MemoryTarget()
    sink = DiscordSink(target, interval=0.02)
    await sink.fail("This channel's budget is spent until tomorrow.")
    assert [m.content for m in target.messages] == ["This channel's budget is spent until tomorrow."]
    assert target.opened == 1 and target.typing_calls == 0
    await sink.append("late")  # ignored after the end
    await sink.finish(FOOTER)
    assert len(target.messages) == 1


async def test_footer_never_stands_alone_after_a_full_message() -> None:
    """Was: 1,995 characters, then the footer alone. Every message keeps room for the footer."""
    target = MemoryTarget()
    sink = DiscordSink(target, interval=0.01)
    await sink.append("y" * 1995)
    await sink.finish(FOOTER)
    assert all(len(m.content) <= 2000 for m in target.messages)
    *_, last = [m.content for m in target.messages]
    assert last.endswith("\n" + footer_line(FOOTER)) and last.startswith("y")
    assert "".join(m.content for m in target.messages).count("y") == 1995


async def target_has(target: MemoryTarget, count: int) -> None:
    for _ in range(200):
        if len(target.messages) >= count:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"{count} messages never arrived")


def http_error(status: int, code: int) -> discord.HTTPException:
    """The exception discord.py raises for an HTTP `status` with Discord's JSON error `code`."""
    kind = {403: discord.Forbidden, 404: discord.NotFound}.get(status, discord.HTTPException)
    if status >= 500:
        kind = discord.DiscordServerError
    return kind(SimpleNamespace(status=status, reason="x"), {"code": code, "message": "x"})  # type: ignore[arg-type]


class StubMessage:
    def __init__(self, error: discord.HTTPException | None, existing: object = None) -> None:
        self.id = 42
        self.channel = "parent channel"
        self.guild = SimpleNamespace(get_thread=lambda thread_id: existing if thread_id == 42 else None)
        self._error = error

    async def create_thread(self, *, name: str, auto_archive_duration: int) -> str:
        if self._error is not None:
            raise self._error
        return f"thread {name}"


async def test_new_thread_target_opens_once_and_falls_back_sensibly() -> None:
    opened = NewThreadTarget(StubMessage(None), "question", client=None)  # type: ignore[arg-type]
    await opened.open()
    await opened.open()
    assert opened.channel == "thread question" and opened.reply_to is None

    existing = NewThreadTarget(StubMessage(http_error(400, THREAD_EXISTS), "old thread"), "q",  # type: ignore[arg-type]
                               client=None)  # type: ignore[arg-type]
    await existing.open()
    assert existing.channel == "old thread" and existing.reply_to is None  # a replay after a crash

    message = StubMessage(http_error(403, 50013))
    refused = NewThreadTarget(message, "q", client=None)  # type: ignore[arg-type]
    await refused.open()
    assert refused.channel == "parent channel" and refused.reply_to is message  # answer as a reply instead

    hidden = NewThreadTarget(StubMessage(http_error(403, MISSING_ACCESS)), "q", client=None)  # type: ignore[arg-type]
    with pytest.raises(discord.Forbidden):  # the channel itself is refused: no reply there either
        await hidden.open()

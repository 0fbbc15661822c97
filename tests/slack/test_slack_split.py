"""split_logic: long Markdown cut at Slack's limit without breaking a code fence (pure)."""

from __future__ import annotations

import random

import pytest

from adapters.slack.split_logic import (
    CONTENT_LIMIT,
    MESSAGE_LIMIT,
    MarkdownSplitter,
    footer_markdown,
    split_markdown,
)
from bot.chat.markdown import Fence, fence_step, open_fence


def fence_lines(text: str) -> list[str]:
    return [line.strip() for line in text.split("\n") if line.lstrip().startswith(("```", "~~~"))]


def rejoin(messages: list[str]) -> str:
    """The answer the messages carry: where a message ends inside a code block, its last line (the
    added closing fence) and the next message's first line (the reopened fence) are not the answer's."""
    texts = list(messages)
    for i, message in enumerate(messages[:-1]):
        body = message.rpartition("\n")[0]
        if open_fence(body) is not None and open_fence(message) is None:
            texts[i] = texts[i].rpartition("\n")[0] + "\n"
            texts[i + 1] = texts[i + 1].split("\n", 1)[1]
    return "".join(texts)


def stream(text: str, seed: int, limit: int = CONTENT_LIMIT, footer: str = "") -> list[str]:
    rng = random.Random(seed)
    splitter = MarkdownSplitter(limit)
    messages = [""]
    i = 0
    while i < len(text):
        n = rng.randint(1, 300)
        parts = splitter.feed(text[i:i + n])
        i += n
        messages[-1] += parts[0]
        messages += parts[1:]
    tail = splitter.finish(footer)
    messages[-1] += tail[0]
    return messages + tail[1:]


def answer_with_code(blocks: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    parts = []
    for i in range(blocks):
        parts.append(f"Step {i}: " + " ".join(rng.choice(["call", "the", "retry", "helper", "twice"])
                                             for _ in range(rng.randint(20, 300))) + "\n\n")
        lang = rng.choice(["python", "ts", "bash", ""])
        body = "".join(f"    value_{j} = compute({j})  # keep\n" for j in range(rng.randint(3, 160)))
        parts.append(f"```{lang}\n{body}```\n\n")
    return "".join(parts)


def test_short_answer_is_one_message_with_the_footer() -> None:
    assert split_markdown("Use `git rebase -i`.", footer_markdown("10 tokens · $0.0001")) == [
        "Use `git rebase -i`.\n\n_10 tokens · $0.0001_"]


def test_prose_is_cut_between_lines_and_loses_nothing() -> None:
    text = "".join(f"Paragraph {i}: " + "lorem ipsum " * 40 + "\n\n" for i in range(100))
    messages = split_markdown(text)
    assert len(messages) >= 5
    assert all(len(m) <= CONTENT_LIMIT for m in messages)
    assert "".join(messages) == text
    assert all(m.endswith("\n") for m in messages[:-1])  # cuts fall at line ends


def test_cut_inside_a_code_block_closes_and_reopens_it_with_its_language() -> None:
    code = "".join(f"print({i})\n" for i in range(3000))
    text = "Here:\n\n```python\n" + code + "```\n\nDone."
    messages = split_markdown(text)
    assert len(messages) >= 3
    for first, second in zip(messages, messages[1:], strict=False):
        assert first.endswith("\n```")
        assert second.startswith("```python\n")
    assert all(len(fence_lines(m)) % 2 == 0 for m in messages)
    assert rejoin(messages) == text


def test_streamed_answer_with_many_code_blocks_round_trips() -> None:
    text = answer_with_code(60)
    assert len(text) > 60_000
    reopened = 0
    for seed in range(5):
        messages = stream(text, seed, footer=footer_markdown("9 tokens"))
        reopened += sum(m.startswith("```") for m in messages[1:])
        assert len(messages) > 5
        assert all(len(m) <= MESSAGE_LIMIT for m in messages)
        assert all(len(fence_lines(m)) % 2 == 0 for m in messages), seed
        assert messages[-1].endswith("\n\n_9 tokens_")
        assert rejoin(messages).removesuffix("\n\n_9 tokens_") == text
    assert reopened > 0  # some cuts did fall inside code blocks


def test_a_line_longer_than_a_message_is_cut_hard_and_stays_fenced() -> None:
    text = "```\n" + "x" * 30_000 + "\n```\n"
    messages = split_markdown(text, limit=10_000)
    assert len(messages) == 4
    assert all(len(fence_lines(m)) == 2 for m in messages)
    assert all(len(m) <= 10_000 + len("\n```") for m in messages)


def test_longer_and_tilde_fences_are_tracked() -> None:
    assert fence_step(None, "````markdown") == Fence("", "````", "markdown")
    inner = fence_step(Fence("", "````", "markdown"), "```")  # too short to close ````
    assert inner == Fence("", "````", "markdown")
    assert fence_step(Fence("", "````", "markdown"), "`````") is None
    assert fence_step(None, "  ~~~ yaml") == Fence("  ", "~~~", "yaml")
    assert fence_step(Fence("  ", "~~~", "yaml"), "```") == Fence("  ", "~~~", "yaml")
    assert fence_step(None, "use ```x``` inline") is None
    assert fence_step(None, "```x``` inline") is None


def test_finish_closes_a_fence_the_model_left_open() -> None:
    splitter = MarkdownSplitter()
    assert splitter.feed("```go\nfmt.Println(1)") == ["```go\nfmt.Println(1)"]
    assert splitter.finish(footer_markdown("cut off")) == ["\n```\n\n_cut off_"]
    closed = MarkdownSplitter()
    closed.feed("```go\nx\n```")
    assert closed.finish() == [""]  # a last fence line without newline still closes


def test_a_cut_is_not_made_when_the_answer_ends_at_the_soft_limit() -> None:
    splitter = MarkdownSplitter(limit=1_000)
    parts = splitter.feed("a" * 900 + "\n")
    assert parts == ["a" * 900 + "\n"]
    assert splitter.finish("\n\n_f_") == ["\n\n_f_"]  # the footer joins the last message
    more = MarkdownSplitter(limit=1_000)
    more.feed("a" * 900 + "\n")
    assert more.feed("b") == ["", "b"]  # more text: the pending cut happens


def test_footer_is_one_escaped_italic_line() -> None:
    assert footer_markdown("1,234 tokens · $0.0012 · my_file.py was skipped: *big*") == (
        "\n\n_1,234 tokens · $0.0012 · my\\_file.py was skipped: \\*big\\*_")
    assert footer_markdown("") == ""
    assert "\n" not in footer_markdown("a\nb").strip("\n")
    assert len(footer_markdown("x" * 5_000)) < 1_500


def test_limit_must_leave_room() -> None:
    with pytest.raises(ValueError):
        MarkdownSplitter(limit=50)

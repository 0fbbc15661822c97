"""adapters.common.splitter, the one splitter of Slack and Discord: limits, fences, grapheme clusters,
and the footer's place. Pure; random answers are checked by simple independent readers."""

from __future__ import annotations

import random

import pytest
import regex

from adapters.common.splitter import MarkdownSplitter, clip, split_markdown
from bot.chat.markdown import Fence, fence_step, open_fence

SLACK = 12_000
DISCORD = 2_000
LANGUAGES = ["python", "ts", "", "rust", "c++", "bash"]
WORDS = ["".join(random.Random(n).choices("abcdefghij_()=.,", k=1 + n % 12)) for n in range(300)]
ZWJ_CODER = "👩\u200d💻"


def clusters(text: str) -> list[str]:
    return regex.findall(r"\X", text)


def fence_lines(text: str) -> list[str]:
    return [line.strip() for line in text.split("\n") if line.lstrip().startswith(("```", "~~~"))]


def balanced(message: str) -> bool:
    """Independent of the splitter: every ``` line toggles; a message must end outside a block."""
    inside = False
    for line in message.split("\n"):
        if line.lstrip().startswith("```"):
            inside = not inside
    return not inside


def rejoin(messages: list[str], answer: str) -> str:
    """The answer the messages carry: where a message ends inside a code block, its last line (the
    added closing fence, after a line break that is the answer's own only if the cut fell at a line
    end) and the next message's first line (the reopened fence) are not the answer's."""
    return "".join(answer_parts(messages, answer))


def answer_parts(messages: list[str], answer: str) -> list[str]:
    """What of the answer each message carries (see rejoin)."""
    texts = list(messages)
    done = 0
    for i, message in enumerate(messages[:-1]):
        body = texts[i].rpartition("\n")[0]
        if open_fence(message.rpartition("\n")[0]) is not None and open_fence(message) is None:
            texts[i] = body + "\n" if answer.startswith(body + "\n", done) else body
            texts[i + 1] = texts[i + 1].split("\n", 1)[1]
        done += len(texts[i])
    return texts


def stream(text: str, seed: int, limit: int = SLACK, footer_room: int = 1_600, footer: str = "") -> list[str]:
    rng = random.Random(seed)
    splitter = MarkdownSplitter(limit, footer_room)
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


def random_answer(rng: random.Random) -> str:
    """Prose, lists, code blocks with languages, blank lines, and now and then a very long line."""

    def words(count: int) -> str:
        return " ".join(rng.choices(WORDS, k=count))

    lines: list[str] = []
    for _ in range(rng.randint(1, 120)):
        roll = rng.random()
        if roll < 0.12:
            lines.append("```" + rng.choice(LANGUAGES))
            lines += ["    " * rng.randint(0, 2) + words(rng.randint(0, 14)) for _ in range(rng.randint(0, 60))]
            lines.append("```")
        elif roll < 0.16:
            lines.append(words(rng.randint(150, 600)))  # a paragraph on one line, longer than a message
        elif roll < 0.25:
            lines.append("")
        else:
            lines.append(("- " if rng.random() < 0.3 else "") + words(rng.randint(1, 20)))
    return "\n".join(lines)


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


# -- limits, fences, nothing lost (from the Slack and Discord splitters' tests) -------------------------

@pytest.mark.parametrize(("limit", "footer_room"), [(250, 0), (700, 100), (DISCORD, 300)])
def test_random_answers_split_within_the_limit_balanced_and_between_words(limit: int, footer_room: int) -> None:
    """Streamed in random pieces and split whole alike (where a line is cut can differ: a streamed line's
    spaces already sent cannot be cut at)."""
    rng = random.Random(limit)
    for seed in range(150):
        answer = random_answer(rng)
        whole = split_markdown(answer, limit, footer_room=footer_room)
        for messages in (stream(answer, seed, limit, footer_room), whole):
            assert all(len(m) <= limit for m in messages)
            assert all(balanced(m) for m in messages), seed
            assert rejoin(messages, answer).strip() == answer.strip()
            cut = 0
            for part in answer_parts(messages, answer)[:-1]:  # every cut after a space or a line break
                cut += len(part)
                assert answer[cut - 1] in " \n" or not part.strip(), (seed, part[-40:])


def test_short_answer_is_one_message_with_the_footer() -> None:
    assert split_markdown("Use `git rebase -i`.", SLACK, footer="\n\n_10 tokens · $0.0001_") == [
        "Use `git rebase -i`.\n\n_10 tokens · $0.0001_"]


def test_prose_is_cut_between_lines_and_loses_nothing() -> None:
    text = "".join(f"Paragraph {i}: " + "lorem ipsum " * 40 + "\n\n" for i in range(100))
    messages = split_markdown(text, SLACK)
    assert len(messages) >= 5
    assert all(len(m) <= SLACK for m in messages)
    assert "".join(messages) == text
    assert all(m.endswith("\n") for m in messages[:-1])  # cuts fall at line ends


def test_cut_inside_a_code_block_closes_and_reopens_it_with_its_language() -> None:
    code = "".join(f"print({i})\n" for i in range(3000))
    text = "Here:\n\n```python\n" + code + "```\n\nDone."
    messages = split_markdown(text, SLACK)
    assert len(messages) >= 3
    for first, second in zip(messages, messages[1:], strict=False):
        assert first.endswith("\n```")
        assert second.startswith("```python\n")
    assert all(len(fence_lines(m)) % 2 == 0 for m in messages)
    assert rejoin(messages, text) == text


def test_streamed_answer_with_many_code_blocks_round_trips() -> None:
    text = answer_with_code(60)
    assert len(text) > 60_000
    reopened = 0
    for seed in range(5):
        messages = stream(text, seed, footer="\n\n_9 tokens_")
        reopened += sum(m.startswith("```") for m in messages[1:])
        assert len(messages) > 5
        assert all(len(m) <= SLACK for m in messages)
        assert all(len(fence_lines(m)) % 2 == 0 for m in messages), seed
        assert messages[-1].endswith("\n\n_9 tokens_")
        assert rejoin(messages, text).removesuffix("\n\n_9 tokens_") == text
    assert reopened > 0  # some cuts did fall inside code blocks


def test_a_line_longer_than_a_message_is_cut_hard_and_stays_fenced() -> None:
    text = "```\n" + "x" * 30_000 + "\n```\n"
    messages = split_markdown(text, 10_000)
    assert len(messages) == 4
    assert all(len(fence_lines(m)) == 2 for m in messages)
    assert all(len(m) <= 10_000 for m in messages)
    blob = "b" * 4500
    messages = split_markdown(f"key:\n{blob}\nend", DISCORD)
    assert all(len(m) <= DISCORD for m in messages)
    assert "".join(messages).replace("\n", "").replace("key:", "").replace("end", "") == blob


def test_longer_and_tilde_fences_are_tracked() -> None:
    assert fence_step(None, "````markdown") == Fence("", "````", "markdown")
    assert fence_step(Fence("", "````", "markdown"), "```") == Fence("", "````", "markdown")
    assert fence_step(Fence("", "````", "markdown"), "`````") is None
    assert fence_step(None, "  ~~~ yaml") == Fence("  ", "~~~", "yaml")
    assert fence_step(None, "```x``` inline") is None
    inner = "```\nnot a fence end\n```"
    for message in split_markdown("````markdown\n" + (inner + "\n") * 200 + "````", 500):
        assert len(message) <= 500
        assert message.startswith("````markdown") and message.endswith("````")


def test_finish_closes_a_fence_the_model_left_open() -> None:
    splitter = MarkdownSplitter(SLACK, 1_600)
    fed = splitter.feed("```go\nfmt.Println(1)")
    assert "".join(fed + splitter.finish("\n\n_cut off_")) == "```go\nfmt.Println(1)\n```\n\n_cut off_"
    closed = MarkdownSplitter(SLACK)
    closed.feed("```go\nx\n```")
    assert closed.finish() == ["```"]  # the held last word; a last fence line without newline closes


def test_a_cut_is_not_made_when_the_answer_ends_at_the_soft_limit() -> None:
    splitter = MarkdownSplitter(1_041)  # 1,000 characters of text per message
    assert splitter.feed("a" * 900 + "\n") == ["a" * 900 + "\n"]
    assert splitter.finish("\n\n_f_") == ["\n\n_f_"]  # the footer joins the last message
    more = MarkdownSplitter(1_041)
    more.feed("a" * 900 + "\n")
    assert more.feed("b ") == ["", "b "]  # more text, and no footer room to wait in: the cut happens


def test_blank_text_gives_no_messages_and_limits_must_leave_room() -> None:
    assert split_markdown("\n \n", DISCORD) == []
    assert split_markdown("a", DISCORD) == ["a"]
    with pytest.raises(ValueError):
        MarkdownSplitter(150)
    with pytest.raises(ValueError):
        MarkdownSplitter(DISCORD, 1_900)


# -- item 4: never inside a grapheme cluster --------------------------------------------------------

def cut_on_cluster_boundaries(text: str, messages: list[str]) -> bool:
    """Each message, without the fence lines added at cuts, is a whole number of the text's clusters."""
    pieces = [m for m in messages]
    assert "".join(pieces) == text
    return sum((clusters(p) for p in pieces), []) == clusters(text)


def test_a_chinese_answer_without_spaces_is_never_cut_inside_a_zwj_sequence() -> None:
    for offset in range(40):
        text = "中" * offset + ("文字" + ZWJ_CODER) * 1_000  # 5,000 characters, no space or line break
        for limit, room in ((DISCORD, 300), (DISCORD, 0), (SLACK, 1_600)):
            messages = split_markdown(text, limit, footer_room=room)
            assert len(messages) >= 2 or limit == SLACK
            assert all(len(m) <= limit for m in messages)
            assert cut_on_cluster_boundaries(text, messages), (offset, limit)


def test_flags_accents_and_keycaps_stay_whole_when_streamed_one_code_point_at_a_time() -> None:
    units = ["🇺🇸", "🇬🇧", "e\u0301", "1\ufe0f\u20e3", "👍🏽", ZWJ_CODER, "\r\n"]
    rng = random.Random(5)
    text = "".join(rng.choice(units) for _ in range(2_500))
    splitter = MarkdownSplitter(DISCORD, 300)
    messages = [""]
    for char in text:  # the worst stream: every code point its own delta
        parts = splitter.feed(char)
        messages[-1] += parts[0]
        messages += parts[1:]
    tail = splitter.finish()
    messages[-1] += tail[0]
    messages += tail[1:]
    assert len(messages) >= 2 and all(len(m) <= DISCORD for m in messages)
    assert cut_on_cluster_boundaries(text, messages)


def test_clip_keeps_whole_clusters() -> None:
    assert clip("ab" + ZWJ_CODER + "cd", 5) == "ab…"
    assert clip("ab" + ZWJ_CODER, 6) == "ab" + ZWJ_CODER
    assert clip("🇺🇸🇬🇧🇫🇷", 4) == "🇺🇸…"


# -- item 8: the footer never alone, never with a few characters -------------------------------------

def test_a_4000_character_answer_does_not_end_in_a_message_of_its_last_characters_and_the_footer() -> None:
    footer = "\n-# 1,234 tokens · $0.0123"
    text = " ".join(f"word{i:04}" for i in range(444))[:4000]  # 4,000 characters of prose, one line
    messages = split_markdown(text, DISCORD, footer=footer, footer_room=300)
    assert all(len(m) <= DISCORD for m in messages)
    assert messages[-1].endswith(footer)
    assert len(messages[-1]) - len(footer) > 100  # a real share of the answer goes with the footer
    assert "".join(messages).removesuffix(footer) == text


def test_a_short_tail_after_a_cut_joins_the_message_before_it() -> None:
    footer = "\n-# 12 tokens · $0.0001"
    for tail in ("bye", "last line.\n", "x" * 140):
        text = "para " * 330 + "\n" + tail  # past the soft limit, then a short last line
        messages = split_markdown(text, DISCORD, footer=footer, footer_room=300)
        assert len(messages) == 1 and messages[0] == text + footer and len(messages[0]) <= DISCORD

"""split_logic, property-style: many random Markdown answers, checked by a simple independent reader."""

from __future__ import annotations

import random
import re

import pytest

from adapters.discord.split_logic import LIMIT, split_markdown, split_text
from bot.chat.markdown import Fence, open_fence

LANGUAGES = ["python", "ts", "", "rust", "c++", "bash"]
WORDS = ["".join(random.Random(n).choices("abcdefghij_()=.,", k=1 + n % 12)) for n in range(300)]


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


def fence_lines_balanced(message: str) -> bool:
    """Independent of split_logic: every ``` line toggles; a message must end outside a block."""
    inside = False
    for line in message.split("\n"):
        if line.lstrip().startswith("```"):
            inside = not inside
    return not inside


SEEDS = range(400)


@pytest.mark.parametrize("limit", [120, 700, LIMIT])
def test_random_answers_split_within_the_limit_balanced_and_between_words(limit: int) -> None:
    rng = random.Random(limit)
    for _ in SEEDS:
        answer = random_answer(rng)
        chunks = split_markdown(answer, limit)
        assert chunks[0].start == 0 and chunks[-1].end == len(answer)
        previous_fence: Fence | None = None
        for index, chunk in enumerate(chunks):
            assert len(chunk.text) <= limit
            assert fence_lines_balanced(chunk.text), chunk.text
            body = answer[chunk.start:chunk.end]
            # The message is the source span, plus a reopened fence line / a closing fence line.
            prefix = previous_fence.opener + "\n" if previous_fence else ""
            suffix = "\n" + chunk.fence_after.closer if chunk.fence_after else ""
            assert chunk.text == prefix + body + suffix
            if index:
                cut = chunks[index - 1].end
                # Never inside a word: each cut is at a space or line break, which the next chunk skips.
                assert answer[cut] in " \n" and chunk.start == cut + 1
            previous_fence = chunk.fence_after
        assert previous_fence is None  # the answers' own blocks are all closed


def test_reassembling_the_messages_gives_the_answer_back() -> None:
    rng = random.Random(7)
    for _ in range(100):
        answer = random_answer(rng)
        chunks = split_markdown(answer, 300)
        rebuilt = answer[chunks[0].start:chunks[0].end]
        for before, chunk in zip(chunks, chunks[1:], strict=False):
            rebuilt += answer[before.end] + answer[chunk.start:chunk.end]
        assert rebuilt == answer


def test_cut_code_block_is_closed_and_reopened_with_its_language() -> None:
    code = "\n".join(f"print({i})  # line {i}" for i in range(200))
    answer = f"Here:\n\n```python\n{code}\n```\nDone."
    messages = split_text(answer)
    assert len(messages) >= 2
    assert messages[0].endswith("\n```") and messages[1].startswith("```python\n")
    assert all(len(m) <= LIMIT and fence_lines_balanced(m) for m in messages)


def test_prefers_a_break_outside_code_blocks() -> None:
    prose = "x " * 600
    code = "```js\n" + "\n".join("let a = 1;" for _ in range(120)) + "\n```"
    messages = split_text(prose.strip() + "\n\n" + code + "\nafter")
    assert messages[1].startswith("```js")  # the block went whole into the second message, not cut in two


def test_tilde_fences_and_longer_backtick_fences_are_respected() -> None:
    inner = "```\nnot a fence end\n```"
    answer = "````markdown\n" + (inner + "\n") * 200 + "````"
    for message in split_text(answer, 500):
        assert len(message) <= 500
        assert message.startswith("````markdown") and message.endswith("````")
    assert open_fence("~~~\n```\n") == Fence("", "~~~", "")


def test_inline_triple_backticks_do_not_open_a_block() -> None:
    assert open_fence("use ```x``` here\n```py") == Fence("", "```", "py")
    assert open_fence("```a``` and text") is None


def test_a_word_longer_than_a_message_is_the_only_thing_ever_cut() -> None:
    blob = "b" * 4500
    messages = split_text(f"key:\n{blob}\nend", 2000)
    assert all(len(m) <= 2000 for m in messages)
    assert "".join(messages).replace("\n", "").replace("key:", "").replace("end", "") == blob


def test_split_is_stable_as_the_answer_grows() -> None:
    """Full messages never change while streaming, so the sink can freeze them."""
    rng = random.Random(3)
    for _ in range(40):
        answer = random_answer(rng)
        final = split_markdown(answer, 400)
        for cut in sorted(rng.sample(range(len(answer) + 1), min(25, len(answer) + 1))):
            partial = split_markdown(answer[:cut], 400)
            for grown, done in zip(partial[:-1], final, strict=False):
                assert (grown.start, grown.end, grown.text) == (done.start, done.end, done.text)


def test_blank_text_gives_no_messages() -> None:
    assert split_text("\n \n") == []
    assert re.fullmatch(r"a", split_text("a")[0])

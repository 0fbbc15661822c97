"""Which messages are diffs to review, where the diff is, and what the person asked besides it."""

from __future__ import annotations

import pytest

from bot.domain import Attachment, AttachmentKind
from bot.review import detect_diff, parse_diff_input
from bot.review.detect import SYNTHETIC_PATH
from bot.review.types import DiffOrigin
from tests.review.test_review_support import GitRepo


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> GitRepo:
    repo = GitRepo(tmp_path_factory.mktemp("detect") / "repo")
    repo.write("app.py", "".join(f"x{n} = {n}\n" for n in range(12)))
    repo.write("util.py", "def f():\n    return 1\n")
    repo.commit("base")
    repo.write("app.py", "".join(f"x{n} = {n}\n" for n in range(12)).replace("x5 = 5", "x5 = 'five'"))
    repo.commit("Make five a word")
    repo.write("util.py", "def f():\n    return 2\n")
    repo.commit("Return two\n\nBecause one was wrong.")
    return repo


@pytest.fixture(scope="module")
def diff(repo: GitRepo) -> str:
    return repo.git("diff", "HEAD~2", "HEAD")


def text_attachment(name: str, text: str, kind: AttachmentKind = AttachmentKind.TEXT) -> Attachment:
    data = text.encode()
    return Attachment(filename=name, kind=kind, size=len(data), data=data)


def test_raw_diff_in_a_message_keeps_the_words_around_it(diff: str) -> None:
    found = detect_diff(f"Can you check this?\nfocus on security\n{diff}\nthanks in advance", ())
    assert found is not None
    (source,) = found.sources
    assert source.origin is DiffOrigin.MESSAGE_TEXT
    assert source.text == diff
    assert found.question == "Can you check this?\nfocus on security\n\nthanks in advance"
    assert not found.requested


def test_fenced_diff_block_is_taken_out_of_the_question(diff: str) -> None:
    message = f"What do you think?\n```diff\n{diff}```\nAlso this:\n```python\nprint('hi')\n```"
    found = detect_diff(message, ())
    assert found is not None
    assert [s.origin for s in found.sources] == [DiffOrigin.FENCED_BLOCK]
    assert found.sources[0].text == diff
    assert found.question == "What do you think?\nAlso this:\n```python\nprint('hi')\n```"


def test_unlabelled_fence_with_a_full_diff_is_a_diff(diff: str) -> None:
    found = detect_diff(f"```\n{diff}```", ())
    assert found is not None and found.sources[0].text == diff


def test_slack_style_fence_with_content_on_the_fence_lines(diff: str) -> None:
    found = detect_diff("look\n```" + diff.rstrip("\n") + "```", ())
    assert found is not None
    assert found.sources[0].text == diff
    assert found.question == "look"


def test_fenced_diff_block_of_bare_hunks_gets_a_placeholder_file() -> None:
    message = "```diff\n@@ -10,3 +10,4 @@ def f():\n a = 1\n+b = 2\n c = 3\n d = 4\n```\nIs b needed?"
    found = detect_diff(message, ())
    assert found is not None
    assert found.question == "Is b needed?"
    (file,) = parse_diff_input(found).files
    assert file.path == SYNTHETIC_PATH
    assert [(line.new_number, line.text) for line in file.hunks[0].lines][:2] == [
        (10, "a = 1"),
        (11, "b = 2"),
    ]


@pytest.mark.parametrize(
    "message",
    [
        "Shopping list:\n- eggs\n+ milk\n- butter\n+ bread",
        "Why does git print @@ in the middle of my output?",
        "Intro\n---\nPart one\n---\nPart two",
        "```diff\n- the old way we did things\n+ the new way we do things\n```",
        "```diff\nHere is what changed: we now retry twice.\n```",
        "---\ntitle: Notes\n---\n# Heading\n\n- item",
        "--- a/app.py\n+++ b/app.py\nbut I lost the rest, any idea what changed?",
        "Please review my plan: first - remove the cache, then + add a queue. @@ is a marker.",
        "```python\ndef f():\n    return 1\n```",
    ],
    ids=[
        "markdown-list",
        "at-signs-in-prose",
        "separators",
        "fenced-diff-without-hunk",
        "fenced-diff-prose",
        "front-matter",
        "headers-without-hunk",
        "review-word-without-diff",
        "python-block",
    ],
)
def test_text_that_only_looks_like_a_diff_stays_a_question(message: str) -> None:
    assert detect_diff(message, ()) is None


def test_bare_hunks_in_plain_text_need_an_explicit_review_request() -> None:
    hunk = "@@ -1,2 +1,2 @@\n keep = 1\n-old = 2\n+new = 2\n"
    assert detect_diff(f"what about this\n{hunk}", ()) is None
    by_flag = detect_diff(f"what about this\n{hunk}", (), review_requested=True)
    by_word = detect_diff(f"please review\n{hunk}", ())
    assert by_flag is not None and by_flag.requested and by_flag.question == "what about this"
    assert by_word is not None and by_word.requested


def test_review_command_is_not_part_of_the_question(diff: str) -> None:
    found = detect_diff(f"/review check the error paths\n{diff}", (), review_requested=True)
    assert found is not None and found.question == "check the error paths"


def test_patch_and_diff_attachments(diff: str) -> None:
    found = detect_diff("see attached", [text_attachment("fix.patch", diff)])
    assert found is not None
    (source,) = found.sources
    assert (source.origin, source.name, source.text) == (DiffOrigin.ATTACHMENT, "fix.patch", diff)
    assert found.question == "see attached"
    hunks_only = "@@ -1,2 +1,2 @@\n a\n-b\n+c\n"
    assert detect_diff("", [text_attachment("bare.diff", hunks_only)]) is not None
    assert detect_diff("", [text_attachment("bare.txt", hunks_only)]) is None


def test_any_text_attachment_holding_a_diff_counts(diff: str) -> None:
    found = detect_diff("", [text_attachment("message.txt", "pasted from my terminal:\n" + diff)])
    assert found is not None and found.sources[0].text == diff


def test_attachments_that_are_not_diffs_are_ignored(diff: str) -> None:
    assert detect_diff("hello", [text_attachment("notes.txt", "- a\n+ b\n")]) is None
    assert detect_diff("hello", [text_attachment("big.patch", diff, AttachmentKind.SKIPPED)]) is None
    image = Attachment("shot.png", AttachmentKind.IMAGE, 4, b"\x89PNG")
    assert detect_diff("hello", [image]) is None


def test_format_patch_series_gives_one_source_per_mail(repo: GitRepo) -> None:
    series = repo.git("format-patch", "-2", "--stdout", "HEAD")
    assert series.count("Subject: [PATCH") == 2 and "\n-- \n" in series
    found = detect_diff("please look", [text_attachment("series.patch", series)])
    assert found is not None
    assert [s.origin for s in found.sources] == [DiffOrigin.MAIL, DiffOrigin.MAIL]
    assert [s.description for s in found.sources] == [
        "Make five a word",
        "Return two\n\nBecause one was wrong.",
    ]
    assert all(s.text.startswith("From ") and "\n-- " not in s.text for s in found.sources)
    parsed = parse_diff_input(found)
    assert [f.path for f in parsed.files] == ["app.py", "util.py"]
    assert parsed.context == "Make five a word\n\nReturn two\n\nBecause one was wrong."


def test_mail_pasted_in_the_message_leaves_no_signature_in_the_question(repo: GitRepo) -> None:
    mail = repo.git("format-patch", "-1", "--stdout", "HEAD")
    found = detect_diff(f"{mail}\nwhat do you think?", ())
    assert found is not None
    assert found.question == "what do you think?"


README_DIFF = ("diff --git a/README.md b/README.md\n--- a/README.md\n+++ b/README.md\n@@ -1,4 +1,5 @@\n"
               " Install:\n ```\n pip install x\n ```\n+Then run it.\n")


@pytest.mark.parametrize("text", [README_DIFF, f"please review\n```diff\n{README_DIFF}```\nthanks"],
                         ids=["raw", "in-a-diff-fence"])
def test_a_context_line_holding_a_fence_stays_in_the_diff(text: str) -> None:
    found = detect_diff(text)
    assert found is not None and [s.text for s in found.sources] == [README_DIFF]
    assert "Then run it" not in found.question and "pip install" not in found.question

"""The review as Markdown: summary and risk first, findings by severity, balanced fences, honest footer."""

from __future__ import annotations

import json

import pytest

from bot.chat.markdown import code_block, language_for
from bot.review import (
    Finding,
    MergedReview,
    Risk,
    Severity,
    build_review_messages,
    detect_diff,
    ground_findings,
    merge_reviews,
    parse_review_reply,
    prepare_review,
    render_review,
)
from bot.review.types import NOTE_PLAIN_CODE, NOTE_REPAIRED_HEADERS, SkippedFile, SkipReason
from tests.review.test_review_support import TINY_PNG, GitRepo, open_fence_at_end

TRICKY_SUGGESTION = 'doc = """\n```python\nprint(1)\n```\n"""\nfence = "````"'


def merged(findings: tuple[Finding, ...] = (), **changes) -> MergedReview:
    values = dict(
        summaries=("Adds a cache in front of the user lookup.",),
        risk=Risk.MEDIUM,
        findings=findings,
        dropped_findings=0,
        raw_replies=(),
        skipped=(),
        notes=(),
        calls=1,
    )
    values.update(changes)
    return MergedReview(**values)


def make_finding(path: str, line: int, severity: Severity, suggestion: str | None = None, **extra) -> Finding:
    fields = dict(title=f"{severity.value} issue", explanation="Why it matters.")
    fields.update(extra)
    return Finding(path=path, line=line, severity=severity, suggestion=suggestion, **fields)


def test_summary_and_risk_come_first_then_findings_by_severity() -> None:
    text = render_review(
        merged(
            (
                make_finding("src/db.py", 42, Severity.CRITICAL),
                make_finding("src/api.ts", 7, Severity.MAJOR),
                make_finding("src/api.ts", 9, Severity.MAJOR),
                make_finding("README.md", 1, Severity.NIT),
            )
        )
    )
    assert text.startswith("**Code review** · risk: **medium**\n\nAdds a cache in front of the user lookup.")
    order = [
        text.index(marker)
        for marker in (
            "**Critical (1)**",
            "`src/db.py:42` critical issue",
            "**Major (2)**",
            "`src/api.ts:7`",
            "`src/api.ts:9`",
            "**Nit (1)**",
            "`README.md:1`",
        )
    ]
    assert order == sorted(order)
    assert "**Minor" not in text


def test_suggestion_fence_is_longer_than_any_backticks_inside() -> None:
    text = render_review(merged((make_finding("app/util.py", 3, Severity.MINOR, TRICKY_SUGGESTION),)))
    assert open_fence_at_end(text) is None
    assert f"`````python\n{TRICKY_SUGGESTION}\n`````" in text


@pytest.mark.parametrize(
    ("path", "language"),
    [
        ("a/b.py", "python"),
        ("web/x.ts", "typescript"),
        ("cmd/main.go", "go"),
        ("src/lib.rs", "rust"),
        ("x.js", "javascript"),
        ("X.java", "java"),
        ("a.rb", "ruby"),
        ("run.sh", "bash"),
        ("ci.yml", "yaml"),
        ("p.json", "json"),
        ("q.sql", "sql"),
        ("m.c", "c"),
        ("m.cpp", "cpp"),
        ("Dockerfile", "dockerfile"),
        ("LICENSE", ""),
        ("notes.unknownext", ""),
    ],
)
def test_suggestion_language_follows_the_file_extension(path: str, language: str) -> None:
    assert language_for(path) == language
    assert code_block("x", language).startswith(f"```{language}\n")


def test_model_text_with_an_unclosed_fence_is_closed() -> None:
    finding = make_finding("a.py", 1, Severity.MAJOR, explanation="Compare:\n```python\nx = 1")
    text = render_review(
        merged(
            (finding,),
            summaries=("Summary with ```` an inline run and\n```\nan open block",),
        )
    )
    assert open_fence_at_end(text) is None
    raw = render_review(merged(risk=None, summaries=(), raw_replies=("Here you go:\n~~~\nunfinished",)))
    assert open_fence_at_end(raw) is None
    assert "not in the expected format" in raw and "Here you go:" in raw


def test_footer_lists_what_was_not_reviewed_and_why() -> None:
    text = render_review(
        merged(
            dropped_findings=2,
            skipped=(
                SkippedFile("yarn.lock", SkipReason.LOCKFILE),
                SkippedFile("logo.png", SkipReason.BINARY),
                SkippedFile("go.sum", SkipReason.LOCKFILE),
                SkippedFile("big.py", SkipReason.TOO_LARGE, "lines 100-900"),
            ),
            notes=(NOTE_REPAIRED_HEADERS, NOTE_PLAIN_CODE),
        )
    )
    footer = text.split("\n\n")[-1].split("\n")
    assert footer == [
        "Not reviewed, lockfile: `yarn.lock`, `go.sum`",
        "Not reviewed, binary: `logo.png`",
        "Not reviewed, does not fit the review budget: `big.py` (lines 100-900)",
        "2 findings dropped for citing lines outside the diff.",
        "Parsed after repairing hunk headers.",
        "Reviewed as plain code: the text could not be read as a diff.",
    ]


def test_a_long_list_of_files_not_reviewed_names_the_first_and_counts_the_rest() -> None:
    locks = tuple(SkippedFile(f"pkg{n}/yarn.lock", SkipReason.LOCKFILE) for n in range(50_000))
    footer = render_review(merged(skipped=locks)).split("\n\n")[-1]
    assert footer.startswith("Not reviewed, lockfile: `pkg0/yarn.lock`, ") and "`pkg19/yarn.lock`" in footer
    assert "`pkg20/yarn.lock`" not in footer and footer.endswith(" and 49,980 more files")
    assert render_review(merged(skipped=locks[:21])).endswith("`pkg19/yarn.lock` and 1 more file")


def test_no_findings_and_nothing_reviewed() -> None:
    clean = render_review(merged())
    assert clean == "**Code review** · risk: **medium**\n\nAdds a cache in front of the user lookup."
    empty = render_review(merged(risk=None, summaries=(), skipped=(SkippedFile("a.bin", SkipReason.BINARY),)))
    assert empty == "**Code review**: nothing in this change was reviewed.\n\nNot reviewed, binary: `a.bin`"


def test_whole_path_from_a_pasted_diff_to_markdown(tmp_path) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.write("svc/users.py", "def find(db, name):\n    return db.get(name)\n")
    repo.commit("base")
    repo.write(
        "svc/users.py",
        "def find(db, name):\n    query = f\"SELECT * FROM users WHERE name = '{name}'\"\n"
        "    return db.execute(query)\n",
    )
    repo.write("package-lock.json", "{}\n")
    repo.write("logo.png", TINY_PNG)
    message = "/review is this safe?\n```diff\n" + repo.staged_diff() + "```"

    found = detect_diff(message, (), review_requested=True)
    assert found is not None and found.question == "is this safe?"
    plan = prepare_review(found)
    (chunk,) = plan.chunks
    user_prompt = build_review_messages(chunk)[1]["content"]
    assert "is this safe?" in user_prompt
    assert (
        "   2 + " + '    query = f"SELECT' in user_prompt and "     -     return db.get(name)" in user_prompt
    )

    model_reply = (
        "```json\n"
        + json.dumps(
            {
                "summary": "Builds SQL from user input.",
                "risk": "high",
                "findings": [
                    {
                        "path": "b/svc/users.py",
                        "line": 2,
                        "severity": "critical",
                        "title": "SQL injection",
                        "explanation": "`name` goes straight into the query.",
                        "suggestion": 'return db.execute("SELECT * FROM users WHERE name = ?", (name,))',
                    },
                    {
                        "path": "svc/users.py",
                        "line": 2,
                        "severity": "critical",
                        "title": "SQL injection",
                        "explanation": "Duplicate of the above.",
                    },
                    {
                        "path": "svc/users.py",
                        "line": 30,
                        "severity": "minor",
                        "title": "Invented line",
                        "explanation": "Not in the diff.",
                    },
                ],
            }
        )
        + "\n```"
    )
    review = merge_reviews(plan, [ground_findings(parse_review_reply(model_reply), chunk)])
    text = render_review(review)

    assert text.startswith("**Code review** · risk: **high**\n\nBuilds SQL from user input.")
    assert text.count("`svc/users.py:2` SQL injection") == 1
    assert "```python\nreturn db.execute(" in text
    assert "Invented line" not in text
    assert "1 finding dropped for citing lines outside the diff." in text
    assert "Not reviewed, lockfile: `package-lock.json`" in text
    assert "Not reviewed, binary: `logo.png`" in text
    assert open_fence_at_end(text) is None


def test_a_finding_title_is_one_line_of_at_most_200_characters() -> None:
    text = render_review(merged((make_finding("a.py", 3, Severity.MINOR, title="word " * 40_000),)))
    title_line = next(line for line in text.splitlines() if "`a.py:3`" in line)
    assert len(title_line) < 260 and title_line.endswith("…")

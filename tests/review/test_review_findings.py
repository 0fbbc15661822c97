"""Reading the model's reply (with one repair), checking its citations against the diff, merging calls."""

from __future__ import annotations

import json

import pytest

from bot.review import (
    ChunkReview,
    Finding,
    ReviewReply,
    Risk,
    Severity,
    ground_findings,
    merge_reviews,
    parse_diff,
    parse_review_reply,
)
from bot.review.findings import ParsedReply
from bot.review.types import (
    FileDiff,
    FilePart,
    ReviewBudget,
    ReviewChunk,
    ReviewPlan,
    SkippedFile,
    SkipReason,
)
from tests.review.test_review_support import GitRepo

APP_BEFORE = "".join(f"line_{n} = {n}\n" for n in range(1, 101))
APP_AFTER = APP_BEFORE.replace(
    "".join(f"line_{n} = {n}\n" for n in range(20, 30)), "merged = sum(range(20, 30))\n"
).replace("line_80 = 80\n", "line_80 = 'eighty'\n")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, FileDiff]:
    repo = GitRepo(tmp_path_factory.mktemp("ground") / "repo")
    repo.write("app.py", APP_BEFORE)
    repo.write("lib/old_helpers.py", "".join(f"def h{n}():\n    return {n}\n" for n in range(10)))
    repo.commit("base")
    repo.write("app.py", APP_AFTER)
    repo.git("mv", "lib/old_helpers.py", "lib/helpers.py")
    repo.write(
        "lib/helpers.py",
        "".join(f"def h{n}():\n    return {n}\n" for n in range(10)).replace("return 4", "return -4"),
    )
    return {file.path: file for file in parse_diff(repo.staged_diff("-M")).files}


@pytest.fixture(scope="module")
def first_call(files: dict[str, FileDiff]) -> ReviewChunk:
    """Call 1 of 2: the first hunk of app.py and the renamed helpers; app.py's second hunk is in call 2."""
    app = files["app.py"]
    parts = (
        FilePart(app, app.hunks[:1], 1, 2),
        FilePart(files["lib/helpers.py"], files["lib/helpers.py"].hunks),
    )
    return ReviewChunk(1, 2, parts, "", "", ())


def finding(path: str, line: int, title: str = "Problem", severity: str = "major") -> dict:
    return {"path": path, "line": line, "severity": severity, "title": title, "explanation": "Because."}


def reply_with(*findings: dict, risk: str = "medium") -> ParsedReply:
    return parse_review_reply(
        json.dumps({"summary": "Looks risky.", "risk": risk, "findings": list(findings)})
    )


def test_hunks_are_where_the_citations_below_expect(files: dict[str, FileDiff]) -> None:
    first, second = files["app.py"].hunks
    assert list(first.new_side_numbers()) == [17, 18, 19, 20, 21, 22, 23]
    assert [line.old_number for line in first.lines if line.new_number is None] == list(range(20, 30))
    assert 71 in second.new_side_numbers()


# Each citation: the path and line the model cites, its title, and the path it is kept under (None: dropped).
@pytest.mark.parametrize(
    "citations",
    [
        pytest.param(
            [
                ("app.py", 20, "added line", "app.py"),
                ("app.py", 17, "context line", "app.py"),
                ("a/app.py", 21, "git old-side prefix", "app.py"),
                ("b/app.py", 22, "git new-side prefix", "app.py"),
                ("./app.py", 23, "dot slash", "app.py"),
                ("`lib/helpers.py`", 9, "backticks", "lib/helpers.py"),
                ("lib/old_helpers.py", 9, "old path of a rename", "lib/helpers.py"),
            ],
            id="inside this call's hunks",
        ),
        pytest.param(
            [
                ("app.py", 27, "old number of a deleted line", None),
                ("app.py", 40, "beyond the hunk", None),
                ("app.py", 80, "in a hunk sent in another call", None),
                ("src/unknown.py", 3, "file not in the diff", None),
                ("app.py", 20, "the one real finding", "app.py"),
            ],
            id="outside this call's diff",
        ),
    ],
)
def test_citations_outside_this_calls_hunks_are_dropped_and_counted(
    first_call: ReviewChunk, citations: list[tuple[str, int, str, str | None]]
) -> None:
    reply = reply_with(*(finding(path, line, title) for path, line, title, _ in citations))
    grounded = ground_findings(reply, first_call)
    kept = [(kept_path, line, title) for _, line, title, kept_path in citations if kept_path is not None]
    assert [(f.path, f.line, f.title) for f in grounded.findings] == kept
    assert len(grounded.dropped) == len(citations) - len(kept)


def test_valid_reply_parses_without_repair() -> None:
    parsed = reply_with(finding("app.py", 3, severity="Major"), risk="HIGH")
    assert parsed.ok and not parsed.repaired
    assert parsed.review is not None
    assert parsed.review.risk is Risk.HIGH
    assert parsed.review.findings[0].severity is Severity.MAJOR
    assert parsed.review.findings[0].suggestion is None


GOOD = (
    '{"summary": "Fine.", "risk": "low", "findings": [{"path": "a.py", "line": 2, "severity": "nit", '
    '"title": "Name", "explanation": "Say what it is {not} \\"how\\".", "suggestion": "x = 1"}]}'
)


@pytest.mark.parametrize(
    "reply",
    [
        f"```json\n{GOOD}\n```",
        f"Here is my review:\n\n```\n{GOOD}\n```\nLet me know if {{anything}} is unclear.",
        f"Sure! {{as requested}} {GOOD} Hope that helps.",
        GOOD.replace('"x = 1"}]}', '"x = 1",},],}'),
        "```json\n" + GOOD.replace('"x = 1"}]}', '"x = 1"}, ]\n,}') + "\n```",
    ],
    ids=[
        "json-fence",
        "prose-and-plain-fence",
        "prose-with-braces",
        "trailing-commas",
        "fenced-trailing-commas",
    ],
)
def test_one_repair_recovers_common_wrappings(reply: str) -> None:
    parsed = parse_review_reply(reply)
    assert parsed.ok and parsed.repaired
    assert parsed.review is not None
    (only,) = parsed.review.findings
    assert (only.path, only.line, only.suggestion, only.explanation) == (
        "a.py",
        2,
        "x = 1",
        'Say what it is {not} "how".',
    )


@pytest.mark.parametrize(
    "reply",
    [
        "I looked at the diff and it seems fine to me.",
        '{"summary": "No risk field", "findings": []}',
        '{"summary": "Cut off", "risk": "low", "findings": [{"path": "a.py", "line": 2',
    ],
    ids=["prose", "missing-risk", "truncated"],
)
def test_unreadable_reply_is_handed_back_as_raw_text(reply: str) -> None:
    parsed = parse_review_reply(reply)
    assert not parsed.ok and parsed.review is None
    assert parsed.raw_text == reply and parsed.error


@pytest.mark.parametrize("bad", [finding("a.py", 1, severity="meh"), finding("a.py", 0), {"path": "a.py"}],
                         ids=["unknown-severity", "line-zero", "fields-missing"])
def test_an_unreadable_finding_is_counted_and_the_rest_of_the_review_stands(bad: dict) -> None:
    reply = json.dumps({"summary": "One bad item", "risk": "low", "findings": [finding("a.py", 2), bad]})
    parsed = parse_review_reply(reply)
    assert parsed.ok and parsed.review is not None
    assert [(f.path, f.line) for f in parsed.review.findings] == [("a.py", 2)]
    assert parsed.review.unreadable_findings == 1


def make_plan(chunks: int, skipped: tuple[SkippedFile, ...] = ()) -> ReviewPlan:
    file = FileDiff(path="x.py")
    made = tuple(ReviewChunk(n, chunks, (FilePart(file, ()),), "", "", ()) for n in range(1, chunks + 1))
    return ReviewPlan(made, skipped, ("parsed after repairing hunk headers",), ReviewBudget())


def chunk_review(index: int, risk: Risk, findings: list[Finding], dropped: int = 0) -> ChunkReview:
    review = ReviewReply(summary=f"Summary {index}.", risk=risk, findings=tuple(findings))
    return ChunkReview(index, review, tuple(findings), tuple(findings[:1]) * dropped)


def make_finding(path: str, line: int, severity: Severity, title: str) -> Finding:
    return Finding(path=path, line=line, severity=severity, title=title, explanation="e")


def test_merge_takes_the_highest_risk_removes_duplicates_and_sorts() -> None:
    first = chunk_review(
        1,
        Risk.LOW,
        [
            make_finding("b.py", 9, Severity.NIT, "Rename"),
            make_finding("b.py", 3, Severity.CRITICAL, "SQL injection"),
            make_finding("a.py", 5, Severity.MAJOR, "Race"),
        ],
        dropped=2,
    )
    second = chunk_review(
        2,
        Risk.HIGH,
        [
            make_finding("b.py", 3, Severity.CRITICAL, "  sql   INJECTION "),
            make_finding("a.py", 1, Severity.MAJOR, "Leak"),
            make_finding("a.py", 1, Severity.MINOR, "Leak in edge case"),
        ],
        dropped=1,
    )
    unreadable = ChunkReview(3, None, (), (), "free text answer")
    merged = merge_reviews(make_plan(4), [first, second, unreadable])
    assert merged.risk is Risk.HIGH
    assert merged.summaries == ("Summary 1.", "Summary 2.")
    assert [(f.severity, f.path, f.line) for f in merged.findings] == [
        (Severity.CRITICAL, "b.py", 3),
        (Severity.MAJOR, "a.py", 1),
        (Severity.MAJOR, "a.py", 5),
        (Severity.MINOR, "a.py", 1),
        (Severity.NIT, "b.py", 9),
    ]
    assert merged.dropped_findings == 3
    assert merged.raw_replies == ("free text answer",)
    assert [(s.path, s.reason) for s in merged.skipped] == [("x.py", SkipReason.NOT_REVIEWED)]
    assert merged.notes == ("parsed after repairing hunk headers",)


def test_a_call_that_came_back_blank_leaves_its_files_listed_as_not_reviewed() -> None:
    blank = ChunkReview(2, None, (), (), "  \n ")
    merged = merge_reviews(make_plan(2), [chunk_review(1, Risk.LOW, []), blank])
    assert merged.raw_replies == ()
    assert [(s.path, s.reason) for s in merged.skipped] == [("x.py", SkipReason.NOT_REVIEWED)]


def test_merge_of_nothing_readable_has_no_risk() -> None:
    merged = merge_reviews(make_plan(1), [ChunkReview(1, None, (), (), "oops")])
    assert merged.risk is None and merged.findings == () and merged.raw_replies == ("oops",)


def test_a_line_of_true_is_not_line_one() -> None:
    parsed = reply_with(finding("a.py", 2), {**finding("a.py", 1), "line": True})
    assert parsed.review is not None and [f.line for f in parsed.review.findings] == [2]
    assert parsed.review.unreadable_findings == 1

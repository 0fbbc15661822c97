"""Packing big diffs into at most `max_calls` prompts under the token budget, losing nothing silently."""

from __future__ import annotations

from collections import Counter

import pytest

from bot.review import (
    build_review_messages,
    detect_diff,
    parse_diff,
    parse_diff_input,
    plan_review,
    select_files,
)
from bot.review.prompt import count_message_tokens
from bot.review.types import (
    DiffHunk,
    DiffLine,
    FileDiff,
    LineKind,
    ParsedDiff,
    ReviewBudget,
    ReviewPlan,
    Selection,
    SkipReason,
)
from tests.review.test_review_support import GitRepo, added_lines_in_prompt, fully_mangled, parse_line_ranges

DEFAULT_BUDGET = ReviewBudget(tokens_per_call=100_000, max_calls=4)


def module_source(module: int, lines: int = 250) -> str:
    return "".join(
        f"def handler_{module}_{n}(request):\n"
        if n % 5 == 0
        else f"    total = request.value * {n} + {module}\n"
        for n in range(lines)
    )


@pytest.fixture(scope="module")
def wide_diff(tmp_path_factory: pytest.TempPathFactory) -> str:
    repo = GitRepo(tmp_path_factory.mktemp("wide") / "repo")
    for module in range(200):
        repo.write(f"src/pkg_{module // 20}/module_{module:03d}.py", module_source(module))
    return repo.staged_diff()


def detected_selection(message: str) -> Selection:
    found = detect_diff(message, ())
    assert found is not None
    return select_files(parse_diff_input(found))


@pytest.fixture(scope="module")
def two_hundred_files(wide_diff: str) -> Selection:
    selection = detected_selection(wide_diff)
    added = [
        line for f in selection.files for h in f.hunks for line in h.lines if line.kind is LineKind.ADDED
    ]
    assert len(selection.files) == 200 and len(added) == 50_000
    return selection


@pytest.fixture(scope="module")
def one_new_big_file(tmp_path_factory: pytest.TempPathFactory) -> Selection:
    repo = GitRepo(tmp_path_factory.mktemp("tall") / "repo")
    repo.write("data/huge.py", "".join(f"ROW_{n} = {n}\n" for n in range(50_000)))
    return select_files(parse_diff(repo.staged_diff()))


@pytest.fixture(scope="module")
def one_file_many_hunks(tmp_path_factory: pytest.TempPathFactory) -> Selection:
    repo = GitRepo(tmp_path_factory.mktemp("hunks") / "repo")
    rows = [f"setting_{n} = compute({n}, scale=1.0, label='row {n}')\n" for n in range(50_000)]
    repo.write("config/table.py", "".join(rows))
    repo.commit("base")
    for n in range(0, 50_000, 50):
        rows[n] = f"setting_{n} = compute({n}, scale=2.5, label='row {n} (tuned)')\n"
    repo.write("config/table.py", "".join(rows))
    return select_files(parse_diff(repo.staged_diff()))


def added_lines_of(selection: Selection) -> set[tuple[str, int]]:
    return {
        (file.path, line.new_number)
        for file in selection.files
        for hunk in file.hunks
        for line in hunk.lines
        if line.kind is LineKind.ADDED and line.new_number is not None
    }


def prompts(plan: ReviewPlan) -> list[str]:
    return [build_review_messages(chunk)[1]["content"] for chunk in plan.chunks]


def assert_calls_fit(plan: ReviewPlan, budget: ReviewBudget) -> None:
    assert 0 < len(plan.chunks) <= budget.max_calls
    for chunk in plan.chunks:
        sent = count_message_tokens(build_review_messages(chunk))
        assert sent == chunk.prompt_tokens <= budget.tokens_per_call
        assert (chunk.total, chunk.index) == (len(plan.chunks), plan.chunks.index(chunk) + 1)


def assert_every_added_line_once_or_listed(plan: ReviewPlan, selection: Selection) -> set[tuple[str, int]]:
    """Each added line is in exactly one prompt, or its file (and range) is listed as too large."""
    sent = Counter(line for prompt in prompts(plan) for line in added_lines_in_prompt(prompt))
    assert set(sent.values()) == {1}
    missing = added_lines_of(selection) - set(sent)
    assert set(sent) <= added_lines_of(selection)
    listed = [s for s in plan.skipped if s.reason is SkipReason.TOO_LARGE]
    for path, number in missing:
        entries = [s for s in listed if s.path == path]
        assert entries, f"{path}:{number} neither sent nor listed"
        assert any(
            not s.detail or any(a <= number <= b for a, b in parse_line_ranges(s.detail)) for s in entries
        ), f"{path}:{number} not covered by the listed ranges"
    return missing


def test_fifty_thousand_lines_in_two_hundred_files(two_hundred_files: Selection) -> None:
    plan = plan_review(two_hundred_files, DEFAULT_BUDGET)
    assert_calls_fit(plan, DEFAULT_BUDGET)
    assert len(plan.chunks) == 4
    missing = assert_every_added_line_once_or_listed(plan, two_hundred_files)
    assert missing, "this diff is larger than four calls; some of it must be left out"
    reviewed_paths = [part.file.path for chunk in plan.chunks for part in chunk.parts]
    assert len(reviewed_paths) == len(set(reviewed_paths)), "files that fit stay whole"
    assert all(part.parts == 1 for chunk in plan.chunks for part in chunk.parts)
    too_large = {s.path for s in plan.skipped if s.reason is SkipReason.TOO_LARGE}
    assert too_large == {f.path for f in two_hundred_files.files} - set(reviewed_paths)
    assert all(s.detail == "" for s in plan.skipped)


def test_the_same_diff_mangled_by_chat_is_planned_the_same(
    wide_diff: str, two_hundred_files: Selection
) -> None:
    mangled = detected_selection("Please review, focusing on error handling:\n" + fully_mangled(wide_diff))
    assert not mangled.parsed.repaired_headers and not mangled.parsed.plain_code
    assert mangled.files == two_hundred_files.files
    plan = plan_review(mangled, DEFAULT_BUDGET)
    assert_calls_fit(plan, DEFAULT_BUDGET)
    assert_every_added_line_once_or_listed(plan, mangled)
    assert "focusing on error handling" in build_review_messages(plan.chunks[-1])[1]["content"]


def test_a_single_new_file_of_fifty_thousand_lines_is_listed_not_sent(one_new_big_file: Selection) -> None:
    plan = plan_review(one_new_big_file, DEFAULT_BUDGET)
    assert plan.chunks == ()
    (skipped,) = plan.skipped
    assert (skipped.path, skipped.reason, skipped.detail) == (
        "data/huge.py",
        SkipReason.TOO_LARGE,
        "lines 1-50000",
    )


def test_a_file_too_large_for_one_call_is_split_between_hunks(one_file_many_hunks: Selection) -> None:
    (file,) = one_file_many_hunks.files
    assert len(file.hunks) == 1_000
    plan = plan_review(one_file_many_hunks, DEFAULT_BUDGET)
    assert_calls_fit(plan, DEFAULT_BUDGET)
    assert len(plan.chunks) >= 2
    assert not assert_every_added_line_once_or_listed(plan, one_file_many_hunks)
    assert plan.skipped == ()
    parts = [part for chunk in plan.chunks for part in chunk.parts]
    assert [(part.part, part.parts) for part in parts] == [(n, len(parts)) for n in range(1, len(parts) + 1)]
    assert [hunk for part in parts for hunk in part.hunks] == list(file.hunks)


def small_file(path: str, hunk_sizes: list[int]) -> FileDiff:
    hunks, start = [], 1
    for size in hunk_sizes:
        lines = tuple(
            DiffLine(LineKind.ADDED, f"value_{start + i} = compute_something({start + i})", None, start + i)
            for i in range(size)
        )
        hunks.append(DiffHunk(start, 0, start, size, "", lines))
        start += size + 100
    return FileDiff(path=path, hunks=tuple(hunks))


def selection_of(*files: FileDiff, question: str = "") -> Selection:
    return Selection(ParsedDiff(files, question=question), files, ())


def test_neighbouring_hunks_stay_together_and_an_oversized_hunk_is_listed() -> None:
    selection = selection_of(small_file("a.py", [40, 40, 40, 2_000, 40]))
    budget = ReviewBudget(tokens_per_call=3_000, max_calls=4)
    plan = plan_review(selection, budget)
    assert_calls_fit(plan, budget)
    assert_every_added_line_once_or_listed(plan, selection)
    groups = [[h.new_start for h in part.hunks] for chunk in plan.chunks for part in chunk.parts]
    starts = [h.new_start for h in selection.files[0].hunks]
    assert groups == [starts[0:2], starts[2:3], starts[4:5]] or groups == [starts[0:3], starts[4:5]]
    (oversized,) = plan.skipped
    assert oversized.detail == f"lines {starts[3]}-{starts[3] + 1_999}"


def test_parts_left_over_are_listed_as_one_span_of_lines() -> None:
    selection = selection_of(small_file("a.py", [40] * 12))
    budget = ReviewBudget(tokens_per_call=3_000, max_calls=1)
    plan = plan_review(selection, budget)
    assert_calls_fit(plan, budget)
    assert assert_every_added_line_once_or_listed(plan, selection)
    (chunk,) = plan.chunks
    hunks = selection.files[0].hunks
    sent = len(chunk.parts[0].hunks)
    assert chunk.parts[0].hunks == hunks[:sent] and chunk.parts[0].parts > 2
    (left_over,) = plan.skipped
    assert left_over.detail == f"lines {hunks[sent].new_start}-{hunks[-1].new_start + 39}"


def test_the_question_counts_against_the_budget() -> None:
    files = [small_file(f"m{n}.py", [30]) for n in range(6)]
    budget = ReviewBudget(tokens_per_call=2_500, max_calls=1)
    quiet = plan_review(selection_of(*files), budget)
    chatty = plan_review(selection_of(*files, question="please be thorough " * 150), budget)
    assert_calls_fit(quiet, budget)
    assert_calls_fit(chatty, budget)
    assert len(chatty.chunks[0].parts) < len(quiet.chunks[0].parts)
    assert "please be thorough" in build_review_messages(chatty.chunks[0])[1]["content"]
    huge = plan_review(selection_of(*files, question="word " * 5_000), budget)
    assert huge.chunks == ()
    assert [s.reason for s in huge.skipped] == [SkipReason.TOO_LARGE] * 6


def test_the_exact_count_has_the_last_word_over_the_estimate(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the estimate undercounts, the call is still sent under budget and what it moved out is listed."""
    from bot.chat.tokens import count_tokens
    from bot.review import chunking

    monkeypatch.setattr(
        chunking,
        "count_tokens",
        lambda text: count_tokens(text) // 3 if "HUGE_" in text else count_tokens(text),
    )
    huge_lines = tuple(
        DiffLine(LineKind.ADDED, f"HUGE_{n} = compute_something({n})", None, n) for n in range(1, 560)
    )
    huge = FileDiff(path="huge.py", hunks=(DiffHunk(1, 0, 1, len(huge_lines), "", huge_lines),))
    selection = selection_of(small_file("a.py", [30]), huge, small_file("c.py", [30]))
    budget = ReviewBudget(tokens_per_call=3_000, max_calls=3)

    plan = plan_review(selection, budget)

    assert_calls_fit(plan, budget)
    assert assert_every_added_line_once_or_listed(plan, selection)
    (chunk,) = plan.chunks
    assert [part.file.path for part in chunk.parts] == ["a.py", "c.py"]
    assert "part 1 of" not in build_review_messages(chunk)[1]["content"]
    assert [(s.path, s.reason) for s in plan.skipped] == [("huge.py", SkipReason.TOO_LARGE)]

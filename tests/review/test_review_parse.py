"""Parsing real git output, clean and as chat mangles it: files, flags and new-side line numbers."""

from __future__ import annotations

import pytest

from bot.review import detect_diff, parse_diff, parse_diff_input
from bot.review.parse import PLAIN_CODE_PATH, repair_hunk_headers
from bot.review.scan import split_lines
from bot.review.types import LineKind, ParsedDiff
from tests.review.test_review_support import (
    MANGLERS,
    TINY_PNG,
    GitRepo,
    assert_new_numbers_point_at_file,
    line_table,
    with_trailing_whitespace_stripped,
)

SERVICE_BEFORE = (
    "import os\n\n\ndef load(path):\n    with open(path) as handle:\n        return handle.read()\n"
    "    \n\ndef save(path, data):\n    with open(path, 'w') as handle:\n        handle.write(data)\n\n\n"
    + "".join(f"STEP_{n} = {n}\n" for n in range(20))
    + "\n\ndef main():\n    print(load(os.environ['INPUT']))\n"
)
SERVICE_AFTER = SERVICE_BEFORE.replace(
    "        return handle.read()\n", "        text = handle.read()\n        return text.strip()\n"
).replace("    print(load(os.environ['INPUT']))\n", "    path = os.environ['INPUT']\n    print(load(path))\n")
GO_BEFORE = (
    'package main\n\nimport "fmt"\n\nfunc main() {\n\tname := "world"\n\tfmt.Println("hello", name)\n}\n'
)
GO_AFTER = GO_BEFORE.replace('\tname := "world"\n', '\tname := "world"\n\tif name == "" {\n\t\treturn\n\t}\n')
RENAMED_BEFORE = "".join(f"def helper_{n}():\n    return {n}\n\n" for n in range(8))


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> GitRepo:
    repo = GitRepo(tmp_path_factory.mktemp("parse") / "repo")
    repo.write("app/service.py", SERVICE_BEFORE)
    repo.write("old_name.py", RENAMED_BEFORE)
    repo.write("notes/same.txt", "unchanged content\nstays the same\n")
    repo.write("run.sh", "#!/bin/sh\necho run\n")
    repo.write("tool.sh", "#!/bin/sh\necho tool\n")
    repo.write("windows.txt", "first\r\nsecond\r\nthird\r\n")
    repo.write("nonl.txt", "alpha\nbeta")
    repo.write("gone.py", "print('bye')\n")
    repo.write("main.go", GO_BEFORE)
    repo.write("café.py", "x = 1\n")
    repo.write("docs/read me.txt", "spaces in the name\nmake git add a tab\n")
    repo.commit("base")
    repo.write("app/service.py", SERVICE_AFTER)
    repo.git("mv", "old_name.py", "new_name.py")
    repo.write("new_name.py", RENAMED_BEFORE.replace("return 3\n", "return 3 * 3\n"))
    repo.git("mv", "notes/same.txt", "notes/moved.txt")
    (repo.root / "run.sh").chmod(0o755)
    (repo.root / "tool.sh").chmod(0o755)
    repo.write("tool.sh", "#!/bin/sh\necho tool\necho done\n")
    repo.write("windows.txt", "first\r\nSECOND\r\nthird\r\nfourth\r\n")
    repo.write("nonl.txt", "alpha\nbeta\ngamma")
    repo.remove("gone.py")
    repo.write("added.py", "def fresh():\n    return 'new'\n")
    repo.write("img.png", TINY_PNG)
    repo.write("main.go", GO_AFTER)
    repo.write("café.py", "x = 2\n")
    repo.write("docs/read me.txt", "spaces in the name\nmake git add a tab after it\n")
    repo.commit("change everything")
    return repo


@pytest.fixture(scope="module")
def clean_diff(repo: GitRepo) -> str:
    diff = repo.git("diff", "-M", "HEAD~1", "HEAD")
    # git ends a path containing a space with a tab, which chat turns into spaces or strips.
    assert "+++ b/docs/read me.txt\t\n" in diff
    return diff


@pytest.fixture(scope="module")
def clean(clean_diff: str) -> ParsedDiff:
    parsed = parse_diff(clean_diff)
    assert not parsed.repaired_headers and not parsed.plain_code
    return parsed


def by_path(parsed: ParsedDiff) -> dict:
    return {file.path: file for file in parsed.files}


def test_each_kind_of_change_is_reported_per_file(clean: ParsedDiff) -> None:
    files = by_path(clean)
    assert set(files) == {
        "app/service.py",
        "new_name.py",
        "notes/moved.txt",
        "run.sh",
        "tool.sh",
        "windows.txt",
        "nonl.txt",
        "gone.py",
        "added.py",
        "img.png",
        "main.go",
        "café.py",
        "docs/read me.txt",
    }
    renamed = files["new_name.py"]
    assert (renamed.is_rename, renamed.old_path) == (True, "old_name.py")
    moved = files["notes/moved.txt"]
    assert (moved.is_rename, moved.old_path, moved.hunks) == (True, "notes/same.txt", ())
    assert (files["run.sh"].old_mode, files["run.sh"].new_mode, files["run.sh"].hunks) == (
        "100644",
        "100755",
        (),
    )
    assert files["tool.sh"].mode_changed and len(files["tool.sh"].hunks) == 1
    assert files["img.png"].is_binary and files["img.png"].is_new
    assert files["gone.py"].is_deleted and not files["gone.py"].is_new
    assert files["added.py"].is_new and not files["added.py"].is_deleted
    assert len(files["app/service.py"].hunks) == 2
    assert not any(f.is_rename for p, f in files.items() if p not in ("new_name.py", "notes/moved.txt"))


def test_new_side_numbers_name_the_lines_of_the_new_files(repo: GitRepo, clean: ParsedDiff) -> None:
    for file in clean.files:
        if file.hunks and not file.is_deleted:
            assert_new_numbers_point_at_file(file, repo.lines_of(file.path))
    service = by_path(clean)["app/service.py"]
    added = [
        (line.new_number, line.text) for h in service.hunks for line in h.lines if line.kind is LineKind.ADDED
    ]
    assert added[:2] == [(6, "        text = handle.read()"), (7, "        return text.strip()")]


def test_crlf_file_lines_carry_no_carriage_returns(clean: ParsedDiff) -> None:
    windows = by_path(clean)["windows.txt"]
    texts = [line.text for line in windows.hunks[0].lines]
    assert texts == ["first", "second", "SECOND", "third", "fourth"]


def test_file_without_final_newline_parses_with_or_without_the_marker(
    clean_diff: str, clean: ParsedDiff
) -> None:
    assert "\\ No newline at end of file" in clean_diff
    unmarked = "".join(line for line in clean_diff.splitlines(keepends=True) if not line.startswith("\\ "))
    parsed = parse_diff(unmarked)
    assert line_table(parsed) == line_table(clean)
    assert not parsed.repaired_headers


@pytest.mark.parametrize("mangle", sorted(MANGLERS))
def test_chat_mangled_diff_reads_the_same(
    mangle: str, repo: GitRepo, clean_diff: str, clean: ParsedDiff
) -> None:
    message = MANGLERS[mangle]("Please focus on error handling.\n\n" + clean_diff + "\nThanks!\n")
    detected = detect_diff(message, ())
    assert detected is not None
    assert detected.question == "Please focus on error handling.\n\nThanks!"
    parsed = parse_diff_input(detected)
    assert not parsed.plain_code and not parsed.repaired_headers
    assert line_table(parsed) == line_table(clean)
    assert [
        (f.path, f.is_binary, f.is_rename, f.is_new, f.is_deleted, f.old_mode, f.new_mode)
        for f in parsed.files
    ] == [
        (f.path, f.is_binary, f.is_rename, f.is_new, f.is_deleted, f.old_mode, f.new_mode)
        for f in clean.files
    ]
    for file in parsed.files:
        if file.hunks and not file.is_deleted:
            assert_new_numbers_point_at_file(file, repo.lines_of(file.path))


@pytest.mark.parametrize("mangle", sorted(MANGLERS))
def test_chat_mangled_format_patch_mail_reads_the_same(mangle: str, repo: GitRepo, clean: ParsedDiff) -> None:
    mail = repo.git("format-patch", "-1", "--stdout", "HEAD")
    detected = detect_diff(MANGLERS[mangle]("```\n" + mail + "```\n"), ())
    assert detected is not None and len(detected.sources) == 1
    assert detected.sources[0].description == "change everything"
    assert detected.question == ""
    assert line_table(parse_diff_input(detected)) == line_table(clean)


def test_quoted_non_ascii_path_is_unquoted(clean_diff: str, clean: ParsedDiff) -> None:
    assert '"a/caf\\303\\251.py"' in clean_diff
    assert by_path(clean)["café.py"].hunks[0].lines[-1].text == "x = 2"


@pytest.fixture(scope="module")
def tail_repo(tmp_path_factory: pytest.TempPathFactory) -> GitRepo:
    """A change whose diff ends on an empty context line: chat trims it off the end of the message."""
    repo = GitRepo(tmp_path_factory.mktemp("tail") / "repo")
    body = "".join(f"line_{n} = {n}\n" for n in range(1, 30))
    repo.write("z_tail.py", body.replace("line_12 = 12\n", "line_12 = 12\n\n"))
    repo.commit("base")
    repo.write(
        "z_tail.py",
        body.replace("line_10 = 10\n", "line_10 = 'ten'\n").replace("line_12 = 12\n", "line_12 = 12\n\n"),
    )
    repo.commit("change")
    return repo


def test_trailing_context_line_lost_to_chat_is_repaired(tail_repo: GitRepo) -> None:
    diff = tail_repo.git("diff", "HEAD~1", "HEAD")
    assert diff.endswith(" line_12 = 12\n \n")
    mangled = with_trailing_whitespace_stripped(diff)
    assert not mangled.endswith("\n")
    parsed = parse_diff(mangled)
    assert parsed.repaired_headers and not parsed.plain_code
    (file,) = parsed.files
    hunk = file.hunks[0]
    assert (hunk.old_length, hunk.new_length) == (6, 6)
    assert_new_numbers_point_at_file(file, tail_repo.lines_of("z_tail.py"))


def test_paste_cut_off_mid_hunk_is_repaired(repo: GitRepo, clean_diff: str) -> None:
    head, _, _ = clean_diff.partition("+    path = os.environ['INPUT']\n")
    parsed = parse_diff(head)
    assert parsed.repaired_headers
    service = by_path(parsed)["app/service.py"]
    last = service.hunks[-1]
    assert (last.old_length, last.new_length) == (4, 3)
    assert (last.lines[-1].kind, last.lines[-1].text) == (
        LineKind.REMOVED,
        "    print(load(os.environ['INPUT']))",
    )
    assert_new_numbers_point_at_file(service, repo.lines_of("app/service.py"))


def test_repair_recounts_and_moves_later_hunks_consistently() -> None:
    diff = (
        "--- a/m.py\n+++ b/m.py\n"
        "@@ -1,3 +1,3 @@\n a\n-b\n+B\n+B2\n c\n"
        "@@ -10,3 +10,4 @@ def f():\n x\n+y\n z\n w\n"
    )
    repaired = repair_hunk_headers(split_lines(diff))
    assert repaired is not None
    assert "@@ -1,3 +1,4 @@\n" in repaired
    assert "@@ -10,3 +11,4 @@ def f():\n" in repaired
    parsed = parse_diff(diff)
    assert parsed.repaired_headers
    second = parsed.files[0].hunks[1]
    assert [(line.new_number, line.text) for line in second.lines] == [
        (11, "x"),
        (12, "y"),
        (13, "z"),
        (14, "w"),
    ]


def test_unreadable_diff_is_reviewed_as_plain_code() -> None:
    broken = "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/y.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n"
    parsed = parse_diff(broken)
    assert parsed.plain_code and not parsed.repaired_headers
    (file,) = parsed.files
    assert file.path == PLAIN_CODE_PATH and file.is_plain_code
    numbered = [(line.new_number, line.text) for hunk in file.hunks for line in hunk.lines]
    assert numbered == list(enumerate(broken.splitlines(), start=1))
    assert "reviewed as plain code" in " ".join(parsed.notes)


def test_large_plain_code_is_cut_into_pieces_that_can_be_split() -> None:
    text = "--- a/x\n+++ b/y\n@@ -1 +1 @@\n" + "".join(f"value_{n} = {n}\n" for n in range(449))
    parsed = parse_diff(text)
    assert parsed.plain_code
    hunks = parsed.files[0].hunks
    assert [len(h.lines) for h in hunks] == [200, 200, 52]
    assert hunks[2].lines[-1].new_number == 452

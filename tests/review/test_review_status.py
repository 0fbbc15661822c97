"""A file's status in a review comes from git's extended header lines, not from the shape of its hunks."""

from __future__ import annotations

from bot.review import parse_diff, select_files
from bot.review.prompt import file_open_tag
from bot.review.types import FilePart

COPY_100 = """\
diff --git a/src/base.py b/src/base_copy.py
similarity index 100%
copy from src/base.py
copy to src/base_copy.py
"""

COPY_EDITED = """\
diff --git a/src/base.py b/src/base_v2.py
similarity index 80%
copy from src/base.py
copy to src/base_v2.py
index 3b18e51..8f2b1c3 100644
--- a/src/base.py
+++ b/src/base_v2.py
@@ -1,2 +1,2 @@
 import os
-VERSION = 1
+VERSION = 2
"""

# An empty file getting its first line, and a file emptied: the hunks look like "added" and "removed",
# but git says both files were modified (no "new file mode" / "deleted file mode" line).
EMPTY_FILLED_AND_EMPTIED = """\
diff --git a/notes.txt b/notes.txt
index e69de29..ce01362 100644
--- a/notes.txt
+++ b/notes.txt
@@ -0,0 +1 @@
+hello
diff --git a/todo.txt b/todo.txt
index ce01362..e69de29 100644
--- a/todo.txt
+++ b/todo.txt
@@ -1 +0,0 @@
-hello
"""


def test_a_copy_is_labelled_copied_in_the_review_and_the_prompt() -> None:
    (copy,) = parse_diff(COPY_100).files
    assert (copy.path, copy.old_path, copy.is_copy, copy.is_rename) == ("src/base_copy.py", "src/base.py", True, False)
    assert copy.status() == "copied from src/base.py"
    (skipped,) = select_files(parse_diff(COPY_100)).skipped
    assert skipped.detail == "copied from src/base.py"
    assert 'status="copied from src/base.py"' in file_open_tag(FilePart(copy, copy.hunks))


def test_an_edited_copy_is_copied_not_renamed() -> None:
    (copy,) = parse_diff(COPY_EDITED).files
    assert copy.status() == "copied from src/base.py"
    assert 'status="copied from src/base.py"' in file_open_tag(FilePart(copy, copy.hunks))


def test_new_and_deleted_come_from_git_not_from_hunk_shapes() -> None:
    files = {f.path: f for f in parse_diff(EMPTY_FILLED_AND_EMPTIED).files}
    assert files["notes.txt"].status() == "modified"
    assert files["todo.txt"].status() == "modified"

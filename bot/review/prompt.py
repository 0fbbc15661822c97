"""What the model is asked: the review instructions and each call's files, numbered by new-side line."""

from __future__ import annotations

from bot.chat.tokens import estimate_message_tokens
from bot.review.types import NOTE_PLAIN_CODE, DiffHunk, FileDiff, FilePart, ReviewChunk

SYSTEM_PROMPT = """\
You are reviewing a code change that a teammate posted in a team chat. Read it the way a senior \
engineer reads a change before approving it, and report what would hurt in production: bugs, \
security holes, data loss, concurrency mistakes, broken error handling, performance traps, and code \
that will mislead the next reader. Leave formatting and taste to linters.

How the change is shown. Each file is wrapped in <file path="..." status="..."> ... </file>. Inside, \
every line begins with a number and a marker:
  "  42 + text"  an added line; 42 is its line number in the new version of the file
  "  43   text"  an unchanged line, shown for context; 43 is its new-version line number
  "     - text"  a removed line; it has no number because it no longer exists
Lines starting with "@@" only mark where a block of changes begins.

Rules for findings:
- Concentrate on added lines. Flag an unchanged line only when this change makes it wrong.
- Cite each finding with the path exactly as written in its <file> tag and one line number that is \
printed in front of an added or unchanged line of that file. Never cite a removed line, a line that \
is not shown, or a file that is not shown.
- One finding per problem, at the line where it is best fixed.
- severity: "critical" for an exploitable hole, data loss or a crash on a common path; "major" for \
a bug or regression that users will meet; "minor" for an edge-case bug, a missing check or a \
maintainability problem; "nit" for a small clean-up.
- "suggestion" is optional: the replacement code for the cited line and its neighbours as it \
should read, without numbers or +/- markers.
- If nothing is worth raising, return an empty "findings" list and say so in the summary.
- "risk" is your overall judgement of merging this change as it is: "low", "medium" or "high".

Reply with exactly one JSON object and nothing around it (no Markdown fence, no prose):
{"summary": "two or three sentences on what the change does and its main problem, if any",
 "risk": "low" | "medium" | "high",
 "findings": [{"path": "src/app.py", "line": 42, "severity": "critical" | "major" | "minor" | "nit",
   "title": "short headline", "explanation": "what goes wrong, when, and why",
   "suggestion": "optional replacement code"}]}
"""

FILE_CLOSE_TAG = "</file>"
# Numbers are right-aligned to at least this width, so short files read like long ones.
_MIN_NUMBER_WIDTH = 4


def build_review_messages(chunk: ReviewChunk) -> list[dict[str, str]]:
    """The chat messages for one review call."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": render_user_message(chunk)},
    ]


def count_message_tokens(messages: list[dict[str, str]]) -> int:
    return sum(estimate_message_tokens(message["content"]) for message in messages)


def render_user_message(chunk: ReviewChunk) -> str:
    sections = list(_preamble_sections(chunk))
    sections.extend(render_file_part(part) for part in chunk.parts)
    return "\n\n".join(sections)


def _preamble_sections(chunk: ReviewChunk) -> list[str]:
    sections = []
    if chunk.question:
        sections.append(f"What the person who posted the change asked for:\n{chunk.question}")
    if chunk.context:
        sections.append(f"Commit message:\n{chunk.context}")
    if chunk.total > 1:
        sections.append(
            f"This is part {chunk.index} of {chunk.total}. The change was too large for one review, so "
            "other files, or other hunks of the same file, are reviewed separately: do not report "
            "them as missing."
        )
    if NOTE_PLAIN_CODE in chunk.notes:
        sections.append(
            'Some text could not be read as a diff. It is shown as a file with status "plain code": '
            "its numbers are the text's own line numbers and every line is under review."
        )
    sections.append("The change:")
    return sections


def render_file_part(part: FilePart) -> str:
    width = number_width(part.file)
    hunks = [render_hunk(hunk, width, with_header=not part.file.is_plain_code) for hunk in part.hunks]
    return "\n".join([file_open_tag(part), *hunks, FILE_CLOSE_TAG])


def file_open_tag(part: FilePart) -> str:
    path = part.file.path.replace('"', '\\"')
    share = f' part="{part.part} of {part.parts}"' if part.parts > 1 else ""
    return f'<file path="{path}" status="{part.file.status()}"{share}>'


def render_hunk(hunk: DiffHunk, width: int, *, with_header: bool = True) -> str:
    rows = [_hunk_header(hunk)] if with_header else []
    blank = " " * width
    for line in hunk.lines:
        number = blank if line.new_number is None else f"{line.new_number:>{width}}"
        rows.append(f"{number} {line.kind.value} {line.text}".rstrip())
    return "\n".join(rows)


def _hunk_header(hunk: DiffHunk) -> str:
    header = f"@@ -{hunk.old_start},{hunk.old_length} +{hunk.new_start},{hunk.new_length} @@"
    return f"{header} {hunk.section}" if hunk.section else header


def number_width(file: FileDiff) -> int:
    highest = max((n for hunk in file.hunks for n in hunk.new_side_numbers()), default=0)
    return max(_MIN_NUMBER_WIDTH, len(str(highest)))

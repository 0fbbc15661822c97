from __future__ import annotations

import pytest

from bot.chat.prompt import HistoryTurn, build_user_turn, choose_window, parse_options
from bot.domain import Attachment, AttachmentKind


@pytest.mark.parametrize(
    ("text", "web", "fast", "cleaned"),
    [
        ("how do I x? --web", True, False, "how do I x?"),
        ("--fast what is y", False, True, "what is y"),
        ("a --web b --fast", True, True, "a b"),
        ("use --webhook here", False, False, "use --webhook here"),
        ("fix:\n    if x:\n        return  1 --web", True, False, "fix:\n    if x:\n        return  1"),
    ],
)
def test_flags_are_read_and_removed_without_touching_other_spacing(text: str, web: bool, fast: bool,
                                                                  cleaned: str) -> None:
    options = parse_options(text)
    assert (options.web_search, options.fast, options.text) == (web, fast, cleaned)


def test_text_files_become_fenced_blocks_and_big_images_are_noted() -> None:
    code = b"print('```')\n"
    turn = build_user_turn("Why?", (
        Attachment("a.py", AttachmentKind.TEXT, len(code), code),
        Attachment("shot.png", AttachmentKind.IMAGE, 10, b"\x89PNG....", "image/png"),
        Attachment("huge.png", AttachmentKind.IMAGE, 10_000_000, b"", "image/png"),
        Attachment("a.bin", AttachmentKind.SKIPPED, 5, skipped_reason="binary files are not read"),
    ), max_image_bytes=1_000_000)
    assert "File `a.py`:\n````python\nprint('```')\n````" in turn.text
    assert [i.filename for i in turn.images] == ["shot.png"]
    assert turn.message()["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert turn.notes == ["huge.png was skipped: images over 976 KB are not sent",
                          "a.bin was skipped: binary files are not read"]


def turns(n: int, tokens: int = 100) -> list[HistoryTurn]:
    """Questions and answers in turn: question i has pk i + 1, its answer the same question_pk."""
    return [HistoryTurn(question_pk=i - i % 2 + 1, role="user" if i % 2 == 0 else "assistant", content=f"m{i}",
                        token_estimate=tokens) for i in range(n)]


def test_window_holds_still_while_it_fits_then_jumps_to_half() -> None:
    history = turns(10)
    assert choose_window(history, floor_pk=0, budget_tokens=2_000, fixed_tokens=500).floor_pk == 0
    window = choose_window(turns(20), floor_pk=0, budget_tokens=2_000, fixed_tokens=500)
    assert window.tokens() + 500 <= 1_000 and window.turns[0].role == "user"
    assert window.dropped == 20 - len(window.turns)
    # The next turn, with two more messages, keeps the same floor: the prefix stays byte-identical.
    again = choose_window(turns(22), floor_pk=window.floor_pk, budget_tokens=2_000, fixed_tokens=500)
    assert again.floor_pk == window.floor_pk

"""without_stop_button: a message's blocks as Slack returns them (untrusted), the Stop button taken out."""

from __future__ import annotations

from adapters.slack.controls import STOP_ACTION, feedback_blocks, markdown_block, stop_chunk, without_stop_button


def test_the_stop_button_goes_with_its_actions_block_when_it_stood_alone() -> None:
    stop_blocks = stop_chunk("slack:T1:C1:1.0")["blocks"]
    blocks = [markdown_block("text"), *stop_blocks, *feedback_blocks("slack:T1:C1:1.0")]
    assert without_stop_button(blocks) == [markdown_block("text"), *feedback_blocks("slack:T1:C1:1.0")]


def test_other_buttons_beside_it_stay() -> None:
    other = {"type": "button", "action_id": "someone_elses", "text": {"type": "plain_text", "text": "Other"}}
    [actions] = stop_chunk("key")["blocks"]
    mixed = {**actions, "block_id": "b1", "elements": [*actions["elements"], other]}
    assert without_stop_button([mixed]) == [{**mixed, "elements": [other]}]


def test_blocks_without_it_or_not_blocks_at_all_need_no_change() -> None:
    assert without_stop_button([markdown_block("text"), *feedback_blocks("key")]) is None
    for odd in (None, "blocks", {"type": "actions"}, [None, 3, "x", {"type": "actions", "elements": "no"}]):
        assert without_stop_button(odd) is None
    assert without_stop_button([{"type": "actions", "elements": [{"action_id": STOP_ACTION}, None]}]) == [
        {"type": "actions", "elements": [None]}]

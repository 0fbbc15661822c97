"""The controls on a Slack answer, as Block Kit, and the clicks on them. Pure: blocks out, payloads in.

- Stop: a button in an `actions` block, sent as a `blocks` chunk of chat.startStream (so it rides
  the call that starts the answer), value = the answer key (the asked message's dedup key).
- Feedback: a `context_actions` block with `feedback_buttons`, sent with chat.stopStream (Slack
  renders it under the finished answer), or after a `markdown` block where the answer is posted.

Shapes: https://docs.slack.dev/reference/block-kit/blocks/context-actions-block and the
block_actions payload (https://docs.slack.dev/reference/interaction-payloads/block_actions-payload).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]

STOP_ACTION = "seedbot_stop"
FEEDBACK_ACTION = "seedbot_feedback"
HELPFUL, NOT_HELPFUL = "helpful", "not_helpful"
# Slack caps an action value at 2,000 characters and a block_id at 255.
MAX_VALUE_CHARS = 2_000


def stop_chunk(answer_key: str) -> JSON:
    """A streaming `blocks` chunk holding the Stop button."""
    button = {"type": "button", "action_id": STOP_ACTION, "value": answer_key[:MAX_VALUE_CHARS],
              "text": {"type": "plain_text", "text": "Stop"}, "style": "danger"}
    return {"type": "blocks", "blocks": [{"type": "actions", "elements": [button]}]}


def without_stop_button(blocks: object) -> list[JSON] | None:
    """`blocks` as Slack returned them for a message (its `blocks` field, untrusted), without the Stop button
    (an `actions` block left empty goes too); None when they hold no Stop button, so nothing needs changing."""
    if not isinstance(blocks, list):
        return None
    kept: list[JSON] = []
    found = False
    for block in blocks:
        elements = block.get("elements") if isinstance(block, dict) else None
        if isinstance(elements, list) and block.get("type") == "actions":
            others = [e for e in elements if not (isinstance(e, dict) and e.get("action_id") == STOP_ACTION)]
            if len(others) < len(elements):
                found = True
                if others:
                    kept.append({**block, "elements": others})
                continue
        kept.append(block)
    return kept if found else None


def feedback_blocks(answer_key: str) -> list[JSON]:
    """The thumbs under a finished answer; each button's value names the rating and the answer."""

    def button(emoji: str, rating: str, label: str) -> JSON:
        return {"text": {"type": "plain_text", "text": emoji}, "accessibility_label": label,
                "value": f"{rating}|{answer_key}"[:MAX_VALUE_CHARS]}

    return [{"type": "context_actions", "elements": [{
        "type": "feedback_buttons", "action_id": FEEDBACK_ACTION,
        "positive_button": button("👍", HELPFUL, "This answer helped"),
        "negative_button": button("👎", NOT_HELPFUL, "This answer did not help"),
    }]}]


def markdown_block(text: str) -> JSON:
    """The answer's text as a `markdown` block, for messages that carry blocks besides the text."""
    return {"type": "markdown", "text": text}


def escape_mrkdwn(text: str) -> str:
    """`text` for a mrkdwn field (a message's `text`, its notification when blocks carry the message): `&`,
    `<` and `>` as HTML entities, as Slack's "Formatting text for app surfaces" asks, so model output cannot
    form a control sequence (`<!channel>`, `<@U…>`, a link) there."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True, slots=True)
class Click:
    """One click on an answer control, from a block_actions payload."""

    action_id: str
    value: str
    user_id: str
    user_name: str
    team_id: str


def clicks(body: JSON) -> list[Click]:
    """The clicks in a block_actions payload that are ours and well-formed; the rest are dropped."""
    if body.get("type") != "block_actions":
        return []
    user = body.get("user") if isinstance(body.get("user"), dict) else {}
    team = body.get("team") if isinstance(body.get("team"), dict) else {}
    user_id = str(user.get("id") or "")
    if not user_id:
        return []
    name = str(user.get("username") or user.get("name") or user_id)
    found: list[Click] = []
    for action in body.get("actions") or ():
        if not isinstance(action, dict) or action.get("action_id") not in (STOP_ACTION, FEEDBACK_ACTION):
            continue
        value = action.get("value")
        if isinstance(value, str) and value:
            found.append(Click(str(action["action_id"]), value, user_id, name, str(team.get("id") or "")))
    return found


def rating(value: str) -> tuple[bool, str] | None:
    """(helpful, answer key) from a feedback button's value, or None if it is not one of ours."""
    verdict, _, key = value.partition("|")
    if verdict not in (HELPFUL, NOT_HELPFUL) or not key:
        return None
    return verdict == HELPFUL, key

"""Argument and content checks the Web API methods share: required fields, text limits, Block Kit."""

from __future__ import annotations

from typing import Any

from .model import JSON, MARKDOWN_LIMIT, TEXT_LIMIT, SlackError


def require(params: JSON, *names: str) -> None:
    for name in names:
        if params.get(name) in (None, "", []):
            raise SlackError("invalid_arguments", f"missing required field: {name}")


def channel_param(params: JSON, key: str = "channel") -> str:
    channel = params.get(key)
    if not channel:
        raise SlackError("channel_not_found")
    return str(channel)


BLOCK_TYPES = frozenset({"actions", "context", "context_actions", "divider", "header", "image", "markdown",
                         "rich_text", "section"})


MAX_BLOCKS = 50


def _plain_text(value: Any, limit: int = 75) -> bool:
    return (isinstance(value, dict) and value.get("type") == "plain_text" and isinstance(value.get("text"), str)
            and 0 < len(value["text"]) <= limit)


def _check_element(element: Any, block_type: str) -> None:
    """The interactive elements the app sends, checked against Block Kit's documented fields."""
    if not isinstance(element, dict):
        raise SlackError("invalid_blocks", f"{block_type} element is not an object")
    kind = element.get("type")
    if block_type == "actions" and kind == "button":
        value = element.get("value", "")
        if not _plain_text(element.get("text")) or not element.get("action_id") or len(value) > 2000:
            raise SlackError("invalid_blocks", "button needs text (plain_text), action_id, value <= 2000")
        if element.get("style") not in (None, "primary", "danger"):
            raise SlackError("invalid_blocks", "button style must be primary or danger")
    elif block_type == "context_actions" and kind == "feedback_buttons":
        for side in ("positive_button", "negative_button"):
            button = element.get(side)
            if not isinstance(button, dict) or not _plain_text(button.get("text")) \
                    or not isinstance(button.get("value"), str) or not button["value"]:
                raise SlackError("invalid_blocks", f"feedback_buttons.{side} needs text and value")
    elif block_type == "context_actions" and kind == "icon_button":
        if not _plain_text(element.get("text")) or not element.get("icon"):
            raise SlackError("invalid_blocks", "icon_button needs icon and text")
    elif block_type in ("actions", "context_actions"):
        raise SlackError("invalid_blocks", f"{kind} is not allowed in {block_type}")


def check_blocks(blocks: Any) -> None:
    """Blocks as Slack validates the parts this app uses (else invalid_blocks)."""
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        raise SlackError("invalid_blocks", f"blocks must be a list of at most {MAX_BLOCKS}")
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in BLOCK_TYPES:
            raise SlackError("invalid_blocks", f"unknown block type {kind!r}")
        if len(str(block.get("block_id", ""))) > 255:
            raise SlackError("invalid_blocks", "block_id longer than 255")
        if kind == "markdown" and not (isinstance(block.get("text"), str) and 0 < len(block["text"]) <= MARKDOWN_LIMIT):
            raise SlackError("invalid_blocks", "markdown block needs text of 1..12000 characters")
        if kind in ("actions", "context_actions"):
            elements = block.get("elements")
            limit = 5 if kind == "context_actions" else 25
            if not isinstance(elements, list) or not 0 < len(elements) <= limit:
                raise SlackError("invalid_blocks", f"{kind} needs 1..{limit} elements")
            for element in elements:
                _check_element(element, kind)


def check_content(params: JSON) -> tuple[str | None, str | None, Any]:
    """text, markdown_text and blocks of a chat.postMessage/chat.update, validated as Slack does."""
    text, markdown, blocks = params.get("text"), params.get("markdown_text"), params.get("blocks")
    if markdown is not None and (text is not None or blocks is not None):
        raise SlackError("markdown_text_conflict")
    if blocks:
        check_blocks(blocks)
    if not (text or markdown or blocks or params.get("attachments")):
        raise SlackError("no_text")
    if len(text or "") > TEXT_LIMIT or len(markdown or "") > MARKDOWN_LIMIT:
        raise SlackError("msg_too_long")
    return text, markdown, blocks

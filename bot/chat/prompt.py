"""Building the prompt: system prompt, the history window, and the new turn.

The history window only ever moves its start forward, and in large steps: while it holds still,
each turn's prompt is the previous prompt plus two messages, byte for byte, so the provider's
prefix cache serves everything but the newest turn.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.chat.markdown import fence_for, language_for
from bot.chat.tokens import PER_MESSAGE_OVERHEAD, count_tokens
from bot.domain import Attachment, AttachmentKind

SYSTEM_PROMPT = """You are seedbot, a senior software engineer helping a team in their chat.
Answer code questions precisely and briefly; prefer a working example to a long explanation.
Write in Markdown. Put code in fenced blocks with a language tag (```python, ```ts, ```bash ...).
When you are unsure, say what you would check instead of guessing. If a question is ambiguous, answer
the most likely reading and note the assumption in one line."""

# A step drops history down to this share of the context budget, so the next steps are far apart.
TRUNCATE_TO_SHARE = 0.5
# An image costs tokens the provider counts, not us; reserve for it generously.
IMAGE_TOKEN_ESTIMATE = 1_600

# A flag takes one blank before it with it, so "fix this --web" loses no other spacing (code keeps its indent).
_FLAG_RE = re.compile(r"(?:(?<=^)|[ \t]|(?<=\n))--(web|fast)(?!\S)")


@dataclass(frozen=True, slots=True)
class Options:
    web_search: bool
    fast: bool
    text: str


def parse_options(text: str) -> Options:
    """`--web` asks for web search, `--fast` turns thinking off; both are removed from the question."""
    flags = set(_FLAG_RE.findall(text))
    return Options(web_search="web" in flags, fast="fast" in flags, text=_FLAG_RE.sub("", text).strip())


@dataclass(slots=True)
class UserTurn:
    """The new user turn: the text stored in history, plus images sent with this turn only."""

    text: str
    images: list[Attachment] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # How many secrets were masked in the message and its files before this turn was built.
    secrets_masked: int = 0

    def message(self) -> dict[str, Any]:
        if not self.images:
            return {"role": "user", "content": self.text}
        parts: list[dict[str, Any]] = [{"type": "text", "text": self.text}]
        for image in self.images:
            data = base64.b64encode(image.data).decode("ascii")
            mime = image.content_type or "image/png"
            parts.append({"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}})
        return {"role": "user", "content": parts}

    def token_estimate(self) -> int:
        return count_tokens(self.text) + PER_MESSAGE_OVERHEAD + IMAGE_TOKEN_ESTIMATE * len(self.images)


def build_user_turn(text: str, attachments: Sequence[Attachment], *, max_image_bytes: int) -> UserTurn:
    """Text files become fenced blocks after the question; images become image inputs."""
    turn = UserTurn(text=text)
    blocks: list[str] = [text] if text else []
    for attachment in attachments:
        if attachment.kind is AttachmentKind.TEXT:
            body = attachment.text()
            fence = fence_for(body)
            blocks.append(f"File `{attachment.filename}`:\n{fence}{language_for(attachment.filename)}\n"
                          f"{body.rstrip()}\n{fence}")
        elif attachment.kind is AttachmentKind.IMAGE and attachment.size <= max_image_bytes:
            turn.images.append(attachment)
            blocks.append(f"[image: {attachment.filename}]")
        else:
            reason = attachment.skipped_reason or f"images over {max_image_bytes // 1024} KB are not sent"
            turn.notes.append(f"{attachment.filename} was skipped: {reason}")
    turn.text = "\n\n".join(blocks)
    return turn


@dataclass(frozen=True, slots=True)
class HistoryTurn:
    """One message of a thread's history. `question_pk` places it: a question's own message pk, an answer's
    question's (so each answer follows its question, however the answers' writes interleaved)."""

    question_pk: int
    role: str
    content: str
    token_estimate: int


@dataclass(frozen=True, slots=True)
class Window:
    """Which history goes into the prompt: the turns whose question_pk >= floor_pk."""

    floor_pk: int
    turns: list[HistoryTurn]
    dropped: int

    def messages(self) -> list[dict[str, Any]]:
        return [{"role": t.role, "content": t.content} for t in self.turns]

    def tokens(self) -> int:
        return sum(t.token_estimate for t in self.turns)


def choose_window(history: Sequence[HistoryTurn], *, floor_pk: int, budget_tokens: int,
                  fixed_tokens: int, correction: float = 1.0) -> Window:
    """Keep the window from `floor_pk` if it fits; otherwise move the floor forward, to a user turn,
    until the history fills at most TRUNCATE_TO_SHARE of the budget.

    `fixed_tokens` is what every prompt carries besides history (system prompt, new turn);
    `correction` scales local estimates towards what the provider counted last time.
    """
    kept = [t for t in history if t.question_pk >= floor_pk]
    before = len(history) - len(kept)

    def total(turns: Sequence[HistoryTurn]) -> float:
        return (fixed_tokens + sum(t.token_estimate for t in turns)) * correction

    if total(kept) <= budget_tokens:
        return Window(floor_pk, kept, before)
    target = budget_tokens * TRUNCATE_TO_SHARE
    start = 0
    while start < len(kept) and total(kept[start:]) > target:
        start += 1
    # Never begin the window with an answer whose question was dropped.
    while start < len(kept) and kept[start].role != "user":
        start += 1
    window = kept[start:]
    new_floor = window[0].question_pk if window else (kept[-1].question_pk + 1 if kept else floor_pk)
    return Window(new_floor, window, before + start)


def build_messages(system_prompt: str, window: Window, turn: UserTurn) -> list[dict[str, Any]]:
    return [{"role": "system", "content": system_prompt}, *window.messages(), turn.message()]

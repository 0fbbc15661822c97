"""`seedbot ask`'s work apart from its options: one answer through the same supervisor and service as a
chat message, and the one JSON object `--json` prints."""

from __future__ import annotations

import sys

from adapters.core import build_core
from adapters.terminal.sink import TerminalSink
from bot.chat.service import Answer
from bot.config import Settings
from bot.domain import Incoming, usd_string


def answer_json(answer: Answer, thread_id: str, failure: str | None) -> dict[str, object]:
    """`seedbot ask --json`'s one object, for a failed answer too (then with `error`, the sentence the
    person would have seen); `cost_usd` is what was charged, as a decimal string."""
    usage = answer.usage
    result: dict[str, object] = {
        "answer": answer.text,
        "usage": {"prompt_tokens": usage.prompt_tokens, "cached_tokens": usage.cached_tokens,
                  "completion_tokens": usage.completion_tokens, "reasoning_tokens": usage.reasoning_tokens},
        "cost_usd": usd_string(answer.cost_nanos),
        "status": answer.status,
        "thread": thread_id,
    }
    if failure is not None:
        result["error"] = failure
    return result


async def answer_in_terminal(settings: Settings, incoming: Incoming, sink: TerminalSink, *,
                             continuing: bool) -> Answer | None:
    """Answer `incoming` into `sink` with a Core of its own; None if the message was already answered.
    `continuing`: the person named the thread; if this database holds no conversation by that id, one line
    on stderr says a new one starts under it (scripts may name their threads; a typo should not go unseen)."""
    from adapters.common.supervisor import AnswerSupervisor  # the chat stack only when asking

    core = await build_core(settings)
    try:
        key = incoming.thread
        if continuing and not await core.store.has_thread(key.platform.value, key.workspace_id, key.channel_id,
                                                          key.thread_id):
            print(f"seedbot: no conversation {key.thread_id!r} here yet; starting one under that id", file=sys.stderr)
        return await AnswerSupervisor(core.service).answer(incoming, sink)
    finally:
        await core.aclose()

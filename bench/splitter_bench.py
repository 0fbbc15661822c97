"""Splitter benchmark: how long adapters.common.splitter takes per streamed delta, for prose and for
Chinese text with emoji (the grapheme-cluster path), at Slack's and Discord's limits.

Prints microseconds per delta and characters per second for a 200,000-character answer fed in
24-character deltas (the fake model's default chunk).
Run: .venv/bin/python -m bench.splitter_bench
"""

from __future__ import annotations

import time

from adapters.common.splitter import MarkdownSplitter

DELTA = 24
ANSWERS = {
    "prose": ("The retry loop swallows the last error, so callers never see it. " * 3_100)[:200_000],
    "code": ("```python\n" + "    value = compute(index)  # keep\n" * 5_700 + "```\n")[:200_000],
    "chinese+emoji": ("重试循环吞掉了最后一个错误👩\u200d💻" * 12_500)[:200_000],
}
LIMITS = {"slack": (12_000, 1_400), "discord": (2_000, 300)}


def run(text: str, limit: int, footer_room: int) -> tuple[float, int]:
    splitter = MarkdownSplitter(limit, footer_room)
    started = time.perf_counter()
    for start in range(0, len(text), DELTA):
        splitter.feed(text[start:start + DELTA])
    splitter.finish("\n-# 12 tokens")
    return time.perf_counter() - started, splitter.messages


def main() -> None:
    for platform, (limit, room) in LIMITS.items():
        for name, text in ANSWERS.items():
            seconds, messages = run(text, limit, room)
            deltas = -(-len(text) // DELTA)
            print(f"{platform:8} {name:14} {len(text):,} chars -> {messages:4} messages: "
                  f"{seconds / deltas * 1e6:6.1f} µs per delta, {len(text) / seconds / 1e6:5.2f} M chars/s")


if __name__ == "__main__":
    main()

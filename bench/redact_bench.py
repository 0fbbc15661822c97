"""How much secret masking costs: a typical answer streamed in small deltas, and large pastes at once.

Run: `python -m bench.redact_bench`. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bot.chat.redaction import StreamRedactor, mask_secrets

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "secrets"


def _answer() -> str:
    """About 4,000 characters of prose and code, like a long answer, with two secrets in it."""
    code = (DATA / "ordinary_code.txt").read_text(encoding="utf-8").split("\n")[:40]
    prose = ("The retry loop gives up too early because the timeout is measured from the first attempt; "
             "measure it per attempt instead, and log the attempt number so the next failure is easier to read. ")
    secrets = [json.loads(line)["text"] for line in (DATA / "secrets.jsonl").read_text().splitlines()[:2]]
    return "\n\n".join([prose * 4, "```python", *code, "```", *secrets, prose * 6])


def _best(runs: int, work) -> float:  # noqa: ANN001
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    answer = _answer()

    def streamed(size: int) -> None:
        redactor = StreamRedactor()
        for i in range(0, len(answer), size):
            redactor.feed(answer[i:i + size])
        redactor.flush()

    once = _best(args.runs, lambda: mask_secrets(answer))
    print(f"answer of {len(answer):,} chars masked at once: {once * 1e3:.2f} ms "
          f"({len(answer) / once / 1e6:.2f} M chars/s)")
    for size in (1, 4, 24):
        took = _best(args.runs, lambda size=size: streamed(size))
        deltas = -(-len(answer) // size)
        print(f"  streamed in {size}-char deltas: {took * 1e3:.2f} ms, {took / deltas * 1e6:.2f} µs per delta")

    ordinary = (DATA / "ordinary.txt").read_text(encoding="utf-8")
    for target in (100_000, 1_000_000):
        paste = (ordinary * (target // len(ordinary) + 1))[:target]
        took = _best(max(1, args.runs // 2), lambda paste=paste: mask_secrets(paste))
        print(f"paste of {len(paste):,} chars (ids, hashes, code) masked at once: {took * 1e3:.1f} ms "
              f"({len(paste) / took / 1e6:.2f} M chars/s)")
    blob = "QUJD" * 250_000
    took = _best(max(1, args.runs // 2), lambda: mask_secrets(blob))
    print(f"one 1,000,000-char line without breaks: {took * 1e3:.1f} ms")


if __name__ == "__main__":
    main()

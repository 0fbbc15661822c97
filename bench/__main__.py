"""`python -m bench [scenario ...]`: every figure of docs/BENCHMARKS.md, or the named scenarios, then
the table. Scenarios: core, latency, pg, ack, burst, memory, discord. `pg` needs --database-url (an
empty, migrated PostgreSQL database) and is skipped without it.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

from bench import burst_bench, core_bench, discord_bench, slack_ack_bench
from bench.harness import Figure, run_like_seedbot
from bot.ops.heap import freeze_long_lived

Scenario = Callable[[argparse.Namespace], Awaitable[list[Figure]]]

SCENARIOS: dict[str, Scenario] = {
    "latency": lambda _args: core_bench.run(300, 1),
    "core": lambda _args: core_bench.run(2000, 50),
    "pg": lambda args: core_bench.run(1000, 50, args.database_url, args.pg_one_way_ms),
    "ack": lambda _args: slack_ack_bench.run(100),
    "burst": lambda _args: burst_bench.burst(200),
    "memory": lambda _args: burst_bench.memory(5, 200),
    "discord": lambda args: discord_bench.run(args.discord_scale),
}


async def run(names: list[str], args: argparse.Namespace) -> list[Figure]:
    figures: list[Figure] = []
    for name in names:
        if name == "pg" and not args.database_url:
            print("== pg skipped: no --database-url")
            continue
        print(f"== {name}")
        figures += await SCENARIOS[name](args)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    # [] among the choices: argparse checks an empty nargs="*" list against them too.
    parser.add_argument("scenario", nargs="*", choices=[[], *SCENARIOS], metavar="SCENARIO",
                        help=f"any of {', '.join(SCENARIOS)}; default: all")
    parser.add_argument("--database-url", help="an empty, migrated PostgreSQL database for `pg`")
    parser.add_argument("--pg-one-way-ms", type=float,
                        help="`pg` through bench.delay_proxy, each direction delayed this long (a network's latency)")
    parser.add_argument("--discord-scale", type=float, default=1.0, help="0.1 runs the 20-s answer in 2 s")
    args = parser.parse_args()
    freeze_long_lived()  # a measuring process that pauses for a full collection measures its own pause
    figures = run_like_seedbot(run(args.scenario or list(SCENARIOS), args))
    width = max(len(f.name) for f in figures) if figures else 0
    print()
    print(f"| {'figure'.ljust(width)} | measured |")
    print(f"|{'-' * (width + 2)}|---|")
    for figure in figures:
        print(f"| {figure.name.ljust(width)} | {figure.value} |")


if __name__ == "__main__":
    main()

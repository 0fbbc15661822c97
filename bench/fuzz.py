"""Hostile input against one `seedbot run`: Slack events and Discord messages with broken JSON
shapes, wrong types, huge and empty text, lone surrogates, NULs, nested fences and odd attachments,
while the fake model now and then sends malformed chunks, invalid usage or drops the connection.

Prints: whether the process stayed alive, tracebacks it logged, valid messages answered / expected,
and books mismatches (counters against the ledger, reservations left active, messages left pending).
Run: .venv/bin/python -m bench.fuzz [--slack 7000] [--discord 3000] [--seed 11] [--keep-log FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.harness import clean_environment, free_port, wait_healthy
from bot.budget.scopes import split_person_scope
from bot.storage.engine import Database
from bot.storage.tables import BudgetCounter, Channel, Message, Reservation, UsageEntry
from tests.fakes.discord_fake import FakeDiscord
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack

JSON = dict[str, Any]

HOSTILE_TEXTS = (
    "", " ", "\x00", "a\x00b", "\ud800", "lone \udfff surrogate", "😀" * 500, "x" * 30_000,
    "```\n" * 200, "````python\n```js\n```\n````", "`" * 5_000, "<@U0> <!channel> <#C1|x> &amp;&lt;",
    "\u202e\u200b\ufeff", "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n", "review\n```diff\n@@ broken", "\r\n" * 100,
)
BROKEN_CHUNKS = ("[1,2,3]", '{"choices": "abc"}', '{"choices": [{"delta": 5}]}', "null", "{{{")
BATCH = 50
MAX_BACKLOG = 100
BAD_USAGE: tuple[Any, ...] = ("lots", [1], {"prompt_tokens": 10, "completion_tokens": -5_000_000},
                              {"prompt_tokens": 10, "completion_tokens": 1e30})


@dataclass
class Plan:
    slack_expected: list[tuple[str, str]] = field(default_factory=list)  # (channel, ts) of valid mentions
    discord_expected: list[int] = field(default_factory=list)  # message ids of valid mentions
    discord_unconnected: list[int] = field(default_factory=list)  # valid mentions sent while no socket was open
    sent: int = 0


def model_reply(rng: random.Random) -> Reply:
    roll = rng.random()
    if roll < 0.05:
        return Reply(content="Answer after odd chunks.", extra_chunks=tuple(rng.sample(BROKEN_CHUNKS, 2)))
    if roll < 0.10:
        return Reply(content="Answer with odd usage.", usage_raw=rng.choice(BAD_USAGE))
    if roll < 0.13:
        return Reply(fault="drop")
    if roll < 0.15:
        return Reply(content="Cut " * 30, chunk_chars=8, fault="cut")
    return Reply(content=rng.choice(("Fine.", "Use a dict.", "```python\nprint(1)\n```", "\ud800 \x00 odd")))


def slack_event(slack: FakeSlack, rng: random.Random, plan: Plan) -> bytes:
    """One signed-body payload; valid mentions are recorded as expected answers."""
    channel = f"C{rng.randrange(20)}"
    mention = slack.events.app_mention(rng.choice(HOSTILE_TEXTS), channel=channel)
    event = mention["event"]
    kind = rng.random()
    if kind < 0.5:
        if rng.random() < 0.2:
            event["files"] = rng.choice(([{}], [{"id": 5}], [{"id": "F0", "name": "\ud800.py", "size": -1}],
                                         [{"id": "F1", "mimetype": "text/plain", "url_private": "http://127.0.0.1:9/x"}]))
        plan.slack_expected.append((channel, event["ts"]))
        return json.dumps(mention).encode()
    broken: list[Any] = [
        [1, 2, 3], "x", None, 5, {**mention, "event": "abc"}, {**mention, "event": [1]}, {**mention, "type": 7},
        {**mention, "event": {**event, "text": 5}}, {**mention, "event": {**event, "user": [1]}},
        {**mention, "authorizations": "x"}, {**mention, "event": {**event, "files": "x"}},
        {**mention, "event": {**event, "ts": 12.5}}, {**mention, "event": {**event, "channel": None}},
        {**mention, "team_id": {"a": 1}}, {"type": "event_callback"}, {},
        {**mention, "event": {**event, "type": "message", "subtype": "message_changed", "message": "x"}},
        {**mention, "event": {**event, "blocks": {"a": 1}}},
    ]
    body = json.dumps(rng.choice(broken)).encode()
    if rng.random() < 0.05:
        return body[: rng.randrange(1, max(2, len(body)))]  # cut short: not JSON at all
    return body


async def send_slack(slack: FakeSlack, discord: FakeDiscord, url: str, count: int, rng: random.Random,
                     plan: Plan) -> None:
    async with slack.sender(url, ack_timeout=30) as sender:
        for start in range(0, count, BATCH):
            await wait_for_backlog(slack, discord, plan)
            bodies = [slack_event(slack, rng, plan) for _ in range(min(BATCH, count - start))]
            await asyncio.gather(*(sender.post_raw(body, "application/json") for body in bodies))
            plan.sent += len(bodies)


async def wait_for_backlog(slack: FakeSlack, discord: FakeDiscord, plan: Plan) -> None:
    """Hold sending while more than MAX_BACKLOG valid messages wait for an answer: a steady hostile
    stream, not a flood (a flood measures queueing, which bench.core_bench does)."""
    for _ in range(600):
        slack_done, discord_done, _ = answered_counts(slack, discord, plan)
        if len(plan.slack_expected) + len(plan.discord_expected) - slack_done - discord_done <= MAX_BACKLOG:
            return
        await asyncio.sleep(0.1)


async def send_discord(slack: FakeSlack, discord: FakeDiscord, count: int, rng: random.Random,
                       plan: Plan) -> None:
    for i in range(count):
        if i % BATCH == 0:
            await wait_for_backlog(slack, discord, plan)
        text = rng.choice(HOSTILE_TEXTS)[:3_500]
        addressed = rng.random() < 0.6
        content = f"{discord.bot.mention} {text}" if addressed else text
        attachments = []
        if rng.random() < 0.15:
            name, data, kind = rng.choice((("a.py", b"print(1)\x00", "text/x-python"), ("x.bin", os.urandom(64), None),
                                           ("empty.txt", b"", "text/plain"), ("\u202e.diff", b"@@ -1 +1 @@", None),
                                           ("big.txt", b"y" * 3_000_000, "text/plain")))
            attachments.append(discord.add_attachment(name, data, kind))
        connected = bool(discord.gateway.connected_sessions())
        message = await discord.dispatch_message_create(discord.channel, discord.alice, content,
                                                        attachments=attachments)
        if addressed:
            plan.discord_expected.append(int(message["id"]))
            if not connected:
                plan.discord_unconnected.append(int(message["id"]))
        plan.sent += 1


async def wait_for_gateway(discord: FakeDiscord, seconds: float = 60.0) -> None:
    """Until the bot's Discord session is connected: /healthz answers before it is, and a message posted while a
    bot is not connected never reaches it (on Discord as in the fake), so it would count as unanswered."""
    deadline = time.monotonic() + seconds
    while not discord.gateway.connected_sessions():
        if time.monotonic() > deadline:
            raise TimeoutError("the bot did not connect to the fake Discord gateway")
        await asyncio.sleep(0.1)


def answered_counts(slack: FakeSlack, discord: FakeDiscord, plan: Plan) -> tuple[int, int, int]:
    """(Slack answered, Discord answered, messages still streaming)."""
    bot_user = slack.config.bot_user_id
    by_thread: dict[tuple[str, str], list] = defaultdict(list)
    streaming = 0
    for channel, messages in slack.state.channels.items():
        for m in messages:
            if m.user == bot_user and m.thread_ts:
                by_thread[(channel, m.thread_ts)].append(m)
                streaming += m.stream_state == "streaming"
    slack_done = sum(1 for key in plan.slack_expected
                     if by_thread.get(key) and all(m.stream_state != "streaming" for m in by_thread[key]))
    discord_done = len(plan.discord_expected) - len(unanswered_discord(discord, plan))
    return slack_done, discord_done, streaming


def unanswered_discord(discord: FakeDiscord, plan: Plan) -> list[int]:
    threads_with_bot = {int(m["channel_id"]) for m in discord.world.messages.values()
                        if int(m["author"]["id"]) == discord.bot.id}
    return [message_id for message_id in plan.discord_expected if message_id not in threads_with_bot]


def discord_fate(discord: FakeDiscord, message_id: int) -> str:
    """What the fake saw of one unanswered mention: its thread, and any REST call that named it."""
    calls = [f"{c.method} {c.path} {c.status}" for c in discord.records.calls if str(message_id) in c.path]
    thread = message_id in discord.world.channels
    sent = discord.world.messages.get(message_id, {})
    return (f"{message_id} (thread {'opened' if thread else 'none'}, calls {calls or 'none'}, "
            f"content {str(sent.get('content', ''))[:30]!r})")


async def books_mismatches(db_url: str) -> tuple[int, list[str]]:
    db = Database(db_url)
    problems: list[str] = []
    try:
        async with db.session() as session:
            ledger_total = int(await session.scalar(select(func.coalesce(func.sum(UsageEntry.cost_nanos), 0))) or 0)
            per_channel = dict((await session.execute(
                select(Channel.platform + ":" + Channel.channel_id, func.sum(UsageEntry.cost_nanos))
                .join(UsageEntry, UsageEntry.channel_pk == Channel.id).group_by(Channel.id))).all())
            # A person's limit in a channel (bot.budget.scopes) is counted by that channel's rows of that person.
            per_person = {(channel, user): cost for channel, user, cost in (await session.execute(
                select(Channel.platform + ":" + Channel.channel_id, UsageEntry.user_id, func.sum(UsageEntry.cost_nanos))
                .join(UsageEntry, UsageEntry.channel_pk == Channel.id).group_by(Channel.id, UsageEntry.user_id))).all()}
            for counter in await session.scalars(select(BudgetCounter)):
                person = split_person_scope(counter.scope_key)
                if counter.scope_key == "global":
                    expected = ledger_total
                elif person is not None:
                    expected = int(per_person.get((person[1], person[0]), 0))
                else:
                    expected = int(per_channel.get(counter.scope_key, 0))
                if counter.spent_nanos != expected or counter.reserved_nanos != 0:
                    problems.append(f"{counter.scope_key}: spent {counter.spent_nanos} vs ledger {expected}, "
                                    f"reserved {counter.reserved_nanos}")
            negative = await session.scalar(select(func.count()).where(UsageEntry.cost_nanos < 0))
            if negative:
                problems.append(f"{negative} negative ledger rows")
            active = await session.scalar(select(func.count()).where(Reservation.status == "active"))
            if active:
                problems.append(f"{active} reservations still active")
            pending = await session.scalar(select(func.count()).where(Message.status == "pending"))
            if pending:
                problems.append(f"{pending} messages still pending")
    finally:
        await db.dispose()
    return len(problems), problems


async def run(slack_events: int, discord_messages: int, seed: int, keep_log: Path | None = None) -> None:
    rng = random.Random(seed)
    plan = Plan()
    async with FakeSeed() as model, FakeSlack() as slack, FakeDiscord(bucket_limit=10_000) as discord:
        model.requests = _Discard()  # type: ignore[assignment]
        model_rng = random.Random(seed + 1)
        model.responder = lambda _body: model_reply(model_rng)
        port = free_port()
        with tempfile.TemporaryDirectory() as tmp:
            db_url = f"sqlite+aiosqlite:///{tmp}/fuzz.db"
            env = clean_environment() | {
                    "SEED_API_KEY": model.api_key, "SEED_BASE_URL": model.base_url, "SEED_MAX_RETRIES": "0",
                    "SLACK_BOT_TOKEN": slack.config.bot_token, "SLACK_SIGNING_SECRET": slack.config.signing_secret,
                    "SLACK_API_URL": slack.api_url, "DISCORD_BOT_TOKEN": discord.token,
                    "DISCORD_API_URL": discord.api_base, "DISCORD_GATEWAY_URL": discord.gateway_url,
                    "DISCORD_EDIT_INTERVAL": "0.3", "SEEDBOT_HTTP_HOST": "127.0.0.1", "SEEDBOT_HTTP_PORT": str(port),
                    "DATABASE_URL": db_url, "SEEDBOT_DEFAULT_CHANNEL_BUDGET": "none"}
            log_path = Path(tmp) / "seedbot.log"
            with log_path.open("wb") as log_file:
                bot = await asyncio.create_subprocess_exec(sys.executable, "-m", "adapters.cli", "run", env=env,
                                                           cwd=tmp, stdout=log_file, stderr=log_file)
                started = time.monotonic()
                try:
                    await wait_healthy(f"http://127.0.0.1:{port}/healthz")
                    await wait_for_gateway(discord)
                    await asyncio.gather(send_slack(slack, discord, f"http://127.0.0.1:{port}/slack/events",
                                                    slack_events, rng, plan),
                                         send_discord(slack, discord, discord_messages, rng, plan))
                    sent_at = time.monotonic()
                    last, still = (-1, -1), 0
                    while still < 30:  # until everything is answered, or nothing moves for 30 s
                        counts = answered_counts(slack, discord, plan)[:2]
                        if counts == (len(plan.slack_expected), len(plan.discord_expected)):
                            break
                        still = still + 1 if counts == last else 0
                        last = counts
                        await asyncio.sleep(1)
                    alive = bot.returncode is None
                    slack_done, discord_done, streaming = answered_counts(slack, discord, plan)
                finally:
                    if bot.returncode is None:
                        bot.terminate()
                    exit_code = await bot.wait()
            log = log_path.read_text(errors="replace")
            if keep_log is not None:  # the temporary directory goes; a failure found once must be readable
                await asyncio.to_thread(keep_log.write_text, log)
            mismatches, problems = await books_mismatches(db_url)
    expected = len(plan.slack_expected) + len(plan.discord_expected)
    print(f"hostile inputs sent:             {plan.sent:,} ({slack_events:,} Slack events, "
          f"{discord_messages:,} Discord messages) in {sent_at - started:.0f} s")
    print(f"process alive at the end:        {'yes' if alive else 'NO'} (exit code after SIGTERM: {exit_code})")
    print(f"tracebacks logged:               {log.count('Traceback (most recent call last)')}")
    slack_expected, discord_expected = len(plan.slack_expected), len(plan.discord_expected)
    print(f"valid messages answered:         {slack_done + discord_done:,} / {expected:,} "
          f"(Slack {slack_done:,}/{slack_expected:,}, Discord {discord_done:,}/{discord_expected:,})")
    print(f"Slack messages left streaming:   {streaming}")
    print(f"Discord: gateway connections {len(discord.records.connections)}, resumes {len(discord.records.resumes)}, "
          f"mentions sent while no socket was open {len(plan.discord_unconnected)}")
    if discord_done < discord_expected:
        print("Discord unanswered, first 5:    " + "; ".join(
            discord_fate(discord, message_id) for message_id in unanswered_discord(discord, plan)[:5]))
    print(f"books mismatches:                {mismatches}" + "".join(f"\n  {p}" for p in problems[:10]))


class _Discard(list):
    def append(self, _item: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slack", type=int, default=7_000)
    parser.add_argument("--discord", type=int, default=3_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep-log", type=Path, help="copy the bot's log (stdout and stderr) to this file")
    args = parser.parse_args()
    asyncio.run(run(args.slack, args.discord, args.seed, args.keep_log))


if __name__ == "__main__":
    main()

"""ChatService end to end against the fake Seed server, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys

from sqlalchemy import func, select

from adapters.core import Core
from bot.budget.scopes import channel_scope
from bot.chat.prompt import SYSTEM_PROMPT, build_user_turn
from bot.chat.tokens import estimate_message_tokens
from bot.domain import Attachment, AttachmentKind, Usage
from bot.storage.tables import BudgetCounter, Refusal, UsageEntry
from tests.factories import incoming
from tests.fakes.seed import FakeSeed, Reply
from tests.sinks import RecordingSink


async def ledger(core: Core) -> list[UsageEntry]:
    async with core.db.session() as session:
        return list(await session.scalars(select(UsageEntry).order_by(UsageEntry.id)))


async def counters(core: Core) -> list[BudgetCounter]:
    async with core.db.session() as session:
        return list(await session.scalars(select(BudgetCounter)))


def worst_case_for(core: Core, text: str) -> tuple[int, int]:
    """The reservation the service makes for a first-turn `text`: (estimated prompt, nano-dollars)."""
    turn = build_user_turn(text, (), max_image_bytes=core.settings.max_image_bytes)
    estimate = estimate_message_tokens(SYSTEM_PROMPT) + turn.token_estimate()
    reserved_prompt = math.ceil(estimate * core.settings.token_safety_factor)
    return reserved_prompt, core.prices.worst_case_nanos(reserved_prompt, core.settings.seed_max_tokens, False)


async def test_an_answer_streams_and_is_stored_and_billed(core_for, database_url: str, fake_seed: FakeSeed) -> None:
    core = await core_for(database_url)
    fake_seed.script(Reply(content="Use `reversed(xs)` or `xs[::-1]`.", reasoning="hmm", chunk_chars=5))
    sink = RecordingSink()
    answer = await core.service.handle(incoming(), sink)
    assert answer is not None and answer.status == "ok"
    assert sink.text == "Use `reversed(xs)` or `xs[::-1]`."
    assert sink.started == 1 and sink.statuses == ["thinking…"]
    assert sink.footer is not None and sink.footer.cost_nanos == answer.cost_nanos > 0
    rows = await ledger(core)
    assert len(rows) == 1 and rows[0].status == "ok"
    usage = fake_seed.completions[0].usage
    assert rows[0].prompt_tokens == usage["prompt_tokens"]
    assert rows[0].cost_nanos == core.prices.cost_nanos(answer.usage)
    assert rows[0].first_token_ms is not None and rows[0].duration_ms is not None
    (counter,) = [c for c in await counters(core) if c.scope_key == channel_scope("slack", "C1")]
    assert counter.reserved_nanos == 0 and counter.spent_nanos == rows[0].cost_nanos
    body = fake_seed.completions[0].body
    assert body["enable_caching"] is False  # first turn of a thread
    assert body["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}


async def test_follow_up_carries_history_from_the_database(core_for, sqlite_url: str, fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url)
    fake_seed.script(Reply(content="Answer one."), Reply(content="Answer two."))
    await core.service.handle(incoming("Question one", thread="T"), RecordingSink())
    await core.service.handle(incoming("Question two --web", thread="T"), RecordingSink())
    messages = fake_seed.completions[1].body["messages"]
    assert [m["content"] for m in messages[1:]] == ["Question one", "Answer one.", "Question two"]
    assert fake_seed.completions[1].body["enable_caching"] is True
    assert fake_seed.completions[1].body["enable_web_search"] is True


async def test_dedup_three_concurrent_deliveries_one_answer(core_for, database_url: str,
                                                            fake_seed: FakeSeed) -> None:
    core = await core_for(database_url)
    fake_seed.default_reply = Reply(content="Only once.", chunk_delay=0.01)
    message = incoming("Same event", message_id="EV1")
    sinks = [RecordingSink() for _ in range(3)]
    results = await asyncio.gather(*(core.service.handle(message, s) for s in sinks))
    assert sum(r is not None for r in results) == 1
    assert sum(s.started for s in sinks) == 1
    assert [s.failure for s in sinks] == [None, None, None]
    assert len(fake_seed.completions) == 1
    assert len(await ledger(core)) == 1


async def test_budget_race_never_overspends(core_for, database_url: str, fake_seed: FakeSeed) -> None:
    """200 concurrent messages against a budget that fits exactly N worst-case calls."""
    n = 10
    core = await core_for(database_url)
    text = "Explain the borrow checker."
    reserved_prompt, worst = worst_case_for(core, text)
    limit = n * worst
    await core.budget.limits.set_limit(channel_scope("slack", "C1"), f"{limit / 1e9:.9f}/day", "test")
    # Every answer costs exactly its worst case, so settling never frees room for an extra call.
    fake_seed.default_reply = Reply(content="ok", prompt_tokens=reserved_prompt,
                                    completion_tokens=core.settings.seed_max_tokens, chunk_delay=0.005)
    await core.store.claim(incoming("warm-up creates channel 1", message_id="warm"), "", 0)
    peak = 0
    done = asyncio.Event()

    async def watch() -> None:
        nonlocal peak
        while not done.is_set():
            for counter in await counters(core):
                if counter.scope_key == channel_scope("slack", "C1"):
                    peak = max(peak, counter.reserved_nanos + counter.spent_nanos)
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    sinks = [RecordingSink() for _ in range(200)]
    results = await asyncio.gather(*(core.service.handle(incoming(text, thread=f"r{i}"), sinks[i])
                                     for i in range(200)))
    done.set()
    await watcher
    statuses = [r.status for r in results if r is not None]
    assert statuses.count("ok") == n
    assert statuses.count("refused") == 200 - n
    refusals = [s.failure for s in sinks if s.failure]
    assert len(refusals) == 200 - n
    assert all("budget has too little left for this answer" in r and "resets" in r for r in refusals)
    spent = sum(row.cost_nanos for row in await ledger(core))
    assert spent <= limit and spent == n * worst
    assert peak <= limit
    async with core.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Refusal)) == 200 - n


async def test_thirty_turn_thread_keeps_the_prompt_cache_hitting(core_for, sqlite_url: str,
                                                                 fake_seed: FakeSeed) -> None:
    """The common shape of a code thread: a file pasted first, then follow-ups; the context budget is
    small enough that the thread crosses a truncation step within 30 turns."""
    core = await core_for(sqlite_url, SEEDBOT_CONTEXT_TOKENS=16_000)
    source = "\n".join(f"def handler_{i}(request):\n    return route(request, timeout={i})" for i in range(400))
    pasted = Attachment("handlers.py", AttachmentKind.TEXT, len(source), source.encode())

    def answer_for(body: dict) -> Reply:
        turn = len(body["messages"])
        return Reply(content=f"Turn {turn}: " + " ".join(f"step{turn}_{i} does its job." for i in range(40)))

    fake_seed.responder = answer_for
    sinks = []
    for turn in range(30):
        sink = RecordingSink()
        question = f"Question {turn}: how should module {turn} handle retries and timeouts in our service?"
        files = (pasted,) if turn == 0 else ()
        await core.service.handle(incoming(question, thread="long", attachments=files), sink)
        sinks.append(sink)
    usages = [r.usage for r in fake_seed.completions]
    assert len(usages) == 30
    prompt = sum(u["prompt_tokens"] for u in usages[1:])
    cached = sum(u["prompt_tokens_details"]["cached_tokens"] for u in usages[1:])
    ratio = cached / prompt
    print(f"\ncached share of prompt tokens, turns 2..30: {ratio:.1%} ({cached:,} of {prompt:,})")
    truncated = [s for s in sinks if s.footer and any("left out" in n for n in s.footer.notes)]
    assert truncated, "the test must cross at least one truncation step"
    assert all(u["prompt_tokens"] < 16_000 for u in usages)
    assert ratio >= 0.90


async def test_settled_costs_equal_the_pricing_of_reported_usage(core_for, database_url: str,
                                                                 fake_seed: FakeSeed) -> None:
    core = await core_for(database_url, SEED_PRICE_CACHED_INPUT_PER_M="0.04")
    for i in range(6):
        await core.service.handle(incoming(f"Question {i} " + "detail " * (i * 50), thread="sum"), RecordingSink())
    reported = [r.usage for r in fake_seed.completions]
    expected = sum(core.prices.cost_nanos(Usage(
        prompt_tokens=u["prompt_tokens"], cached_tokens=u["prompt_tokens_details"]["cached_tokens"],
        completion_tokens=u["completion_tokens"])) for u in reported)
    rows = await ledger(core)
    assert sum(r.cost_nanos for r in rows) == expected
    assert any(r.cached_tokens for r in rows)


async def test_shrinks_max_tokens_to_fit_what_is_left(core_for, sqlite_url: str, fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url)
    text = "Short question"
    reserved_prompt, worst = worst_case_for(core, text)
    # Room for the prompt and 1,000 output tokens, not the default 4,096.
    limit = core.prices.worst_case_nanos(reserved_prompt, 1_000, False)
    await core.store.claim(incoming("create channel", message_id="warm"), "", 0)
    await core.budget.limits.set_limit(channel_scope("slack", "C1"), f"{limit / 1e9:.9f}/day", "test")
    fake_seed.script(Reply(content="long answer", prompt_tokens=reserved_prompt, completion_tokens=950))
    sink = RecordingSink()
    answer = await core.service.handle(incoming(text), sink)
    assert answer is not None and answer.status == "ok"
    assert fake_seed.completions[0].body["max_tokens"] == 1_000
    assert sink.footer is not None and any("limited to 1,000 tokens" in n for n in sink.footer.notes)
    assert sink.footer.budget_left_fraction is not None and sink.footer.budget_left_fraction < 0.2
    assert "left in this channel's budget" in sink.footer.text()


async def test_global_cap_refuses_across_channels(core_for, sqlite_url: str, fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url, SEEDBOT_GLOBAL_BUDGET="0.000001/day", SEEDBOT_ADMINS="slack:UADMIN")
    sink = RecordingSink()
    answer = await core.service.handle(incoming(channel="C9"), sink)
    assert answer is not None and answer.status == "refused"
    assert sink.failure is not None and sink.failure.startswith("The bot's overall budget has too little left")
    assert "<@UADMIN>" in sink.failure
    assert fake_seed.requests == []


async def test_empty_mention_gets_help_and_no_model_call(core_for, sqlite_url: str, fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url)
    sink = RecordingSink()
    answer = await core.service.handle(incoming("   "), sink)
    assert answer is not None and answer.status == "empty"
    assert sink.failure is not None and "Ask me a code question" in sink.failure
    assert fake_seed.requests == [] and await ledger(core) == []


async def test_a_huge_paste_is_refused_before_any_call(core_for, sqlite_url: str, fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url, SEEDBOT_CONTEXT_TOKENS=5_000)
    sink = RecordingSink()
    answer = await core.service.handle(incoming("x = 1\n" * 20_000), sink)
    assert answer is not None and answer.status == "too_long"
    assert sink.failure is not None and "too long" in sink.failure
    assert fake_seed.requests == [] and await ledger(core) == []


async def test_budget_race_across_two_processes_on_postgres(core_for, postgres_url: str,
                                                            fake_seed: FakeSeed) -> None:
    n = 7
    core = await core_for(postgres_url)
    text = "Explain the borrow checker."
    reserved_prompt, worst = worst_case_for(core, text)
    await core.store.claim(incoming("warm-up creates channel 1", message_id="warm"), "", 0)
    limit = n * worst
    await core.budget.limits.set_limit(channel_scope("slack", "C1"), f"{limit / 1e9:.9f}/day", "test")
    fake_seed.default_reply = Reply(content="ok", prompt_tokens=reserved_prompt,
                                    completion_tokens=core.settings.seed_max_tokens, chunk_delay=0.005)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEED", "DATABASE_URL"))}
    env |= {"SEED_API_KEY": fake_seed.api_key, "SEED_BASE_URL": fake_seed.base_url, "DATABASE_URL": postgres_url}

    async def worker(prefix: str) -> list[str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.core.race_worker", prefix, "100", text, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), timeout=180)
        assert process.returncode == 0, err.decode()
        return json.loads(out.decode().strip().splitlines()[-1])

    first, second = await asyncio.gather(worker("a"), worker("b"))
    statuses = first + second
    assert statuses.count("ok") == n
    assert statuses.count("refused") == 200 - n
    rows = await ledger(core)
    assert sum(r.cost_nanos for r in rows) == n * worst <= limit


async def test_a_secret_in_the_answer_is_masked_and_stored_as_shown(core_for, sqlite_url: str,
                                                                   fake_seed: FakeSeed) -> None:
    """The stored answer is the masked text the person saw; the next turn repeats it byte for byte."""
    core = await core_for(sqlite_url)
    key = "AKIAQ3EGV7LXNW4PZK2T"
    fake_seed.script(Reply(content=f"Your key {key} is exposed; rotate it.", chunk_chars=7))
    sink = RecordingSink()
    await core.service.handle(incoming("Is my config safe?"), sink)
    assert sink.text == "Your key [redacted: AWS access key id] is exposed; rotate it."
    fake_seed.script(Reply(content="Done."))
    await core.service.handle(incoming("Thanks"), RecordingSink())
    assert fake_seed.completions[1].body["messages"][2]["content"] == sink.text

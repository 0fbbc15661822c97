"""Per-person limits and degrading before refusing, through ChatService and the fake Seed server."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from adapters.core import Core
from bot.budget.scopes import channel_scope, person_scope
from bot.storage.tables import BudgetCounter, UsageEntry
from tests.core.test_service import worst_case_for
from tests.factories import incoming
from tests.fakes.seed import FakeSeed, Reply
from tests.ops.test_admin import run_cli
from tests.sinks import RecordingNotifier, RecordingSink


async def test_a_person_at_their_limit_is_refused_while_another_is_answered(core_for, database_url: str,
                                                                           fake_seed: FakeSeed) -> None:
    core = await core_for(database_url, SEEDBOT_DEFAULT_USER_BUDGET="0.01/day")
    # $0.0096 of output: what is left of U1's $0.01 cannot pay for even a minimal answer.
    fake_seed.script(Reply(content="A long answer.", prompt_tokens=0, completion_tokens=4_000),
                     Reply(content="Answer for U2."))
    first = await core.service.handle(incoming("question", user="U1", thread="a"), RecordingSink())
    assert first is not None and first.status == "ok"
    refused_sink, answered_sink = RecordingSink(), RecordingSink()
    refused = await core.service.handle(incoming("again", user="U1", thread="b"), refused_sink)
    answered = await core.service.handle(incoming("mine", user="U2", thread="c"), answered_sink)
    assert refused is not None and refused.status == "refused"
    assert refused_sink.failure is not None
    assert refused_sink.failure.startswith("Your personal budget in this channel has too little left")
    assert "$0.0096 of $0.0100 spent" in refused_sink.failure and "resets" in refused_sink.failure
    assert answered is not None and answered.status == "ok" and answered_sink.text == "Answer for U2."
    assert len(fake_seed.completions) == 2


async def test_a_channel_default_for_people_and_one_persons_own_limit(core_for, sqlite_url: str,
                                                                      fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url, SEEDBOT_ADMINS="slack:UADMIN")
    assert "Only seedbot admins" in await core.admin.slash_command("slack", "U1", "C1", "budget user 0.000001/day")
    reply = await core.admin.slash_command("slack", "UADMIN", "C1", "budget user 0.000001/day")
    assert "Budget for each person in slack:C1 changed" in reply and "$0.000001/day" in reply
    assert "Budget for each person in slack:C1: $0.000001/day" in await core.admin.slash_command(
        "slack", "U1", "C1", "budget user")
    await core.budget.limits.set_limit(person_scope("slack:C1", "U2"), "5/day", "test")
    sinks = {user: RecordingSink() for user in ("U1", "U2")}
    results = {user: await core.service.handle(incoming("q", user=user, thread=user), sinks[user]) for user in sinks}
    assert results["U1"] is not None and results["U1"].status == "refused"
    assert results["U2"] is not None and results["U2"].status == "ok"


async def test_people_racing_never_pass_their_own_limits(core_for, database_url: str, fake_seed: FakeSeed) -> None:
    """Two people send 60 messages each at once; each person's limit fits exactly N worst-case calls."""
    n = 4
    core = await core_for(database_url)
    text = "Explain lifetimes."
    reserved_prompt, worst = worst_case_for(core, text)
    await core.store.claim(incoming("warm-up creates channel 1", message_id="warm"), "", 0)
    everyone = person_scope(channel_scope("slack", "C1"), "*")
    await core.budget.limits.set_limit(everyone, f"{n * worst / 1e9:.9f}/day", "t")
    fake_seed.default_reply = Reply(content="ok", prompt_tokens=reserved_prompt,
                                    completion_tokens=core.settings.seed_max_tokens, chunk_delay=0.005)
    messages = [incoming(text, user=user, thread=f"{user}-{i}") for user in ("U1", "U2") for i in range(60)]
    results = await asyncio.gather(*(core.service.handle(m, RecordingSink()) for m in messages))
    by_user = {user: [r.status for r, m in zip(results, messages, strict=True) if m.user_id == user and r]
               for user in ("U1", "U2")}
    assert {user: statuses.count("ok") for user, statuses in by_user.items()} == {"U1": n, "U2": n}
    async with core.db.session() as session:
        rows = list(await session.scalars(select(UsageEntry)))
        counters = {c.scope_key: c for c in await session.scalars(select(BudgetCounter))}
    for user in ("U1", "U2"):
        assert sum(r.cost_nanos for r in rows if r.user_id == user) == n * worst
        counter = counters[person_scope("slack:C1", user)]
        assert counter.spent_nanos == n * worst and counter.reserved_nanos == 0
    assert counters["slack:C1"].spent_nanos == 2 * n * worst


async def nearly_spent_channel(core: Core, fake_seed: FakeSeed) -> None:
    """Spend 95% of a $1/day channel budget: five calls of 237,500 long-context prompt tokens at $0.80/M
    (one call of 1,187,500 would be above the context window, and its usage rejected)."""
    await core.budget.limits.set_limit("slack:C1", "1/day", "test")
    for n in range(5):
        fake_seed.script(Reply(content="first", prompt_tokens=237_500, completion_tokens=0))
        await core.service.handle(incoming(f"question {n}", thread=f"warm-{n}"), RecordingSink())


async def test_a_channel_at_95_percent_answers_with_web_search_off_and_says_so(core_for, database_url: str,
                                                                              fake_seed: FakeSeed) -> None:
    core = await core_for(database_url)
    await nearly_spent_channel(core, fake_seed)
    assert (await core.budget.scope_state("slack:C1")).spent_nanos == 950_000_000
    fake_seed.script(Reply(content="Answered without searching."))
    sink = RecordingSink()
    answer = await core.service.handle(incoming("what changed in Python 3.14? --web"), sink)
    assert answer is not None and answer.status == "ok"
    body = fake_seed.completions[-1].body
    assert body["enable_web_search"] is False and body["enable_thinking"] is True
    assert body["max_tokens"] == core.settings.seed_max_tokens
    assert sink.statuses == ["thinking…"]
    assert sink.footer is not None and "web search off: channel budget nearly spent" in sink.footer.text()


async def test_degrade_false_keeps_web_search_until_the_money_runs_out(core_for, sqlite_url: str,
                                                                       fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url, SEEDBOT_DEGRADE="false")
    await nearly_spent_channel(core, fake_seed)
    sink = RecordingSink()
    await core.service.handle(incoming("what changed in Python 3.14? --web"), sink)
    assert fake_seed.completions[-1].body["enable_web_search"] is True
    assert sink.footer is not None and "web search off" not in sink.footer.text()


async def test_a_shrunk_answer_goes_without_thinking(core_for, sqlite_url: str, fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url)
    reserved_prompt, _ = worst_case_for(core, "Short question")
    await core.store.claim(incoming("create channel", message_id="warm"), "", 0)
    limit = core.prices.worst_case_nanos(reserved_prompt, 1_000, False)
    await core.budget.limits.set_limit("slack:C1", f"{limit / 1e9:.9f}/day", "test")
    sink = RecordingSink()
    await core.service.handle(incoming("Short question"), sink)
    body = fake_seed.completions[-1].body
    assert body["enable_thinking"] is False and body["max_tokens"] == 1_000
    assert sink.footer is not None
    assert sink.footer.notes[-2:] == ("thinking off: channel budget nearly spent",
                                      "answer limited to 1,000 tokens by the budget")


async def test_admins_are_alerted_by_channel_name_and_not_for_each_persons_limit(core_for, sqlite_url: str,
                                                                               fake_seed: FakeSeed) -> None:
    notifier = RecordingNotifier()
    core = await core_for(sqlite_url, notifiers={"slack": notifier}, SEEDBOT_ADMINS="slack:UADMIN",
                          SEEDBOT_DEFAULT_USER_BUDGET="0.000001/day")
    await core.names.remember("slack", "channel", "C0BACKEND", "backend")
    refused = await core.service.handle(incoming("q", channel="C0BACKEND"), RecordingSink())
    assert refused is not None and refused.status == "refused" and notifier.sent == []
    await core.budget.limits.set_limit(person_scope("slack:C0BACKEND", "*"), "none", "test")
    await core.budget.limits.set_limit("slack:C0BACKEND", "0.000001/day", "test")
    await core.service.handle(incoming("q2", channel="C0BACKEND"), RecordingSink())
    alerts = [s.text for s in notifier.sent if s.kind == "direct"]
    assert alerts and all(t.startswith("Budget alert: #backend (slack:C0BACKEND) has used") for t in alerts)


async def test_seedbot_budget_set_for_one_person(core_for, sqlite_url: str, tmp_path: Path) -> None:
    core = await core_for(sqlite_url)
    code, out, err = await run_cli(tmp_path, sqlite_url, "budget", "set", "slack:C0123", "--user", "slack:U0456",
                                   "3/day")
    assert code == 0, err
    assert out.strip() == "slack:U0456@slack:C0123: unlimited → $3/day"
    assert (await core.budget.limits.limit_for_scope("slack:U0456@slack:C0123")).describe() == "$3/day"
    code, _, err = await run_cli(tmp_path, sqlite_url, "budget", "set", "slack:C0123", "--user", "discord:1", "3/day")
    assert code == 2 and "on the channel's platform" in err
    await core.names.remember("slack", "user", "U0456", "Ada")
    shown = await core.admin.budget_show("slack:U0456@slack:C0123")
    assert shown.startswith("Budget for Ada in slack:C0123: $3/day.")

"""Where several Slack workspaces share a deployment, ids carry the workspace: budgets, admins and spend
are per workspace (`slack:T0123:C0456`), while `global` stays one cap for the whole deployment."""

from __future__ import annotations

from bot.domain import Incoming, Platform, ThreadKey
from bot.ops.admin import BUDGETS, not_admin
from bot.ops.scheduler import Scheduler
from bot.storage.tables import utcnow
from tests.fakes.seed import FakeSeed, Reply
from tests.sinks import RecordingNotifier, RecordingSink

INSTALLS = {"SLACK_CLIENT_ID": "1111.2222", "SLACK_CLIENT_SECRET": "secret", "SLACK_SCOPES": "chat:write"}


def in_workspace(team: str, channel: str, text: str, user: str = "U1") -> Incoming:
    return Incoming(ThreadKey(Platform.SLACK, team, channel, f"{team}-{channel}-{text}"), message_id=f"{team}{text}",
                    user_id=user, text=text)


async def test_budgets_admins_and_spend_are_per_workspace(core_for, database_url: str, fake_seed: FakeSeed) -> None:
    core = await core_for(database_url, SEEDBOT_ADMINS="slack:T2:UADMIN", SEEDBOT_GLOBAL_BUDGET="100/day", **INSTALLS)
    fake_seed.default_reply = Reply(content="ok", prompt_tokens=1_000, completion_tokens=100)
    # The same channel id in two workspaces is two channels with two budgets.
    for team in ("T1", "T2"):
        answer = await core.service.handle(in_workspace(team, "C5", "question"), RecordingSink())
        assert answer is not None and answer.status == "ok"

    refused = await core.admin.slash_command("slack", "UADMIN", "C5", "budget 1/day", workspace_id="T1")
    assert refused == not_admin(BUDGETS)
    changed = await core.admin.slash_command("slack", "UADMIN", "C5", "budget 1/day", workspace_id="T2")
    assert changed.startswith("Budget for slack:T2:C5 changed from $5/day to $1/day")
    assert (await core.budget.limits.limit_for_scope("slack:T1:C5")).describe() == "$5/day"
    shown = await core.admin.slash_command("slack", "U1", "C5", "budget", workspace_id="T1")
    assert shown.startswith("Budget for slack:T1:C5: $5/day. Spent this period: $0.0006")

    report = await core.reports.spend(utcnow().replace(hour=0, minute=0), utcnow())
    assert sorted(c.address for c in report.channels) == ["slack:T1:C5", "slack:T2:C5"]
    assert {c.position.budget for c in report.channels} == {"$5/day", "$1/day"}
    assert (await core.budget.remaining("global")).spent_nanos == report.cost_nanos  # one cap for all


async def test_one_bot_token_keeps_the_short_ids(core_for, sqlite_url: str, fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url, SEEDBOT_ADMINS="slack:UADMIN", SLACK_BOT_TOKEN="xoxb-one", **INSTALLS)
    await core.service.handle(in_workspace("T1", "C5", "question"), RecordingSink())
    changed = await core.admin.slash_command("slack", "UADMIN", "C5", "budget 2/day", workspace_id="T1")
    assert changed.startswith("Budget for slack:C5 changed")
    report = await core.reports.spend(utcnow().replace(hour=0, minute=0), utcnow())
    assert [c.address for c in report.channels] == ["slack:C5"]


async def test_each_workspace_admin_gets_the_summary_of_their_workspace(core_for, sqlite_url: str,
                                                                         fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url, SEEDBOT_ADMINS="slack:T1:UA,slack:T2:UB", **INSTALLS)
    fake_seed.default_reply = Reply(content="ok", prompt_tokens=1_000, completion_tokens=100)
    await core.service.handle(in_workspace("T1", "C5", "one"), RecordingSink())
    for text in ("two", "three"):
        await core.service.handle(in_workspace("T2", "C6", text), RecordingSink())
    slack = RecordingNotifier()
    scheduler = Scheduler(core.settings, core.db, core.reports, {"slack": slack})

    assert await scheduler.send_summary(utcnow().date()) == 2

    by_admin = {s.to: s.text for s in slack.sent}
    assert set(by_admin) == {"T1:UA", "T2:UB"}  # the notifier finds each workspace's token by its id
    assert "slack:T1:C5" in by_admin["T1:UA"] and "slack:T2" not in by_admin["T1:UA"]
    assert "slack:T2:C6" in by_admin["T2:UB"] and "slack:T1" not in by_admin["T2:UB"]
    assert "1 model call " in by_admin["T1:UA"] and "2 model calls" in by_admin["T2:UB"]


async def test_seed_spend_knows_the_workspace_of_the_channel_and_of_its_admin(core_for, sqlite_url: str,
                                                                               fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url, SEEDBOT_ADMINS="slack:T1:UADMIN", **INSTALLS)
    fake_seed.default_reply = Reply(content="ok", prompt_tokens=1_000, completion_tokens=100)
    for team in ("T1", "T2"):
        await core.service.handle(in_workspace(team, "C5", "q"), RecordingSink())
    await core.names.note("slack", "channel", "C5", "backend")
    mine = (await core.admin.slash_command("slack", "U1", "C5", "spend", workspace_id="T1")).splitlines()[0]
    assert mine.startswith("Spend in #backend over the last 7 days:") and " in 1 model call " in mine
    admin = (await core.admin.slash_command("slack", "UADMIN", "C5", "spend", workspace_id="T1")).splitlines()[0]
    assert admin.startswith("Spend over the last 7 days:") and " in 1 model call " in admin  # T1 only
    assert (await core.reports.channel_labels(["slack:T1:C5"]))["slack:T1:C5"] == "#backend"


async def test_a_workspaces_summary_counts_only_its_own_ratings(core_for, sqlite_url: str,
                                                              fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url, **INSTALLS)
    fake_seed.default_reply = Reply(content="ok", prompt_tokens=1_000, completion_tokens=100)
    first, second = in_workspace("T1", "C5", "q"), in_workspace("T2", "C6", "q")
    for message in (first, second):
        await core.service.handle(message, RecordingSink())
    await core.reports.feedback.rate(first.dedup_key, "U8", helpful=True)
    await core.reports.feedback.rate(second.dedup_key, "U9", helpful=False)
    since, until = utcnow().replace(hour=0, minute=0), utcnow()
    t1 = await core.reports.spend(since, until, workspace=("slack", "T1"))
    assert (t1.feedback.helpful, t1.feedback.not_helpful) == (1, 0)
    everywhere = await core.reports.spend(since, until)
    assert (everywhere.feedback.helpful, everywhere.feedback.not_helpful) == (1, 1)


async def test_a_budget_alert_about_a_workspaces_channel_reaches_only_admins_who_may_see_it(
        core_for, sqlite_url: str, fake_seed: FakeSeed) -> None:
    slack = RecordingNotifier()
    core = await core_for(sqlite_url, notifiers={"slack": slack}, SEEDBOT_ADMINS="slack:T1:UA,slack:T2:UB,slack:UALL",
                          SEEDBOT_DEFAULT_CHANNEL_BUDGET="0.000001/day", **INSTALLS)
    fake_seed.default_reply = Reply(content="ok", prompt_tokens=1_000, completion_tokens=100)
    await core.names.note("slack", "channel", "C6", "t2-secret-project")
    answer = await core.service.handle(in_workspace("T2", "C6", "question"), RecordingSink())
    assert answer is not None and answer.status == "refused"  # the channel's budget is full: admins are alerted
    told = {s.to for s in slack.sent if s.kind == "direct" and "Budget alert" in s.text}
    assert told == {"T2:UB", "UALL"}, slack.sent  # not T1's admin: another workspace's channel and spend

"""Retention and forgetting: threads go, the ledger's money stays, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, or_, select, update

from adapters.core import Core
from bot.domain import Address
from bot.ops.retention import BATCH_SIZE, Retention, RetentionSweep
from bot.ops.scheduler import Deliveries
from bot.storage.tables import Delivery, Message, Thread, UsageEntry, utcnow
from tests.factories import incoming
from tests.fakes.seed import FakeSeed, Reply
from tests.ops.test_admin import run_cli
from tests.sinks import RecordingSink


async def ask(core: Core, text: str, *, thread: str, user: str = "U1", channel: str = "C1") -> None:
    answer = await core.service.handle(incoming(text, thread=thread, user=user, channel=channel), RecordingSink())
    assert answer is not None and answer.status == "ok"


async def spend_json(tmp_path: Path, database_url: str) -> dict[str, object]:
    code, out, err = await run_cli(tmp_path, database_url, "spend", "--json")
    assert code == 0, err
    return json.loads(out)


async def age_thread(core: Core, thread_id: str, days: int) -> None:
    """Make a thread's messages (and the thread) `days` old, as if nobody had written there since."""
    old = utcnow() - timedelta(days=days)
    async with core.db.session() as session:
        pk = await session.scalar(select(Thread.id).where(Thread.platform_thread_id == thread_id))
        await session.execute(update(Message).where(Message.thread_pk == pk).values(created_at=old))
        await session.execute(update(Thread).where(Thread.id == pk).values(created_at=old, updated_at=old))


async def thread_ids(core: Core) -> list[str]:
    async with core.db.session() as session:
        return sorted(await session.scalars(select(Thread.platform_thread_id)))


async def test_one_maintenance_pass_deletes_expired_threads_and_spend_is_unchanged(
        core_for, database_url: str, fake_seed: FakeSeed, tmp_path: Path) -> None:
    core = await core_for(database_url)
    fake_seed.default_reply = Reply(content="An answer.", prompt_tokens=1_000, completion_tokens=200)
    await ask(core, "old question", thread="old")
    await ask(core, "old follow-up", thread="old")
    await ask(core, "new question", thread="new")
    await ask(core, "recent reply in an old thread", thread="revived")
    await age_thread(core, "old", days=91)
    await age_thread(core, "revived", days=200)
    await ask(core, "but someone wrote here today", thread="revived")
    before = await spend_json(tmp_path, database_url)

    sweep = RetentionSweep(90, Retention(core.db), Deliveries(core.db))
    removed = await sweep.tick()

    assert removed is not None and (removed.threads, removed.user_messages, removed.answers) == (1, 2, 2)
    assert await thread_ids(core) == ["new", "revived"]
    async with core.db.session() as session:
        ledger = list(await session.scalars(select(UsageEntry)))
        texts = list(await session.scalars(select(Message.content)))
    assert len(ledger) == 5 and sum(1 for row in ledger if row.thread_pk is None) == 2
    assert not any("old" in text for text in texts if text != "recent reply in an old thread")
    assert await spend_json(tmp_path, database_url) == before
    # Once per day across replicas: a second process's sweep the same day finds it claimed.
    other_replica = RetentionSweep(90, Retention(core.db), Deliveries(core.db))
    assert await other_replica.tick() is None


async def test_the_sweep_deletes_in_batches_and_zero_days_keeps_everything(core_for, sqlite_url: str) -> None:
    core = await core_for(sqlite_url)
    old = utcnow() - timedelta(days=400)
    channel_pk = await _channel(core)
    async with core.db.session() as session:
        await session.execute(core.db.insert(Thread).values([
            {"channel_pk": channel_pk, "platform_thread_id": f"t{i}", "history_floor_message_pk": 0,
             "last_prompt_estimate": 0, "last_prompt_actual": 0, "created_at": old, "updated_at": old}
            for i in range(BATCH_SIZE * 2 + 7)]))
    assert await RetentionSweep(0, Retention(core.db), Deliveries(core.db)).tick() is None
    assert len(await thread_ids(core)) == BATCH_SIZE * 2 + 7
    removed = await RetentionSweep(30, Retention(core.db), Deliveries(core.db)).tick()
    assert removed is not None and removed.threads == BATCH_SIZE * 2 + 7 and await thread_ids(core) == []
    async with core.db.session() as session:
        [claim] = await session.scalars(select(Delivery).where(Delivery.key.like("retention:%")))
    assert claim.status == "sent"


async def _channel(core: Core) -> int:
    from bot.storage.tables import Channel

    async with core.db.session() as session:
        await session.execute(core.db.insert(Channel).values(
            platform="slack", workspace_id="W1", channel_id="C9", name="", web_search=False, created_at=utcnow()))
        return int(await session.scalar(select(Channel.id).where(Channel.channel_id == "C9")))


async def test_forget_user_leaves_no_row_with_their_text_and_keeps_spend(
        core_for, database_url: str, fake_seed: FakeSeed, tmp_path: Path) -> None:
    core = await core_for(database_url)
    fake_seed.script(Reply(content="answer to alice one"), Reply(content="answer to bob"),
                     Reply(content="answer to alice two"), Reply(content="answer to alice elsewhere"))
    await ask(core, "alice secret one", thread="shared", user="U0456")
    await ask(core, "bob question", thread="shared", user="U0789")
    await ask(core, "alice secret two", thread="shared", user="U0456")
    await ask(core, "alice alone", thread="hers", user="U0456", channel="C2")
    before = await spend_json(tmp_path, database_url)
    # Another workspace's person of the same id is someone else.
    code, out, err = await run_cli(tmp_path, database_url, "forget", "--user", "slack:W9:U0456")
    assert code == 0 and out.strip() == "slack:W9:U0456: removed 0 messages and 0 answers to them; 0 threads deleted"

    code, out, err = await run_cli(tmp_path, database_url, "forget", "--user", "slack:U0456")

    assert code == 0, err
    assert out.strip() == ("slack:U0456: removed 3 messages and 3 answers to them; 1 thread deleted "
                           "in slack:C1, slack:C2")
    async with core.db.session() as session:
        rows = (await session.execute(select(Message.role, Message.user_id, Message.content)
                                      .order_by(Message.id))).all()
        mentions = await session.scalar(select(func.count(Message.id)).where(
            or_(Message.content.like("%alice%"), Message.user_id == "U0456")))
    assert mentions == 0
    assert [tuple(r) for r in rows] == [("user", "U0789", "bob question"), ("assistant", "", "answer to bob")]
    assert await thread_ids(core) == ["shared"]
    assert await spend_json(tmp_path, database_url) == before


async def test_forget_thread_by_id_and_by_address(core_for, sqlite_url: str, fake_seed: FakeSeed,
                                                  tmp_path: Path) -> None:
    core = await core_for(sqlite_url)
    await ask(core, "one", thread="dup", channel="C1")
    await ask(core, "two", thread="dup", channel="C2")
    await ask(core, "three", thread="solo", channel="C1")

    code, _, err = await run_cli(tmp_path, sqlite_url, "forget", "--thread", "dup")
    assert code == 2 and "slack:C1, slack:C2" in err and "platform:channel:ID" in err
    code, out, err = await run_cli(tmp_path, sqlite_url, "forget", "--thread", "slack:C2:dup")
    assert code == 0, err
    assert out.strip() == "slack:C2:dup: removed 1 message and 1 answer to them; 1 thread deleted in slack:C2"
    code, out, err = await run_cli(tmp_path, sqlite_url, "forget", "--thread", "solo")
    assert code == 0 and "in slack:C1" in out
    assert await thread_ids(core) == ["dup"]
    code, _, err = await run_cli(tmp_path, sqlite_url, "forget", "--thread", "nowhere")
    assert code == 1 and "no stored conversation" in err


def test_addresses_with_and_without_a_workspace() -> None:
    assert Address.parse("slack:U0456") == Address("slack", None, "U0456")
    assert Address.parse("slack:T0123:U0456") == Address("slack", "T0123", "U0456")
    assert str(Address.parse("slack:T0123:U0456")) == "slack:T0123:U0456"
    for bad in ("U0456", "irc:U1", "slack:", "slack:T:U:X"):
        try:
            Address.parse(bad)
        except ValueError as exc:
            assert "platform:id" in str(exc)
        else:
            raise AssertionError(f"{bad!r} parsed")

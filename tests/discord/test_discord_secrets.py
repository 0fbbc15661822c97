"""Secrets pasted in Discord: on the added lines of a diff sent for review (`+DB_PASSWORD=…`), and hidden by a
zero-width space inside a token (which the thread's name, cleaned of invisible characters, would otherwise show
whole). Neither reaches the model, the database or the thread's name."""

from __future__ import annotations

import json

from sqlalchemy import select

from bot.storage.tables import Message
from tests.discord.harness import RunningBot, core_of
from tests.fakes.discord_fake import FakeDiscord
from tests.fakes.seed import FakeSeed, Reply

PASSWORD = "Zq8vR2mT5wK9pL3x"
TOKEN = "c0ffee5ecret7e11a9b8"

DIFF = f"""\
diff --git a/.env b/.env
--- a/.env
+++ b/.env
@@ -1,2 +1,4 @@
 APP_NAME=shop
-DB_PASSWORD=changeme
+DB_PASSWORD={PASSWORD}
+API_TOKEN={TOKEN}
 LOG_LEVEL=info
"""


async def test_a_secret_on_an_added_line_of_a_pasted_diff_reaches_neither_the_model_nor_the_database(
        fake: FakeDiscord, fake_seed: FakeSeed, discord_bot: RunningBot) -> None:
    fake_seed.responder = lambda body: Reply(
        content=json.dumps({"summary": "Changes the settings.", "risk": "low", "findings": []}))
    question = await fake.dispatch_message_create(
        fake.channel, fake.alice, f"{fake.bot.mention} review this\n```diff\n{DIFF}```")
    await discord_bot.answer_in(int(question["id"]), timeout=20)

    prompt = json.dumps(fake_seed.completions[-1].body["messages"])
    async with core_of(discord_bot).db.session() as session:
        stored = "\n".join((await session.execute(select(Message.content))).scalars())
    leaks = {"model": [s for s in (PASSWORD, TOKEN) if s in prompt],
             "database": [s for s in (PASSWORD, TOKEN) if s in stored]}
    assert leaks == {"model": [], "database": []}


TOKEN = "ghp_" + "Q7w8E9r0T1y2U3i4O5p6A7s8D9f0G1h2J3k4"


async def test_a_token_hidden_by_a_zero_width_space_names_no_thread_and_reaches_no_model(
        fake: FakeDiscord, fake_seed: FakeSeed, discord_bot: RunningBot) -> None:
    fake_seed.script(Reply(content="That token has expired.", chunk_chars=5))
    hidden = TOKEN[:4] + "\u200b" + TOKEN[4:]
    question = await fake.dispatch_message_create(
        fake.channel, fake.alice, f"{fake.bot.mention} why does {hidden} get a 401?")
    await discord_bot.answer_in(int(question["id"]))
    thread = fake.thread(int(question["id"]))
    assert thread is not None
    prompt = fake_seed.completions[-1].body["messages"][-1]["content"]
    assert {"thread name": TOKEN[4:] in thread.name, "model": TOKEN[4:] in prompt} == \
        {"thread name": False, "model": False}, (thread.name, prompt)

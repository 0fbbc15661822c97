"""A secret the model writes (read off a screenshot, found by a web search, repeated from the question) is masked
everywhere the answer goes, not only in the chat: the stored answer is the masked text the person was shown
(ChatService: StreamedCall.masked_parts), so the admin console and `seedbot ask --json` show it masked too."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import aiohttp
from sqlalchemy import select

from bot.chat.streamed import described
from bot.config import Settings
from bot.llm import SeedBadRequest
from bot.storage.tables import Message
from tests.cli.test_cli_ask import run_cli
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack
from tests.ops.console_harness import running_console
from tests.slack.harness import wait_for_answer

GH_TOKEN = "ghp_" + "Q7w8E9r0T1y2U3i4O5p6A7s8D9f0G1h2J3k4"
PG_PASSWORD = "Tr0ub4dorXyzzy42"
ANSWER = (f"Your screenshot shows the token `{GH_TOKEN}` and the URL "
          f"`postgresql://app:{PG_PASSWORD}@db.internal/prod`. Rotate both.")
SECRETS = (GH_TOKEN, PG_PASSWORD)


async def test_a_secret_the_model_writes_is_stored_and_shown_in_the_console_masked(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    fake_seed.script(Reply(content=ANSWER, chunk_chars=9))
    async with running_console(slack, settings_for, tmp_path) as console, aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=aiohttp.ClientTimeout(total=60)) as client:
        mention = slack.events.app_mention("what does my deploy screenshot say?")
        async with slack.sender(console.bot.events_url) as sender:
            await sender.post_event(mention)
        [reply] = await wait_for_answer(slack, "C1", mention["event"]["ts"], timeout=30)
        shown = slack.final_text("C1", reply.ts)
        await console.sign_in(client)
        page = await (await client.get(console.base_url + "/admin/conversations/1")).text()
        async with console.core.db.session() as session:
            stored = "\n".join((await session.execute(select(Message.content))).scalars())

    assert "Rotate both." in shown and not [s for s in SECRETS if s in shown]  # the channel
    assert "Rotate both." in page
    leaks = {"database": [s for s in SECRETS if s in stored], "console": [s for s in SECRETS if s in page]}
    assert leaks == {"database": [], "console": []}


async def test_ask_json_prints_the_answer_the_person_saw_with_its_secrets_masked(
        fake_seed: FakeSeed, tmp_path: Path) -> None:
    fake_seed.script(Reply(content=ANSWER), Reply(content=ANSWER))
    code, streamed, err = await run_cli(fake_seed, tmp_path, "ask", "what does my screenshot say?")
    assert code == 0, err
    assert "Rotate both." in streamed and not [s for s in SECRETS if s in streamed]  # plain `ask`
    code, out, err = await run_cli(fake_seed, tmp_path, "ask", "--json", "what does my screenshot say?")
    assert code == 0, err
    answer = json.loads(out)["answer"]
    assert "Rotate both." in answer
    assert [s for s in SECRETS if s in answer] == [], answer


def test_an_error_kept_in_the_ledger_has_its_secrets_masked() -> None:
    # A provider's error may quote the request it refused.
    error = SeedBadRequest("Seed API 400: invalid content near 'ghp_Q7w8E9r0T1y2U3i4O5p6A7s8D9f0G1h2J3k4'", status=400)
    assert described(error) == "SeedBadRequest: Seed API 400: invalid content near '[redacted: GitHub token]'"

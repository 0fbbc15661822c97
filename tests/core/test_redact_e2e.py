"""Secrets end to end: a real bot process, the fake Slack and the fake Seed model. What the model
receives (the fake's recorded requests) and what the channel shows carry none of the corpus secrets."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.config import Settings
from tests.discord.harness import RunningBot as DiscordBot
from tests.discord.harness import split_footer, user_turns
from tests.fakes.discord_fake import FakeDiscord
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack
from tests.slack.harness import answer_part, running_bot, wait_for_answer

DATA = Path(__file__).parent.parent / "data" / "secrets"
SAMPLES = [json.loads(line) for line in (DATA / "secrets.jsonl").read_text(encoding="utf-8").splitlines()]


def sent_to_model(fake_seed: FakeSeed) -> str:
    messages = fake_seed.completions[-1].body["messages"]
    return "\n".join(m["content"] if isinstance(m["content"], str) else json.dumps(m["content"]) for m in messages)


async def test_corpus_secrets_reach_neither_the_model_nor_the_channel(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    in_text = [s["text"] for s in SAMPLES[0::2]]
    in_file = [s["text"] for s in SAMPLES[1::2]]
    everything = "\n\n".join(s["text"] for s in SAMPLES)
    # The model answers with every secret in the clear, as one quoting an unmasked paste would.
    fake_seed.script(Reply(content=f"You pasted:\n\n```\n{everything}\n```\nRotate all of them.", chunk_chars=7))
    file = slack.add_file("config.env", "\n\n".join(in_file).encode())
    question = "Why does my deploy fail? My settings:\n" + "\n\n".join(in_text)
    async with running_bot(slack, settings_for, tmp_path, SEED_MAX_TOKENS=16384) as bot:
        mention = slack.events.app_mention(question, files=[file])
        async with slack.sender(bot.events_url) as sender:
            await sender.post_event(mention)
        replies = await wait_for_answer(slack, "C1", mention["event"]["ts"], timeout=30)

    prompt = sent_to_model(fake_seed)
    shown = "\n".join(slack.final_text("C1", m.ts) for m in replies)
    caught = [s for s in SAMPLES if s["secret"] not in prompt and s["secret"] not in shown]
    assert len(SAMPLES) >= 40 and len(caught) / len(SAMPLES) >= 0.95, [s["kind"] for s in SAMPLES if s not in caught]
    assert "[redacted: Slack token]" in prompt and "[redacted: private key]" in shown
    assert "-----BEGIN" not in shown and "stopped at the length limit" not in shown
    assert "Why does my deploy fail?" in prompt and "Rotate all of them." in shown
    footer = shown.rsplit("\n", 1)[-1]
    assert footer.count("secrets were masked before sending") == 1
    # No user text at INFO or above, masked or not.
    loud = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert "deploy fail" not in loud and "Rotate all" not in loud
    assert not [s["kind"] for s in SAMPLES if s["secret"] in loud]
    # The bot's own credentials: at no level at all.
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "Sending a request" in logged  # debug logging did happen
    for credential in (slack.config.bot_token, slack.config.signing_secret, fake_seed.api_key):
        assert credential not in logged


async def test_with_input_masking_off_the_model_sees_the_secret_but_the_channel_does_not(
        slack: FakeSlack, fake_seed: FakeSeed, settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    password = "Tr0ub4dorXyzzy42"
    url = f"postgresql://app:{password}@db.internal:5432/prod"
    fake_seed.responder = lambda body: Reply(content=f"Your URL is `{url}`: the host is unreachable.",
                                             chunk_chars=3)
    async with running_bot(slack, settings_for, tmp_path, SEEDBOT_REDACT_INPUT="false") as bot:
        mention = slack.events.app_mention(f"why can't I connect with {url} ?")
        async with slack.sender(bot.events_url) as sender:
            await sender.post_event(mention)
        [reply] = await wait_for_answer(slack, "C1", mention["event"]["ts"])
    assert password in sent_to_model(fake_seed)
    shown = slack.final_text("C1", reply.ts)
    assert answer_part(shown) == ("Your URL is `postgresql://app:[redacted: URL password]@db.internal:5432/prod`: "
                                  "the host is unreachable.")
    assert "masked before sending" not in shown


async def test_on_discord_a_pasted_token_is_masked_for_the_model_and_the_footer_says_so(
        fake: FakeDiscord, fake_seed: FakeSeed, discord_bot: DiscordBot) -> None:
    token = "ghp_" + "Q7w8E9r0T1y2U3i4O5p6A7s8D9f0G1h2J3k4"
    fake_seed.script(Reply(content=f"That token ({token}) has expired; make a new one.", chunk_chars=5))
    question = await fake.dispatch_message_create(
        fake.channel, fake.alice, f"{fake.bot.mention} why does `{token}` get a 401?")
    (message,) = await discord_bot.answer_in(int(question["id"]))
    thread = fake.thread(int(question["id"]))
    assert thread is not None and token not in thread.name and "redacted" in thread.name
    assert user_turns(fake_seed, 0) == [("user", "why does `[redacted: GitHub token]` get a 401?")]
    text, footer = split_footer(message["content"])
    assert text == "That token ([redacted: GitHub token]) has expired; make a new one."
    assert footer.endswith("1 secret was masked before sending")

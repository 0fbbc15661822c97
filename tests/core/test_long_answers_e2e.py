"""Long answers through the fake Discord and the fake Slack: never cut inside a character (item 4), and
the footer never alone or with only a few characters of the answer (item 8)."""

from __future__ import annotations

import regex

from adapters.discord.routing import thread_name
from bot.chat.markdown import open_fence
from tests.discord.harness import RunningBot, split_footer
from tests.fakes.discord_fake import FakeDiscord
from tests.fakes.seed import FakeSeed, Reply
from tests.fakes.slack import FakeSlack
from tests.slack.harness import answer_part, running_bot, wait_for_answer

ZWJ_CODER = "👩\u200d💻"


def clusters(text: str) -> list[str]:
    return regex.findall(r"\X", text)


def assert_cut_between_clusters(answer: str, parts: list[str]) -> None:
    assert "".join(parts) == answer
    assert sum((clusters(p) for p in parts), []) == clusters(answer)


async def discord_answer(fake: FakeDiscord, fake_seed: FakeSeed, bot: RunningBot, answer: str) -> list[str]:
    fake_seed.token_scale = 0.1  # emoji cost many tokens each: keep the answer under max_tokens
    fake_seed.script(Reply(content=answer, chunk_chars=97, chunk_delay=0.005))
    question = await fake.dispatch_message_create(fake.channel, fake.alice, f"{fake.bot.mention} 解释一下")
    return [m["content"] for m in await bot.answer_in(int(question["id"]))]


async def test_a_chinese_answer_without_spaces_is_not_cut_inside_a_zwj_emoji_on_discord(
        fake: FakeDiscord, fake_seed: FakeSeed, discord_bot: RunningBot) -> None:
    # Where a 2,000-character cut falls: between "👩‍" and "💻". Past it, an emoji every third character.
    answer = "中" * 1998 + ZWJ_CODER + ("文字" + ZWJ_CODER) * 500
    messages = await discord_answer(fake, fake_seed, discord_bot, answer)
    assert len(messages) >= 2 and all(len(m) <= 2000 for m in messages)
    messages[-1], _ = split_footer(messages[-1])
    assert_cut_between_clusters(answer, messages)
    assert not any(m.startswith(("💻", "\u200d")) or m.endswith("\u200d") for m in messages)


async def test_a_long_flag_line_is_not_cut_inside_a_flag_on_slack(slack: FakeSlack, fake_seed: FakeSeed,
                                                                  settings_for, tmp_path) -> None:  # noqa: ANN001
    answer = "旗" + "🇺🇸🇬🇧🇫🇷🇯🇵" * 1_600  # 12,801 characters, no space: more than one Slack message
    fake_seed.token_scale = 0.1  # flags cost many tokens each: keep the answer under max_tokens
    fake_seed.script(Reply(content=answer, chunk_chars=301))
    async with running_bot(slack, settings_for, tmp_path) as running:
        mention = slack.events.app_mention("flags?")
        async with slack.sender(running.events_url) as sender:
            await sender.post_event(mention)
        replies = await wait_for_answer(slack, "C1", mention["event"]["ts"], count=2, timeout=30)
        texts = [slack.final_text("C1", r.ts) for r in replies]
    texts[-1] = answer_part(texts[-1])
    assert all(len(t) <= 12_000 for t in texts)
    assert_cut_between_clusters(answer, texts)


def test_a_discord_thread_name_is_shortened_between_characters() -> None:
    question = "请" * 98 + ZWJ_CODER + "帮我看看"  # a 100-character cut falls between "👩" and its ZWJ
    name = thread_name(question, "ada")
    assert name == "请" * 98 + "…"


async def test_a_4000_character_answer_does_not_end_in_a_message_of_7_characters_and_the_footer(
        fake: FakeDiscord, fake_seed: FakeSeed, discord_bot: RunningBot) -> None:
    answer = ("abcdef " * 572)[:4000]
    messages = await discord_answer(fake, fake_seed, discord_bot, answer)
    assert all(len(m) <= 2000 for m in messages)
    body, footer = split_footer(messages[-1])
    assert footer.startswith("-# ") and len(body) > 100  # a real share of the answer goes with the footer
    assert "".join(messages[:-1]) + body == answer


async def test_a_footer_is_not_alone_after_a_full_message(
        fake: FakeDiscord, fake_seed: FakeSeed, discord_bot: RunningBot) -> None:
    answer = "y" * 1995  # one message's worth: the footer used to follow alone
    messages = await discord_answer(fake, fake_seed, discord_bot, answer)
    body, _ = split_footer(messages[-1])
    assert body.strip() and "".join(messages[:-1]) + body == answer
    assert all(len(m) <= 2000 and open_fence(m) is None for m in messages)

"""Issue 6 end to end: a .patch attached to a mention in Discord gets a grounded review in a thread."""

from __future__ import annotations

import json
from pathlib import Path

from tests.discord.harness import RunningBot
from tests.fakes.discord_fake import FakeDiscord
from tests.fakes.seed import FakeSeed, Reply
from tests.review.test_review_support import GitRepo, added_lines_in_prompt, open_fence_at_end


def patch_with_many_changes(tmp_path: Path) -> bytes:
    repo = GitRepo(tmp_path / "repo")
    repo.write("service/retry.py", "".join(f"def step_{i}():\n    return {i}\n\n" for i in range(60)))
    repo.commit("base")
    repo.write("service/retry.py", "".join(f"def step_{i}():\n    return {i * 2}  # doubled\n\n" for i in range(60)))
    repo.write("package-lock.json", '{"lockfileVersion": 3}\n')
    return repo.staged_diff().encode()


async def test_an_attached_patch_is_reviewed_in_a_thread_with_balanced_fences(
        fake: FakeDiscord, fake_seed: FakeSeed, discord_bot: RunningBot, tmp_path: Path) -> None:
    patch = patch_with_many_changes(tmp_path)

    def review(body: dict) -> Reply:
        cited = added_lines_in_prompt(body["messages"][-1]["content"])
        findings = [{"path": path, "line": line, "severity": "minor", "title": f"Magic number on line {line}",
                     "explanation": "Name the constant.\n```python\nFACTOR = 2\n```",
                     "suggestion": f"    return {line} * FACTOR"} for path, line in cited[:25]]
        findings.append({"path": "service/retry.py", "line": 99_999, "severity": "critical",
                         "title": "A line that does not exist", "explanation": "invented"})
        return Reply(content=json.dumps({"summary": "Doubles every step.", "risk": "low", "findings": findings}),
                     chunk_chars=500)

    fake_seed.responder = review
    attachment = fake.add_attachment("doubling.patch", patch, "text/x-diff")
    question = await fake.dispatch_message_create(fake.channel, fake.alice, f"{fake.bot.mention} review this",
                                                  attachments=[attachment])
    thread_id = int(question["id"])
    messages = await discord_bot.answer_in(thread_id, timeout=20)

    assert fake.thread(thread_id) is not None
    assert len(messages) > 1  # 25 findings with code do not fit one Discord message
    contents = [m["content"] for m in messages]
    assert all(len(c) <= 2000 for c in contents)
    assert all(open_fence_at_end(c) is None for c in contents), "every message renders its code blocks whole"
    whole = "\n".join(contents)
    assert whole.startswith("**Code review** · risk: **low**")
    assert "`service/retry.py:" in whole and "A line that does not exist" not in whole
    assert "1 finding dropped for citing lines outside the diff." in whole
    assert "`package-lock.json`" in whole  # listed as not reviewed, never silently lost
    assert len(fake_seed.completions) == 1

"""The review path through ChatService, against the fake Seed server, with diffs made by real git."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.chat.inflight import InFlight
from bot.chat.service import Answer
from bot.chat.streamed import NOT_POSTED
from bot.domain import Attachment, AttachmentKind
from bot.storage.tables import UsageEntry
from tests.books import read_books
from tests.factories import incoming
from tests.fakes.seed import FakeSeed, Reply
from tests.review.test_review_support import GitRepo, added_lines_in_prompt, open_fence_at_end
from tests.sinks import REFUSAL, RecordingSink, RefusingSink


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "repo")


def review_reply(findings: list[dict]) -> Reply:
    return Reply(content=json.dumps({"summary": "Looks mostly fine.", "risk": "medium", "findings": findings}))


def small_diff(repo: GitRepo) -> str:
    repo.write("app/calc.py", "def add(a, b):\n    return a + b\n")
    repo.commit("base")
    repo.write("app/calc.py", "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n")
    return repo.staged_diff()


async def ledger(core) -> list[UsageEntry]:  # noqa: ANN001
    async with core.db.session() as session:
        return list(await session.scalars(select(UsageEntry).order_by(UsageEntry.id)))


async def review_of_small_diff(core, repo: GitRepo, fake_seed: FakeSeed,  # noqa: ANN001
                               more_findings: Callable[[str, int], list[dict]]) -> tuple[Answer | None, RecordingSink]:
    """Review small_diff with the model citing the subtraction at its real line, then `more_findings(path,
    line)`; (the answer, the sink)."""
    diff = small_diff(repo)

    def answer(body: dict) -> Reply:
        (path, line), *_ = added_lines_in_prompt(body["messages"][-1]["content"])
        return review_reply([
            {"path": path, "line": line, "severity": "major", "title": "Subtraction instead of addition",
             "explanation": "`add` subtracts.", "suggestion": "    return a + b"},
            *more_findings(path, line),
        ])

    fake_seed.responder = answer
    sink = RecordingSink()
    return await core.service.handle(incoming(f"review please\n```diff\n{diff}```"), sink), sink


async def test_findings_outside_the_diff_are_dropped_and_counted(core_for, sqlite_url: str, fake_seed: FakeSeed,
                                                                repo: GitRepo) -> None:
    core = await core_for(sqlite_url)
    result, sink = await review_of_small_diff(core, repo, fake_seed, lambda path, _line: [
        {"path": path, "line": 9999, "severity": "critical", "title": "Invented line", "explanation": "x"},
        {"path": "app/other.py", "line": 1, "severity": "minor", "title": "Invented file", "explanation": "y"},
    ])
    assert result is not None and result.status == "ok"
    assert "`app/calc.py:2` Subtraction instead of addition" in sink.text
    assert "Invented" not in sink.text
    assert "2 findings dropped for citing lines outside the diff." in sink.text
    assert "```python\n    return a + b\n```" in sink.text
    assert open_fence_at_end(sink.text) is None
    rows = await ledger(core)
    assert [(r.kind, r.status) for r in rows] == [("review", "ok")]
    assert sink.footer is not None and sink.footer.cost_nanos == rows[0].cost_nanos


async def test_an_attached_patch_is_reviewed(core_for, sqlite_url: str, fake_seed: FakeSeed, repo: GitRepo) -> None:
    core = await core_for(sqlite_url)
    diff = small_diff(repo).encode()
    fake_seed.default_reply = review_reply([])
    patch = Attachment("fix.patch", AttachmentKind.TEXT, len(diff), diff)
    sink = RecordingSink()
    await core.service.handle(incoming("", attachments=(patch,)), sink)
    assert sink.text.startswith("**Code review** · risk: **medium**")
    assert "<file path=\"app/calc.py\"" in fake_seed.completions[0].body["messages"][-1]["content"]


async def test_a_question_that_only_looks_like_a_diff_stays_a_question(core_for, sqlite_url: str,
                                                                       fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url)
    fake_seed.default_reply = Reply(content="Plain answer.")
    sink = RecordingSink()
    await core.service.handle(incoming("Pros:\n- fast\n+ simple\n--- \nWhich should I pick?"), sink)
    assert sink.text == "Plain answer."
    assert (await ledger(core))[0].kind == "chat"


@pytest.mark.parametrize(("word", "kind"), [("preview", "chat"), ("review", "review")])
async def test_bare_hunks_are_reviewed_when_review_is_asked_for_as_a_word(core_for, sqlite_url: str,
                                                                         fake_seed: FakeSeed, word: str,
                                                                         kind: str) -> None:
    core = await core_for(sqlite_url)
    fake_seed.default_reply = review_reply([]) if kind == "review" else Reply(content="Plain answer.")
    await core.service.handle(incoming(f"{word} this:\n@@ -1 +1 @@\n-a = 1\n+a = 2\n"), RecordingSink())
    assert (await ledger(core))[0].kind == kind


async def test_review_command_without_a_diff_says_what_to_send(core_for, sqlite_url: str,
                                                               fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url)
    sink = RecordingSink()
    answer = await core.service.handle(incoming("please look at my code", force_review=True), sink)
    assert answer is not None and answer.status == "empty"
    assert sink.failure is not None and "no diff to review" in sink.failure
    assert fake_seed.requests == []


async def test_a_50000_line_diff_stays_within_the_calls_and_the_budget(core_for, sqlite_url: str,
                                                                       fake_seed: FakeSeed, repo: GitRepo) -> None:
    core = await core_for(sqlite_url, SEEDBOT_DEFAULT_CHANNEL_BUDGET="none")
    for f in range(200):
        repo.write(f"src/module_{f:03d}.py", "".join(f"value_{f}_{i} = compute({i}, {f})\n" for i in range(250)))
    diff = repo.staged_diff().encode()
    assert diff.count(b"\n+value_") == 50_000
    fake_seed.default_reply = review_reply([])
    big = Attachment("huge.diff", AttachmentKind.TEXT, len(diff), diff)
    sink = RecordingSink()
    answer = await core.service.handle(incoming("", attachments=(big,)), sink)
    assert answer is not None and answer.status == "ok"
    rows = await ledger(core)
    assert len(rows) == len(fake_seed.completions) == core.settings.review_max_calls
    assert all(r.kind == "review" and r.status == "ok" for r in rows)
    assert all(u.usage["prompt_tokens"] < core.settings.review_tokens for u in fake_seed.completions)
    reviewed = {path for r in fake_seed.completions
                for path, _ in added_lines_in_prompt(r.body["messages"][-1]["content"])}
    footer_line = next(line for line in sink.text.splitlines() if line.startswith("Not reviewed"))
    more = re.search(r" and ([\d,]+) more files?$", footer_line)
    listed = footer_line.count("`src/module_") + (int(more.group(1).replace(",", "")) if more else 0)
    assert len(reviewed) + listed == 200
    assert sink.footer is not None and "4 review calls" in sink.footer.notes


async def test_a_private_key_masked_in_a_diff_keeps_every_later_line_number(core_for, sqlite_url: str,
                                                                          fake_seed: FakeSeed, repo: GitRepo) -> None:
    core = await core_for(sqlite_url)
    key = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
           "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n-----END RSA PRIVATE KEY-----\n")
    repo.write("k.py", "a = 1\nb = 2\n")
    repo.commit("base")
    repo.write("k.py", "a = 1\n" + key + "x = eval(input())\nb = 2\n")
    diff = repo.staged_diff()
    eval_line = ("a = 1\n" + key).count("\n") + 1  # 6: the key's four lines come first

    def answer(body: dict) -> Reply:
        prompt = body["messages"][-1]["content"]
        assert "MIIEowIBAAKCAQEA" not in prompt and "[redacted: private key]" in prompt
        cited = [line for path, line in added_lines_in_prompt(prompt) if path == "k.py"]
        assert eval_line in cited
        return review_reply([{"path": "k.py", "line": eval_line, "severity": "critical", "title": "eval of input",
                              "explanation": "Runs whatever is typed."}])

    fake_seed.responder = answer
    sink = RecordingSink()
    result = await core.service.handle(incoming(f"review please\n```diff\n{diff}```"), sink)
    assert result is not None and result.status == "ok"
    assert f"`k.py:{eval_line}` eval of input" in sink.text
    assert "repairing hunk headers" not in sink.text.lower()


async def test_unreadable_findings_cost_themselves_not_the_review(core_for, sqlite_url: str, fake_seed: FakeSeed,
                                                                   repo: GitRepo) -> None:
    core = await core_for(sqlite_url)
    result, sink = await review_of_small_diff(core, repo, fake_seed, lambda path, _line: [
        {"path": path, "line": 0, "severity": "major", "title": "Line zero", "explanation": "x"},
        {"path": path, "line": "12-14", "severity": "info", "title": "A range"},
    ])
    assert result is not None and result.status == "ok"
    assert "`app/calc.py:2` Subtraction instead of addition" in sink.text
    assert "2 findings dropped as unreadable" in sink.text
    assert "not in the expected format" not in sink.text and "Line zero" not in sink.text


async def test_a_review_reply_cut_at_the_output_limit_is_named_as_cut(core_for, sqlite_url: str,
                                                                      fake_seed: FakeSeed, repo: GitRepo) -> None:
    core = await core_for(sqlite_url)
    whole = json.dumps({"summary": "Two problems.", "risk": "high", "findings": [
        {"path": "app/calc.py", "line": 2, "severity": "major", "title": "Subtraction", "explanation": "x"}]})
    fake_seed.script(Reply(content=whole[:len(whole) // 2], finish_reason="length"))
    sink = RecordingSink()
    await core.service.handle(incoming(f"review please\n```diff\n{small_diff(repo)}```"), sink)
    assert sink.footer is not None
    assert "1 review call cut at the model's output limit: findings may be missing" in sink.footer.notes


def three_file_diff(repo: GitRepo) -> str:
    """A diff of three files, big enough at SEEDBOT_REVIEW_TOKENS=2000 for a review call each."""
    for name in ("alpha", "beta", "gamma"):
        repo.write(f"src/{name}.py", "".join(f"{name}_{i} = compute({i})\n" for i in range(60)))
    return repo.staged_diff()


async def test_a_review_into_a_refused_channel_makes_no_model_call(core_for, sqlite_url: str, fake_seed: FakeSeed,
                                                                  repo: GitRepo) -> None:
    core = await core_for(sqlite_url, SEEDBOT_REVIEW_TOKENS="2000")
    sink, inflight = RefusingSink(refuse_at="start"), InFlight()
    answer = await core.service.handle(incoming(f"review please\n```diff\n{three_file_diff(repo)}```"), sink,
                                       inflight)
    assert answer is not None and answer.status == "failed" and answer.reason == NOT_POSTED
    assert sink.started == 1 and len(sink.statuses) == 1  # the review was planned: three calls
    assert fake_seed.requests == [] and sink.deltas == [] and sink.footer is None
    rows = await ledger(core)
    # Each planned call was reserved, then released unsent: the ledger says why, at no cost.
    assert len(rows) == 3 and {(r.kind, r.status, r.cost_nanos) for r in rows} == {("review", "failed", 0)}
    assert all(r.error == f"SinkBroken: {REFUSAL}" for r in rows)
    assert inflight.calls == {}
    books = await read_books(core.db)
    assert books.user_statuses == ["failed"] and books.balanced() and books.active_reservations == []


async def test_a_review_refused_at_its_only_post_ends_failed(core_for, sqlite_url: str, fake_seed: FakeSeed,
                                                            repo: GitRepo) -> None:
    core = await core_for(sqlite_url)
    fake_seed.default_reply = review_reply([])
    sink = RefusingSink(refuse_at="finish")
    answer = await core.service.handle(incoming(f"review please\n```diff\n{small_diff(repo)}```"), sink)
    assert answer is not None and answer.status == "failed" and answer.reason == NOT_POSTED
    assert len(fake_seed.completions) == 1
    [row] = await ledger(core)
    # The call was made and is paid; like a chat answer whose last post was refused, its row says failed.
    assert row.status == "failed" and row.cost_nanos > 0 and (row.error or "").startswith("SinkBroken: ")
    books = await read_books(core.db)
    assert [(m.role, m.status) for m in books.messages] == [("user", "failed"), ("assistant", "failed")]

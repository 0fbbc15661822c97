"""`seedbot ask` as a user runs it: a real process against the fake Seed server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from tests.fakes.seed import FakeSeed, Reply


async def run_cli(fake: FakeSeed, cwd: Path, *args: str, env: dict[str, str] | None = None,
                  stdin: bytes | None = None) -> tuple[int, str, str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SEED", "DATABASE_URL"))}
    full_env |= {"SEED_API_KEY": fake.api_key, "SEED_BASE_URL": fake.base_url, "SEED_MAX_RETRIES": "0"}
    full_env |= env or {}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "adapters.cli", *args, cwd=cwd, env=full_env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(stdin), timeout=120)
    return process.returncode or 0, out.decode(), err.decode()


async def test_ask_json_prints_the_answer_and_the_exact_cost(fake_seed: FakeSeed, tmp_path: Path) -> None:
    fake_seed.script(Reply(content="Use `functools.cache`.", prompt_tokens=1_000, completion_tokens=500))
    code, out, err = await run_cli(fake_seed, tmp_path, "ask", "--json", "How do I memoize?")
    assert code == 0, err
    result = json.loads(out)
    assert result["answer"] == "Use `functools.cache`."
    assert result["cost_usd"] == "0.0016"
    assert result["usage"] == {"prompt_tokens": 1_000, "cached_tokens": 0, "completion_tokens": 500,
                               "reasoning_tokens": 0}
    assert (tmp_path / "seedbot.db").exists()  # SQLite in the working directory by default


async def test_ask_json_bills_the_long_tier(fake_seed: FakeSeed, tmp_path: Path) -> None:
    fake_seed.script(Reply(content="Long.", prompt_tokens=130_000, completion_tokens=1_000))
    code, out, err = await run_cli(fake_seed, tmp_path, "ask", "--json", "Summarise this")
    assert code == 0, err
    assert json.loads(out)["cost_usd"] == "0.1088"


async def test_ask_streams_then_prints_tokens_and_cost(fake_seed: FakeSeed, tmp_path: Path) -> None:
    fake_seed.script(Reply(content="First line.\nSecond line.", prompt_tokens=100, completion_tokens=10))
    code, out, err = await run_cli(fake_seed, tmp_path, "ask", "--web", "--no-thinking", "Hi")
    assert code == 0, err
    assert out.startswith("First line.\nSecond line.\n")
    assert out.rstrip().endswith("110 tokens · $0.000064")
    body = fake_seed.completions[0].body
    assert body["enable_web_search"] is True and body["enable_thinking"] is False


async def test_ask_file_adds_the_file_and_thread_continues(fake_seed: FakeSeed, tmp_path: Path) -> None:
    source = tmp_path / "util.py"
    source.write_text("def add(a, b):\n    return a - b\n")
    code, out, err = await run_cli(fake_seed, tmp_path, "ask", "--json", "--file", str(source), "Bug?")
    assert code == 0, err
    thread = json.loads(out)["thread"]
    first_prompt = fake_seed.completions[0].body["messages"][-1]["content"]
    assert "return a - b" in first_prompt and "```python" in first_prompt
    code, out, err = await run_cli(fake_seed, tmp_path, "ask", "--json", "--thread", thread, "And the fix?")
    new_code, _, new_err = await run_cli(fake_seed, tmp_path, "ask", "--thread", thread + "x", "And the fix?")
    # An id this database does not hold starts a conversation under it, and says so (a typo is seen).
    assert new_code == 0 and f"seedbot: no conversation '{thread}x' here yet; starting one under that id" in new_err
    assert code == 0, err
    assert "no conversation" not in err  # the thread it continued was known
    messages = fake_seed.completions[1].body["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == first_prompt
    assert fake_seed.completions[1].body["enable_caching"] is True


async def test_ask_failures_are_one_line_and_non_zero(fake_seed: FakeSeed, tmp_path: Path) -> None:
    fake_seed.script(Reply(fault="quota_429"))
    code, out, err = await run_cli(fake_seed, tmp_path, "ask", "Hi")
    assert code == 1
    assert err.strip() == "seedbot: The bot's model account has run out of quota; an admin needs to top it up."

    fake_seed.script(Reply(fault="quota_429"))
    code, out, err = await run_cli(fake_seed, tmp_path, "ask", "--json", "Hi")
    result = json.loads(out)  # --json still prints its one object
    assert code == 1 and result["status"] != "ok" and result["cost_usd"] == "0"  # nothing charged
    assert result["error"] == err.strip().removeprefix("seedbot: ") and result["answer"] == ""

    code, _, err = await run_cli(fake_seed, tmp_path, "ask", "Hi", env={"SEED_API_KEY": ""})
    assert code == 2 and err.strip().startswith("seedbot: SEED_API_KEY is not set")

    code, _, err = await run_cli(fake_seed, tmp_path, "ask", "Hi", env={"SEED_BASE_URL": "http://127.0.0.1:9/v1"})
    assert code == 1 and "unreachable" in err and "Traceback" not in err


async def test_ask_refuses_a_binary_file(fake_seed: FakeSeed, tmp_path: Path) -> None:
    blob = tmp_path / "image.bin"
    blob.write_bytes(b"\x89PNG\x00\x00\x01")
    code, _, err = await run_cli(fake_seed, tmp_path, "ask", "--file", str(blob), "What is this?")
    assert code == 1 and "image.bin was skipped: a .bin file is not something I can read" in err
    named_like_source = tmp_path / "tool.py"
    named_like_source.write_bytes(b"\x7fELF\x02\x01\x00\x00binary")
    code, _, err = await run_cli(fake_seed, tmp_path, "ask", "--file", str(named_like_source), "What is this?")
    assert code == 1 and "tool.py was skipped: it looks like a binary file, not text" in err
    assert fake_seed.requests == []


async def test_ask_file_takes_an_image_by_its_bytes(fake_seed: FakeSeed, tmp_path: Path) -> None:
    shot = tmp_path / "screenshot"  # no extension: the first bytes say PNG
    shot.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40)
    code, _, err = await run_cli(fake_seed, tmp_path, "ask", "--file", str(shot), "What is wrong here?")
    assert code == 0, err
    parts = fake_seed.completions[0].body["messages"][-1]["content"]
    assert [p["image_url"]["url"][:22] for p in parts[1:]] == ["data:image/png;base64,"]


async def test_ask_keeps_retry_warnings_out_of_the_terminal_unless_asked(fake_seed: FakeSeed, tmp_path: Path) -> None:
    retried = {"SEED_MAX_RETRIES": "1"}
    fake_seed.script(Reply(fault="server_500"), Reply(content="Recovered."))
    code, out, err = await run_cli(fake_seed, tmp_path, "ask", "Hi", env=retried)
    assert code == 0, err
    assert out.startswith("Recovered.") and "retry" not in err
    fake_seed.script(Reply(fault="server_500"), Reply(content="Recovered."))
    code, out, err = await run_cli(fake_seed, tmp_path, "ask", "Hi", env=retried | {"SEEDBOT_LOG_LEVEL": "WARNING"})
    assert code == 0, err
    assert "seed call failed" in err and "retry 1/1" in err


async def test_ask_refuses_what_cannot_be_asked_as_a_usage_error(fake_seed: FakeSeed, tmp_path: Path) -> None:
    for args, says in ((("ask", "  "), "give a question"),
                       (("ask", "--file", str(tmp_path / "missing.py"), "Bug?"), "cannot read"),
                       (("ask", "--no-thinking", "--effort", "high", "Why?"), "--effort sets how long the model")):
        code, out, err = await run_cli(fake_seed, tmp_path, *args)
        assert code == 2 and out == "", args
        assert err.startswith(f"seedbot: {says}") and len(err.strip().splitlines()) == 1, err
    assert fake_seed.completions == []
    code, out, _ = await run_cli(fake_seed, tmp_path, "--version")
    assert code == 0 and out.startswith("seedbot ") and out.split()[1][0].isdigit()

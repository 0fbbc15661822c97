"""Provider data is validated, never trusted (point 2): wrong-shape chunks are skipped and counted,
invalid usage is unknown usage, and the one cost rule prices every case."""

from __future__ import annotations

import json
import logging
from decimal import Decimal

import pytest
from prometheus_client import generate_latest

from bot.budget.cost_rule import ESTIMATED_NOTE, Basis, call_charge, stopped_call_charge
from bot.budget.outcomes import Settlement
from bot.budget.pricing import PriceBook, PriceTier
from bot.chat.tokens import count_tokens
from bot.domain import Usage
from bot.llm import CONTEXT_WINDOW_TOKENS, validate_usage
from tests.books import read_books
from tests.factories import incoming
from tests.fakes.seed import FakeSeed, Reply
from tests.sinks import RecordingSink

PRICES = PriceBook(short=PriceTier(Decimal("0.40"), Decimal("2.40"), Decimal("0.40")),
                   long=PriceTier(Decimal("0.80"), Decimal("4.80"), Decimal("0.80")))

GOOD = {"prompt_tokens": 1_000, "completion_tokens": 500, "prompt_tokens_details": {"cached_tokens": 200},
        "completion_tokens_details": {"reasoning_tokens": 100}}


def test_valid_usage_is_read_exactly() -> None:
    assert validate_usage(GOOD, max_tokens=4096) == Usage(1_000, 200, 500, 100, 0)
    assert validate_usage({**GOOD, "completion_tokens": 500.0}, max_tokens=4096) == Usage(1_000, 200, 500, 100, 0)
    assert validate_usage(GOOD, max_tokens=4096, web_search=True).web_searches == 1  # undocumented counter


@pytest.mark.parametrize("raw", [
    "1000", [1, 2, 3], None, 42,
    {"completion_tokens": 5},  # no prompt_tokens
    {**GOOD, "completion_tokens": -5_000_000},
    {**GOOD, "completion_tokens": "500"},
    {**GOOD, "completion_tokens": 1e12},
    {**GOOD, "completion_tokens": 1e30},
    {**GOOD, "completion_tokens": float("nan")},
    {**GOOD, "completion_tokens": 12.5},
    {**GOOD, "completion_tokens": True},
    {**GOOD, "prompt_tokens": CONTEXT_WINDOW_TOKENS + 1},
    {**GOOD, "completion_tokens": int(4096 * 1.01 + 16) + 1},
    {**GOOD, "prompt_tokens_details": {"cached_tokens": 2_000}},
    {**GOOD, "prompt_tokens_details": "lots"},
], ids=repr)
def test_invalid_usage_is_rejected_with_a_reason(raw: object) -> None:
    reason = validate_usage(raw, max_tokens=4096)
    assert isinstance(reason, str) and reason


def test_the_completion_limit_allows_a_small_counting_margin() -> None:
    assert isinstance(validate_usage({**GOOD, "completion_tokens": int(4096 * 1.01 + 16)}, max_tokens=4096), Usage)


def test_the_cost_rule() -> None:
    usage = Usage(prompt_tokens=100_000, completion_tokens=1_000_000)  # short tier: $0.04 + $2.40
    assert call_charge(PRICES, usage, reserved_nanos=1, request_sent=True).cost_nanos == 2_440_000_000
    unknown = call_charge(PRICES, None, reserved_nanos=7_000, request_sent=True)
    assert (unknown.cost_nanos, unknown.basis, unknown.usage_known, unknown.note) == (
        7_000, Basis.RESERVED, False, "")
    assert call_charge(PRICES, None, reserved_nanos=7_000, request_sent=False).cost_nanos == 0


def test_a_stopped_call_without_usage_is_estimated_and_capped_at_its_reservation() -> None:
    text = "def f():\n    return 1\n" * 10
    charge = stopped_call_charge(PRICES, prompt_estimate_tokens=2_000, produced_text=text,
                                 reserved_nanos=10**9)
    expected = PRICES.cost_nanos(Usage(prompt_tokens=2_000, completion_tokens=count_tokens(text)))
    assert (charge.cost_nanos, charge.basis, charge.note) == (expected, Basis.ESTIMATED, ESTIMATED_NOTE)
    capped = stopped_call_charge(PRICES, prompt_estimate_tokens=2_000, produced_text=text, reserved_nanos=100)
    assert capped.cost_nanos == 100
    assert stopped_call_charge(PRICES, prompt_estimate_tokens=-5, produced_text="", reserved_nanos=100).cost_nanos == 0
    exact = stopped_call_charge(PRICES, prompt_estimate_tokens=2_000, produced_text=text, reserved_nanos=100,
                                usage=Usage(prompt_tokens=10, completion_tokens=10))
    assert exact.basis is Basis.USAGE and exact.cost_nanos == PRICES.cost_nanos(Usage(10, 0, 10))


def test_a_settlement_is_never_negative() -> None:
    with pytest.raises(ValueError):
        Settlement(status="ok", cost_nanos=-1)


HOSTILE_CHUNKS = ("[1,2,3]", '{"choices": "abc"}', '{"choices": [{"delta": "x"}]}', '{"choices": [7]}',
                  '{"choices": [{"delta": {"content": 5}}]}', "not json at all", '"a string"', "null")


async def test_wrong_shape_chunks_are_skipped_and_counted(core_for, database_url: str, fake_seed: FakeSeed,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    core = await core_for(database_url)
    fake_seed.script(Reply(content="The real answer.", extra_chunks=HOSTILE_CHUNKS, prompt_tokens=100,
                           completion_tokens=10))
    sink = RecordingSink()
    answer = await core.service.handle(incoming("Hi"), sink)
    assert answer is not None and answer.status == "ok"
    assert sink.text == "The real answer." and sink.footer is not None and sink.footer.usage_known
    assert core.llm.malformed_chunks == len(HOSTILE_CHUNKS)
    assert f"seedbot_malformed_chunks_total {len(HOSTILE_CHUNKS)}.0" in generate_latest(core.metrics.registry).decode()
    assert any("skipped 8 malformed chunks" in r.getMessage() for r in caplog.records)
    books = await read_books(core.db)
    (row,) = books.ledger
    assert row.usage_known and row.cost_nanos == core.prices.cost_nanos(Usage(100, 0, 10)) and books.balanced()
    assert books.user_statuses == ["ok"]


@pytest.mark.parametrize("usage_raw", [
    "lots", [1, 2], {"prompt_tokens": 100, "completion_tokens": -5_000_000},
    {"prompt_tokens": 100, "completion_tokens": 1e12}, {"prompt_tokens": 100, "completion_tokens": 1e30},
], ids=["string", "list", "negative", "absurd", "overflow"])
async def test_invalid_usage_charges_the_reservation_and_says_why(
        core_for, database_url: str, fake_seed: FakeSeed, usage_raw: object,
        caplog: pytest.LogCaptureFixture) -> None:
    core = await core_for(database_url)
    fake_seed.script(Reply(content="An answer with lying usage.", usage_raw=usage_raw))
    sink = RecordingSink()
    with caplog.at_level(logging.WARNING):
        answer = await core.service.handle(incoming("Hi"), sink)
    assert answer is not None and answer.status == "ok" and sink.text == "An answer with lying usage."
    assert sink.footer is not None and not sink.footer.usage_known
    assert sink.footer.text().startswith("usage not reported; charged the reserved")
    books = await read_books(core.db)
    (row,) = books.ledger
    assert row.status == "ok" and not row.usage_known and (row.error or "").startswith("usage invalid:")
    assert row.cost_nanos == row.reserved_nanos > 0 and row.completion_tokens == 0
    counter = books.counter("slack:C1")
    assert counter.spent_nanos == row.cost_nanos > 0 and counter.reserved_nanos == 0 and books.balanced()
    assert books.user_statuses == ["ok"]
    assert any("usage report rejected" in r.getMessage() for r in caplog.records)
    json.dumps(usage_raw)  # the fake sent it as JSON


async def test_missing_usage_charges_the_reservation(core_for, sqlite_url: str, fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url)
    fake_seed.script(Reply(content="No usage follows.", include_usage=False))
    sink = RecordingSink()
    await core.service.handle(incoming("Hi"), sink)
    assert sink.footer is not None and not sink.footer.usage_known
    assert sink.footer.text().startswith("usage not reported; charged the reserved")
    (row,) = (await read_books(core.db)).ledger
    assert row.cost_nanos == row.reserved_nanos and row.error == "no usage reported" and not row.usage_known


async def test_a_review_call_with_invalid_usage_is_charged_its_reservation(
        core_for, sqlite_url: str, fake_seed: FakeSeed) -> None:
    core = await core_for(sqlite_url)
    review = json.dumps({"summary": "Fine.", "risk": "low", "findings": []})
    fake_seed.script(Reply(content=review, usage_raw={"prompt_tokens": 10, "completion_tokens": -1}))
    diff = "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n"
    sink = RecordingSink()
    answer = await core.service.handle(incoming(f"review\n```diff\n{diff}```"), sink)
    assert answer is not None and answer.status == "ok"
    books = await read_books(core.db)
    (row,) = books.ledger
    assert row.kind == "review" and not row.usage_known and row.cost_nanos == row.reserved_nanos > 0
    assert row.error == "no valid usage reported" and books.balanced() and books.user_statuses == ["ok"]
    assert sink.footer is not None and not sink.footer.usage_known
    assert sink.footer.text().startswith("usage not reported; charged the reserved")

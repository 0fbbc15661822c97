from __future__ import annotations

from decimal import Decimal

import pytest

from bot.budget.pricing import PriceBook
from bot.config import load_settings
from bot.domain import Usage


def book(**overrides: object) -> PriceBook:
    return PriceBook.from_settings(load_settings(_env_file=None, **overrides))


@pytest.mark.parametrize(
    ("usage", "nanos"),
    [
        (Usage(prompt_tokens=1_000, completion_tokens=500), 1_600_000),  # $0.0016
        (Usage(prompt_tokens=130_000, completion_tokens=1_000), 108_800_000),  # $0.1088, long tier
        (Usage(prompt_tokens=127_999, completion_tokens=1), 51_202_000),
        (Usage(prompt_tokens=128_000, completion_tokens=1), 102_404_800),  # the cliff bills the whole call
        (Usage(), 0),
    ],
)
def test_cost_follows_the_published_prices_and_the_128k_tier(usage: Usage, nanos: int) -> None:
    assert book().cost_nanos(usage) == nanos


def test_cached_tokens_cost_the_input_rate_when_no_cached_price_is_configured() -> None:
    assert book().cost_nanos(Usage(prompt_tokens=1_000, cached_tokens=900)) == 400_000


def test_cached_tokens_use_the_configured_rate() -> None:
    prices = book(SEED_PRICE_CACHED_INPUT_PER_M="0.08")
    assert prices.cost_nanos(Usage(prompt_tokens=1_000, cached_tokens=900)) == 100 * 400 + 900 * 80
    # The long tier scales the cached rate with the input rate (0.80 / 0.40 = 2x).
    assert prices.cost_nanos(Usage(prompt_tokens=200_000, cached_tokens=200_000)) == 200_000 * 160


def test_web_searches_are_priced_per_call() -> None:
    prices = book(SEED_PRICE_WEB_SEARCH_PER_CALL="0.005")
    assert prices.cost_nanos(Usage(web_searches=3)) == 15_000_000
    assert book().cost_nanos(Usage(web_searches=3)) == 0


def test_fractions_of_a_nano_dollar_round_up() -> None:
    prices = book(SEED_PRICE_INPUT_PER_M="0.0000001")
    assert prices.cost_nanos(Usage(prompt_tokens=1)) == 1


def test_worst_case_assumes_no_cache_all_output_and_a_search() -> None:
    prices = book(SEED_PRICE_WEB_SEARCH_PER_CALL="0.01")
    assert prices.worst_case_nanos(1_000, 4_096, web_search=True) == 1_000 * 400 + 4_096 * 2_400 + 10_000_000


def test_max_tokens_affordable_is_the_largest_that_fits() -> None:
    prices = book()
    affordable = prices.max_tokens_affordable(1_000, False, 1_600_000)
    assert affordable == 500
    assert prices.worst_case_nanos(1_000, affordable, False) <= 1_600_000
    assert prices.worst_case_nanos(1_000, affordable + 1, False) > 1_600_000
    assert prices.max_tokens_affordable(1_000, False, 399_999) == 0


def test_prices_are_decimals_not_floats() -> None:
    prices = book()
    assert isinstance(prices.short.input_per_m, Decimal)

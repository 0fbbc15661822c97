"""Usage -> exact cost, and the worst case a reservation must cover. Pure: no I/O, no floats.

Costs are integer nano-dollars. A price per 1M tokens becomes nanos per token by multiplying by
1,000; a price with more than three decimals leaves a fraction of a nano-dollar, which is rounded
up so the books never under-count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from bot.domain import NANOS_PER_USD, Usage

_NANOS_PER_TOKEN_PER_DOLLAR_PER_M = Decimal(NANOS_PER_USD) / Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class PriceTier:
    input_per_m: Decimal
    output_per_m: Decimal
    cached_input_per_m: Decimal


@dataclass(frozen=True, slots=True)
class PriceBook:
    short: PriceTier
    long: PriceTier
    long_context_threshold: int = 128_000
    web_search_per_call: Decimal = Decimal(0)

    @classmethod
    def from_settings(cls, settings) -> PriceBook:  # noqa: ANN001 - avoids importing config here
        cached = settings.seed_price_cached_input_per_m
        short_in = settings.seed_price_input_per_m
        long_in = settings.seed_price_input_long_per_m
        # The provider publishes no cached rate: unset means cached input costs the uncached rate.
        # A configured cached rate is scaled to the long tier in the same ratio as the input rates.
        long_cached = long_in if cached is None else (cached * long_in / short_in if short_in else cached)
        return cls(
            short=PriceTier(short_in, settings.seed_price_output_per_m, short_in if cached is None else cached),
            long=PriceTier(long_in, settings.seed_price_output_long_per_m, long_cached),
            long_context_threshold=settings.seed_long_context_threshold,
            web_search_per_call=settings.seed_price_web_search_per_call,
        )

    def tier_for(self, prompt_tokens: int) -> PriceTier:
        """The whole call is billed at the long rates once the prompt reaches the threshold."""
        return self.long if prompt_tokens >= self.long_context_threshold else self.short

    def cost_nanos(self, usage: Usage) -> int:
        tier = self.tier_for(usage.prompt_tokens)
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        dollars_x_m = (
            (usage.prompt_tokens - cached) * tier.input_per_m
            + cached * tier.cached_input_per_m
            + usage.completion_tokens * tier.output_per_m
        )
        token_nanos = dollars_x_m * _NANOS_PER_TOKEN_PER_DOLLAR_PER_M
        search_nanos = usage.web_searches * self.web_search_per_call * NANOS_PER_USD
        return _ceil_nanos(token_nanos + search_nanos)

    def worst_case_nanos(self, estimated_prompt_tokens: int, max_tokens: int, web_search: bool) -> int:
        """What a call can cost at most: no cache hit, every allowed output token, one search."""
        usage = Usage(prompt_tokens=estimated_prompt_tokens, completion_tokens=max_tokens,
                      web_searches=1 if web_search else 0)
        return self.cost_nanos(usage)

    def max_tokens_affordable(self, estimated_prompt_tokens: int, web_search: bool, available_nanos: int) -> int:
        """The largest max_tokens whose worst case fits in `available_nanos` (0 if not even the prompt)."""
        fixed = self.worst_case_nanos(estimated_prompt_tokens, 0, web_search)
        if fixed > available_nanos:
            return 0
        per_output_token = self.tier_for(estimated_prompt_tokens).output_per_m * _NANOS_PER_TOKEN_PER_DOLLAR_PER_M
        if per_output_token == 0:
            return 65_536
        tokens = math.floor(Decimal(available_nanos - fixed) / per_output_token)
        # Ceil rounding in cost_nanos can push the exact boundary over by a nano-dollar.
        while tokens > 0 and self.worst_case_nanos(estimated_prompt_tokens, tokens, web_search) > available_nanos:
            tokens -= 1
        return tokens


def _ceil_nanos(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_CEILING))

"""Prometheus metrics, served at /metrics. One registry per process, passed to whoever records."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """Every figure /metrics shows. `malformed_chunks` reads the model client's own count of stream
    chunks of the wrong shape it skipped (bot.llm.SeedClient.malformed_chunks) when /metrics is read."""

    def __init__(self, registry: CollectorRegistry | None = None,
                 malformed_chunks: Callable[[], int] | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.messages = Counter("seedbot_messages_total", "Messages handled, by outcome",
                                ["platform", "outcome"], registry=self.registry)
        self.cost = Counter("seedbot_cost_nanodollars_total", "Settled model cost", ["platform"],
                            registry=self.registry)
        self.tokens = Counter("seedbot_tokens_total", "Tokens reported by the model", ["kind"],
                              registry=self.registry)
        self.first_token = Histogram("seedbot_first_token_seconds", "Time from request to first token",
                                     buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64), registry=self.registry)
        self.overrun = Counter("seedbot_reservation_overrun_nanodollars_total",
                               "Settled cost above the reserved worst case (estimate too low)",
                               registry=self.registry)
        if malformed_chunks is not None:
            Gauge("seedbot_malformed_chunks", "Model stream chunks of the wrong shape, skipped since start",
                  registry=self.registry).set_function(malformed_chunks)

"""Prometheus metrics, served at /metrics. One registry per process, passed to whoever records."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from bot.storage.engine import ConnectionCounts


class _CountRead(Collector):
    """A counter whose value is read from its owner when /metrics is scraped (prometheus_client's
    Counter cannot take a function; a Gauge would tell Prometheus the count may go down)."""

    def __init__(self, name: str, documentation: str, read: Callable[[], int]) -> None:
        self._name, self._documentation, self._read = name, documentation, read

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self._name, self._documentation, value=self._read())


class _Connections(Collector):
    """The database pool's connections, read when /metrics is scraped (`Database.connections`): in use and idle
    (a gauge), and opened since start (a counter: a pool that keeps opening them is churning)."""

    def __init__(self, read: Callable[[], ConnectionCounts]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        counts = self._read()
        now = GaugeMetricFamily("seedbot_database_connections", "Database connections of the pool, by state",
                                labels=["state"])
        now.add_metric(["in_use"], counts.in_use)
        now.add_metric(["idle"], counts.idle)
        yield now
        yield CounterMetricFamily("seedbot_database_connections_opened", "Database connections opened since start",
                                  value=counts.opened)


class Metrics:
    """Every figure /metrics shows, and the process's own (`process_*`, `python_*`: memory, CPU, open
    files, collections). `malformed_chunks` reads the model client's own count of stream chunks of the
    wrong shape it skipped (bot.llm.SeedClient.malformed_chunks), and `connections` the database pool's
    (bot.storage.engine.Database.connections), when /metrics is read."""

    def __init__(self, registry: CollectorRegistry | None = None,
                 malformed_chunks: Callable[[], int] | None = None,
                 connections: Callable[[], ConnectionCounts] | None = None) -> None:
        if registry is None:
            registry = CollectorRegistry()
            for standard in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                registry.register(standard)
        self.registry = registry
        self.messages = Counter("seedbot_messages_total", "Messages handled, by outcome",
                                ["platform", "outcome"], registry=self.registry)
        self.cost = Counter("seedbot_cost_nanodollars_total", "Settled model cost", ["platform"],
                            registry=self.registry)
        self.tokens = Counter("seedbot_tokens_total", "Tokens reported by the model, by OpenAI usage field "
                              "(cached is part of prompt, reasoning part of completion: do not sum the kinds)",
                              ["kind"], registry=self.registry)
        self.first_token = Histogram("seedbot_first_token_seconds", "Time from request to first token",
                                     buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64), registry=self.registry)
        self.overrun = Counter("seedbot_reservation_overrun_nanodollars_total",
                               "Settled cost above the reserved worst case (estimate too low)",
                               registry=self.registry)
        if malformed_chunks is not None:
            self.registry.register(_CountRead("seedbot_malformed_chunks",
                                              "Model stream chunks of the wrong shape, skipped since start",
                                              malformed_chunks))
        if connections is not None:
            self.registry.register(_Connections(connections))

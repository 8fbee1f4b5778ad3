"""Prometheus metrics on `--metrics-port` (prometheus-client), from the same stats as GetInfo.

Counters and gauges are read at scrape time from `Runtime.stats()`, the snapshot GetInfo reports,
so the two can never disagree. Histograms (request, batch, queue and summary times) are observed as
things happen, through the `Observer` the batchers and the access log call. Names are a contract.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .errors import StartupError
from .stats import Observer, StatsSnapshot

log = logging.getLogger(__name__)

SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class SnapshotCollector(Collector):
    """Counters and gauges from the stats snapshot that GetInfo also reads."""

    def __init__(self, snapshot: Callable[[], StatsSnapshot], labels: dict[str, str]) -> None:
        self._snapshot = snapshot
        self._labels = labels

    def collect(self) -> Iterable[Metric]:
        s = self._snapshot()
        names, values = list(self._labels), list(self._labels.values())

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            family = CounterMetricFamily(name, doc, labels=names)
            family.add_metric(values, value)
            return family

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            family = GaugeMetricFamily(name, doc, labels=names)
            family.add_metric(values, value)
            return family

        yield counter("tarjama_input_tokens", "Source tokens translated by the engine", s.source_tokens)
        yield counter("tarjama_output_tokens", "Tokens the engine wrote", s.output_tokens)
        yield counter("tarjama_cache_hits", "Sentences answered from the translation cache", s.cache_hits)
        yield counter("tarjama_overloaded", "Requests refused because the queue was full", s.overloaded)
        yield counter("tarjama_shed", "Requests refused or dropped: they could not meet their deadline", s.shed)
        flags = CounterMetricFamily(
            "tarjama_sentence_flags", "Translated sentences by quality flag", labels=[*names, "flag"]
        )
        for flag, count in sorted(s.flag_counts.items()):
            flags.add_metric([*values, flag], count)
        yield flags
        yield gauge("tarjama_queue_tokens", "Source tokens waiting for a batch now", s.queued_tokens)
        padding = s.padded_source_tokens / s.source_tokens if s.source_tokens else 1.0
        yield gauge("tarjama_padding_ratio", "Padded over real source tokens in batches so far (1 = none)", padding)
        yield gauge("tarjama_in_flight_requests", "RPCs being handled now", s.in_flight)


class PrometheusObserver(Observer):
    """Histograms and per-RPC counters, observed as they happen."""

    def __init__(self, registry: CollectorRegistry, labels: dict[str, str]) -> None:
        self._labels = labels
        self.requests = Counter(
            "tarjama_requests",
            "RPCs by method and gRPC status, refused ones included",
            ["method", "code", "caller"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "tarjama_request_duration_seconds", "Time to answer an RPC", ["method"], buckets=SECONDS, registry=registry
        )
        self.queue_seconds = Histogram(
            "tarjama_queue_duration_seconds",
            "Time a sentence waits before its batch starts",
            list(labels),
            buckets=SECONDS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "tarjama_batch_size", "Sentences per engine batch", [*labels, "role"], buckets=SIZES, registry=registry
        )
        self.batch_seconds = Histogram(
            "tarjama_batch_duration_seconds",
            "Time the engine took for one batch",
            [*labels, "role"],
            buckets=SECONDS,
            registry=registry,
        )
        self.summary_seconds = Histogram(
            "tarjama_summary_duration_seconds",
            "Time to summarise one article",
            list(labels),
            buckets=SECONDS,
            registry=registry,
        )

    def request(self, method: str, code: str, caller: str, seconds: float) -> None:
        self.requests.labels(method, code, caller).inc()
        self.request_seconds.labels(method).observe(seconds)

    def queued(self, role: str, seconds: list[float]) -> None:
        if role != "translation":
            return
        histogram = self.queue_seconds.labels(*self._labels.values())
        for value in seconds:
            histogram.observe(value)

    def batch(self, role: str, size: int, seconds: float, tags: Sequence[object] = ()) -> None:
        self.batch_size.labels(*self._labels.values(), role).observe(size)
        self.batch_seconds.labels(*self._labels.values(), role).observe(seconds)

    def summary(self, seconds: float) -> None:
        self.summary_seconds.labels(*self._labels.values()).observe(seconds)


def serve_metrics(
    host: str, port: int, snapshot: Callable[[], StatsSnapshot], labels: dict[str, str]
) -> tuple[PrometheusObserver, int]:
    """Start the exporter on http://host:port/metrics; the observer to hand the server, and the port."""
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(snapshot, labels))
    observer = PrometheusObserver(registry, labels)
    try:
        server, _ = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise StartupError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from None
    bound = server.server_address[1]
    log.info("metrics on http://%s:%d/metrics", host, bound)
    return observer, bound

"""One snapshot of the server's counters, read by GetInfo and by the metrics exporter alike, and the
observer interface through which things that happen (batches, waits, RPCs) reach histograms.

Nothing here knows gRPC or Prometheus: `Observer` does nothing, `metrics.PrometheusObserver` counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StatsSnapshot:
    requests: int = 0
    batches: int = 0
    batched_sentences: int = 0
    batch_sizes: dict[int, int] = field(default_factory=dict)
    source_tokens: int = 0
    padded_source_tokens: int = 0
    output_tokens: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    queued_tokens: int = 0
    overloaded: int = 0
    shed: int = 0
    delivered_sentences: int = 0
    flag_counts: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0


class Observer:
    """Told about each RPC, batch, queue wait and summary; the default does nothing."""

    def request(self, method: str, code: str, caller: str, seconds: float) -> None:
        """An RPC finished with `code` (a grpc.StatusCode name) after `seconds`."""

    def queued(self, role: str, seconds: list[float]) -> None:
        """Items of a batch waited this long between their request's arrival and the batch's start."""

    def batch(self, role: str, size: int, seconds: float, tags: Sequence[Any] = ()) -> None:
        """A batch of `size` items took `seconds` on the engine; `tags` are its requests' (see submit)."""

    def summary(self, seconds: float) -> None:
        """One article's summary took `seconds`."""


class Observers(Observer):
    """Tells each of several observers (metrics, tracing) the same things."""

    def __init__(self, *observers: Observer) -> None:
        self.observers = observers

    def request(self, method: str, code: str, caller: str, seconds: float) -> None:
        for o in self.observers:
            o.request(method, code, caller, seconds)

    def queued(self, role: str, seconds: list[float]) -> None:
        for o in self.observers:
            o.queued(role, seconds)

    def batch(self, role: str, size: int, seconds: float, tags: Sequence[Any] = ()) -> None:
        for o in self.observers:
            o.batch(role, size, seconds, tags)

    def summary(self, seconds: float) -> None:
        for o in self.observers:
            o.summary(seconds)

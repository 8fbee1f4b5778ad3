"""What the doors read: the settings, the loaded models (None while they load), and the state.

Start-up (`app.py`) fills it in; the doors and the interceptors only read it. Neither imports the
other: both depend on this module.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .batcher import Batcher
from .edges.stats import Observer, StatsSnapshot
from .pipeline import TranslationPipeline
from .settings import Settings
from .summary import Summarizer


@dataclass
class Models:
    """What startup loads: the translation pipeline and the summariser (None when turned off)."""

    pipeline: TranslationPipeline
    summarizer: Summarizer | None = None

    def close(self, timeout: float) -> bool:
        """Fail all queued work at once, then give the running batches `timeout` seconds in all.

        Returns False when an engine is still mid-batch (it is then left alone, not released).
        """
        parts = [self.pipeline] + ([self.summarizer] if self.summarizer is not None else [])
        for part in parts:
            part.close(0)
        deadline = time.monotonic() + timeout
        return all([part.close(max(0.0, deadline - time.monotonic())) for part in parts])


@dataclass
class Runtime:
    """The server's state, shared by the servicer, the interceptors and start-up."""

    settings: Settings
    models: Models | None = None
    shutting_down: bool = False
    in_flight: int = 0  # RPCs being handled now; shutdown waits for them up to the grace period
    auth: bool = False  # callers must present a token (--auth-tokens-file)
    # Told about RPCs, batches and summaries as they happen (the metrics exporter, when it runs).
    observer: Observer = field(default_factory=Observer)

    @contextlib.contextmanager
    def counted(self) -> Iterator[None]:
        """One call being handled, by either door (shutdown waits for these, up to the grace period)."""
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    def stats(self) -> StatsSnapshot:
        """The counters GetInfo and the metrics exporter both report, read at one moment."""
        pipeline = self.pipeline
        if pipeline is None:
            return StatsSnapshot(in_flight=self.in_flight)
        batches = pipeline.batcher.stats
        return StatsSnapshot(
            requests=pipeline.requests,
            batches=batches.batches,
            batched_sentences=batches.items,
            batch_sizes=dict(batches.size_histogram),
            source_tokens=batches.real_tokens,
            padded_source_tokens=batches.padded_tokens,
            output_tokens=pipeline.output_tokens,
            cache_hits=pipeline.cache.hits,
            cache_misses=pipeline.cache.misses,
            queued_tokens=pipeline.batcher.queued_tokens,
            overloaded=batches.overloaded,
            shed=batches.shed,
            delivered_sentences=batches.delivered,
            flag_counts=dict(pipeline.flag_counts),
            in_flight=self.in_flight,
        )

    @property
    def pipeline(self) -> TranslationPipeline | None:
        return self.models.pipeline if self.models else None

    @property
    def summarizer(self) -> Summarizer | None:
        return self.models.summarizer if self.models else None

    def batchers(self) -> list[Batcher[Any, Any]]:
        """The translation batcher and, with an abstractive summariser, the summary one."""
        if self.models is None:
            return []
        summary = getattr(self.models.summarizer, "batcher", None)
        return [self.models.pipeline.batcher] + ([summary] if summary is not None else [])

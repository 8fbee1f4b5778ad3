"""What the doors read: the settings, the loaded models (None while they load), and the state.

Start-up (`app.py`) fills it in; the doors and the interceptors only read it. Neither imports the
other: both depend on this module.
"""

from __future__ import annotations

import collections
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .batcher import Batcher
from .edges.stats import Observer, StatsSnapshot
from .glossaries import Glossaries
from .pipeline import TranslationPipeline
from .settings import Settings
from .summary import Summarizer


@dataclass
class Models:
    """What startup loads: the translation pipelines, one per model (the default first), and the
    summariser (None when turned off)."""

    pipeline: TranslationPipeline  # the default model's: requests that name no model
    summarizer: Summarizer | None = None
    alternatives: tuple[TranslationPipeline, ...] = ()  # the further named models, in the order given

    @property
    def pipelines(self) -> dict[str, TranslationPipeline]:
        """Every translation pipeline by its model's name, the default first."""
        return {pipeline.name: pipeline for pipeline in (self.pipeline, *self.alternatives)}

    def close(self, timeout: float) -> bool:
        """Fail all queued work at once, then give the running batches `timeout` seconds in all.

        Returns False when an engine is still mid-batch (it is then left alone, not released).
        """
        parts = [*self.pipelines.values()] + ([self.summarizer] if self.summarizer is not None else [])
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
    glossaries: Glossaries | None = None  # the stored glossaries (None only in tests that build no store)
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
        """The counters GetInfo and the metrics exporter both report, read at one moment: over all the
        translation models."""
        if self.models is None:
            return StatsSnapshot(in_flight=self.in_flight)
        pipelines = list(self.models.pipelines.values())
        batch_sizes: collections.Counter[int] = collections.Counter()
        flag_counts: collections.Counter[str] = collections.Counter()
        for pipeline in pipelines:
            batch_sizes.update(pipeline.batcher.stats.size_histogram)
            flag_counts.update(pipeline.flag_counts)

        def total(read: Callable[[TranslationPipeline], int]) -> int:
            return sum(read(pipeline) for pipeline in pipelines)

        return StatsSnapshot(
            requests=total(lambda p: p.requests),
            batches=total(lambda p: p.batcher.stats.batches),
            batched_sentences=total(lambda p: p.batcher.stats.items),
            batch_sizes=dict(batch_sizes),
            source_tokens=total(lambda p: p.batcher.stats.real_tokens),
            padded_source_tokens=total(lambda p: p.batcher.stats.padded_tokens),
            output_tokens=total(lambda p: p.output_tokens),
            cache_hits=total(lambda p: p.cache.hits),
            cache_misses=total(lambda p: p.cache.misses),
            queued_tokens=total(lambda p: p.batcher.queued_tokens),
            overloaded=total(lambda p: p.batcher.stats.overloaded),
            shed=total(lambda p: p.batcher.stats.shed),
            delivered_sentences=total(lambda p: p.batcher.stats.delivered),
            flag_counts=dict(flag_counts),
            in_flight=self.in_flight,
        )

    @property
    def pipeline(self) -> TranslationPipeline | None:
        return self.models.pipeline if self.models else None

    @property
    def summarizer(self) -> Summarizer | None:
        return self.models.summarizer if self.models else None

    def batchers(self) -> list[Batcher[Any, Any]]:
        """The translation batchers and, with an abstractive summariser, the summary one."""
        if self.models is None:
            return []
        summary = getattr(self.models.summarizer, "batcher", None)
        translation = [pipeline.batcher for pipeline in self.models.pipelines.values()]
        return translation + ([summary] if summary is not None else [])

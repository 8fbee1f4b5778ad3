"""Inference engines: CTranslate2 (fast, default) and PyTorch/transformers (reference).

Both take a batch of tokenised source sentences and give back one hypothesis each; they own the model
and the device and know nothing of gRPC or of requests. `registry.ENGINE_MODULES` names them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol, cast

from .base import Engine, EngineInfo, Hypothesis, SourceItem
from .registry import ENGINE_MODULES

if TYPE_CHECKING:
    from ..models import ResolvedModel
    from ..settings import NamedModel, Settings
    from .summary_engines import SummaryEngine


class EngineModule(Protocol):
    """What an engine's module (one per entry of `registry.ENGINE_MODULES`) offers the server and
    `tarjama models download`."""

    def cuda_devices(self) -> int:
        """The GPUs its own library sees (`--device auto` asks only that library)."""
        ...

    def open_translation(self, model: ResolvedModel, settings: Settings) -> Engine:
        """The translation model, loaded on the device and in the compute type the settings ask for."""
        ...

    def open_summary(self, model: ResolvedModel, settings: Settings) -> SummaryEngine:
        """The abstractive summary model, loaded likewise."""
        ...

    def prepare(self, model: ResolvedModel, settings: Settings) -> str | None:
        """What `tarjama models download` does beyond fetching (CTranslate2 converts), and where the result is."""
        ...


def engine_module(name: str) -> EngineModule:
    """The module that implements engine `name` (imported only when asked for)."""
    if name not in ENGINE_MODULES:
        raise ValueError(f"unknown engine {name!r}; one of {', '.join(ENGINE_MODULES)}")
    return cast(EngineModule, importlib.import_module(ENGINE_MODULES[name]))


def tune_allocator(settings: Settings) -> None:
    """glibc's malloc set for the engines (allocator.py says why), before their threads start: one
    arena per batch that runs at once (--engine-workers, or on CPU the cores over the threads each)."""
    from . import allocator

    allocator.tune(settings.engine_workers or max(1, settings.resolved_threads() // (settings.threads_per_worker or 1)))


def load_engine(settings: Settings, model: NamedModel | None = None) -> Engine:
    """Resolve a translation model (by default the first the settings name) and open it in their engine."""
    from ..models import resolve_model

    tune_allocator(settings)
    named = model or settings.translation_models()[0]
    resolved = resolve_model(named.ref, named.revision, settings.cache_dir, "translation", settings.offline)
    return engine_module(settings.engine).open_translation(resolved, settings)


def download_models(settings: Settings) -> list[str]:
    """Fetch the models these settings name into the cache `tarjama serve` reads, and prepare them
    for the engine (CTranslate2 converts them), so a server starts from the cache in seconds.
    Returns one line per step for the user."""
    from ..models import resolve_model

    module = engine_module(settings.engine)
    named = settings.translation_models()
    several = len(named) > 1
    # (role as the user reads it, role as the resolver names it, model, revision)
    wanted = [(f"translation model {m.name}:" if several else "translation model", "translation", m.ref, m.revision)
              for m in named]  # fmt: skip
    if settings.summary_model not in ("none", "extractive"):
        wanted.append(("summary model", "summary", settings.summary_model, settings.summary_revision))
    lines = []
    for label, role, ref, revision in wanted:
        model = resolve_model(ref, revision, settings.cache_dir, role, settings.offline)
        lines.append(f"{label} {model.id} ({model.revision}): {model.path}")
        prepared = module.prepare(model, settings)
        if prepared:
            lines.append(f"{label.removesuffix(':')} for {settings.engine}: {prepared}")
    return lines


def load_summary_engine(model: ResolvedModel, settings: Settings) -> SummaryEngine:
    """Open a resolved summary checkpoint in the engine the settings name."""
    tune_allocator(settings)
    return engine_module(settings.engine).open_summary(model, settings)


__all__ = [
    "Engine",
    "EngineInfo",
    "EngineModule",
    "Hypothesis",
    "SourceItem",
    "engine_module",
    "load_engine",
    "load_summary_engine",
]

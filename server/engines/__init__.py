"""Inference engines: CTranslate2 (fast, default) and PyTorch/transformers (reference).

Both take a batch of tokenised source sentences and give back one hypothesis each; they own the model
and the device and know nothing of gRPC or of requests.
"""

from __future__ import annotations

from ..settings import Settings
from .base import Engine, EngineInfo, Hypothesis, SourceItem


def load_engine(settings: Settings) -> Engine:
    """Resolve the translation model and load it into the engine the settings name."""
    from ..models import resolve_model

    model = resolve_model(settings.translation_model, settings.translation_revision, settings.cache_dir, "translation")
    if settings.engine == "ctranslate2":
        from .ctranslate2_engine import CTranslate2Engine

        return CTranslate2Engine(model, settings)
    from .torch_engine import TorchEngine

    return TorchEngine(model, settings)


__all__ = ["Engine", "EngineInfo", "Hypothesis", "SourceItem", "load_engine"]

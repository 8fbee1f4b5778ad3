"""CTranslate2: the default engine. int8 on CPU, float16 on CUDA; the checkpoint is converted once."""

from __future__ import annotations

import logging

from ..models import ResolvedModel, ctranslate2_model_dir
from ..settings import Settings
from .base import EngineInfo, Hypothesis, SourceItem, device_of
from .marian_tokenizer import MarianTokenizer

log = logging.getLogger(__name__)


def default_compute_type(device: str) -> str:
    return "int8" if device == "cpu" else "float16"


def open_translator(model: ResolvedModel, settings: Settings):  # noqa: ANN201 - (ctranslate2.Translator, EngineInfo)
    """The model's CTranslate2 conversion (made once, cached) loaded for the settings' device."""
    import ctranslate2

    device = device_of(settings.device, ctranslate2.get_cuda_device_count)
    compute_type = settings.compute_type if settings.compute_type != "auto" else default_compute_type(device)
    model_dir = ctranslate2_model_dir(model, compute_type, settings.cache_dir)
    # One batch at a time comes from each batcher, so all cores go to that batch (intra_threads);
    # inter_threads > 1 would only help with several batches in flight, which we never have.
    threads = settings.resolved_threads() if device == "cpu" else 1
    translator = ctranslate2.Translator(
        str(model_dir), device=device, compute_type=compute_type, inter_threads=1, intra_threads=threads
    )
    log.info("ctranslate2 %s model: %s on %s (%s, %d threads)", model.role, model.id, device, compute_type, threads)
    info = EngineInfo(model.role, model.id, model.revision, str(model_dir), "ctranslate2", device, compute_type)
    return translator, info


class CTranslate2Engine:
    """A Marian checkpoint served by ctranslate2.Translator."""

    name = "ctranslate2"

    def __init__(self, model: ResolvedModel, settings: Settings) -> None:
        self._translator, self.info = open_translator(model, settings)
        self._tokenizer = MarianTokenizer(model.path)
        self._beam_size = settings.beam_size

    def tokenize(self, texts: list[str]) -> list[tuple[str, ...]]:
        return self._tokenizer.tokenize(texts)

    def translate(self, batch: list[SourceItem]) -> list[Hypothesis]:
        cap = max(item.max_output_tokens for item in batch)
        results = self._translator.translate_batch(
            [list(item.tokens) for item in batch],
            beam_size=self._beam_size,
            max_decoding_length=cap,
            max_input_length=0,  # never truncate the source silently; the pipeline bounds its length
            return_scores=True,
        )
        hypotheses = []
        for item, result in zip(batch, results, strict=True):
            pieces = result.hypotheses[0]
            capped = len(pieces) >= item.max_output_tokens
            pieces = pieces[: item.max_output_tokens]
            hypotheses.append(
                Hypothesis(
                    text=self._tokenizer.detokenize(pieces),
                    num_tokens=len(pieces),
                    log_prob=min(0.0, float(result.scores[0])),
                    capped=capped,
                )
            )
        return hypotheses

    def close(self) -> None:
        del self._translator

"""CTranslate2: the default engine. int8 on CPU, float16 on CUDA; the checkpoint is converted once.

One `ctranslate2.Translator` holds a worker per batch in flight (`inter_threads` per device, the
weights shared between the workers of a device); the batcher's worker threads each call
`translate_batch`, which releases the GIL, so the batches really run side by side.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .. import parallelism
from ..models import ResolvedModel, ctranslate2_model_dir
from ..settings import Settings
from .bart_tokenizer import BartTokenizer
from .base import EngineInfo, Hypothesis, SourceItem, decoder_positions, device_of
from .marian_tokenizer import MarianTokenizer
from .summary_engines import SummaryDecoding, SummaryItem, trim_to_sentence, window_of

if TYPE_CHECKING:
    import ctranslate2

log = logging.getLogger(__name__)


def cuda_devices() -> int:
    import ctranslate2

    return int(ctranslate2.get_cuda_device_count())


def default_compute_type(device: str) -> str:
    return "int8" if device == "cpu" else "float16"


def open_translator(
    model: ResolvedModel, settings: Settings, plan: parallelism.Parallelism
) -> tuple[ctranslate2.Translator, EngineInfo]:
    """The model's CTranslate2 conversion (made once, cached) loaded as `plan` says; (Translator, EngineInfo)."""
    import ctranslate2

    compute_type = settings.compute_type if settings.compute_type != "auto" else default_compute_type(plan.device)
    model_dir = ctranslate2_model_dir(model, compute_type, settings.cache_dir)
    translator = ctranslate2.Translator(
        str(model_dir),
        device=plan.device,
        device_index=list(plan.device_indices),
        compute_type=compute_type,
        inter_threads=plan.workers_per_device,
        intra_threads=plan.threads_per_worker,
    )
    log.info("ctranslate2 %s model: %s, %s, %s", model.role, model.id, compute_type, parallelism.describe(plan))
    info = EngineInfo(model.role, model.id, model.revision, str(model_dir), "ctranslate2", plan.device, compute_type)
    return translator, info


def prepare(model: ResolvedModel, settings: Settings) -> str:
    """Convert `model` for the device and compute type `serve` with these settings will use."""
    device = device_of(settings.device, cuda_devices)
    compute_type = settings.compute_type if settings.compute_type != "auto" else default_compute_type(device)
    return f"{compute_type} conversion in {ctranslate2_model_dir(model, compute_type, settings.cache_dir)}"


def open_translation(model: ResolvedModel, settings: Settings) -> CTranslate2Engine:
    device = device_of(settings.device, cuda_devices)
    return CTranslate2Engine(model, settings, parallelism.plan(settings, device))


def open_summary(model: ResolvedModel, settings: Settings) -> CTranslate2SummaryEngine:
    plan = parallelism.for_summaries(settings, device_of(settings.device, cuda_devices))
    return CTranslate2SummaryEngine(model, settings, plan)


class CTranslate2Engine:
    """A Marian checkpoint served by ctranslate2.Translator; `translate` may be called from several threads."""

    name = "ctranslate2"

    def __init__(self, model: ResolvedModel, settings: Settings, plan: parallelism.Parallelism) -> None:
        self.parallelism = plan
        self._translator, self.info = open_translator(model, settings, plan)
        self._tokenizer = MarianTokenizer(model.path)
        self._beam_size = settings.beam_size
        self._positions = decoder_positions(model.path)

    def tokenize(self, texts: list[str]) -> list[tuple[str, ...]]:
        return self._tokenizer.tokenize(texts)

    def translate(self, batch: list[SourceItem]) -> list[Hypothesis]:
        # Never past the model's positions: asking for more fails the whole batch, not just the long one.
        caps = [min(item.max_output_tokens, self._positions) for item in batch]
        cap = max(caps)
        results = self._translator.translate_batch(
            [list(item.tokens) for item in batch],
            beam_size=self._beam_size,
            max_decoding_length=cap,
            max_input_length=0,  # never truncate the source silently; the pipeline bounds its length
            return_scores=True,
        )
        hypotheses = []
        for item_cap, result in zip(caps, results, strict=True):
            pieces = result.hypotheses[0]
            capped = len(pieces) >= item_cap
            pieces = pieces[:item_cap]
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


class CTranslate2SummaryEngine:
    """A BART/PEGASUS-style checkpoint on ctranslate2.Translator, tokenised without transformers."""

    name = "ctranslate2"

    def __init__(self, model: ResolvedModel, settings: Settings, plan: parallelism.Parallelism) -> None:
        self._translator, self.info = open_translator(model, settings, plan)
        self.tokenizer = BartTokenizer(model.path)  # not transformers': that would import torch
        self.window = window_of(model.path)
        self.decoding = SummaryDecoding.of(model.path)

    def count_tokens(self, texts: list[str]) -> list[int]:
        return self.tokenizer.count(texts)

    def generate(self, batch: list[SummaryItem]) -> list[str]:
        sources = [self.tokenizer.pieces(item.text) for item in batch]
        results = self._translator.translate_batch(
            sources,
            beam_size=self.decoding.beam_size,
            length_penalty=self.decoding.length_penalty,
            no_repeat_ngram_size=self.decoding.no_repeat_ngram_size,
            min_decoding_length=min(item.min_tokens for item in batch),
            max_decoding_length=max(item.max_tokens for item in batch),
            max_input_length=0,  # the summariser cuts articles into parts that fit; never truncate
        )
        out = []
        for item, result in zip(batch, results, strict=True):
            pieces = result.hypotheses[0]
            trimmed = len(pieces) > item.max_tokens
            text = self.tokenizer.text(pieces[: item.max_tokens])
            out.append(trim_to_sentence(text.strip()) if trimmed else text.strip())
        return out

    def close(self) -> None:
        del self._translator

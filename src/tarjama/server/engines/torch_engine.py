"""PyTorch/transformers: the reference engine. float32 on CPU, float16 (or bfloat16) on CUDA.

Several batches in flight are several threads calling `generate()` (torch releases the GIL in its
kernels): on CPU they share one copy of the model, on CUDA each device in `--device-index` holds one
copy that its workers share.
"""

from __future__ import annotations

import logging
import queue
from typing import TYPE_CHECKING

from .. import parallelism
from ..errors import ModelUnavailable
from ..models import ResolvedModel
from ..settings import Settings
from .base import EngineInfo, Hypothesis, SourceItem, decoder_positions, device_of
from .marian_tokenizer import MarianTokenizer
from .summary_engines import SummaryDecoding, SummaryItem, trim_to_sentence, window_of

if TYPE_CHECKING:
    from torch.nn import Module
    from transformers import GenerationConfig

log = logging.getLogger(__name__)


def cuda_devices() -> int:
    import torch

    return int(torch.cuda.device_count())


def load_seq2seq(
    model: ResolvedModel, settings: Settings, plan: parallelism.Parallelism
) -> tuple[list[Module], EngineInfo]:
    """A transformers seq2seq checkpoint in eval mode, one copy per device of `plan`; (copies, EngineInfo)."""
    import torch
    from transformers import AutoModelForSeq2SeqLM

    compute_type = settings.compute_type
    if compute_type == "auto":
        compute_type = "float32" if plan.device == "cpu" else "float16"
    dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if compute_type not in dtypes:
        raise ValueError(f"--compute-type {compute_type} is not available with --engine torch")
    if plan.device == "cpu":
        torch.set_num_threads(plan.threads_per_worker)
        targets = [torch.device("cpu")]
    else:
        targets = [torch.device("cuda", i) for i in plan.device_indices]
    copies: list[Module] = []
    for target in targets:
        loaded = AutoModelForSeq2SeqLM.from_pretrained(model.path, dtype=dtypes[compute_type])
        copies.append(loaded.to(target).eval())
    log.info("torch %s model: %s, %s, %s", model.role, model.id, compute_type, parallelism.describe(plan))
    return copies, EngineInfo(model.role, model.id, model.revision, model.path, "torch", plan.device, compute_type)


def prepare(model: ResolvedModel, settings: Settings) -> None:
    """Torch reads the checkpoint as it is: nothing to prepare."""
    return None


def open_translation(model: ResolvedModel, settings: Settings) -> TorchEngine:
    device = device_of(settings.device, cuda_devices)
    return TorchEngine(model, settings, parallelism.plan(settings, device))


def open_summary(model: ResolvedModel, settings: Settings) -> TorchSummaryEngine:
    plan = parallelism.for_summaries(settings, device_of(settings.device, cuda_devices))
    return TorchSummaryEngine(model, settings, plan)


def decode_as_served(generation: GenerationConfig, *, eos_id: int, pad_id: int, name: str) -> None:
    """The checkpoint's generation settings, changed (in place) where the server decodes otherwise.

    opus-mt checkpoints (tc-big too) ship `max_length` 512, `forced_eos_token_id` and `bad_words_ids`
    [[pad]]; the engine sets its own cap per batch, and reads </s> from vocab.json (id 0 in
    opus-mt-ar-en, 25894 in opus-mt-tc-big-ar-en), so the model config must end sentences with it.
    """
    eos = generation.eos_token_id
    if eos_id not in (eos if isinstance(eos, list) else [eos]):
        raise ModelUnavailable(
            f"translation model '{name}' ends sentences with id {eos} (generation_config.json), but its "
            f"vocab.json puts </s> at {eos_id}: its files do not belong together"
        )
    # The cap is each batch's max_new_tokens; a max_length beside it made generate() warn on every batch.
    generation.max_length = None
    # A sentence cut at its cap keeps its cap's tokens and is reported capped, as CTranslate2 does; with
    # forced_eos_token_id the last one became </s>, so the cut sentence looked finished.
    generation.forced_eos_token_id = None
    # <pad> is never written (CTranslate2 drops it from the vocabulary), whether the checkpoint says so or not.
    bad = [list(words) for words in generation.bad_words_ids or []]
    generation.bad_words_ids = bad if [pad_id] in bad else [*bad, [pad_id]]


class _Copies:
    """The model copies the workers share: each call borrows one (a device's copy per worker on it)."""

    def __init__(self, copies: list[Module], workers_per_device: int) -> None:
        self._free: queue.SimpleQueue[Module] = queue.SimpleQueue()
        for _ in range(workers_per_device):
            for copy in copies:
                self._free.put(copy)

    def borrow(self) -> Module:
        return self._free.get()

    def give_back(self, copy: Module) -> None:
        self._free.put(copy)


class TorchEngine:
    """A Marian checkpoint run with transformers' generate(); `translate` may be called from several threads."""

    name = "torch"

    def __init__(self, model: ResolvedModel, settings: Settings, plan: parallelism.Parallelism) -> None:
        import torch

        self._torch = torch
        self.parallelism = plan
        copies, self.info = load_seq2seq(model, settings, plan)
        self._copies = _Copies(copies, plan.workers_per_device)
        self._threads = plan.threads_per_worker if plan.device == "cpu" else None
        self._tokenizer = MarianTokenizer(model.path)
        self._pad_id = self._tokenizer.pad_id
        self._eos_id = self._tokenizer.eos_id
        for copy in copies:
            decode_as_served(copy.generation_config, eos_id=self._eos_id, pad_id=self._pad_id, name=model.id)
        self._beam_size = settings.beam_size
        self._positions = decoder_positions(model.path)

    def tokenize(self, texts: list[str]) -> list[tuple[str, ...]]:
        return self._tokenizer.tokenize(texts)

    def translate(self, batch: list[SourceItem]) -> list[Hypothesis]:
        model = self._copies.borrow()
        try:
            return self._translate(model, batch)
        finally:
            self._copies.give_back(model)

    def _translate(self, model: Module, batch: list[SourceItem]) -> list[Hypothesis]:
        torch = self._torch
        if self._threads is not None and torch.get_num_threads() != self._threads:
            torch.set_num_threads(self._threads)  # each worker thread has its own OpenMP team
        rows = [self._tokenizer.ids(item.tokens) for item in batch]
        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        # Never past the model's positions: asking for more fails the whole batch, not just the long one.
        caps = [min(item.max_output_tokens, self._positions) for item in batch]
        cap = max(caps)
        with torch.inference_mode():
            out = model.generate(
                input_ids=input_ids.to(model.device),
                attention_mask=mask.to(model.device),
                num_beams=self._beam_size,
                max_new_tokens=cap,
                min_new_tokens=0,
                return_dict_in_generate=True,
                output_scores=True,
            )
            if self._beam_size > 1:
                scores = out.sequences_scores.tolist()
            else:
                steps = model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
                scores = [self._mean_log_prob(row) for row in steps]
        hypotheses = []
        for item_cap, seq, score in zip(caps, out.sequences.tolist(), scores, strict=True):
            ids = seq[1:]  # the first id is the decoder start token
            ended = self._eos_id in ids
            if ended:
                ids = ids[: ids.index(self._eos_id)]
            ids = [i for i in ids if i != self._pad_id]  # what generate() fills finished rows with
            capped = not ended or len(ids) >= item_cap
            ids = ids[:item_cap]
            pieces = self._tokenizer.pieces(ids)
            hypotheses.append(
                Hypothesis(
                    text=self._tokenizer.detokenize(pieces),
                    num_tokens=len(ids),
                    log_prob=min(0.0, float(score)),
                    capped=capped,
                )
            )
        return hypotheses

    @staticmethod
    def _mean_log_prob(row: object) -> float:
        values = [v for v in row.tolist() if v != float("-inf")]  # type: ignore[attr-defined]
        return sum(values) / len(values) if values else 0.0

    def close(self) -> None:
        del self._copies


class TorchSummaryEngine:
    """A BART/PEGASUS-style checkpoint run with transformers' generate()."""

    name = "torch"

    def __init__(self, model: ResolvedModel, settings: Settings, plan: parallelism.Parallelism) -> None:
        import torch
        from transformers import AutoTokenizer

        self._torch = torch
        copies, self.info = load_seq2seq(model, settings, plan)
        self._model = copies[0]
        self._device = self._model.device
        self.tokenizer = AutoTokenizer.from_pretrained(model.path)
        self.window = window_of(model.path)
        self.decoding = SummaryDecoding.of(model.path)

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=True)["input_ids"]]

    def generate(self, batch: list[SummaryItem]) -> list[str]:
        inputs = self.tokenizer([item.text for item in batch], return_tensors="pt", padding=True).to(self._device)
        with self._torch.inference_mode():
            output = self._model.generate(
                **inputs,
                num_beams=self.decoding.beam_size,
                length_penalty=self.decoding.length_penalty,
                no_repeat_ngram_size=self.decoding.no_repeat_ngram_size,
                min_new_tokens=min(item.min_tokens for item in batch),
                max_new_tokens=max(item.max_tokens for item in batch),
                early_stopping=True,
            )
        out = []
        for item, ids in zip(batch, output.tolist(), strict=True):
            ids = [i for i in ids if i not in self.tokenizer.all_special_ids]
            trimmed = len(ids) > item.max_tokens
            text = self.tokenizer.decode(ids[: item.max_tokens], skip_special_tokens=True).strip()
            out.append(trim_to_sentence(text) if trimmed else text)
        return out

    def close(self) -> None:
        del self._model

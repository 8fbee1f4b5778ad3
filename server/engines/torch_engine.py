"""PyTorch/transformers: the reference engine. float32 on CPU, float16 (or bfloat16) on CUDA."""

from __future__ import annotations

import logging

from ..models import ResolvedModel
from ..settings import Settings
from .base import EngineInfo, Hypothesis, SourceItem, device_of
from .marian_tokenizer import MarianTokenizer

log = logging.getLogger(__name__)


def load_seq2seq(model: ResolvedModel, settings: Settings):  # noqa: ANN201 - (PreTrainedModel, EngineInfo)
    """A transformers seq2seq checkpoint on the settings' device and dtype, in eval mode."""
    import torch
    from transformers import AutoModelForSeq2SeqLM

    device = device_of(settings.device, torch.cuda.device_count)
    compute_type = settings.compute_type
    if compute_type == "auto":
        compute_type = "float32" if device == "cpu" else "float16"
    dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if compute_type not in dtypes:
        raise ValueError(f"--compute-type {compute_type} is not available with --engine torch")
    if device == "cpu":
        torch.set_num_threads(settings.resolved_threads())
    loaded = AutoModelForSeq2SeqLM.from_pretrained(model.path, dtype=dtypes[compute_type])
    loaded.to(torch.device(device)).eval()
    log.info("torch %s model: %s on %s (%s)", model.role, model.id, device, compute_type)
    return loaded, EngineInfo(model.role, model.id, model.revision, model.path, "torch", device, compute_type)


class TorchEngine:
    """A Marian checkpoint run with transformers' generate()."""

    name = "torch"

    def __init__(self, model: ResolvedModel, settings: Settings) -> None:
        import torch

        self._torch = torch
        self._model, self.info = load_seq2seq(model, settings)
        self._device = self._model.device
        self._tokenizer = MarianTokenizer(model.path)
        self._pad_id = self._tokenizer.pad_id
        self._eos_id = self._tokenizer.eos_id
        self._beam_size = settings.beam_size

    def tokenize(self, texts: list[str]) -> list[tuple[str, ...]]:
        return self._tokenizer.tokenize(texts)

    def translate(self, batch: list[SourceItem]) -> list[Hypothesis]:
        torch = self._torch
        rows = [self._tokenizer.ids(item.tokens) for item in batch]
        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        cap = max(item.max_output_tokens for item in batch)
        with torch.inference_mode():
            out = self._model.generate(
                input_ids=input_ids.to(self._device),
                attention_mask=mask.to(self._device),
                num_beams=self._beam_size,
                max_new_tokens=cap,
                min_new_tokens=0,
                return_dict_in_generate=True,
                output_scores=True,
            )
            if self._beam_size > 1:
                scores = out.sequences_scores.tolist()
            else:
                steps = self._model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
                scores = [self._mean_log_prob(row) for row in steps]
        hypotheses = []
        for item, seq, score in zip(batch, out.sequences.tolist(), scores, strict=True):
            ids = seq[1:]  # the first id is the decoder start token
            ended = self._eos_id in ids
            if ended:
                ids = ids[: ids.index(self._eos_id)]
            ids = [i for i in ids if i != self._pad_id]
            capped = not ended or len(ids) >= item.max_output_tokens
            ids = ids[: item.max_output_tokens]
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
        del self._model

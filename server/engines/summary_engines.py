"""Summary models (BART/PEGASUS-style seq2seq) on CTranslate2 or torch: English text in, summary out.

Same engine layer as translation: they own the model and device, know no gRPC, and run one batch at a
time on the summary batcher's worker, so a summary never holds up other clients' translations.
Decoding follows the checkpoint's own generation config (beams, length penalty, no-repeat n-grams).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from ..models import ResolvedModel
from ..settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SummaryItem:
    """One text to summarise and the length of summary it should get, in tokens."""

    text: str
    min_tokens: int
    max_tokens: int


@dataclass(frozen=True)
class SummaryDecoding:
    beam_size: int = 4
    length_penalty: float = 2.0
    no_repeat_ngram_size: int = 3

    @classmethod
    def of(cls, model_path: str) -> SummaryDecoding:
        path = Path(model_path) / "generation_config.json"
        config = json.loads(path.read_text()) if path.is_file() else {}
        return cls(
            beam_size=int(config.get("num_beams") or 4),
            length_penalty=float(config.get("length_penalty") or 2.0),
            no_repeat_ngram_size=int(config.get("no_repeat_ngram_size") or 3),
        )


def _window(model_path: str) -> int:
    config = json.loads((Path(model_path) / "config.json").read_text())
    return int(config.get("max_position_embeddings") or 1024) - 2  # <s> and </s>


def _trim_to_sentence(text: str) -> str:
    """A summary cut at its token budget ends at its last full sentence, if it has one."""
    match = re.search(r"^.*[.!?][\"')”’]?(?=\s|$)", text, re.DOTALL)
    return match.group(0) if match else text


class CTranslate2SummaryEngine:
    name = "ctranslate2"

    def __init__(self, model: ResolvedModel, settings: Settings) -> None:
        from .bart_tokenizer import BartTokenizer
        from .ctranslate2_engine import open_translator

        self._translator, self.info = open_translator(model, settings)
        self.tokenizer = BartTokenizer(model.path)  # not transformers': that would import torch
        self.window = _window(model.path)
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
            out.append(_trim_to_sentence(text.strip()) if trimmed else text.strip())
        return out

    def close(self) -> None:
        del self._translator


class TorchSummaryEngine:
    name = "torch"

    def __init__(self, model: ResolvedModel, settings: Settings) -> None:
        import torch
        from transformers import AutoTokenizer

        from .torch_engine import load_seq2seq

        self._torch = torch
        self._model, self.info = load_seq2seq(model, settings)
        self._device = self._model.device
        self.tokenizer = AutoTokenizer.from_pretrained(model.path)
        self.window = _window(model.path)
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
            out.append(_trim_to_sentence(text) if trimmed else text)
        return out

    def close(self) -> None:
        del self._model

"""What every summary engine takes and gives (BART/PEGASUS-style seq2seq: English text in, summary out).

Each engine module (registry.ENGINE_MODULES) implements `SummaryEngine` in its own file. Same engine
layer as translation: they own the model and device, know no gRPC, and run one batch at a time on the
summary batcher's worker, so a summary never holds up other clients' translations. Decoding follows
the checkpoint's own generation config (beams, length penalty, no-repeat n-grams).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .base import EngineInfo


@dataclass(frozen=True)
class SummaryItem:
    """One text to summarise and the length of summary it should get, in tokens."""

    text: str
    min_tokens: int
    max_tokens: int


@dataclass(frozen=True)
class SummaryDecoding:
    """How the checkpoint's own generation config asks to decode (beams, length penalty, no-repeat n-grams)."""

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


class SummaryEngine(Protocol):
    """An abstractive summary model on its device: English texts in, one summary each out.

    The summary batcher's one worker calls `generate`; summary.AbstractiveSummarizer cuts an article
    into parts of at most `window` tokens first. `engines.EngineModule.open_summary` makes one.
    """

    info: EngineInfo
    window: int  # source tokens the model reads at once
    decoding: SummaryDecoding

    def count_tokens(self, texts: list[str]) -> list[int]:
        """The model's token count of each text (what `window` is measured in)."""
        ...

    def generate(self, batch: list[SummaryItem]) -> list[str]:
        """One summary per item, in order, each within the item's min and max tokens."""
        ...

    def close(self) -> None:
        """Release the model and its device memory; called once, after the last batch."""
        ...


def window_of(model_path: str) -> int:
    config = json.loads((Path(model_path) / "config.json").read_text())
    return int(config.get("max_position_embeddings") or 1024) - 2  # <s> and </s>


def trim_to_sentence(text: str) -> str:
    """A summary cut at its token budget ends at its last full sentence, if it has one."""
    match = re.search(r"^.*[.!?][\"')”’]?(?=\s|$)", text, re.DOTALL)
    return match.group(0) if match else text

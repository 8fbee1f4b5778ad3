"""What every engine takes and gives, and the tokenizer they share."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..parallelism import Parallelism


@dataclass(frozen=True)
class SourceItem:
    """One sentence to translate: its source pieces (with </s>) and its own output cap."""

    tokens: tuple[str, ...]
    max_output_tokens: int


@dataclass(frozen=True)
class Hypothesis:
    """An engine's translation of one sentence."""

    text: str
    num_tokens: int
    # Mean log-probability per output token (length-normalised), <= 0.
    log_prob: float
    # Generation stopped at the output cap rather than at end-of-sentence.
    capped: bool

    @property
    def confidence(self) -> float:
        return math.exp(self.log_prob) if self.num_tokens else 0.0


@dataclass(frozen=True)
class EngineInfo:
    """What GetInfo and every response report about the model behind an engine."""

    role: str
    id: str
    revision: str
    path: str
    engine: str
    device: str
    compute_type: str


class Engine(Protocol):
    """A translation model on its device: tokenised sentences in, one hypothesis each out.

    It knows no gRPC and no request: the batcher's workers call `translate` with batches it formed,
    from up to `parallelism.workers` threads at once. `engines.EngineModule.open_translation` makes one.
    """

    info: EngineInfo
    parallelism: Parallelism  # batches it can run at once (translate is called from that many threads)

    def tokenize(self, texts: list[str]) -> list[tuple[str, ...]]:
        """Source pieces of each text, ending with the end-of-sentence piece."""
        ...

    def translate(self, batch: list[SourceItem]) -> list[Hypothesis]:
        """One hypothesis per item, in order; each cut at the item's own output cap."""
        ...

    def close(self) -> None:
        """Release the model and its device memory; called once, after the last batch."""
        ...


def device_of(requested: str, cuda_devices: Callable[[], int]) -> str:
    """`auto` becomes cuda when the engine's own library sees a GPU, else cpu.

    Each engine asks only its own library: asking torch from the CTranslate2 server would map
    libtorch (about 230 MB of RSS) into a process that never uses it.
    """
    if requested != "auto":
        return requested
    return "cuda" if cuda_devices() > 0 else "cpu"


def decoder_positions(model_path: str) -> int:
    """The most tokens the checkpoint's decoder can write: its position table (opus-mt-ar-en 512,
    opus-mt-tc-big-ar-en 1024). Both engines fail the whole batch when asked for more."""
    config = json.loads((Path(model_path) / "config.json").read_text())
    return int(config.get("max_position_embeddings") or 512)


def is_out_of_memory(exc: Exception) -> bool:
    """Whether a batch failed for lack of (GPU) memory, so that its halves may still fit."""
    return "out of memory" in str(exc).lower() or type(exc).__name__ == "OutOfMemoryError"

"""Fakes shared by the test files (imported from here, never from another test file)."""

from __future__ import annotations

from tarjama.server.engines.base import EngineInfo, Hypothesis, SourceItem
from tarjama.server.parallelism import Parallelism


class FakeEngine:
    """Pieces are words. Arabic words become "w"; Latin ones are copied, or dropped when `lossy`.

    Special words steer the output: تكرار → a loop, فارغ → nothing, اترك → Arabic left in the English.
    """

    info = EngineInfo("translation", "fake", "0", "", "fake", "cpu", "none")
    parallelism = Parallelism("cpu", (0,), 1, 1, 32, "test")

    def __init__(self, lossy: bool = False) -> None:
        self.lossy = lossy
        self.batches: list[list[SourceItem]] = []

    def tokenize(self, texts: list[str]) -> list[tuple[str, ...]]:
        return [tuple(t.split()) + ("</s>",) for t in texts]

    def translate(self, batch: list[SourceItem]) -> list[Hypothesis]:
        self.batches.append(batch)
        return [self._one(item) for item in batch]

    def _one(self, item: SourceItem) -> Hypothesis:
        words = list(item.tokens[:-1])
        bare = {w.strip(".،؛") for w in words}
        if "فارغ" in bare:
            out = []
        elif "تكرار" in bare:
            out = ["the", "war", "of"] * 5
        elif "اترك" in bare:
            out = ["he", "said", "اترك"]
        else:
            out = [w if w.isascii() and not self.lossy else "w" for w in words if not (self.lossy and w.isascii())]
        capped = len(out) > item.max_output_tokens
        out = out[: item.max_output_tokens]
        return Hypothesis(" ".join(out), len(out), -0.1, capped)

    def close(self) -> None:
        pass

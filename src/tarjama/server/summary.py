"""Summaries of a translated article, with provenance: every summary sentence cites its paragraphs.

Two methods behind one interface:
- extractive: TextRank over TF-IDF vectors of the English sentences; the most central ones, in article
  order, verbatim. No model, works anywhere, and its provenance is exact.
- abstractive: a BART/PEGASUS-style model over the English. An article longer than the model's window
  is cut into parts at paragraph boundaries; each part is summarised (all parts in one batch) and the
  part summaries are joined in order, so the end of an article counts as much as its start (map-reduce;
  the reduce step only runs when the joined parts are over three times the length asked for, and then
  summarises groups of neighbouring part summaries, again with equal shares). Each summary sentence
  cites the paragraphs whose sentences are most similar to it (TF-IDF cosine); one that no paragraph
  supports is flagged `unsupported`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from .offload import off_loop
from .text.segmentation import split_sentences

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from .engines.summary_engines import SummaryEngine, SummaryItem
    from .settings import Settings

log = logging.getLogger(__name__)

# Sentences per summary for each length option (extractive), and token budgets (abstractive).
LENGTHS = {"SHORT": 3, "MEDIUM": 5, "LONG": 8}
TOKEN_BUDGETS = {"SHORT": 60, "MEDIUM": 130, "LONG": 220}
DEFAULT_LENGTH = "MEDIUM"
# The method an abstractive summary reports when its model returned nothing and extractive stood in.
FALLBACK_METHOD = "extractive-fallback"
# Below this cosine similarity no paragraph supports a summary sentence.
SUPPORT_THRESHOLD = 0.12

_STOPWORDS = frozenset(
    "a an the and or but of to in on at for with by from as is are was were be been being it its this that these "
    "those he she they we you i his her their our your him them us not no so than then there here which who whom "
    "what when where why how also has have had do does did will would can could may might must shall should "
    "said says into over after before about more most such other some any all each".split()
)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


@dataclass(frozen=True)
class SummarySentence:
    text: str
    paragraphs: tuple[int, ...]
    score: float
    unsupported: bool = False


@dataclass(frozen=True)
class Summary:
    text: str
    sentences: tuple[SummarySentence, ...]
    method: str
    model: str


@dataclass(frozen=True)
class SourceSentence:
    """An English sentence of the article and the paragraph it belongs to."""

    paragraph: int
    text: str


class Summarizer(Protocol):
    method: str
    model: str

    async def summarize(
        self, sentences: Sequence[SourceSentence], length: str, count: int, deadline: float | None
    ) -> Summary: ...

    def close(self, timeout: float | None = None) -> bool: ...


def sentences_of(paragraphs: Sequence[str]) -> list[SourceSentence]:
    """English paragraphs split into sentences, for the Summarize RPC."""
    return [SourceSentence(i, s.text) for i, p in enumerate(paragraphs) for s in split_sentences(p)]


# -- TF-IDF -----------------------------------------------------------------------------------------


def _terms(text: str) -> list[str]:
    return [w for w in (m.group().lower() for m in _WORD.finditer(text)) if w not in _STOPWORDS]


class TfIdf:
    """TF-IDF vectors over a set of sentences, as unit-length sparse dicts."""

    def __init__(self, texts: Sequence[str]) -> None:
        self._df: Counter[str] = Counter()
        docs = [Counter(_terms(t)) for t in texts]
        for doc in docs:
            self._df.update(doc.keys())
        self._n = len(texts)
        self.vectors = [self.vector_of(doc) for doc in docs]

    def vector_of(self, counts: Counter[str]) -> dict[str, float]:
        weights = {t: (1 + math.log(c)) * math.log((1 + self._n) / (1 + self._df[t])) + 0.0 for t, c in counts.items()}
        weights = {t: w for t, w in weights.items() if w > 0}
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        return {t: w / norm for t, w in weights.items()}

    def vector(self, text: str) -> dict[str, float]:
        return self.vector_of(Counter(_terms(text)))


def cosine(a: dict[str, float], b: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(w * b.get(t, 0.0) for t, w in a.items())


# -- extractive -------------------------------------------------------------------------------------


def textrank(vectors: Sequence[dict[str, float]], damping: float = 0.85, iterations: int = 60) -> list[float]:
    """PageRank over the sentence-similarity graph: how central each sentence is to the article.

    The similarity matrix W = M Mᵀ (cosines of the TF-IDF rows of M, diagonal removed) is never built:
    it is dense, n² for n sentences (29 GB for a limit-size article). Each step multiplies by M and Mᵀ
    instead, as sparse products over M's non-zero entries (numpy.bincount), so time and memory are
    linear in the article's words.
    """
    import numpy as np

    n = len(vectors)
    if n == 0:
        return []
    vocabulary: dict[str, int] = {}
    rows, cols, vals = [], [], []
    for i, vector in enumerate(vectors):
        for term, weight in vector.items():
            rows.append(i)
            cols.append(vocabulary.setdefault(term, len(vocabulary)))
            vals.append(weight)
    row, col, val = np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64), np.array(vals)
    terms = max(1, len(vocabulary))

    def similarity_times(x: NDArray[Any]) -> NDArray[Any]:  # W @ x, without self-similarity
        per_term = np.bincount(col, weights=val * x[row], minlength=terms)  # Mᵀ x
        return np.bincount(row, weights=val * per_term[col], minlength=n) - self_similarity * x  # M (Mᵀ x) - diag

    self_similarity = np.bincount(row, weights=val * val, minlength=n)
    out = similarity_times(np.ones(n))
    out[out <= 1e-12] = 1.0  # a sentence similar to no other passes on nothing
    scores = np.full(n, 1.0 / n)
    for _ in range(iterations):
        scores = (1 - damping) / n + damping * similarity_times(scores / out)
    return [float(s) for s in scores]


class ExtractiveSummarizer:
    """The most central sentences of the translation, verbatim and in article order."""

    method = "extractive"
    model = "textrank-tfidf"

    async def summarize(
        self, sentences: Sequence[SourceSentence], length: str, count: int, deadline: float | None
    ) -> Summary:
        return await off_loop(self.summarize_now, sentences, length, count)

    def summarize_now(self, sentences: Sequence[SourceSentence], length: str, count: int) -> Summary:
        # A sentence repeated across paragraphs (boilerplate, a byline) counts once, where it first
        # appears: a summary that says the same thing five times tells an editor nothing.
        seen: set[str] = set()
        candidates = []
        for s in sentences:
            key = " ".join(s.text.split()).lower()
            if key and key not in seen:
                seen.add(key)
                candidates.append(s)
        k = min(len(candidates), count or LENGTHS.get(length, LENGTHS[DEFAULT_LENGTH]))
        scores = textrank(TfIdf([s.text for s in candidates]).vectors)
        # Ties go to the earlier sentence, so the result is deterministic.
        chosen = sorted(sorted(range(len(candidates)), key=lambda i: (-scores[i], i))[:k])
        picked = tuple(SummarySentence(candidates[i].text, (candidates[i].paragraph,), 1.0) for i in chosen)
        return Summary(" ".join(s.text for s in picked), picked, self.method, self.model)

    def close(self, timeout: float | None = None) -> bool:
        return True


# -- provenance for abstractive summaries -----------------------------------------------------------


def attribute(summary_text: str, sentences: Sequence[SourceSentence]) -> tuple[SummarySentence, ...]:
    """Each summary sentence with the paragraphs that support it best, and how well."""
    index = TfIdf([s.text for s in sentences])
    out = []
    for span in split_sentences(summary_text):
        vector = index.vector(span.text)
        best: dict[int, float] = {}
        for source, source_vector in zip(sentences, index.vectors, strict=True):
            similarity = cosine(vector, source_vector)
            best[source.paragraph] = max(best.get(source.paragraph, 0.0), similarity)
        top = max(best.values(), default=0.0)
        if top < SUPPORT_THRESHOLD:
            out.append(SummarySentence(span.text, (), round(top, 4), unsupported=True))
            continue
        ranked = sorted((p for p, s in best.items() if s >= max(SUPPORT_THRESHOLD, 0.5 * top)), key=lambda p: -best[p])
        out.append(SummarySentence(span.text, tuple(sorted(ranked[:3])), round(top, 4)))
    return tuple(out)


def chunk_paragraphs(
    sentences: Sequence[SourceSentence],
    count_tokens: Callable[[list[str]], list[int]],
    window: int,
) -> list[list[SourceSentence]]:
    """Consecutive runs of sentences that fit the model's window, cut at paragraph boundaries
    (and inside a paragraph only when one paragraph alone is over the window)."""
    costs = count_tokens([s.text for s in sentences])
    chunks: list[list[SourceSentence]] = []
    current: list[SourceSentence] = []
    used = 0
    by_paragraph: dict[int, list[tuple[SourceSentence, int]]] = {}
    for sentence, cost in zip(sentences, costs, strict=True):
        by_paragraph.setdefault(sentence.paragraph, []).append((sentence, cost))
    for paragraph in by_paragraph.values():
        size = sum(c for _, c in paragraph)
        if current and used + size > window:
            chunks.append(current)
            current, used = [], 0
        for sentence, cost in paragraph:
            if current and used + cost > window:
                chunks.append(current)
                current, used = [], 0
            current.append(sentence)
            used += cost
    if current:
        chunks.append(current)
    return chunks


# -- abstractive ------------------------------------------------------------------------------------


class AbstractiveSummarizer:
    """A seq2seq summary model over the English, in parts that fit its window, batched on its own queue."""

    method = "abstractive"

    def __init__(self, engine: SummaryEngine, settings: Settings) -> None:
        from .batcher import Batcher, BatchLimits
        from .engines.base import is_out_of_memory

        self.engine = engine
        self.model = engine.info.id
        limits = BatchLimits(
            max_batch_tokens=8 * engine.window,
            max_batch_size=8,
            max_batch_delay_s=settings.max_batch_delay_ms / 1000,
            max_queue_tokens=settings.max_queue_tokens,
        )
        self.batcher = Batcher(engine.generate, limits, name="summary-batcher", split_on=is_out_of_memory)
        self._closed = False

    async def summarize(
        self, sentences: Sequence[SourceSentence], length: str, count: int, deadline: float | None
    ) -> Summary:
        from .engines.summary_engines import SummaryItem

        if not sentences:
            return Summary("", (), self.method, self.model)
        budget = count * 30 if count else TOKEN_BUDGETS.get(length, TOKEN_BUDGETS[DEFAULT_LENGTH])
        parts = await off_loop(chunk_paragraphs, sentences, self.engine.count_tokens, self.engine.window)
        texts = [" ".join(s.text for s in part) for part in parts]
        while True:
            # Every part gets its share of the budget, so the last part is summarised like the first.
            share = max(24, budget // len(texts))
            items = [SummaryItem(text, min(share // 2, 40), share) for text in texts]
            costs = await off_loop(self.engine.count_tokens, texts)
            ticket = self.batcher.submit(items, costs, deadline)
            try:
                summaries = await asyncio.wrap_future(ticket.future)
            except asyncio.CancelledError:
                ticket.cancel()
                raise
            summaries = [s for s in summaries if s.strip()]
            joined = " ".join(summaries)
            if len(summaries) <= 1 or sum(await off_loop(self.engine.count_tokens, [joined])) <= 3 * budget:
                break
            # Reduce: summarise neighbouring part summaries together, keeping the article's order.
            regrouped = chunk_paragraphs(
                [SourceSentence(i, s) for i, s in enumerate(summaries)], self.engine.count_tokens, self.engine.window
            )
            if len(regrouped) >= len(texts):
                break
            texts = [" ".join(s.text for s in group) for group in regrouped]
        if not joined.strip():
            # A model that writes nothing must not leave the editor with an empty summary and no word.
            log.warning(
                "summary model %s returned no text for %d parts; using the extractive summary", self.model, len(texts)
            )
            fallback = await ExtractiveSummarizer().summarize(sentences, length, count, deadline)
            return replace(fallback, method=FALLBACK_METHOD)
        return Summary(joined, attribute(joined, sentences), self.method, self.model)

    def close(self, timeout: float | None = None) -> bool:
        """As TranslationPipeline.close: safe to call again; the engine is released once."""
        if not self.batcher.stop(timeout):
            return False
        if not self._closed:
            self._closed = True
            self.engine.close()
        return True


def load_summarizer(settings: Settings) -> Summarizer | None:
    """The summariser `--summary-model` names: none, extractive, or a seq2seq checkpoint."""
    from .errors import ModelUnavailable
    from .models import resolve_model

    choice = settings.summary_model
    if choice == "none":
        return None
    if choice == "extractive":
        return ExtractiveSummarizer()
    hint = "start with --summary-model extractive to summarise without a model, or --summary-model none"
    try:
        model = resolve_model(choice, settings.summary_revision, settings.cache_dir, "summary", settings.offline)
        from .engines import load_summary_engine

        engine = load_summary_engine(model, settings)
        engine.generate([_warmup_item()])
    except ModelUnavailable as exc:
        raise ModelUnavailable(f"{exc}; or {hint}") from None
    except Exception as exc:
        raise ModelUnavailable(f"cannot load summary model '{choice}' ({type(exc).__name__}: {exc}); {hint}") from None
    return AbstractiveSummarizer(engine, settings)


def _warmup_item() -> SummaryItem:
    from .engines.summary_engines import SummaryItem

    return SummaryItem("The minister said the meeting would be held tomorrow in the capital.", 1, 8)

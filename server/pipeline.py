"""The text pipeline: a document's paragraphs → sentences → engine segments → batcher → paragraphs.

It owns the mapping from a request to the segments the engine sees and back, so nothing is dropped,
truncated or reordered on the way: every sentence span of a paragraph comes back with its translation,
a sentence too long for the model is translated in parts that cover all of it, and results are put
back by position, never by arrival order.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass

from .batcher import Batcher, BatchLimits
from .cache import LRUCache
from .engines.base import Engine, Hypothesis, SourceItem, is_out_of_memory
from .segmentation import split_long, split_sentences, word_spans
from .settings import Settings

log = logging.getLogger(__name__)

# Flags a sentence can carry; the names are the proto's Sentence.Flag values.
SPLIT = "SPLIT"
EMPTY = "EMPTY"
OUTPUT_CAPPED = "OUTPUT_CAPPED"


@dataclass(frozen=True)
class Document:
    """A request's article: its id and its non-empty paragraphs, exactly as received."""

    id: str
    paragraphs: tuple[str, ...]


@dataclass(frozen=True)
class TranslatedSentence:
    source: str
    translation: str
    start: int
    end: int
    flags: tuple[str, ...]
    confidence: float


@dataclass(frozen=True)
class TranslatedParagraph:
    index: int
    source: str
    translation: str
    sentences: tuple[TranslatedSentence, ...]


@dataclass(frozen=True)
class TranslatedDocument:
    id: str
    paragraphs: tuple[TranslatedParagraph, ...]
    segments: int
    translate_ms: float
    source_tokens: int
    output_tokens: int  # written by the model for this request (cached segments not counted)
    cached: int


@dataclass(frozen=True)
class _Segment:
    """A piece of a sentence sent to the engine: where it sits and what it costs."""

    paragraph: int
    sentence: int
    tokens: tuple[str, ...]


class TranslationPipeline:
    """Translates documents through one engine and one batcher shared by all requests."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        limits = BatchLimits(
            max_batch_tokens=settings.max_batch_tokens,
            max_batch_size=settings.max_batch_size,
            max_batch_delay_s=settings.max_batch_delay_ms / 1000,
            max_queue_tokens=settings.max_queue_tokens,
        )
        self.batcher: Batcher[SourceItem, Hypothesis] = Batcher(
            engine.translate, limits, name="translation-batcher", split_on=is_out_of_memory
        )
        self.cache: LRUCache[SourceItem, Hypothesis] = LRUCache(settings.cache_size)
        self.requests = 0
        self.output_tokens = 0

    def output_cap(self, source_tokens: int) -> int:
        """Most output tokens a sentence may get: in proportion to its source, and never above the cap."""
        s = self.settings
        return max(1, min(s.max_output_tokens, math.ceil(s.max_output_ratio * source_tokens) + s.max_output_offset))

    def plan(self, document: Document) -> tuple[list[list[tuple[int, int, str]]], list[_Segment]]:
        """Sentence spans per paragraph, and the engine segments that cover them, in order."""
        sentences = [[(s.start, s.end, s.text) for s in split_sentences(p)] for p in document.paragraphs]
        flat = [(pi, si, text) for pi, spans in enumerate(sentences) for si, (_, _, text) in enumerate(spans)]
        tokens = self.engine.tokenize([text for _, _, text in flat]) if flat else []
        budget = self.settings.max_segment_tokens
        segments: list[_Segment] = []
        for (pi, si, text), toks in zip(flat, tokens, strict=True):
            if len(toks) <= budget:
                segments.append(_Segment(pi, si, toks))
                continue
            for start, end in self._split(text, budget):
                segments.extend(_Segment(pi, si, t) for t in self.engine.tokenize([text[start:end]]))
        return sentences, segments

    def _split(self, text: str, budget: int) -> list[tuple[int, int]]:
        words = word_spans(text)
        # Each word's tokens without the end-of-sentence piece the tokenizer appends.
        counts = [max(1, len(t) - 1) for t in self.engine.tokenize([text[s:e] for s, e in words])]
        return split_long(text, [(s, e, c) for (s, e), c in zip(words, counts, strict=True)], budget - 1)

    async def translate(self, document: Document, deadline: float | None) -> TranslatedDocument:
        """Translate `document`; `deadline` is a time.monotonic() value after which the work is dropped."""
        started = time.perf_counter()
        self.requests += 1
        sentences, segments = await asyncio.to_thread(self.plan, document)
        items = [SourceItem(seg.tokens, self.output_cap(len(seg.tokens))) for seg in segments]
        hypotheses: list[Hypothesis | None] = [self.cache.get(item) for item in items]
        misses = [i for i, h in enumerate(hypotheses) if h is None]
        ticket = self.batcher.submit([items[i] for i in misses], [len(items[i].tokens) for i in misses], deadline)
        try:
            translated = await asyncio.wrap_future(ticket.future)
        except asyncio.CancelledError:
            ticket.cancel()  # the client went away: its queued segments never reach the model
            raise
        for i, hypothesis in zip(misses, translated, strict=True):
            hypotheses[i] = hypothesis
            self.cache.put(items[i], hypothesis)
        done = [h for h in hypotheses if h is not None]
        output_tokens = sum(h.num_tokens for h in translated)
        self.output_tokens += output_tokens
        return TranslatedDocument(
            id=document.id,
            paragraphs=assemble(document, sentences, segments, done),
            segments=len(segments),
            translate_ms=(time.perf_counter() - started) * 1000,
            source_tokens=sum(len(seg.tokens) for seg in segments),
            output_tokens=output_tokens,
            cached=len(segments) - len(misses),
        )

    def close(self) -> None:
        self.batcher.stop()
        self.engine.close()


def assemble(
    document: Document,
    sentences: list[list[tuple[int, int, str]]],
    segments: list[_Segment],
    hypotheses: list[Hypothesis],
) -> tuple[TranslatedParagraph, ...]:
    """Put each segment's hypothesis back into its sentence and paragraph, by position."""
    parts: dict[tuple[int, int], list[Hypothesis]] = {}
    for seg, hyp in zip(segments, hypotheses, strict=True):
        parts.setdefault((seg.paragraph, seg.sentence), []).append(hyp)
    paragraphs = []
    for pi, source in enumerate(document.paragraphs):
        translated = []
        for si, (start, end, text) in enumerate(sentences[pi]):
            hyps = parts[(pi, si)]
            translation = " ".join(h.text for h in hyps if h.text)
            flags = []
            if len(hyps) > 1:
                flags.append(SPLIT)
            if any(h.capped for h in hyps):
                flags.append(OUTPUT_CAPPED)
            if not translation:
                flags.append(EMPTY)
            confidence = min(h.confidence for h in hyps)
            translated.append(TranslatedSentence(text, translation, start, end, tuple(flags), confidence))
        paragraphs.append(
            TranslatedParagraph(
                index=pi,
                source=source,
                translation=" ".join(s.translation for s in translated if s.translation),
                sentences=tuple(translated),
            )
        )
    return tuple(paragraphs)

"""The text pipeline: a document's paragraphs → sentences → engine segments → batcher → paragraphs.

It owns the mapping from a request to the segments the engine sees and back, so nothing is dropped,
truncated or reordered on the way: every sentence span of a paragraph comes back with its translation,
a sentence too long for the model is translated in parts that cover all of it, protected spans and
glossary terms are checked in the output, and results are put back by position, never by arrival.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import itertools
import logging
import math
import threading
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field

from .batcher import Batcher, BatchLimits, ComputeGate
from .cache import LRUCache
from .document import Document, TermReport, TranslatedDocument, TranslatedParagraph, TranslatedSentence
from .edges.tracing import current_context, span
from .engines.base import Engine, Hypothesis, SourceItem, is_out_of_memory
from .errors import InvalidRequest
from .offload import text_work
from .settings import UNNAMED_MODEL, Settings
from .text.flags import Flag, plan_flags
from .text.furniture import is_furniture
from .text.names import NameTracker
from .text.numbers import numbers_match
from .text.quality import quality_flags
from .text.rules import Prepared, glossary_for, prepare, restore
from .text.segmentation import has_arabic, split_long, split_sentences, word_spans

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SentencePlan:
    """One sentence of a paragraph and what the model will read for it (None: passed through)."""

    start: int
    end: int
    source: str
    prepared: Prepared | None


@dataclass(frozen=True)
class Segment:
    """A piece of a sentence sent to the engine: where it sits and its source pieces."""

    paragraph: int
    sentence: int
    tokens: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    sentences: list[list[SentencePlan]]
    segments: list[Segment]


@dataclass
class _Work:
    """A planned request on its way through the engine: its items, and the cache's answers so far."""

    plan: Plan
    items: list[SourceItem]
    hypotheses: list[Hypothesis | None]
    misses: list[int]  # positions the engine must translate

    def costs(self) -> list[int]:
        return [len(self.items[i].tokens) for i in self.misses]

    def filled(self, positions: Sequence[int]) -> list[Hypothesis]:
        """The hypotheses at `positions`, every one of them in place by now."""
        out = [h for h in (self.hypotheses[i] for i in positions) if h is not None]
        if len(out) != len(positions):
            raise AssertionError("a segment is used before its translation arrived")
        return out


class PipelineCounters:
    """The pipeline's running totals. Requests are finished on the event loop and on the text-work
    threads at once, and `+=` on a shared attribute is not atomic across threads: counts were lost."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.output_tokens = 0
        self._flags: collections.Counter[str] = collections.Counter()

    def request(self) -> None:
        with self._lock:
            self.requests += 1

    def translated(self, output_tokens: int, flags: Sequence[str]) -> None:
        with self._lock:
            self.output_tokens += output_tokens
            self._flags.update(flags)

    def flags(self) -> dict[str, int]:
        with self._lock:
            return dict(self._flags)


class TranslationPipeline:
    """Translates documents through one model: its engine, and one batcher shared by all requests.

    A server with several models has one pipeline per model (`name`, as requests choose it), each with
    its own batcher and cache (batches never mix models, and a cached English is one model's), and the
    batchers share the machine's batch slots through one `gate`.
    """

    def __init__(
        self, engine: Engine, settings: Settings, name: str = UNNAMED_MODEL, gate: ComputeGate | None = None
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.name = name
        plan = engine.parallelism  # as many batches in flight as the engine has workers
        limits = BatchLimits(
            max_batch_tokens=settings.max_batch_tokens,
            max_batch_size=settings.max_batch_size or plan.max_batch_size,
            max_batch_delay_s=settings.max_batch_delay_ms / 1000,
            max_queue_tokens=settings.max_queue_tokens,
        )
        self.batcher: Batcher[SourceItem, Hypothesis] = Batcher(
            engine.translate, limits, name="translation-batcher", split_on=is_out_of_memory, workers=plan.workers,
            gate=gate,
        )
        self.cache: LRUCache[SourceItem, Hypothesis] = LRUCache(settings.cache_size)
        self.counters = PipelineCounters()
        self._closed = False

    @property
    def requests(self) -> int:
        return self.counters.requests

    @property
    def output_tokens(self) -> int:
        return self.counters.output_tokens

    @property
    def flag_counts(self) -> dict[str, int]:
        """Sentences by flag, over all requests."""
        return self.counters.flags()

    def output_cap(self, source_tokens: int) -> int:
        """Most output tokens a sentence may get: in proportion to its source, and never above the cap."""
        s = self.settings
        return max(1, min(s.max_output_tokens, math.ceil(s.max_output_ratio * source_tokens) + s.max_output_offset))

    def plan(self, document: Document) -> Plan:
        """Sentence plans per paragraph, and the engine segments that cover them, in order."""
        glossary = glossary_for(document.terms, strip_diacritics=document.strip_diacritics)
        sentences: list[list[SentencePlan]] = []
        for paragraph in document.paragraphs:
            # A paragraph with no Arabic letters (an English quote, a byline, a URL) is passed through.
            translate = has_arabic(paragraph)
            sentences.append(
                [
                    SentencePlan(
                        s.start,
                        s.end,
                        s.text,
                        prepare(s.text, glossary, strip_diacritics=document.strip_diacritics) if translate else None,
                    )
                    for s in split_sentences(paragraph)
                ]
            )
        flat = [
            (pi, si, plan.prepared.text)
            for pi, plans in enumerate(sentences)
            for si, plan in enumerate(plans)
            if plan.prepared is not None
        ]
        self._check_glossary_growth(sentences)
        tokens = self.engine.tokenize([text for _, _, text in flat]) if flat else []
        budget = self.settings.max_segment_tokens
        segments: list[Segment] = []
        for (pi, si, text), toks in zip(flat, tokens, strict=True):
            if len(toks) <= budget:
                segments.append(Segment(pi, si, toks))
                continue
            for start, end in self._split(text, budget):
                segments.extend(Segment(pi, si, t) for t in self.engine.tokenize([text[start:end]]))
        return Plan(sentences, segments)

    def _check_glossary_growth(self, sentences: list[list[SentencePlan]]) -> None:
        """Refuse a glossary that would make the text far longer than the article: its targets replace
        their terms in what the model reads and are put back in the English, so a one-letter term with a
        200-character target, found 100,000 times, made a 300 KB request a 41 MB answer."""
        added = sum(
            len(keep.text)
            for plans in sentences
            for plan in plans
            if plan.prepared is not None
            for keep in plan.prepared.keeps
            if keep.term is not None
        )
        limit = self.settings.max_characters
        if added > limit:
            raise InvalidRequest(
                f"options.terms: the glossary's targets would add {added} characters to the article; this server "
                f"accepts at most {limit} (--max-characters)"
            )

    def _split(self, text: str, budget: int) -> list[tuple[int, int]]:
        words = word_spans(text)
        # Each word's tokens without the end-of-sentence piece the tokenizer appends.
        counts = [max(1, len(t) - 1) for t in self.engine.tokenize([text[s:e] for s, e in words])]
        return split_long(text, [(s, e, c) for (s, e), c in zip(words, counts, strict=True)], budget - 1)

    async def translate(self, document: Document, deadline: float | None, small: bool = False) -> TranslatedDocument:
        """Translate `document` whole: `translate_stream` collected, its sentences scheduled shortest
        first (the batcher's best order for a whole answer) rather than in reading order."""
        stream = self.translate_stream(document, deadline, small=small, in_order=False)
        async with contextlib.aclosing(stream) as parts:
            async for part in parts:
                if isinstance(part, TranslatedDocument):
                    return part
        raise AssertionError("the pipeline ends every translation with its document")

    def _prepare(self, document: Document) -> _Work:
        plan = self.plan(document)
        items = [SourceItem(seg.tokens, self.output_cap(len(seg.tokens))) for seg in plan.segments]
        hypotheses: list[Hypothesis | None] = [self.cache.get(item) for item in items]
        return _Work(plan, items, hypotheses, [i for i, h in enumerate(hypotheses) if h is None])

    def _fill(self, work: _Work, start: int, translated: Sequence[Hypothesis]) -> None:
        """Put the engine's results for the misses from `start` on in place, and in the cache."""
        for i, hypothesis in zip(work.misses[start : start + len(translated)], translated, strict=True):
            work.hypotheses[i] = hypothesis
            self.cache.put(work.items[i], hypothesis)

    def _document(
        self,
        document: Document,
        work: _Work,
        paragraphs: tuple[TranslatedParagraph, ...],
        checks: DocumentChecks,
        started: float,
        queue_s: float,
    ) -> TranslatedDocument:
        output_tokens = sum(h.num_tokens for h in work.filled(work.misses))
        self.counters.translated(output_tokens, [f for p in paragraphs for s in p.sentences for f in s.flags])
        plan = work.plan
        return TranslatedDocument(
            id=document.id,
            paragraphs=paragraphs,
            terms=checks.terms(document),
            name_variants=checks.names.report(),
            segments=len(plan.segments),
            translate_ms=(time.perf_counter() - started) * 1000,
            source_tokens=sum(len(seg.tokens) for seg in plan.segments),
            output_tokens=output_tokens,
            cached=len(plan.segments) - len(work.misses),
            queue_ms=queue_s * 1000,
        )

    async def translate_stream(
        self, document: Document, deadline: float | None, *, small: bool = False, in_order: bool = True
    ) -> AsyncGenerator[list[TranslatedParagraph] | TranslatedDocument, None]:
        """Translate `document`; `deadline` is a time.monotonic() value after which the work is dropped.

        Yields the paragraphs, in order, as soon as they and every paragraph before them are done (a
        list of those newly done each time), then the document. `in_order` asks the batcher to take the
        sentences in reading order (a stream's reader starts at the top); without it, all the
        paragraphs come at once. The text work before and after the engine (planning, cache look-ups,
        checking the English) runs on the event loop only for a `small` request, on a worker thread for
        anything larger, so that no article, however long, holds up other clients or health checks.
        """
        started = time.perf_counter()
        self.counters.request()
        with span("tarjama.plan", **{"tarjama.paragraphs": len(document.paragraphs)}):
            work = await text_work(small, self._prepare, document)
        plan = work.plan
        # Paragraph p is complete once the segments before ends[p] are: segments are in paragraph order.
        per_paragraph = collections.Counter(seg.paragraph for seg in plan.segments)
        ends = list(itertools.accumulate(per_paragraph[p] for p in range(len(document.paragraphs))))
        loop = asyncio.get_running_loop()
        arrived: asyncio.Queue[list[Hypothesis] | None] = asyncio.Queue()

        def hand_on(item: list[Hypothesis] | None) -> None:
            try:
                loop.call_soon_threadsafe(arrived.put_nowait, item)
            except RuntimeError:
                pass  # the loop is gone (the server stopped); nobody is waiting

        with span("tarjama.queue", **{"tarjama.segments": len(work.misses)}):
            ticket = self.batcher.submit(
                [work.items[i] for i in work.misses],
                work.costs(),
                deadline,
                tag=current_context(),
                on_progress=hand_on if in_order else None,
            )
        ticket.future.add_done_callback(lambda _: hand_on(None))
        checks = DocumentChecks()
        paragraphs: list[TranslatedParagraph] = []
        filled = 0  # misses with their hypothesis in place
        try:
            while True:
                missing = work.misses[filled] if filled < len(work.misses) else len(plan.segments)
                ready = bisect.bisect_right(ends, missing)  # paragraphs whose segments are all in
                if ready > len(paragraphs):
                    with span("tarjama.assemble"):
                        span_ = (len(paragraphs), ready)
                        new = await text_work(small, assemble_range, document, work, ends, span_, checks)
                    paragraphs.extend(new)
                    yield new
                if len(paragraphs) == len(document.paragraphs):
                    break
                item = await arrived.get()
                if item is None:  # the request ended: its error, or the results not yet handed on
                    delivered = ticket.future.result()
                    if filled < len(delivered):
                        self._fill(work, filled, delivered[filled:])
                        filled = len(delivered)
                    continue
                self._fill(work, filled, item)
                filled += len(item)
        except (asyncio.CancelledError, GeneratorExit):
            ticket.cancel()  # the client went away: its queued segments never reach the model
            raise
        # The document's totals and flag counts go over every sentence: off the loop for a large one, as
        # the paragraphs were.
        yield await text_work(small, self._document, document, work, tuple(paragraphs), checks, started, ticket.queue_s)

    def close(self, timeout: float | None = None) -> bool:
        """Fail queued work, wait up to `timeout` for the batch on the engine; False if it still runs.

        Safe to call again (shutdown first fails every queue at once, then waits): the engine is
        released once, when its worker has ended.
        """
        if not self.batcher.stop(timeout):
            return False  # the engine is mid-batch: releasing it now could crash the process
        if not self._closed:
            self._closed = True
            self.engine.close()
        return True


def assemble_range(
    document: Document, work: _Work, ends: Sequence[int], paragraphs: tuple[int, int], checks: DocumentChecks
) -> list[TranslatedParagraph]:
    """Paragraphs [first, last) of a streamed request, whose segments (up to `ends[last - 1]`) are all in."""
    first, last = paragraphs
    start = ends[first - 1] if first else 0
    parts = pieces_by_sentence(work.plan, work.filled(range(start, ends[last - 1])), start)
    return [assemble_paragraph(p, document.paragraphs[p], work.plan, parts, checks) for p in range(first, last)]


def pieces_by_sentence(
    plan: Plan, hypotheses: Sequence[Hypothesis], start: int = 0
) -> dict[tuple[int, int], list[tuple[Segment, Hypothesis]]]:
    """Each sentence's segments with their hypotheses; `hypotheses` are those of segments from `start`."""
    parts: dict[tuple[int, int], list[tuple[Segment, Hypothesis]]] = {}
    for seg, hyp in zip(plan.segments[start : start + len(hypotheses)], hypotheses, strict=True):
        parts.setdefault((seg.paragraph, seg.sentence), []).append((seg, hyp))
    return parts


@dataclass
class DocumentChecks:
    """What is checked across an article's sentences, in order: glossary terms kept, names' spellings."""

    occurrences: collections.Counter[str] = field(default_factory=collections.Counter)
    lost_terms: set[str] = field(default_factory=set)
    expanded_terms: collections.Counter[str] = field(default_factory=collections.Counter)  # sentences, per term
    names: NameTracker = field(default_factory=NameTracker)

    def terms(self, document: Document) -> tuple[TermReport, ...]:
        return tuple(
            TermReport(
                source, target, self.occurrences[source], source not in self.lost_terms, self.expanded_terms[source]
            )
            for source, target in document.terms.items()
        )


def assemble_paragraph(
    pi: int,
    source: str,
    plan: Plan,
    parts: Mapping[tuple[int, int], list[tuple[Segment, Hypothesis]]],
    checks: DocumentChecks,
) -> TranslatedParagraph:
    """One paragraph from its sentences' hypotheses, checked; counts its glossary terms and names."""
    occurrences, lost_terms = checks.occurrences, checks.lost_terms
    translated = []
    furniture = (Flag.BOILERPLATE,) if is_furniture(source) else ()
    for si, sentence in enumerate(plan.sentences[pi]):
        if sentence.prepared is None:
            passed = (*plan_flags(False, 0), *furniture)
            translated.append(TranslatedSentence(sentence.source, sentence.source, sentence.start, sentence.end,
                                                 passed, 1.0, 0))  # fmt: skip
            continue
        pieces = parts[(pi, si)]
        flags = list(plan_flags(True, len(pieces)))
        if any(h.capped for _, h in pieces):
            flags.append(Flag.OUTPUT_CAPPED)
        result = restore(" ".join(h.text for _, h in pieces if h.text), sentence.prepared.keeps)
        if result.restored:
            flags.append(Flag.PROTECTED_RESTORED)
        if any(k.term is None for k in result.lost):
            flags.append(Flag.PLACEHOLDER_LOST)
        if any(k.term is not None for k in result.lost):
            flags.append(Flag.TERM_LOST)
        if result.expanded:
            flags.append(Flag.TERM_EXPANDED)
            checks.expanded_terms.update({k.term for k in result.expanded if k.term is not None})
        for keep in sentence.prepared.keeps:
            if keep.term is not None:
                occurrences[keep.term] += 1
        lost_terms.update(k.term for k in result.lost if k.term is not None)
        source_tokens = sum(len(seg.tokens) for seg, _ in pieces)
        flags += quality_flags(result.text, source_tokens, sum(h.num_tokens for _, h in pieces))
        if not numbers_match(sentence.source, result.text):
            flags.append(Flag.NUMBER_MISMATCH)
        if checks.names.sentence(sentence.source, result.text):
            flags.append(Flag.NAME_VARIANT)
        flags += furniture
        confidence = min(h.confidence for _, h in pieces)
        translated.append(
            TranslatedSentence(
                sentence.source,
                result.text,
                sentence.start,
                sentence.end,
                tuple(flags),
                confidence,
                source_tokens,
            )
        )
    return TranslatedParagraph(
        index=pi,
        source=source,
        translation=" ".join(s.translation for s in translated if s.translation),
        sentences=tuple(translated),
    )

"""The gRPC servicer: proto in → domain objects → proto out, and errors → status codes. Nothing else."""

from __future__ import annotations

import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

import grpc

from tarjama import __version__
from tarjama.v1 import tarjama_pb2 as pb
from tarjama.v1 import tarjama_pb2_grpc as pb_grpc

from ..edges import auth
from ..edges.access_log import note
from ..edges.tracing import span
from ..engines.base import EngineInfo
from ..errors import FeatureUnavailable, NotReady, ShuttingDown, private_traceback, status_for
from ..models import public_model_id
from ..offload import off_loop, text_work
from ..pipeline import Document, Plan, TranslatedDocument, TranslatedParagraph, is_small
from ..runtime import Runtime
from ..settings import Settings
from ..summary import SourceSentence, Summarizer, Summary, sentences_of
from ..text.flags import Flag
from ..validation import document_from_request, page_to_extract, parsed, summary_length

log = logging.getLogger(__name__)
T = TypeVar("T")
FLAG_PB = {flag: pb.Sentence.Flag.Value(flag.value) for flag in Flag}
# A request up to this size is checked on the event loop (well under a millisecond); a larger one on a
# worker thread, so that no client's text holds up the others or the health checks.
INLINE_CHECK_BYTES = 16 * 1024


async def checked_document(
    request: pb.TranslateRequest | pb.SegmentRequest | pb.SummarizeRequest,
    settings: Settings,
    deadline: float | None = None,
) -> Document:
    extraction = None
    page = page_to_extract(request, settings)
    if page:
        from ..markup.extraction import extract  # in its own process and lane, not on the text-work pool

        extraction = await extract(page, deadline)
    small = request.ByteSize() <= INLINE_CHECK_BYTES
    return await text_work(small, document_from_request, request, settings, extraction)


def call_deadline(context: grpc.aio.ServicerContext) -> float | None:
    """The call's deadline as a time.monotonic() value (None: the client set none)."""
    remaining = context.time_remaining()
    return time.monotonic() + remaining if remaining is not None else None


def bounded(deadline: float | None, settings: Settings) -> float | None:
    """`deadline`, or --max-deadline-s from now if it is later: any door may bring any value (grpc's
    Python client sends up to about 10⁸ s), and nothing downstream should wait on a timer that far."""
    if deadline is None:
        return None
    latest = time.monotonic() + settings.max_deadline_s
    return deadline if deadline <= latest else latest  # nan too: it compares false


def note_document(document: Document) -> None:
    """The access line's share of a request: its id and sizes (never its text)."""
    note(
        document_id=document.id,
        paragraphs=len(document.paragraphs),
        characters=sum(len(p) for p in document.paragraphs),
    )


def english_sentences(result: TranslatedDocument) -> list[SourceSentence]:
    """The translation's sentences with their paragraph, for the summariser (page furniture left out)."""
    return [
        SourceSentence(p.index, s.translation)
        for p in result.paragraphs
        for s in p.sentences
        if s.translation and Flag.BOILERPLATE not in s.flags
    ]


def model_pb(info: EngineInfo) -> pb.ModelInfo:
    return pb.ModelInfo(
        role=info.role,
        id=info.id,
        revision=info.revision,
        path=info.path,
        engine=info.engine,
        device=info.device,
        compute_type=info.compute_type,
    )


def model_pbs(runtime: Runtime) -> list[pb.ModelInfo]:
    """The loaded models as the API reports them: the translation model first."""
    models = runtime.models
    if models is None:
        return []
    out = [model_pb(models.pipeline.engine.info)]
    summarizer = models.summarizer
    if summarizer is not None:
        engine = getattr(summarizer, "engine", None)
        if engine is not None:
            out.append(model_pb(engine.info))
        else:
            out.append(pb.ModelInfo(role="summary", id=summarizer.model, engine=summarizer.method, device="cpu"))
    return out


def without_path(model: pb.ModelInfo) -> pb.ModelInfo:
    """The model as a caller without a token sees it: no `path`, and a local directory's id by its name."""
    copy = pb.ModelInfo()
    copy.CopyFrom(model)
    copy.ClearField("path")
    copy.id = public_model_id(model.id)
    return copy


def decoding_pb(settings: Settings) -> pb.DecodingSettings:
    return pb.DecodingSettings(
        beam_size=settings.beam_size,
        max_output_tokens=settings.max_output_tokens,
        max_output_ratio=settings.max_output_ratio,
        max_output_offset=settings.max_output_offset,
    )


def summary_pb(summary: Summary | None) -> pb.Summary | None:
    if summary is None:
        return None
    return pb.Summary(
        text=summary.text,
        sentences=[
            pb.SummarySentence(text=s.text, paragraphs=s.paragraphs, score=s.score, unsupported=s.unsupported)
            for s in summary.sentences
        ],
        method=summary.method,
        model=summary.model,
    )


def paragraph_pb(p: TranslatedParagraph) -> pb.Paragraph:
    return pb.Paragraph(
        index=p.index,
        source=p.source,
        translation=p.translation,
        locator=p.locator,
        sentences=[
            pb.Sentence(
                source=s.source,
                translation=s.translation,
                source_start=s.start,
                source_end=s.end,
                flags=[FLAG_PB[f] for f in s.flags],
                confidence=s.confidence,
                source_tokens=s.source_tokens,
            )
            for s in p.sentences
        ],
    )


def info_pb(
    result: TranslatedDocument, model: pb.ModelInfo, settings: Settings, total_ms: float, summarize_ms: float
) -> pb.ResponseInfo:
    return pb.ResponseInfo(
        model=model,
        decoding=decoding_pb(settings),
        timings=pb.Timings(total_ms=total_ms, translate_ms=result.translate_ms, summarize_ms=summarize_ms),
        sentences=result.segments,
        source_tokens=result.source_tokens,
        output_tokens=result.output_tokens,
        cached_sentences=result.cached,
        flag_counts=result.flag_counts(),
        name_variants=[pb.NameVariant(source=v.source, renderings=v.renderings) for v in result.name_variants],
    )


def terms_pb(result: TranslatedDocument) -> list[pb.TermReport]:
    return [
        pb.TermReport(source=t.source, target=t.target, occurrences=t.occurrences, kept=t.kept) for t in result.terms
    ]


def response_pb(
    result: TranslatedDocument,
    model: pb.ModelInfo,
    settings: Settings,
    total_ms: float,
    summary: Summary | None,
    summarize_ms: float,
) -> pb.TranslateResponse:
    return pb.TranslateResponse(
        id=result.id,
        paragraphs=[paragraph_pb(p) for p in result.paragraphs],
        info=info_pb(result, model, settings, total_ms, summarize_ms),
        summary=summary_pb(summary),
        terms=terms_pb(result),
        html=result.html,
    )


def extraction_pb(article) -> pb.Extraction:  # noqa: ANN001 - extraction.ExtractedArticle
    return pb.Extraction(title=article.title, author=article.author, date=article.date, dropped=article.dropped)


def last_stream_pb(
    result: TranslatedDocument,
    model: pb.ModelInfo,
    settings: Settings,
    total_ms: float,
    summary: Summary | None,
    summarize_ms: float,
) -> pb.TranslateStreamResponse:
    """What ends a TranslateStream: everything Translate returns beside the paragraphs."""
    return pb.TranslateStreamResponse(
        id=result.id,
        done=True,
        info=info_pb(result, model, settings, total_ms, summarize_ms),
        summary=summary_pb(summary),
        terms=terms_pb(result),
        html=result.html,
    )


def segment_pb(document: Document, plan: Plan) -> pb.SegmentResponse:
    tokens: collections.Counter[tuple[int, int]] = collections.Counter()
    parts: collections.Counter[tuple[int, int]] = collections.Counter()
    for seg in plan.segments:
        tokens[(seg.paragraph, seg.sentence)] += len(seg.tokens)
        parts[(seg.paragraph, seg.sentence)] += 1
    paragraphs = []
    for pi, source in enumerate(document.paragraphs):
        sentences = []
        for si, s in enumerate(plan.sentences[pi]):
            flags = [Flag.PASSTHROUGH] if s.prepared is None else ([Flag.SPLIT] if parts[(pi, si)] > 1 else [])
            sentences.append(
                pb.Sentence(
                    source=s.source,
                    source_start=s.start,
                    source_end=s.end,
                    source_tokens=tokens[(pi, si)],
                    flags=[FLAG_PB[f] for f in flags],
                )
            )
        paragraphs.append(pb.Paragraph(index=pi, source=source, sentences=sentences))
    return pb.SegmentResponse(id=document.id, paragraphs=paragraphs, source_tokens=sum(tokens.values()))


class TranslatorServicer(pb_grpc.TranslatorServicer):
    """tarjama.v1.Translator over a Runtime that holds the loaded pipeline."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._model_pbs: list[pb.ModelInfo] | None = None
        self._public_model_pbs: list[pb.ModelInfo] = []

    def _models(self) -> list[pb.ModelInfo]:
        """Built once the models are loaded, then read by every response. Where the weights live on
        the server (`path`) is shown only to a caller who presented a token."""
        if self._model_pbs is None and self._runtime.models is not None:
            self._model_pbs = model_pbs(self._runtime)
            self._public_model_pbs = [without_path(m) for m in self._model_pbs]
        if self._runtime.auth and auth.caller.get():
            return self._model_pbs or []
        return self._public_model_pbs

    async def Translate(self, request: pb.TranslateRequest, context: grpc.aio.ServicerContext) -> pb.TranslateResponse:
        return await self._answer(context, lambda: self._translate(request, context))

    async def GetInfo(self, request: pb.GetInfoRequest, context: grpc.aio.ServicerContext) -> pb.GetInfoResponse:
        return await self._answer(context, lambda: self._info(request))

    async def _info(self, request: pb.GetInfoRequest) -> pb.GetInfoResponse:
        parsed(request)
        settings = self._runtime.settings
        return pb.GetInfoResponse(
            server_version=__version__,
            models=self._models(),
            decoding=decoding_pb(settings),
            limits=pb.Limits(
                max_characters=settings.max_characters,
                max_paragraphs=settings.max_paragraphs,
                max_message_bytes=settings.max_message_bytes,
                max_glossary_terms=settings.max_glossary_terms,
                max_term_characters=settings.max_term_characters,
                max_id_characters=settings.max_id_characters,
                max_deadline_s=settings.max_deadline_s,
                max_http_connections=settings.max_http_connections if settings.http_port else 0,
                http_header_timeout_s=settings.http_header_timeout_s if settings.http_port else 0,
                http_body_timeout_s=settings.http_body_timeout_s if settings.http_port else 0,
            ),
            stats=self._stats(),
            parallelism=self._parallelism(),
        )

    def _parallelism(self) -> pb.Parallelism:
        pipeline = self._runtime.pipeline
        if pipeline is None:
            return pb.Parallelism()
        plan, limits = pipeline.engine.parallelism, pipeline.batcher.limits
        return pb.Parallelism(
            workers=pipeline.batcher.workers,
            threads_per_worker=plan.threads_per_worker,
            max_batch_size=limits.max_batch_size,
            max_batch_tokens=limits.max_batch_tokens,
            device=plan.device,
            device_indices=list(plan.device_indices) if plan.device != "cpu" else [],
            chosen_by=plan.chosen_by,
        )

    def _stats(self) -> pb.ServerStats:
        s = self._runtime.stats()  # the same snapshot the metrics exporter reads
        return pb.ServerStats(
            requests=s.requests,
            batches=s.batches,
            batched_sentences=s.batched_sentences,
            batch_sizes=s.batch_sizes,
            source_tokens=s.source_tokens,
            padded_source_tokens=s.padded_source_tokens,
            output_tokens=s.output_tokens,
            cache_hits=s.cache_hits,
            cache_misses=s.cache_misses,
            queued_tokens=s.queued_tokens,
            overloaded=s.overloaded,
            shed=s.shed,
            delivered_sentences=s.delivered_sentences,
        )

    async def Segment(self, request: pb.SegmentRequest, context: grpc.aio.ServicerContext) -> pb.SegmentResponse:
        return await self._answer(context, lambda: self.segment(request))

    async def segment(self, request: pb.SegmentRequest) -> pb.SegmentResponse:
        """One Segment without gRPC (the HTTP API calls it too)."""
        document = await checked_document(parsed(request), self._runtime.settings)
        note_document(document)
        pipeline = self._ready_pipeline()
        return await off_loop(lambda: segment_pb(document, pipeline.plan(document)))  # one hop for both

    async def _translate(self, request: pb.TranslateRequest, context: grpc.aio.ServicerContext) -> pb.TranslateResponse:
        return await self.translate(request, call_deadline(context))

    async def translate(self, request: pb.TranslateRequest, deadline: float | None) -> pb.TranslateResponse:
        """One Translate without gRPC: the RPC's work, also what `tarjama bulk`'s actors call in-process.

        Raises the domain errors of errors.py; `deadline` is a time.monotonic() value or None.
        """
        started = time.perf_counter()
        deadline = bounded(deadline, self._runtime.settings)
        document, summary_asked = await self._translation_request(request, deadline)
        result = await self._ready_pipeline().translate(document, deadline)
        if document.markup is not None:
            from ..markup.html import translated

            result = await text_work(is_small(document), translated, document.markup, result)
        response = await self._complete(started, document, result, summary_asked, deadline, response_pb)
        if document.extraction is not None:
            response.extraction.CopyFrom(extraction_pb(document.extraction))
        return response

    async def TranslateStream(
        self, request: pb.TranslateRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.TranslateStreamResponse]:
        self._runtime.in_flight += 1
        try:
            async for message in self.translate_stream(request, call_deadline(context)):
                yield message
        except Exception as exc:
            await self._abort(context, exc)
        finally:
            self._runtime.in_flight -= 1

    async def translate_stream(
        self, request: pb.TranslateRequest, deadline: float | None
    ) -> AsyncIterator[pb.TranslateStreamResponse]:
        """TranslateStream without gRPC: a message per paragraph as it is done, in order, then the rest."""
        started = time.perf_counter()
        deadline = bounded(deadline, self._runtime.settings)
        document, summary_asked = await self._translation_request(request, deadline)
        small = is_small(document)
        markup = None
        if document.markup is not None:
            from ..markup.html import HtmlTranslation

            markup = HtmlTranslation(document.markup)
        result, sent = None, []
        # aclosing: a consumer that stops early (an HTTP client gone) closes the pipeline's stream now,
        # which drops its queued sentences, rather than whenever the generator is collected.
        async with contextlib.aclosing(self._ready_pipeline().translate_stream(document, deadline)) as parts:
            async for part in parts:
                if isinstance(part, TranslatedDocument):
                    result = part
                    continue
                if markup is not None:  # its locator and markup flags, as it comes
                    part = await text_work(small, markup.paragraph, part)
                    sent.append(part)
                yield pb.TranslateStreamResponse(id=document.id, paragraphs=[paragraph_pb(part)])
        assert result is not None  # the pipeline ends every stream with the document
        if markup is not None:
            result = replace(result, paragraphs=tuple(sent), html=await text_work(small, markup.finish, sent))
        last = await self._complete(started, document, result, summary_asked, deadline, last_stream_pb)
        if document.extraction is not None:
            last.extraction.CopyFrom(extraction_pb(document.extraction))
        yield last

    async def _translation_request(
        self, request: pb.TranslateRequest, deadline: float | None
    ) -> tuple[Document, tuple[str, int] | None]:
        """The request checked: its document, and the summary length it asks for (None: no summary)."""
        document = await checked_document(parsed(request), self._runtime.settings, deadline)
        note_document(document)
        summary_asked = summary_length(request.options) if request.summarize else None
        self._ready_pipeline()
        if summary_asked is not None:
            self._summarizer()  # refused before any translation when the server has no summariser
        return document, summary_asked

    async def _complete(
        self,
        started: float,
        document: Document,
        result: TranslatedDocument,
        summary_asked: tuple[str, int] | None,
        deadline: float | None,
        build: Callable[..., T],
    ) -> T:
        """The summary (when asked for) of a translated document, and the response `build` makes."""
        note(tokens_in=result.source_tokens, tokens_out=result.output_tokens, queue_ms=round(result.queue_ms, 1))
        small = is_small(document)
        summary, summarize_ms = None, 0.0
        if summary_asked is not None:
            summarize_started = time.perf_counter()
            with span("tarjama.summary"):
                english = await text_work(small, english_sentences, result)
                summary = await self._summarizer().summarize(english, *summary_asked, deadline)
            summarize_ms = (time.perf_counter() - summarize_started) * 1000
            self._runtime.observer.summary(summarize_ms / 1000)
        total_ms = (time.perf_counter() - started) * 1000
        model, settings = self._models()[0], self._runtime.settings
        return await text_work(small, build, result, model, settings, total_ms, summary, summarize_ms)

    async def Summarize(self, request: pb.SummarizeRequest, context: grpc.aio.ServicerContext) -> pb.SummarizeResponse:
        deadline = call_deadline(context)
        return await self._answer(context, lambda: self.summarize(request, deadline))

    async def summarize(self, request: pb.SummarizeRequest, deadline: float | None) -> pb.SummarizeResponse:
        """One Summarize without gRPC (the HTTP API calls it too)."""
        started = time.perf_counter()
        deadline = bounded(deadline, self._runtime.settings)
        document = await checked_document(parsed(request), self._runtime.settings)
        note_document(document)
        length, count = summary_length(request)
        self._ready_pipeline()
        summarizer = self._summarizer()
        with span("tarjama.summary"):
            sentences = await text_work(is_small(document), sentences_of, document.paragraphs)
            summary = await summarizer.summarize(sentences, length, count, deadline)
        elapsed = (time.perf_counter() - started) * 1000
        self._runtime.observer.summary(elapsed / 1000)
        return pb.SummarizeResponse(
            id=document.id, summary=summary_pb(summary), timings=pb.Timings(total_ms=elapsed, summarize_ms=elapsed)
        )

    def _summarizer(self) -> Summarizer:
        summarizer = self._runtime.summarizer
        if summarizer is None:
            raise FeatureUnavailable(
                "this server runs without a summariser (--summary-model none); "
                "send the request without summarize, or start it with --summary-model extractive"
            )
        return summarizer

    async def _answer(self, context: grpc.aio.ServicerContext, call: Callable[[], Awaitable[T]]) -> T:
        """Run a handler, counted as in flight; map domain errors to their status, log anything unexpected."""
        self._runtime.in_flight += 1
        try:
            return await call()
        except Exception as exc:
            await self._abort(context, exc)
            raise  # unreachable: abort raises
        finally:
            self._runtime.in_flight -= 1

    async def _abort(self, context: grpc.aio.ServicerContext, exc: Exception) -> None:
        """End the call with the status for `exc`; anything unexpected is logged (without its message)."""
        code, message = status_for(exc)
        if code == grpc.StatusCode.INTERNAL:
            log.error("request failed: %s", private_traceback(exc))
        await context.abort(code, message)

    def _ready_pipeline(self):  # type: ignore[no-untyped-def]
        if self._runtime.shutting_down:
            raise ShuttingDown("the server is shutting down; retry on another instance")
        if self._runtime.pipeline is None:
            raise NotReady("the models are still loading; retry when health reports SERVING")
        return self._runtime.pipeline

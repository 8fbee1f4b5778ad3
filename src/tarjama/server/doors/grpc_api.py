"""The gRPC door: proto in → an admitted request → the pipeline → proto out, and errors → status codes.

Translate is TranslateStream collected: one path, from the document stage through the pipeline, the
batcher and the engine, whichever way the answer leaves. The HTTP door and `tarjama bulk` call the
same methods in-process (`translate`, `translate_stream`, `segment`, `summarize`).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import grpc

from tarjama import __version__
from tarjama.v1 import tarjama_pb2 as pb
from tarjama.v1 import tarjama_pb2_grpc as pb_grpc

from ..document import Document, PageExtraction, TranslatedDocument, TranslatedParagraph
from ..edges import auth
from ..edges.access_log import note
from ..edges.interception import Context
from ..edges.tracing import span
from ..engines.base import EngineInfo
from ..errors import FeatureUnavailable, NotReady, ShuttingDown, private_traceback, status_for
from ..glossaries import Glossaries, StoredGlossary
from ..glossaries.service import MAX_NAME_CHARACTERS
from ..models import public_model_id
from ..offload import text_work
from ..pipeline import TranslationPipeline
from ..request import INLINE_TERMS, ArticleRequest, admit
from ..runtime import Runtime
from ..settings import Settings
from ..summary import SourceSentence, Summarizer, Summary, sentences_of
from ..text.flags import Flag, plan_flags
from .grpc_wire import parsed

log = logging.getLogger(__name__)
# The proto's numbers of the flags (its stubs type them as the enum, the runtime gives ints).
FLAG_PB = cast("dict[Flag, pb.Sentence.Flag]", {flag: pb.Sentence.Flag.Value(flag.value) for flag in Flag})


@dataclass(frozen=True)
class Answer:
    """A translated request, with its summary when one was asked for."""

    request: ArticleRequest
    result: TranslatedDocument
    summary: Summary | None = None
    summarize_ms: float = 0.0


def call_deadline(context: Context) -> float | None:
    """The call's deadline as a time.monotonic() value (None: the client set none)."""
    remaining = context.time_remaining()
    return time.monotonic() + remaining if remaining is not None else None


def english_sentences(result: TranslatedDocument) -> list[SourceSentence]:
    """The translation's sentences with their paragraph, for the summariser (page furniture left out)."""
    return [
        SourceSentence(p.index, s.translation)
        for p in result.paragraphs
        for s in p.sentences
        if s.translation and Flag.BOILERPLATE not in s.flags
    ]


def model_pb(info: EngineInfo, **extra: Any) -> pb.ModelInfo:
    return pb.ModelInfo(
        role=info.role,
        id=info.id,
        revision=info.revision,
        path=info.path,
        engine=info.engine,
        device=info.device,
        compute_type=info.compute_type,
        **extra,
    )


def parallelism_pb(pipeline: TranslationPipeline) -> pb.Parallelism:
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


def model_pbs(runtime: Runtime) -> list[pb.ModelInfo]:
    """The loaded models as the API reports them: the translation models (the default first), then the
    summariser."""
    models = runtime.models
    if models is None:
        return []
    out = [
        model_pb(p.engine.info, name=name, is_default=p is models.pipeline, parallelism=parallelism_pb(p))
        for name, p in models.pipelines.items()
    ]
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
        pb.TermReport(source=t.source, target=t.target, occurrences=t.occurrences, kept=t.kept, expanded=t.expanded)
        for t in result.terms
    ]


def closing_fields(answer: Answer, model: pb.ModelInfo, settings: Settings) -> dict[str, Any]:
    """What a Translate response and a stream's last message both carry beside the paragraphs."""
    result = answer.result
    total_ms = (time.perf_counter() - answer.request.started) * 1000
    fields: dict[str, Any] = dict(
        id=result.id,
        info=info_pb(result, model, settings, total_ms, answer.summarize_ms),
        summary=summary_pb(answer.summary),
        terms=terms_pb(result),
        html=result.html,
    )
    if result.extraction is not None:
        fields["extraction"] = extraction_pb(result.extraction)
    return fields


def response_pb(answer: Answer, model: pb.ModelInfo, settings: Settings) -> pb.TranslateResponse:
    paragraphs = [paragraph_pb(p) for p in answer.result.paragraphs]
    return pb.TranslateResponse(paragraphs=paragraphs, **closing_fields(answer, model, settings))


def last_stream_pb(answer: Answer, model: pb.ModelInfo, settings: Settings) -> pb.TranslateStreamResponse:
    """What ends a TranslateStream: everything Translate returns beside the paragraphs."""
    return pb.TranslateStreamResponse(done=True, **closing_fields(answer, model, settings))


def stream_pbs(id: str, paragraphs: list[TranslatedParagraph]) -> list[pb.TranslateStreamResponse]:
    return [pb.TranslateStreamResponse(id=id, paragraphs=[paragraph_pb(p)]) for p in paragraphs]


def extraction_pb(found: PageExtraction) -> pb.Extraction:
    return pb.Extraction(title=found.title, author=found.author, date=found.date, dropped=found.dropped)


def segment_pb(document: Document, pipeline: TranslationPipeline) -> pb.SegmentResponse:
    plan = pipeline.plan(document)
    tokens: collections.Counter[tuple[int, int]] = collections.Counter()
    parts: collections.Counter[tuple[int, int]] = collections.Counter()
    for seg in plan.segments:
        tokens[(seg.paragraph, seg.sentence)] += len(seg.tokens)
        parts[(seg.paragraph, seg.sentence)] += 1
    paragraphs = []
    for pi, source in enumerate(document.paragraphs):
        sentences = []
        for si, s in enumerate(plan.sentences[pi]):
            flags = plan_flags(s.prepared is not None, parts[(pi, si)])
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

    def _model(self, name: str) -> pb.ModelInfo:
        """The translation model named `name`, as the caller may see it (every response says which
        model translated it)."""
        return next(m for m in self._models() if m.role == "translation" and m.name == name)

    # -- the RPCs: each one call at the door, with its status on failure -------------------------------

    async def Translate(self, request: pb.TranslateRequest, context: Context) -> pb.TranslateResponse:
        async with self._door(context):
            return await self.translate(request, call_deadline(context))
        raise AssertionError("unreachable: the door aborts the call on any error")

    async def TranslateStream(
        self, request: pb.TranslateRequest, context: Context
    ) -> AsyncIterator[pb.TranslateStreamResponse]:
        async with self._door(context):
            async for message in self.translate_stream(request, call_deadline(context)):
                yield message

    async def Segment(self, request: pb.SegmentRequest, context: Context) -> pb.SegmentResponse:
        async with self._door(context):
            return await self.segment(request)
        raise AssertionError("unreachable: the door aborts the call on any error")

    async def Summarize(self, request: pb.SummarizeRequest, context: Context) -> pb.SummarizeResponse:
        async with self._door(context):
            return await self.summarize(request, call_deadline(context))
        raise AssertionError("unreachable: the door aborts the call on any error")

    async def GetInfo(self, request: pb.GetInfoRequest, context: Context) -> pb.GetInfoResponse:
        async with self._door(context):
            return self.info(request)
        raise AssertionError("unreachable: the door aborts the call on any error")

    async def CreateGlossary(self, request: pb.CreateGlossaryRequest, context: Context) -> pb.Glossary:
        async with self._door(context):
            return await self.create_glossary(request)
        raise AssertionError("unreachable: the door aborts the call on any error")

    async def ListGlossaries(self, request: pb.ListGlossariesRequest, context: Context) -> pb.ListGlossariesResponse:
        async with self._door(context):
            return await self.list_glossaries(request)
        raise AssertionError("unreachable: the door aborts the call on any error")

    async def GetGlossary(self, request: pb.GetGlossaryRequest, context: Context) -> pb.Glossary:
        async with self._door(context):
            return await self.get_glossary(request)
        raise AssertionError("unreachable: the door aborts the call on any error")

    async def DeleteGlossary(self, request: pb.DeleteGlossaryRequest, context: Context) -> pb.DeleteGlossaryResponse:
        async with self._door(context):
            return await self.delete_glossary(request)
        raise AssertionError("unreachable: the door aborts the call on any error")

    @contextlib.asynccontextmanager
    async def _door(self, context: Context) -> AsyncIterator[None]:
        """One RPC: counted as in flight; a domain error ends it with its status, anything unexpected is
        logged (without its message, which may quote the article) and ends it with INTERNAL."""
        with self._runtime.counted():
            try:
                yield
            except Exception as exc:
                code, message = status_for(exc)
                if code == grpc.StatusCode.INTERNAL:
                    log.error("request failed: %s", private_traceback(exc))
                await context.abort(code, message)

    # -- the work, door-neutral: the HTTP door and `tarjama bulk` call these in-process ---------------

    def info(self, request: pb.GetInfoRequest) -> pb.GetInfoResponse:
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
                max_glossaries=settings.max_glossaries,
                max_glossary_name_characters=MAX_NAME_CHARACTERS,
            ),
            stats=self._stats(),
            parallelism=self._parallelism(),
        )

    def _parallelism(self) -> pb.Parallelism:
        """The default model's (each model's is in its ModelInfo)."""
        pipeline = self._runtime.pipeline
        return pb.Parallelism() if pipeline is None else parallelism_pb(pipeline)

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

    async def translate(self, request: pb.TranslateRequest, deadline: float | None) -> pb.TranslateResponse:
        """One Translate: the stream's path, answered once it is through. Raises the domain errors of
        errors.py; `deadline` is a time.monotonic() value or None."""
        admitted = await admit(parsed(request), self._settings, deadline, self._runtime.glossaries)
        async with contextlib.aclosing(self._translated(admitted, in_order=False)) as parts:
            async for part in parts:
                if isinstance(part, Answer):  # its document holds every paragraph, as the stream gave them
                    model = self._model(admitted.model)
                    return await text_work(admitted.small, response_pb, part, model, self._settings)
        raise AssertionError("a translation ends with its answer")

    async def translate_stream(
        self, request: pb.TranslateRequest, deadline: float | None
    ) -> AsyncGenerator[pb.TranslateStreamResponse, None]:
        """One TranslateStream: a message per paragraph as it is done, in order, then the rest."""
        admitted = await admit(parsed(request), self._settings, deadline, self._runtime.glossaries)
        # aclosing: a consumer that stops early (an HTTP client gone) closes the pipeline's stream now,
        # which drops its queued sentences, rather than whenever the generator is collected.
        async with contextlib.aclosing(self._translated(admitted, in_order=True)) as parts:
            async for part in parts:
                if isinstance(part, Answer):
                    model = self._model(admitted.model)
                    yield await text_work(admitted.small, last_stream_pb, part, model, self._settings)
                    return
                for message in await text_work(admitted.small, stream_pbs, admitted.document.id, part):
                    yield message

    async def _translated(
        self, request: ArticleRequest, *, in_order: bool
    ) -> AsyncGenerator[list[TranslatedParagraph] | Answer, None]:
        """The one path of a translation: the pipeline's paragraphs put back as they came (the document
        stage's rendering), then the whole document with its summary. `in_order`: for a reader who
        starts at the top, the batcher takes the sentences in reading order."""
        pipeline, summarizer = self._ready(request)
        stream = pipeline.translate_stream(request.document, request.deadline, small=request.small, in_order=in_order)
        async with contextlib.aclosing(stream) as parts:
            async for part in parts:
                if isinstance(part, TranslatedDocument):
                    result = part
                    break
                yield await request.rendering.paragraphs(part, request.small)
            else:
                raise AssertionError("the pipeline ends every translation with its document")
        result = await request.rendering.finish(result, request.small)
        note(tokens_in=result.source_tokens, tokens_out=result.output_tokens, queue_ms=round(result.queue_ms, 1))
        if summarizer is None:
            yield Answer(request, result)
            return
        started = time.perf_counter()
        with span("tarjama.summary"):
            english = await text_work(request.small, english_sentences, result)
            summary = await summarizer.summarize(english, *summary_args(request), request.deadline)
        summarize_s = time.perf_counter() - started
        self._runtime.observer.summary(summarize_s)
        yield Answer(request, result, summary, summarize_s * 1000)

    async def segment(self, request: pb.SegmentRequest) -> pb.SegmentResponse:
        """One Segment: the document planned as the pipeline would, without translating it."""
        admitted = await admit(parsed(request), self._settings, None)
        pipeline, _ = self._ready(admitted)
        return await text_work(admitted.small, segment_pb, admitted.document, pipeline)

    async def summarize(self, request: pb.SummarizeRequest, deadline: float | None) -> pb.SummarizeResponse:
        """One Summarize: the text's sentences (English, as the .proto says), summarised."""
        admitted = await admit(parsed(request), self._settings, deadline)
        _, summarizer = self._ready(admitted)
        assert summarizer is not None  # a Summarize always asks for a summary
        with span("tarjama.summary"):
            sentences = await text_work(admitted.small, sentences_of, admitted.document.paragraphs)
            summary = await summarizer.summarize(sentences, *summary_args(admitted), admitted.deadline)
        elapsed = (time.perf_counter() - admitted.started) * 1000
        self._runtime.observer.summary(elapsed / 1000)
        return pb.SummarizeResponse(
            id=admitted.document.id,
            summary=summary_pb(summary),
            timings=pb.Timings(total_ms=elapsed, summarize_ms=elapsed),
        )

    # -- stored glossaries: shared by every door (the DeepL-compatible routes call these too) ----------

    async def create_glossary(self, request: pb.CreateGlossaryRequest) -> pb.Glossary:
        parsed(request)
        auth.require_right("glossaries", "creating a glossary")
        small = len(request.entries) <= INLINE_TERMS  # a large one is read and written out off the loop
        entries = await text_work(small, entry_pairs, request)
        pair = (request.source_lang, request.target_lang)
        created = await self._glossaries().create(request.name, entries, pair, auth.caller.get())
        note(glossary=created.id, terms=created.entry_count)
        return await text_work(small, glossary_pb, created)

    async def list_glossaries(self, request: pb.ListGlossariesRequest) -> pb.ListGlossariesResponse:
        parsed(request)
        found = await self._glossaries().list()
        return pb.ListGlossariesResponse(glossaries=[glossary_pb(g) for g in found])

    async def get_glossary(self, request: pb.GetGlossaryRequest) -> pb.Glossary:
        parsed(request)
        found = await self._glossaries().get(request.glossary_id, with_entries=request.include_entries)
        return await text_work(found.entry_count <= INLINE_TERMS, glossary_pb, found)

    async def delete_glossary(self, request: pb.DeleteGlossaryRequest) -> pb.DeleteGlossaryResponse:
        parsed(request)
        auth.require_right("glossaries", "deleting a glossary")
        await self._glossaries().delete(request.glossary_id)
        note(glossary=request.glossary_id[:64])
        return pb.DeleteGlossaryResponse()

    def _glossaries(self) -> Glossaries:
        if self._runtime.glossaries is None:
            raise FeatureUnavailable("this server keeps no stored glossaries")
        return self._runtime.glossaries

    @property
    def _settings(self) -> Settings:
        return self._runtime.settings

    def _ready(self, request: ArticleRequest) -> tuple[TranslationPipeline, Summarizer | None]:
        """The pipeline, and the summariser when the request asks for a summary; refused (before any
        work) while the server loads or drains, or when it has no summariser."""
        if self._runtime.shutting_down:
            raise ShuttingDown("the server is shutting down; retry on another instance")
        models = self._runtime.models
        if models is None:
            raise NotReady("the models are still loading; retry when health reports SERVING")
        pipeline = models.pipelines[request.model]  # admit() checked the name against the settings
        if request.summary is None:
            return pipeline, None
        summarizer = self._runtime.summarizer
        if summarizer is None:
            raise FeatureUnavailable(
                "this server runs without a summariser (--summary-model none); "
                "send the request without summarize, or start it with --summary-model extractive"
            )
        return pipeline, summarizer


def entry_pairs(request: pb.CreateGlossaryRequest) -> list[tuple[str, str]]:
    return [(entry.source, entry.target) for entry in request.entries]


def glossary_pb(glossary: StoredGlossary) -> pb.Glossary:
    return pb.Glossary(
        glossary_id=glossary.id,
        name=glossary.name,
        source_lang=glossary.source_lang,
        target_lang=glossary.target_lang,
        entry_count=glossary.entry_count,
        creation_time=glossary.created_at,
        entries=[pb.GlossaryEntry(source=source, target=target) for source, target in glossary.entries],
        created_by=glossary.created_by,
    )


def summary_args(request: ArticleRequest) -> tuple[str, int]:
    assert request.summary is not None
    return request.summary.length, request.summary.sentences

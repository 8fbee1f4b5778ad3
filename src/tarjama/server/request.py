"""A request as a door admits it: checked, read into its document, and built once.

Every door (gRPC, HTTP, `tarjama bulk` in-process) makes its `ArticleRequest` with `admit`, and every
later step reads it: the document and how its English goes back out, the summary asked for, the
deadline (bounded by --max-deadline-s), whether the request is small enough for its text work to run
on the event loop, and when it started.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from tarjama.v1 import tarjama_pb2 as pb

from . import document_stage
from .document import Document
from .document_stage import ArticleMessage, Rendering
from .edges.access_log import note
from .errors import FeatureUnavailable
from .glossaries import Glossaries
from .settings import Settings
from .validation import model_name, summary_length

# A request up to this size has its text work (checks, planning, building the answer) done on the event
# loop, where it takes well under a millisecond, less than the hop to a worker thread; anything larger
# runs on the text-work threads, so that no client's article holds up the others or the health checks.
# Decided once, at the door: its parsing by the bytes the client sent, everything after by the
# characters the text work may handle once a glossary has put its targets in (`text_work_size`). Even a
# small request's work leaves the loop when the loop's inline budget is spent (offload.InlineBudget).
INLINE_BYTES = 4 * 1024
INLINE_TERMS = 16  # compiling a larger glossary takes a millisecond or more


@dataclass(frozen=True)
class SummaryAsk:
    """The summary a request asks for: a SummaryLength name, and a sentence budget (0: the length's)."""

    length: str
    sentences: int


@dataclass(frozen=True)
class ArticleRequest:
    """One Translate, TranslateStream, Segment or Summarize, admitted."""

    document: Document
    rendering: Rendering  # puts the English back as it came: text, HTML or a saved page
    summary: SummaryAsk | None  # None: no summary asked for
    deadline: float | None  # a time.monotonic() value; None: the client set none
    small: bool  # its text work runs on the event loop (INLINE_BYTES, INLINE_TERMS)
    started: float  # time.perf_counter() when the door admitted it
    model: str  # the name of the translation model that translates it (options.model, or the default)


def is_small(size_bytes: int) -> bool:
    """Whether a request (or a body) of `size_bytes` is small enough for its text work to run in place."""
    return size_bytes <= INLINE_BYTES


def text_work_size(document: Document) -> int:
    """The most characters the text work of `document` may handle: its own, and what its glossary's
    targets can add, each occurrence of a term taking at least the shortest term's characters. A 4 KB
    request whose one-letter term has a 150-character target is 390 KB of English to plan, check and
    write (found by an attacker: done in place, it held health checks for 290 ms)."""
    characters = document.characters
    if not document.terms:
        return characters
    shortest = min(len(term) for term in document.terms)
    longest = max(len(target) for target in document.terms.values())
    return characters + characters // max(1, shortest) * longest


def bounded(deadline: float | None, settings: Settings) -> float | None:
    """`deadline`, or --max-deadline-s from now if it is later: any door may bring any value (grpc's
    Python client sends up to about 10⁸ s), and nothing downstream should wait on a timer that far."""
    if deadline is None:
        return None
    latest = time.monotonic() + settings.max_deadline_s
    return deadline if deadline <= latest else latest  # nan too: it compares false


async def admit(
    message: ArticleMessage, settings: Settings, deadline: float | None, glossaries: Glossaries | None = None
) -> ArticleRequest:
    """The request checked (InvalidRequest naming the field otherwise) and its article read, with the
    stored glossary it names (`options.glossary_id`) under its own terms; noted in the access line by
    id and sizes, never by its text."""
    started = time.perf_counter()
    deadline = bounded(deadline, settings)
    stored: dict[str, str] = {}
    # Segment and Summarize name no model: the default's segmentation (its tokens) answers them.
    if isinstance(message, pb.TranslateRequest):
        model = model_name(message.options, settings)
        if message.options.glossary_id:
            stored = await stored_terms(message.options.glossary_id, glossaries)
    else:
        model = settings.translation_models()[0].name
    parsed_in_place = is_small(message.ByteSize())
    document, rendering = await document_stage.read(message, settings, deadline, parsed_in_place, stored)
    note(document_id=document.id, paragraphs=len(document.paragraphs), characters=document.characters)
    if isinstance(message, pb.TranslateRequest):
        note(model=model)  # a name from the server's own flags, never the client's text
    small = parsed_in_place and len(document.terms) <= INLINE_TERMS and text_work_size(document) <= INLINE_BYTES
    return ArticleRequest(document, rendering, summary_asked(message), deadline, small, started, model)


async def stored_terms(glossary_id: str, glossaries: Glossaries | None) -> dict[str, str]:
    """The entries of the stored glossary a Translate names (NotFound, StoreUnavailable otherwise)."""
    if glossaries is None:
        raise FeatureUnavailable("options.glossary_id: this server keeps no stored glossaries")
    terms = await glossaries.terms(glossary_id)
    note(glossary=glossary_id[:64])  # a server-made id, not the client's text
    return terms


def summary_asked(message: ArticleMessage) -> SummaryAsk | None:
    """The summary length a request asks for, checked; None for a Translate without `summarize`."""
    if isinstance(message, pb.SummarizeRequest):
        return SummaryAsk(*summary_length(message))
    if isinstance(message, pb.TranslateRequest) and message.summarize:
        return SummaryAsk(*summary_length(message.options))
    return None

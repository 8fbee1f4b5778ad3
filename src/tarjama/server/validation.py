"""Everything a client sends, parsed and checked before any work: bytes → message → Document.

A request that cannot be parsed (truncated, invalid UTF-8 in a string, a length prefix past the end)
or that asks for something out of range is the client's mistake: it gets INVALID_ARGUMENT with one
line naming the field, and the server logs no traceback. Only what the request uses is checked (a
summary length matters only when a summary is asked for).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from tarjama.v1 import tarjama_pb2 as pb

from .errors import InvalidRequest
from .pipeline import Document
from .settings import Settings
from .text.rules import normalize
from .text.segmentation import split_paragraphs

if TYPE_CHECKING:
    from .markup.extraction import ExtractedArticle

log = logging.getLogger(__name__)

SERVICE = pb.DESCRIPTOR.services_by_name["Translator"]
MAX_SUMMARY_SENTENCES = 50
SUMMARY_LENGTHS = {v.number: v.name for v in pb.SummaryLength.DESCRIPTOR.values}


@dataclass(frozen=True)
class Malformed:
    """What the deserializer hands the servicer for bytes that are not a valid request message."""

    message: str


def lenient_parser(message_class: Any) -> Callable[[bytes], Any]:
    """A request deserializer that never raises: gRPC would answer UNKNOWN and log a traceback."""

    def parse(data: bytes) -> Any:
        try:
            return message_class.FromString(data)
        except Exception:  # DecodeError, and anything else the parser may raise on hostile bytes
            name = message_class.DESCRIPTOR.full_name
            problem = wire_problem(message_class.DESCRIPTOR, data)
            log.debug("unparseable %s (%d bytes): %s", name, len(data), problem)
            return Malformed(f"the request is not a valid {name}: {problem}")

    return parse


def add_translator_service(servicer: Any, server: grpc.aio.Server) -> None:
    """Register tarjama.v1.Translator as the generated code would, but with lenient deserializers."""
    handlers = {}
    for method in SERVICE.methods:
        request_class = getattr(pb, method.input_type.name)
        response_class = getattr(pb, method.output_type.name)
        kind = grpc.unary_stream_rpc_method_handler if method.server_streaming else grpc.unary_unary_rpc_method_handler
        handlers[method.name] = kind(
            getattr(servicer, method.name),
            request_deserializer=lenient_parser(request_class),
            response_serializer=response_class.SerializeToString,
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),))
    server.add_registered_method_handlers(SERVICE.full_name, handlers)


def parsed(request: Any) -> Any:
    """The request, or InvalidRequest if its bytes could not be parsed."""
    if isinstance(request, Malformed):
        raise InvalidRequest(request.message)
    return request


# -- where a message's bytes go wrong -----------------------------------------------------------------


class _Truncated(Exception):
    pass


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data):
            raise _Truncated
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7
        if shift >= 70:
            raise _Truncated


def wire_problem(descriptor: Descriptor, data: bytes, prefix: str = "", depth: int = 0) -> str:
    """The first problem in `data` read as `descriptor`'s wire format, naming the field; linear in `data`."""
    i = 0
    name = prefix.rstrip(".") or "the message"
    try:
        while i < len(data):
            start = i
            key, i = _varint(data, i)
            number, wire_type = key >> 3, key & 7
            field = descriptor.fields_by_number.get(number)
            name = prefix + (field.name if field else f"field {number}")
            if number == 0:
                return f"byte {start}: field number 0 is not allowed"
            if wire_type == 0:
                _, i = _varint(data, i)
            elif wire_type in (1, 5):
                i += 8 if wire_type == 1 else 4
            elif wire_type == 2:
                length, i = _varint(data, i)
                if i + length > len(data):
                    return f"{name}: its length ({length} bytes) runs past the end of the message"
                chunk = data[i : i + length]
                i += length
                problem = _value_problem(field, chunk, name, depth)
                if problem:
                    return problem
            elif wire_type in (3, 4):
                return f"{name}: groups (wire type {wire_type}) are not used by this API"
            else:
                return f"byte {start}: wire type {wire_type} does not exist"
            if i > len(data):
                raise _Truncated
    except _Truncated:
        return f"{name}: the message ends in the middle of a field (truncated?)"
    return "it cannot be parsed"


def _value_problem(field: FieldDescriptor | None, chunk: bytes, name: str, depth: int) -> str:
    if field is None:
        return ""
    if field.type == FieldDescriptor.TYPE_STRING:
        try:
            chunk.decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"{name}: not valid UTF-8 (byte {exc.start} of the string)"
    if field.type == FieldDescriptor.TYPE_MESSAGE and depth < 8:
        problem = wire_problem(field.message_type, chunk, name + ".", depth + 1)
        return "" if problem == "it cannot be parsed" else problem
    return ""


# -- what a request asks for ----------------------------------------------------------------------


def page_to_extract(request: Any, settings: Settings) -> str:
    """The saved page a Translate asks to have extracted (options.extract_article), or "" when there is
    none or the request is wrong in a way document_from_request says at once: an extraction takes
    seconds, and the cheap checks come first."""
    if not isinstance(request, pb.TranslateRequest) or not request.options.extract_article:
        return ""
    if request.text or request.paragraphs or not request.html.strip() or len(request.id) > settings.max_id_characters:
        return ""
    return request.html


def document_from_request(
    request: pb.TranslateRequest | pb.SegmentRequest | pb.SummarizeRequest,
    settings: Settings,
    extraction: ExtractedArticle | None = None,
) -> Document:
    """Validate a request against the limits and return its document; raises InvalidRequest.
    A request with options.extract_article comes with its page's `extraction` (see page_to_extract)."""
    if len(request.id) > settings.max_id_characters:  # it is logged and echoed: bounded like the text
        limit = settings.max_id_characters
        raise InvalidRequest(f"id has {len(request.id)} characters; this server accepts at most {limit}")
    html = request.html if isinstance(request, pb.TranslateRequest) else ""
    if sum(map(bool, (request.text, request.paragraphs, html))) > 1:
        raise InvalidRequest("set either text or paragraphs or html: only one of them")
    markup = None
    extract = isinstance(request, pb.TranslateRequest) and request.options.extract_article
    if extract and not html:
        raise InvalidRequest("options.extract_article needs the page in html")
    if html:
        if not html.strip():
            raise InvalidRequest("html is only white space: there is nothing to translate")
        if extract:
            if extraction is None:
                raise ValueError("a saved page is extracted before its request is checked (servicer.checked_document)")
            if not extraction.body:
                raise InvalidRequest("html: no article found in the page (the extractor found no main text)")
            paragraphs = tuple(extraction.paragraphs)  # the limits below, as for an article sent as text
        else:
            from .markup.html import parse_html  # lxml: only for html requests

            markup = parse_html(html)
            paragraphs = tuple(markup.paragraphs)
            if len(paragraphs) > settings.max_paragraphs:
                limit, count = settings.max_paragraphs, len(paragraphs)
                raise InvalidRequest(f"the html has {count} blocks to translate; this server accepts at most {limit}")
    elif request.paragraphs:
        if len(request.paragraphs) > settings.max_paragraphs:
            raise InvalidRequest(
                f"the article has {len(request.paragraphs)} paragraphs; "
                f"this server accepts at most {settings.max_paragraphs}"
            )
        for i, paragraph in enumerate(request.paragraphs):
            if not paragraph.strip():
                raise InvalidRequest(f"paragraphs[{i}] is empty or only white space")
        paragraphs = tuple(request.paragraphs)
    elif request.text.strip():
        paragraphs = tuple(split_paragraphs(request.text))
    elif request.text:
        raise InvalidRequest("text is only white space: there is nothing to translate")
    else:
        raise InvalidRequest("text is empty: send the article in text (or paragraphs)")
    check_article_size(paragraphs, settings)
    terms: dict[str, str] = {}
    strip_diacritics = False
    if isinstance(request, pb.TranslateRequest):
        strip_diacritics = request.options.strip_diacritics
        terms = glossary_from(request.options, settings, strip_diacritics)
    return Document(
        id=request.id,
        paragraphs=paragraphs,
        terms=terms,
        strip_diacritics=strip_diacritics,
        markup=markup,
        extraction=extraction if extract else None,
    )


def check_article_size(paragraphs: Sequence[str], settings: Settings) -> None:
    """--max-characters and --max-paragraphs, for an article sent and for one extracted from a page
    (/v1/extract refuses what Translate would refuse: that article is what the client sends next)."""
    characters = sum(len(p) for p in paragraphs)
    if characters > settings.max_characters:
        raise InvalidRequest(
            f"the article has {characters} characters; this server accepts at most {settings.max_characters}"
        )
    if len(paragraphs) > settings.max_paragraphs:
        raise InvalidRequest(
            f"the article has {len(paragraphs)} paragraphs; this server accepts at most {settings.max_paragraphs}"
        )


def glossary_from(options: pb.TranslateOptions, settings: Settings, strip_diacritics: bool) -> dict[str, str]:
    """options.terms checked: within the size caps, no empty side, every term able to occur."""
    entries = options.terms
    if len(entries) > settings.max_glossary_terms:
        raise InvalidRequest(
            f"options.terms has {len(entries)} entries; this server accepts at most {settings.max_glossary_terms}"
        )
    terms: dict[str, str] = {}
    cap = settings.max_term_characters
    for source, target in entries.items():
        term, english = source.strip(), target.strip()
        if not term or not english:
            raise InvalidRequest(f"options.terms: the entry {source[:40]!r} -> {target[:40]!r} has an empty side")
        if len(term) > cap or len(english) > cap:
            raise InvalidRequest(f"options.terms: the entry {term[:40]!r}... is over {cap} characters on a side")
        if not normalize(term, strip_diacritics=strip_diacritics).strip():
            raise InvalidRequest(
                f"options.terms: the term {term!r} is only tatweel or diacritics, which are removed before "
                "matching, so it can never occur"
            )
        terms[term] = english
    return terms


def summary_length(
    options: pb.TranslateOptions | pb.SummarizeRequest,
) -> tuple[str, int]:
    """The summary length a request asks for, checked: a SummaryLength name and a sentence budget."""
    if isinstance(options, pb.SummarizeRequest):
        length, count, where = options.length, options.sentences, ""
    else:
        length, count, where = options.summary_length, options.summary_sentences, "options."
    if length not in SUMMARY_LENGTHS:
        choices = ", ".join(f"{n}={v}" for v, n in SUMMARY_LENGTHS.items() if v)
        field = "summary_length" if where else "length"
        raise InvalidRequest(f"{where}{field}: {length} is not a SummaryLength ({choices})")
    if count > MAX_SUMMARY_SENTENCES:
        field = "summary_sentences" if where else "sentences"
        raise InvalidRequest(f"{where}{field}: {count} is over the most a summary may have ({MAX_SUMMARY_SENTENCES})")
    name = SUMMARY_LENGTHS[length] if length else "MEDIUM"
    return name, count

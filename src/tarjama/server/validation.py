"""What a client asks for, checked against the server's limits before any work; raises InvalidRequest.

Only checks live here, each naming the field in one line: the document stage (document_stage.py) reads
the article and calls them, and only what the request uses is checked (a summary length matters only
when a summary is asked for).
"""

from __future__ import annotations

from collections.abc import Sequence

from tarjama.v1 import tarjama_pb2 as pb

from .errors import InvalidRequest
from .settings import Settings
from .text.glossary_entries import InvalidEntries, checked_entries

MAX_SUMMARY_SENTENCES = 50
SUMMARY_LENGTHS = {v.number: v.name for v in pb.SummaryLength.DESCRIPTOR.values}


def check_source(
    request: pb.TranslateRequest | pb.SegmentRequest | pb.SummarizeRequest, settings: Settings
) -> None:
    """The checks that come before any parsing or extraction: the id's length, one source only, and a
    page to extract in html (an extraction takes seconds, and the cheap checks come first)."""
    if len(request.id) > settings.max_id_characters:  # it is logged and echoed: bounded like the text
        limit = settings.max_id_characters
        raise InvalidRequest(f"id has {len(request.id)} characters; this server accepts at most {limit}")
    html = request.html if isinstance(request, pb.TranslateRequest) else ""
    if sum(map(bool, (request.text, request.paragraphs, html))) > 1:
        raise InvalidRequest("set either text or paragraphs or html: only one of them")
    if isinstance(request, pb.TranslateRequest) and request.options.extract_article and not html:
        raise InvalidRequest("options.extract_article needs the page in html")
    if html and not html.strip():
        raise InvalidRequest("html is only white space: there is nothing to translate")


def check_paragraphs(paragraphs: Sequence[str], settings: Settings) -> None:
    """A request's `paragraphs`: within --max-paragraphs, none empty."""
    if len(paragraphs) > settings.max_paragraphs:
        raise InvalidRequest(
            f"the article has {len(paragraphs)} paragraphs; this server accepts at most {settings.max_paragraphs}"
        )
    for i, paragraph in enumerate(paragraphs):
        if not paragraph.strip():
            raise InvalidRequest(f"paragraphs[{i}] is empty or only white space")


def check_text(text: str) -> None:
    """A request's `text`: something to translate."""
    if not text:
        raise InvalidRequest("text is empty: send the article in text (or paragraphs)")
    if not text.strip():
        raise InvalidRequest("text is only white space: there is nothing to translate")


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
    """options.terms checked: within the size caps, no empty side, every term able to occur, none twice."""
    entries, limits = options.terms, (settings.max_glossary_terms, settings.max_term_characters)
    try:
        return checked_entries(entries.items(), len(entries), limits, "options.terms", strip_diacritics)
    except InvalidEntries as exc:
        raise InvalidRequest(str(exc)) from None


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


def model_name(options: pb.TranslateOptions, settings: Settings) -> str:
    """The translation model a request chose (`options.model`), checked; the default when it names none."""
    models = settings.translation_models()
    if not options.model:
        return models[0].name
    names = [model.name for model in models]
    if options.model not in names:
        shown = options.model if len(options.model) <= 64 else options.model[:64] + "…"
        raise InvalidRequest(
            f"options.model: this server has no model named {shown!r}; its models are {', '.join(names)} "
            f"(GetInfo lists them; empty: {names[0]})"
        )
    return options.model

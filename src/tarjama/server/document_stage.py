"""The document stage: what a client sent (text, paragraphs, HTML or a saved page) in as a `Document`,
and the English put back out the same way, for unary and streamed calls alike.

`read` is called once per request, at the door. It gives the `Document` the pipeline translates and
the `Rendering` that, paragraph by paragraph as they come and then once at the end, puts the English
back into what was sent: nothing for text; the page's markup for HTML; the extraction's findings for
a saved page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from tarjama.v1 import tarjama_pb2 as pb

from .document import Document, PageExtraction, TranslatedDocument, TranslatedParagraph
from .errors import InvalidRequest
from .offload import text_work
from .settings import Settings
from .text.segmentation import split_paragraphs
from .validation import check_article_size, check_paragraphs, check_source, check_text, glossary_from

if TYPE_CHECKING:
    from .markup.html import HtmlDocument

ArticleMessage = pb.TranslateRequest | pb.SegmentRequest | pb.SummarizeRequest


class Rendering:
    """How a translation goes back out for text and paragraphs: as it is."""

    async def paragraphs(self, done: list[TranslatedParagraph], small: bool) -> list[TranslatedParagraph]:
        """Paragraphs just translated (in order), as the response gives them."""
        return done

    async def finish(self, result: TranslatedDocument, small: bool) -> TranslatedDocument:
        """The whole translation, once every paragraph has been through `paragraphs`."""
        return result


class HtmlRendering(Rendering):
    """An html request: each paragraph gets its block's locator (and MARKUP_PLACED flags) as it comes,
    and the translated document is written once all are in."""

    def __init__(self, markup: HtmlDocument) -> None:
        from .markup.html import HtmlTranslation  # lxml: only for html requests

        self._translation = HtmlTranslation(markup)
        self._placed: list[TranslatedParagraph] = []

    async def paragraphs(self, done: list[TranslatedParagraph], small: bool) -> list[TranslatedParagraph]:
        placed = await text_work(small, self._place, done)
        self._placed.extend(placed)
        return placed

    def _place(self, done: list[TranslatedParagraph]) -> list[TranslatedParagraph]:
        return [self._translation.paragraph(p) for p in done]

    async def finish(self, result: TranslatedDocument, small: bool) -> TranslatedDocument:
        html = await text_work(small, self._translation.finish, self._placed)
        return replace(result, paragraphs=tuple(self._placed), html=html)


class SavedPageRendering(Rendering):
    """A saved page (options.extract_article): the article's English, and what the extraction found."""

    def __init__(self, extraction: PageExtraction) -> None:
        self._extraction = extraction

    async def finish(self, result: TranslatedDocument, small: bool) -> TranslatedDocument:
        return replace(result, extraction=self._extraction)


async def read(
    message: ArticleMessage, settings: Settings, deadline: float | None, small: bool, stored: dict[str, str]
) -> tuple[Document, Rendering]:
    """The request's article, checked against the limits (InvalidRequest otherwise), and how its English
    goes back out, its glossary the `stored` glossary's entries under the request's own terms. A saved
    page is extracted first, in its own process (markup/extraction.py)."""
    check_source(message, settings)
    if isinstance(message, pb.TranslateRequest) and message.options.extract_article:
        from .markup.extraction import extract as extract_page

        article = await extract_page(message.html, deadline)
        if not article.body:
            raise InvalidRequest("html: no article found in the page (the extractor found no main text)")
        found = PageExtraction(article.title, article.author, article.date, tuple(article.dropped))
        rendering = SavedPageRendering(found)
        return await text_work(small, _document, message, settings, article.paragraphs, rendering, stored)
    return await text_work(small, _parsed_document, message, settings, stored)


def _parsed_document(message: ArticleMessage, settings: Settings, stored: dict[str, str]) -> tuple[Document, Rendering]:
    html = message.html if isinstance(message, pb.TranslateRequest) else ""
    if html:
        from .markup.html import parse_html  # lxml: only for html requests

        markup = parse_html(html)
        paragraphs = markup.paragraphs
        if len(paragraphs) > settings.max_paragraphs:
            limit, count = settings.max_paragraphs, len(paragraphs)
            raise InvalidRequest(f"the html has {count} blocks to translate; this server accepts at most {limit}")
        return _document(message, settings, paragraphs, HtmlRendering(markup), stored)
    if message.paragraphs:
        check_paragraphs(message.paragraphs, settings)
        return _document(message, settings, message.paragraphs, Rendering(), stored)
    check_text(message.text)
    return _document(message, settings, split_paragraphs(message.text), Rendering(), stored)


def _document(
    message: ArticleMessage,
    settings: Settings,
    paragraphs: Sequence[str],
    rendering: Rendering,
    stored: dict[str, str],
) -> tuple[Document, Rendering]:
    check_article_size(paragraphs, settings)
    terms: dict[str, str] = {}
    strip_diacritics = False
    if isinstance(message, pb.TranslateRequest):
        strip_diacritics = message.options.strip_diacritics
        terms = {**stored, **glossary_from(message.options, settings, strip_diacritics)}  # its own win
    return Document(message.id, tuple(paragraphs), terms, strip_diacritics), rendering

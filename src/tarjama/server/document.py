"""The domain's types: an article as the server reads it, and the article translated.

Every stage speaks these: the document stage makes a `Document` from what a client sent (text,
paragraphs, HTML or a saved page), the pipeline turns it into a `TranslatedDocument` paragraph by
paragraph, and the doors write that out as protobuf or JSON. No module here knows gRPC or HTTP.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from dataclasses import dataclass, field

from .text.flags import Flag
from .text.names import NameVariant


@dataclass(frozen=True)
class Document:
    """A request's article: its id and its non-empty paragraphs exactly as received, and its options."""

    id: str
    paragraphs: tuple[str, ...]
    terms: Mapping[str, str] = field(default_factory=dict)  # the glossary, Arabic term -> English
    strip_diacritics: bool = False

    @property
    def characters(self) -> int:
        return sum(len(p) for p in self.paragraphs)


@dataclass(frozen=True)
class TranslatedSentence:
    """One sentence of a paragraph: its Arabic (`start`..`end` in the paragraph), its English, and what
    the checks found (`flags`); `source_tokens` is 0 for a sentence passed through untranslated."""

    source: str
    translation: str
    start: int
    end: int
    flags: tuple[Flag, ...]
    confidence: float
    source_tokens: int


@dataclass(frozen=True)
class TranslatedParagraph:
    """A paragraph of the article (by `index`, in order) and its sentences, translated."""

    index: int
    source: str
    translation: str
    sentences: tuple[TranslatedSentence, ...]
    locator: str = ""  # an html request's block (markup/html.py)


@dataclass(frozen=True)
class TermReport:
    """A glossary entry: how often its term occurred, and whether the English kept every one."""

    source: str
    target: str
    occurrences: int
    kept: bool
    expanded: int = 0  # sentences where the model wrote part of the rendering, expanded in place (kept)


@dataclass(frozen=True)
class PageExtraction:
    """What a saved page's extraction found beside the article's paragraphs, and what it dropped."""

    title: str = ""
    author: str = ""
    date: str = ""
    dropped: tuple[str, ...] = ()


@dataclass(frozen=True)
class TranslatedDocument:
    """The article in English, and the request's accounting."""

    id: str
    paragraphs: tuple[TranslatedParagraph, ...]
    terms: tuple[TermReport, ...]
    segments: int
    translate_ms: float
    source_tokens: int
    output_tokens: int  # written by the model for this request (cached segments not counted)
    cached: int
    queue_ms: float = 0.0  # waited before its first sentence went to the engine
    html: str = ""  # an html request's document, translated (markup/html.py)
    name_variants: tuple[NameVariant, ...] = ()  # names spelt more than one way (text/names.py)
    extraction: PageExtraction | None = None  # a saved page's (options.extract_article)

    def flag_counts(self) -> dict[str, int]:
        return dict(collections.Counter(f for p in self.paragraphs for s in p.sentences for f in s.flags))

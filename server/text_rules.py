"""What happens to a sentence's text around the model: normalisation, protected spans, glossary terms.

All of it works on the text sent to the model; `Sentence.source` stays byte for byte the input.
Protected spans (URLs, e-mail addresses, @handles, #hashtags, Latin-script runs) pass through the
model as they are; glossary terms are replaced in the Arabic by their required English. After
translation each one is checked: found verbatim, fine; found with its spacing or case changed, put
back as written (PROTECTED_RESTORED); not found, inserted where it belongs by its relative position
(PLACEHOLDER_LOST, or a term reported as not kept). Nothing a client sent is silently lost.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .segmentation import has_arabic

TATWEEL = "\u0640"
_DIACRITICS = re.compile(r"[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed]")
# Presentation forms (ﻻ, ﷺ ...) fold to the letters the model was trained on.
_PRESENTATION_FORMS = re.compile(r"[\ufb50-\ufdff\ufe70-\ufeff]")

_URL = r"(?:https?://|www\.)[^\s<>\"'«»]+[^\s<>\"'«».,;:!?،؛؟)\]]"
_EMAIL = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
# After an Arabic letter is fine ("و#غزة": "and #Gaza"); after a Latin one it is part of something else.
_HANDLE = r"(?<![A-Za-z0-9_@])@\w{1,30}"
_HASHTAG = r"(?<![A-Za-z0-9_#&])#\w+"
# A run of Latin-script words (names, acronyms): letters with digits, dots, hyphens, apostrophes inside.
_LATIN_RUN = r"[A-Za-z][A-Za-z0-9.'’&-]*(?:[ ][A-Za-z0-9][A-Za-z0-9.'’&-]*)*(?<![.'’-])"
PROTECTED = re.compile(
    f"(?P<url>{_URL})|(?P<email>{_EMAIL})|(?P<handle>{_HANDLE})|(?P<hashtag>{_HASHTAG})|(?P<latin>{_LATIN_RUN})"
)
# Arabic writes "and", "so", "to", "by", "like" as one-letter prefixes of the next word.
_CLITIC = "[وفلبك]?"


@dataclass(frozen=True)
class Keep:
    """A span that must appear verbatim in the English: a protected span, or a glossary term's target."""

    text: str
    position: float  # where it sits in the source sentence, from 0 to 1
    term: str | None = None  # the Arabic term, for glossary entries


@dataclass(frozen=True)
class Prepared:
    """A sentence as the model will see it, and what must come back verbatim."""

    text: str
    keeps: tuple[Keep, ...]


def normalize(text: str, *, strip_diacritics: bool = False) -> str:
    """Tatweel removed and presentation forms folded (NFKC on them only); diacritics optionally removed.

    Digits are kept as written: opus-mt was trained on news with both Arabic-Indic and Latin digits
    and copies either, so folding would only change what the editor sees echoed.
    """
    text = text.replace(TATWEEL, "")
    text = _PRESENTATION_FORMS.sub(lambda m: unicodedata.normalize("NFKC", m.group()), text)
    if strip_diacritics:
        text = _DIACRITICS.sub("", text)
    return text


def prepare(sentence: str, terms: dict[str, str], *, strip_diacritics: bool = False) -> Prepared:
    """Normalise a sentence, put glossary targets in place of their terms, list what must survive."""
    text = normalize(sentence, strip_diacritics=strip_diacritics)
    keeps: list[Keep] = []
    length = max(1, len(text))
    # Longest terms first, so "الأمم المتحدة" wins over "الأمم".
    for source in sorted(terms, key=len, reverse=True):
        target = terms[source]
        term = re.escape(normalize(source, strip_diacritics=strip_diacritics))
        pattern = re.compile(rf"(?<![\w])({_CLITIC})({term})(?![\w])")
        while (match := pattern.search(text)) is not None:
            keeps.append(Keep(target, match.start() / length, term=source))
            clitic = match.group(1) + " " if match.group(1) else ""
            text = text[: match.start()] + clitic + target + text[match.end() :]
    targets = {k.text for k in keeps}
    if has_arabic(text):  # in an all-Latin sentence there is nothing to protect it from
        for match in PROTECTED.finditer(text):
            span = match.group()
            if span not in targets and _worth_protecting(match):
                keeps.append(Keep(span, match.start() / length))
    return Prepared(text, tuple(keeps))


def _worth_protecting(match: re.Match[str]) -> bool:
    # A lone Latin letter ("B") or a roman numeral is not worth a check; names and acronyms are.
    return match.lastgroup != "latin" or len(match.group()) >= 2


@dataclass(frozen=True)
class Restored:
    text: str
    restored: bool  # a span came back altered and was put back as written
    lost: tuple[Keep, ...]  # spans the model dropped; re-inserted by position


def restore(translation: str, keeps: tuple[Keep, ...]) -> Restored:
    """Make every kept span appear verbatim in the translation."""
    restored = False
    lost: list[Keep] = []
    for keep in keeps:
        if keep.text in translation:
            continue
        loose = re.compile(r"\s*".join(re.escape(c) for c in keep.text if not c.isspace()), re.IGNORECASE)
        match = loose.search(translation)
        if match:
            translation = translation[: match.start()] + keep.text + translation[match.end() :]
            restored = True
            continue
        lost.append(keep)
        translation = _insert_at(translation, keep.text, keep.position)
    return Restored(translation, restored, tuple(lost))


def _insert_at(text: str, span: str, position: float) -> str:
    """Put `span` at the word boundary nearest to `position` (0..1) of `text`."""
    if not text:
        return span
    target = round(position * len(text))
    boundaries = [0] + [m.end() for m in re.finditer(r"\s+", text)] + [len(text)]
    at = min(boundaries, key=lambda b: abs(b - target))
    if at >= len(text):
        trail = re.search(r"[.!?؟…\"'»”)]*$", text)
        at = trail.start() if trail else len(text)  # before the final full stop
        return (text[:at].rstrip() + " " + span + text[at:]).strip()
    return (text[:at] + span + " " + text[at:]).strip()

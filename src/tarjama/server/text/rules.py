"""What happens to a sentence's text around the model: normalisation, protected spans, glossary terms.

All of it works on the text sent to the model; `Sentence.source` stays byte for byte the input.
Protected spans (URLs, e-mail addresses, @handles, #hashtags, Latin-script runs) pass through the
model as they are; glossary terms are replaced in the Arabic by their required English. After
translation each one is checked: found verbatim, fine; found with its spacing or case changed, put
back as written (PROTECTED_RESTORED); a term of which the model wrote only part ("Martelly" for
"Michel Martelly"), that part expanded in place (TERM_EXPANDED); not found, inserted where it belongs
by its relative position (PLACEHOLDER_LOST, or a term reported as not kept). Nothing a client sent is
silently lost.
"""

from __future__ import annotations

import bisect
import collections
import re
import threading
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

import ahocorasick_rs

from .glossary import Glossary, find_part
from .segmentation import has_arabic

TATWEEL = "\u0640"
_DIACRITICS = re.compile(r"[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed]")
# Presentation forms (ﻻ, ﷺ ...) fold to the letters the model was trained on.
_PRESENTATION_FORMS = re.compile(r"[\ufb50-\ufdff\ufe70-\ufeff]")

# Every pattern here runs on client text of up to --max-characters, so each is linear in it: the
# quantifiers that could backtrack are bounded, and the e-mail local part only starts a run (without
# that, a 200,000-character word made the scan quadratic and froze the server for minutes).
_URL = r"(?:https?://|www\.)[^\s<>\"'«»]{0,2048}[^\s<>\"'«».,;:!?،؛؟)\]]"
_EMAIL = r"(?<![\w.+-])[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}"
# After an Arabic letter is fine ("و#غزة": "and #Gaza"); after a Latin one it is part of something else.
_HANDLE = r"(?<![A-Za-z0-9_@])@\w{1,30}"
_HASHTAG = r"(?<![A-Za-z0-9_#&])#\w{1,140}"
# A run of Latin-script words (names, acronyms): letters with digits, dots, hyphens, apostrophes inside.
_LATIN_RUN = r"[A-Za-z][A-Za-z0-9.'’&-]*(?:[ ][A-Za-z0-9][A-Za-z0-9.'’&-]*)*(?<![.'’-])"
PROTECTED = re.compile(
    f"(?P<url>{_URL})|(?P<email>{_EMAIL})|(?P<handle>{_HANDLE})|(?P<hashtag>{_HASHTAG})|(?P<latin>{_LATIN_RUN})"
)
# A span longer than this is not looked for in a loosened form (the pattern would be as long as the
# span); if it is not in the English verbatim, it is put back where it belongs.
LOOSE_MATCH_MAX = 200
LOOSE_MATCH_MAX_SPANS = 32
_TRAILING_PUNCTUATION = frozenset(".!?؟…\"'»”)")


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


def glossary_for(terms: Mapping[str, str], *, strip_diacritics: bool = False) -> Glossary:
    """A request's glossary, matched on text normalised the way its sentences are. A large one is
    kept once compiled (COMPILED_CHARACTERS in all), for the next request with the same terms: a stored
    glossary (options.glossary_id) or a tool that sends its glossary each time. Building the matcher
    holds the interpreter (ahocorasick_rs does not release it): ~2 s for 10,000 terms of 100 letters,
    which the event loop, and health, would wait out on every such request."""
    if len(terms) < CACHED_FROM_TERMS:
        return _compiled(terms, strip_diacritics)
    key = (strip_diacritics, frozenset(terms.items()))
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    glossary = _compiled(terms, strip_diacritics)
    size = sum(map(len, terms))
    if size > COMPILED_CHARACTERS:
        return glossary
    with _cache_lock:
        global _cached_characters
        if key not in _cache:
            _cache[key] = glossary
            _cached_characters += size
        while _cached_characters > COMPILED_CHARACTERS:
            (_, dropped_terms), _ = _cache.popitem(last=False)
            _cached_characters -= sum(len(term) for term, _ in dropped_terms)
    return glossary


def _compiled(terms: Mapping[str, str], strip_diacritics: bool) -> Glossary:
    return Glossary(terms, lambda text: normalize(text, strip_diacritics=strip_diacritics))


CACHED_FROM_TERMS = 64  # a smaller glossary compiles in about as long as hashing it takes
# Characters of terms kept compiled over all cached glossaries, the least recent dropped first. The
# matcher takes about 160 bytes per term character (with the clitic forms): 10,000 names of 10 letters
# are 16 MB, and this bound, 1,000,000 characters (the largest glossary a request may send), 160 MB.
COMPILED_CHARACTERS = 1_000_000
_cache: collections.OrderedDict[tuple[bool, frozenset[tuple[str, str]]], Glossary] = collections.OrderedDict()
_cache_lock = threading.Lock()
_cached_characters = 0


def prepare(sentence: str, glossary: Glossary | Mapping[str, str], *, strip_diacritics: bool = False) -> Prepared:
    """Normalise a sentence, put glossary targets in place of their terms, list what must survive."""
    if not isinstance(glossary, Glossary):
        glossary = glossary_for(glossary, strip_diacritics=strip_diacritics)
    text = normalize(sentence, strip_diacritics=strip_diacritics)
    length = max(1, len(text))
    # One pass over the sentence as sent: a target that contains its own term is never matched again.
    text, matches = glossary.apply(text)
    keeps = [Keep(m.target, m.start / length, term=m.source) for m in matches]
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
    expanded: tuple[Keep, ...] = ()  # glossary terms the model wrote part of; that part expanded in place


def restore(translation: str, keeps: tuple[Keep, ...]) -> Restored:
    """Make every kept span appear verbatim in the translation."""
    restored = False
    missing = _missing(translation, keeps)
    lost: list[Keep] = []
    expanded: list[Keep] = []
    # A loosened search per missing span is linear in the translation; past a few dozen spans (a
    # sentence that is mostly Latin names, say) they are put back as written instead.
    loosen = len(missing) <= LOOSE_MATCH_MAX_SPANS
    for keep in missing:
        if expanded and keep.text in translation:
            continue  # a term twice in the sentence, one part expanded: as when the model wrote it once in full
        match = _loose_search(keep.text, translation) if loosen else None
        if match:
            translation = translation[: match.start()] + keep.text + translation[match.end() :]
            restored = True
            continue
        part = _term_part(translation, keep, keeps) if loosen else None
        if part:  # "Martelly's" for "Michel Martelly": made "Michel Martelly's", not the name written twice
            translation = translation[: part[0]] + keep.text + translation[part[1] :]
            expanded.append(keep)
        else:
            lost.append(keep)
    return Restored(_insert_all(translation, lost), restored, tuple(lost), tuple(expanded))


def _term_part(translation: str, keep: Keep, keeps: tuple[Keep, ...]) -> tuple[int, int] | None:
    """Where the translation holds part of a glossary term's rendering (glossary.find_part), if it does."""
    if keep.term is None or len(keep.text) > LOOSE_MATCH_MAX:
        return None
    others = {k.text for k in keeps if k.text != keep.text}
    terms = {k.text for k in keeps if k.term is not None and k.text != keep.text}
    return find_part(translation, keep.text, keep.position, avoid=others, others=terms)


def _missing(translation: str, keeps: tuple[Keep, ...]) -> list[Keep]:
    """The kept spans not in `translation` verbatim (one Aho-Corasick pass when there are many)."""
    if len(keeps) <= 8:
        return [k for k in keeps if k.text not in translation]
    texts = sorted({k.text for k in keeps})
    found = {
        texts[i] for i, _, _ in ahocorasick_rs.AhoCorasick(texts).find_matches_as_indexes(translation, overlapping=True)
    }
    return [k for k in keeps if k.text not in found]


def _loose_search(span: str, text: str) -> re.Match[str] | None:
    """`span` in `text` with its case or spacing changed ("www. example. com"), if short enough to look."""
    if len(span) > LOOSE_MATCH_MAX:
        return None
    return re.compile(r"\s*".join(re.escape(c) for c in span if not c.isspace()), re.IGNORECASE).search(text)


def _insert_all(text: str, keeps: list[Keep]) -> str:
    """Put each span at the word boundary nearest to its position (0..1) in `text`, all in one pass,
    so that no span lands inside another; one that belongs at the end goes before the final stop."""
    if not keeps:
        return text
    ordered = sorted(keeps, key=lambda k: k.position)
    if not text.strip():
        return " ".join(k.text for k in ordered)
    end = len(text)
    while end > 0 and text[end - 1] in _TRAILING_PUNCTUATION:
        end -= 1
    boundaries = [0] + [m.end() for m in re.finditer(r"\s+", text[:end])] + [end]
    slots: dict[int, list[str]] = {}
    for keep in ordered:
        target = round(keep.position * len(text))
        k = bisect.bisect_left(boundaries, target)
        nearest = min(boundaries[max(0, k - 1) : k + 1], key=lambda b: abs(b - target))
        slots.setdefault(nearest, []).append(keep.text)
    out: list[str] = []
    previous = 0
    for at in sorted(slots):
        spans = " ".join(slots[at])
        if at == end:
            out.append(text[previous:at].rstrip() + " " + spans)
        else:
            out.append(text[previous:at] + spans + " ")
        previous = at
    out.append(text[previous:])
    return "".join(out).strip()

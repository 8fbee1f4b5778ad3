"""Names rendered two ways in one article: the same Arabic name spelt differently in the English of
different sentences ("Martelly", then "Martelli") is flagged NAME_VARIANT on the later sentences, and
the variants are reported, so that the editor fixes them once (or adds a glossary term).

No named-entity model: a name is an Arabic word that occurs in more than one sentence and whose
consonants match, by sound, a capitalised word of each sentence's English (ل-م-ر-ت → M-R-T-L). The
match is a transliteration skeleton: both sides reduced to consonant classes (ب/p/b → B, ق/k/c/q → K,
ث/ت/t → T ...) and compared with difflib. A word that is not a name rarely matches a capitalised
English word in two sentences; a name the model translates as a common noun is not seen (nothing is
flagged, which is the safe side).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .rules import normalize

# Arabic letters to consonant classes; vowels and glottal stops (ا و ي ء ع ة ى) are dropped, as
# English spellings of names differ mostly in their vowels.
_ARABIC_CLASSES = {
    "ب": "B", "ت": "T", "ث": "T", "ج": "J", "ح": "H", "خ": "K", "د": "D", "ذ": "D", "ر": "R", "ز": "S",
    "س": "S", "ش": "S", "ص": "S", "ض": "D", "ط": "T", "ظ": "D", "غ": "G", "ف": "F", "ق": "K", "ك": "K",
    "ل": "L", "م": "M", "ن": "N", "ه": "H", "پ": "B", "چ": "J", "ڤ": "F", "گ": "G",
}  # fmt: skip
_ENGLISH_DIGRAPHS = {"ph": "F", "th": "T", "sh": "S", "kh": "K", "ch": "J", "gh": "G", "dh": "D"}
_ENGLISH_CLASSES = {
    "b": "B", "p": "B", "t": "T", "j": "J", "g": "J", "h": "H", "k": "K", "c": "K", "q": "K", "x": "K",
    "d": "D", "r": "R", "s": "S", "z": "S", "f": "F", "v": "F", "l": "L", "m": "M", "n": "N",
}  # fmt: skip
# Common words that begin with the Arabic article or a clitic are still words, not names.
_PREFIXES = ("وال", "بال", "لل", "ال", "و", "ب", "ل")
_ARABIC_WORD = re.compile(r"[\u0621-\u064a\u067e\u0686\u06a4\u06af]{3,}")
_CAPITALISED = re.compile(r"\b[A-Z][a-z]+(?:-[A-Z][a-z]+)?")
MIN_SKELETON = 3
MATCH_RATIO = 0.8
MAX_NAMES = 64  # at most this many variant reports for one article


@dataclass(frozen=True)
class NameVariant:
    """An Arabic name and its English renderings, in the order they first appear."""

    source: str
    renderings: tuple[str, ...]


def _collapse(classes: str) -> str:
    """Doubled letters count once: "Martelly" and "مارتيلي" are both M-R-T-L."""
    return re.sub(r"(.)\1+", r"\1", classes)


def arabic_skeleton(word: str) -> str:
    return _collapse("".join(_ARABIC_CLASSES.get(ch, "") for ch in word))


def english_skeleton(word: str) -> str:
    text, out, i = word.lower(), [], 0
    while i < len(text):
        digraph = _ENGLISH_DIGRAPHS.get(text[i : i + 2])
        if digraph:
            out.append(digraph)
            i += 2
            continue
        out.append(_ENGLISH_CLASSES.get(text[i], ""))
        i += 1
    return _collapse("".join(out))


def _stem(word: str) -> str:
    """A word without the article or a one-letter clitic (والرئيس → رئيس), when enough is left."""
    for prefix in _PREFIXES:
        if word.startswith(prefix) and len(word) - len(prefix) >= 3:
            return word[len(prefix) :]
    return word


def candidates(english: str) -> list[tuple[str, str]]:
    """A sentence's capitalised English words long enough to tell by sound ("For", "Al" are not), with
    their skeletons: computed once per sentence, then matched against each of its Arabic words."""
    words = ((m.group(), english_skeleton(m.group())) for m in _CAPITALISED.finditer(english))
    return [(word, skeleton) for word, skeleton in words if len(skeleton) >= MIN_SKELETON]


def rendering(arabic_word: str, english: str | list[tuple[str, str]]) -> str | None:
    """The capitalised English word (of a sentence, or of its `candidates`) that sounds like `arabic_word`."""
    skeleton = arabic_skeleton(arabic_word)
    if len(skeleton) < MIN_SKELETON:
        return None
    best, best_ratio = None, MATCH_RATIO
    for word, other in candidates(english) if isinstance(english, str) else english:
        ratio = difflib.SequenceMatcher(None, skeleton, other).ratio()
        if ratio >= best_ratio:
            best, best_ratio = word, ratio
    return best


def same_spelling(a: str, b: str) -> bool:
    """The same name, allowing for an ending: Africa / African, Roman / Romans, Tasmania / Tasmanian."""
    a, b = a.lower(), b.lower()
    return a.startswith(b) or b.startswith(a)


class NameTracker:
    """Follows the article's names sentence by sentence, in order (so a stream can be checked as it
    goes): each sentence is told whether one of its names is spelt differently than before."""

    def __init__(self) -> None:
        self.first: dict[str, str] = {}  # name stem -> its first English rendering
        self.variants: dict[str, list[str]] = {}  # name stem -> renderings, first one first

    def sentence(self, arabic: str, english: str) -> bool:
        """Record a sentence; True when a name in it is rendered unlike its first occurrence."""
        english_words = candidates(english)
        if not english_words:
            return False  # no capitalised word: no name to compare
        differs = False
        seen: set[str] = set()
        for word in _ARABIC_WORD.findall(normalize(arabic, strip_diacritics=True)):
            stem = _stem(word)
            if stem in seen:
                continue
            seen.add(stem)
            found = rendering(stem, english_words)
            if found is None:
                continue
            first = self.first.setdefault(stem, found)
            if not same_spelling(found, first):
                renderings = self.variants.setdefault(stem, [first])
                if found not in renderings:
                    renderings.append(found)
                differs = True
        return differs

    def report(self) -> tuple[NameVariant, ...]:
        return tuple(NameVariant(stem, tuple(r)) for stem, r in list(self.variants.items())[:MAX_NAMES])


def variants_of(sentences: Iterable[tuple[str, str]]) -> tuple[list[bool], tuple[NameVariant, ...]]:
    """For (Arabic, English) sentences in article order: which are flagged, and the variants."""
    tracker = NameTracker()
    flags = [tracker.sentence(arabic, english) for arabic, english in sentences]
    return flags, tracker.report()

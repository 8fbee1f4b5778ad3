"""Glossary terms: find every whole-word occurrence of any term in one pass, replace it by its target.

A client's glossary can hold thousands of terms, and a target may contain its own source term
("الأمم المتحدة" → "United Nations (الأمم المتحدة)"). So the matching is one leftmost-longest
Aho-Corasick pass over the *original* sentence (ahocorasick-rs: linear in the text, whatever the
number of terms, and never re-scanning an inserted target), built once per request.

A term matches only as whole words, optionally after a one-letter Arabic clitic ("لمارتيلي" is "to
Martelly"). Word boundaries are made part of the keys: every run of word characters in the text and
in the terms is wrapped in a marker character, so a key can only match where a word starts and ends.

After translation, `find_part` finds where the model wrote only part of a rendering ("Martelly" for
"Michel Martelly"), so that the part is expanded in place rather than the whole inserted beside it.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import ahocorasick_rs

# Arabic writes "and", "so", "to", "by", "like" as one-letter prefixes of the next word.
CLITICS = "وفلبك"
_MARK = "\x01"  # wraps word runs; a client's own \x01 is folded to \x02 first (same length)
_WORD_RUN = re.compile(r"\w+")


@dataclass(frozen=True)
class TermMatch:
    """One replaced occurrence: where it was in the sentence, its clitic, and the glossary entry."""

    start: int  # of the clitic, when there is one
    end: int
    clitic: str
    source: str  # the term as the client sent it
    target: str


class Glossary:
    """A request's glossary, compiled once; `apply` replaces terms in a (normalised) sentence."""

    def __init__(self, terms: Mapping[str, str], normalize: Callable[[str], str] = lambda text: text) -> None:
        keys: list[str] = []
        self._entries: list[tuple[str, str, str]] = []  # per key: clitic, source, target
        for source, target in terms.items():
            term = normalize(source).replace(_MARK, "\x02")
            if not term:
                continue  # validated before: a term that normalises to nothing cannot occur
            marked = _marked(term)
            keys.append(marked)
            self._entries.append(("", source, target))
            if term[0] not in CLITICS and _WORD_RUN.match(term[0]):
                for clitic in CLITICS:
                    keys.append(_MARK + clitic + marked[1:])
                    self._entries.append((clitic, source, target))
        self._automaton = (
            ahocorasick_rs.AhoCorasick(keys, matchkind=ahocorasick_rs.MatchKind.LeftmostLongest) if keys else None
        )

    def find(self, text: str) -> list[TermMatch]:
        """Non-overlapping whole-word occurrences in `text`, leftmost first, longest term winning."""
        if self._automaton is None:
            return []
        marked, marks = _marked_with_positions(text.replace(_MARK, "\x02"))
        matches = []
        for key, start, end in self._automaton.find_matches_as_indexes(marked):
            s = start - bisect.bisect_left(marks, start)
            e = end - bisect.bisect_left(marks, end)
            if not _bounded(text, s, e):
                continue  # a term that begins or ends with punctuation, glued to a word
            clitic, source, target = self._entries[key]
            matches.append(TermMatch(s, e, clitic, source, target))
        return matches

    def apply(self, text: str) -> tuple[str, list[TermMatch]]:
        """`text` with each occurrence replaced by its target (after its clitic and a space)."""
        matches = self.find(text)
        if not matches:
            return text, []
        out: list[str] = []
        at = 0
        for m in matches:
            out.append(text[at : m.start])
            out.append(m.clitic + " " + m.target if m.clitic else m.target)
            at = m.end
        out.append(text[at:])
        return "".join(out), matches


def _marked(text: str) -> str:
    return _WORD_RUN.sub(lambda m: _MARK + m.group() + _MARK, text)


def _marked_with_positions(text: str) -> tuple[str, list[int]]:
    """`text` with its word runs wrapped in markers, and the markers' positions in the result."""
    marks: list[int] = []
    for k, m in enumerate(_WORD_RUN.finditer(text)):
        marks.append(m.start() + 2 * k)
        marks.append(m.end() + 2 * k + 1)
    return _marked(text), marks


def _bounded(text: str, start: int, end: int) -> bool:
    """No word character right before or after (the markers ensure it for terms that are words)."""
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    return not _WORD_RUN.match(before) and not _WORD_RUN.match(after)


# Words that never stand for a term's rendering on their own (they may sit inside a longer part):
# articles, prepositions, conjunctions, pronouns, and the particles of Arabic and European names
# written in Latin letters ("al-", "bin", "Abu", "de"). With words under three letters, they are the
# words an English sentence holds anyway, whatever the model did with the term.
_COMMON = frozenset(
    "the and for but nor yet its his her hers our ours their theirs who whom whose which that this these those"
    " was were are has had have not from with into onto upon over than then also all any new one two"
    " abu abd ibn bin bint ben del der den des van von ul".split()
)
_ARTICLES = frozenset({"a", "an", "the"})
_WORD = re.compile(r"[^\W_]+")  # letters and digits: "Martelly's" is "Martelly" and "s"
_JOINER = re.compile(r"[ \t\u00a0-]+")  # what may separate two words of one part in the English
_VOWELS = re.compile(r"[aeiouy]")
CLOSE_SPELLING_MIN = 5  # letters a word needs before a close spelling of it counts


def significant(word: str) -> bool:
    """A word of a rendering that may stand for the whole of it: three letters or more, not a common word."""
    return len(word) >= 3 and word.casefold() not in _COMMON


@functools.lru_cache(maxsize=4096)
def _skeleton(word: str) -> str:
    """The first letter and the consonants after it, doubled letters once: Martelly, Martelli and
    Martili are all "mrtl"; Michel and Michael "mchl"."""
    word = word.casefold()
    return re.sub(r"(.)\1+", r"\1", word[0] + _VOWELS.sub("", word[1:]))


class _Rendering:
    """A rendering's words, indexed for finding the model's part of it: by the word as written (any case),
    and, for words long enough, by their close spellings."""

    def __init__(self, rendering: str, others: Iterable[str]) -> None:
        words = _WORD.findall(rendering)
        self.words = words
        self.first_is_article = bool(words) and words[0].casefold() in _ARTICLES
        taken = {w.casefold() for other in others for w in _WORD.findall(other)}
        # A part must hold a word that tells this term from the sentence's other terms ("Biden" of "Joe
        # Biden" is not one when the sentence also has "Hunter Biden").
        self.telling = [significant(w) and w.casefold() not in taken for w in words]
        self.exact: dict[str, list[int]] = {}
        self.close: dict[str, list[int]] = {}
        for i, word in enumerate(words):
            self.exact.setdefault(word.casefold(), []).append(i)
            if len(word) >= CLOSE_SPELLING_MIN and word[0].isupper():
                self.close.setdefault(_skeleton(word), []).append(i)

    def index(self, word: str, after: int) -> int | None:
        """The first word of the rendering after index `after` that `word` is, or is a close spelling of
        (a capitalised word, as long, with the same skeleton)."""
        exact = _first_after(self.exact.get(word.casefold()), after)
        if not self.close or not word[0].isupper() or len(word) < CLOSE_SPELLING_MIN:
            return exact
        close = _first_after(self.close.get(_skeleton(word)), after)
        return close if exact is None or (close is not None and close < exact) else exact


    def names_it(self, matched: list[int], tokens: list[re.Match[str]]) -> bool:
        """Whether the English words `tokens` (matched to the rendering's words `matched`) stand for the
        term, not for ordinary English that shares a word with it (found by an attacker: "a white car"
        for "White House", "New York" for "New York Times", "Mohammed Ali" for "Mohammed bin Salman",
        "Egypt's" for "Central Bank of Egypt", "Martell cognac" for "Martelly"):
        - a capitalised word of the rendering is matched by a capitalised word only;
        - a close spelling counts only beside a word matched exactly;
        - the part holds the rendering's last word (a name's surname, a title's head noun), and a part of
          that word alone stands for a name only where the word before it is capitalised too (Michel
          Martelly, not Bank of Egypt), or is a leading article (the Council)."""
        exact = False
        for k, token in zip(matched, tokens, strict=True):
            word = self.words[k]
            if word[0].isupper() and not token.group()[0].isupper():
                return False
            exact = exact or token.group().casefold() == word.casefold()
        last = len(self.words) - 1
        if not exact or last not in matched:
            return False
        if len(matched) == 1 and last > 0:
            before = self.words[last - 1]
            return before[0].isupper() or (last == 1 and self.first_is_article)
        return True


def _first_after(indices: list[int] | None, after: int) -> int | None:
    """The first of ascending `indices` above `after` (a rendering rarely has a word twice)."""
    return next((i for i in indices if i > after), None) if indices else None


def find_part(
    english: str, rendering: str, position: float, avoid: Iterable[str] = (), others: Iterable[str] = ()
) -> tuple[int, int] | None:
    """Where `english` holds part of `rendering` (some of its words, in order, side by side: "Martelly" or
    "Michel" of "Michel Martelly", "President Martelly" of "President Michel Martelly"), as the span to
    replace by the whole rendering; None when it holds none.

    Words compare case-insensitively, or as a close spelling ("Martelli"); a possessive stays outside
    the span ("Martelly's" → "Michel Martelly's"). A part must hold a `significant` word that none of
    `others` (the sentence's other terms' renderings) has, and must not overlap the rendering itself or
    any of `avoid` (the sentence's other spans that must come back verbatim) where `english` holds them.
    Of several parts, the one with most words wins, then the one nearest `position` (0 to 1).
    """
    words = _Rendering(rendering, others)
    if not any(words.telling):
        return None
    blocked = _covered(english, rendering, avoid)
    tokens = list(_WORD.finditer(english))
    near = position * len(english)
    best: tuple[int, int] | None = None
    best_score = (0, 0.0)
    for i, token in enumerate(tokens):
        at = words.index(token.group(), -1)
        if at is None:
            continue
        matched, j = [at], i
        while j + 1 < len(tokens) and _JOINER.fullmatch(english[tokens[j].end() : tokens[j + 1].start()]):
            following = words.index(tokens[j + 1].group(), matched[-1])
            if following is None:
                break
            matched.append(following)
            j += 1
        if not any(words.telling[k] for k in matched) or not words.names_it(matched, tokens[i : j + 1]):
            continue
        start, end = token.start(), tokens[j].end()
        # "a council" for "the Council": the model's own article goes, rather than "a the Council".
        if words.first_is_article and matched[0] > 0 and i > 0 and tokens[i - 1].group().casefold() in _ARTICLES:
            if english[tokens[i - 1].end() : start].isspace():
                start = tokens[i - 1].start()
        if blocked.find(1, start, end) >= 0:
            continue  # inside the rendering (expanded already, or written in full) or another kept span
        score = (len(matched), -abs((start + end) / 2 - near))
        if score > best_score:
            best, best_score = (start, end), score
    return best


def _covered(english: str, rendering: str, avoid: Iterable[str]) -> bytearray:
    """1 at each character of `english` inside the rendering (any case) or inside one of `avoid` (as kept
    spans are by now: verbatim; one Aho-Corasick pass however many there are)."""
    covered = bytearray(len(english))
    spans = [(m.start(), m.end()) for m in re.finditer(re.escape(rendering), english, re.IGNORECASE)]
    texts = [text for text in set(avoid) if text]
    if texts:
        automaton = ahocorasick_rs.AhoCorasick(texts)
        spans += [(s, e) for _, s, e in automaton.find_matches_as_indexes(english, overlapping=True)]
    for start, end in spans:
        covered[start:end] = b"\x01" * (end - start)
    return covered

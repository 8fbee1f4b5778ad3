"""Glossary terms: find every whole-word occurrence of any term in one pass, replace it by its target.

A client's glossary can hold thousands of terms, and a target may contain its own source term
("الأمم المتحدة" → "United Nations (الأمم المتحدة)"). So the matching is one leftmost-longest
Aho-Corasick pass over the *original* sentence (ahocorasick-rs: linear in the text, whatever the
number of terms, and never re-scanning an inserted target), built once per request.

A term matches only as whole words, optionally after a one-letter Arabic clitic ("لمارتيلي" is "to
Martelly"). Word boundaries are made part of the keys: every run of word characters in the text and
in the terms is wrapped in a marker character, so a key can only match where a word starts and ends.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Mapping
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

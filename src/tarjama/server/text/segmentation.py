"""Paragraph and sentence segmentation for Modern Standard Arabic news (and English or mixed text).

Pure functions, no model and no torch: the CLI's local `segment` command uses them too. Offsets are
in Unicode code points, so `paragraph[span.start:span.end] == span.text` in Python and in the JSON
that clients read. Every non-space character of a paragraph lies in exactly one sentence span; only
white space lies between (or around) spans.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Characters that can end a sentence; runs of them ("?!", "...", "؟!") end it once.
TERMINATORS = frozenset(".!?؟…۔")
# Closing quotes and brackets that stay with the sentence they close.
CLOSERS = frozenset("\"'»”’)]}›」』")
# Arabic comma and semicolon never end a sentence (they are not in TERMINATORS); listed for clarity.
CLAUSE_MARKS = frozenset("،؛")

# Words that take a period without ending the sentence (compared without the final period).
ABBREVIATIONS = frozenset(
    {
        # Arabic titles and abbreviations: د. (Dr.), م. (eng. / AD), ص. (page), أ.د. (Prof. Dr.)
        "د",
        "م",
        "ص",
        "أ",
        "ق",
        "هـ",
        "ج",
        "أ.د",
        "م.م",
        "ت",
        "س",
        # English
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "mt",
        "gen",
        "col",
        "lt",
        "sgt",
        "capt",
        "gov",
        "sen",
        "rep",
        "rev",
        "hon",
        "pres",
        "vs",
        "v",
        "etc",
        "e.g",
        "i.e",
        "no",
        "nos",
        "fig",
        "vol",
        "pp",
        "p",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "inc",
        "ltd",
        "co",
        "corp",
        "u.s",
        "u.k",
        "u.n",
        "a.m",
        "p.m",
        "approx",
        "dept",
        "est",
    }
)

_CLITICS = frozenset("وفلبك")
_LINE_BREAK = re.compile(r"\r\n|[\n\r\u2028\u2029\x0b\x0c\x1c\x1d\x1e\x85]")
_ARABIC_LETTER = re.compile(r"[\u0620-\u064a\u066e-\u06d3\u06fa-\u06fc]")


@dataclass(frozen=True)
class Span:
    """A sentence of a paragraph: its text and code-point offsets [start, end)."""

    start: int
    end: int
    text: str


def split_paragraphs(text: str) -> list[str]:
    """The non-blank lines of `text`, exactly as they are (line breaks removed, nothing stripped)."""
    return [line for line in _LINE_BREAK.split(text) if line.strip()]


def split_sentences(paragraph: str) -> list[Span]:
    """Sentence spans of one paragraph, in order, covering every non-space character once."""
    spans: list[Span] = []
    n = len(paragraph)
    i = 0
    while i < n:
        while i < n and paragraph[i].isspace():
            i += 1
        if i >= n:
            break
        end = _sentence_end(paragraph, i)
        # Trailing white space is not part of the sentence.
        stop = end
        while stop > i and paragraph[stop - 1].isspace():
            stop -= 1
        spans.append(Span(i, stop, paragraph[i:stop]))
        i = end
    return spans


def _sentence_end(text: str, start: int) -> int:
    """Index just past the sentence that begins at `start` (or the end of the text)."""
    n = len(text)
    i = start
    while i < n:
        if text[i] not in TERMINATORS:
            i += 1
            continue
        run_start = i
        while i < n and text[i] in TERMINATORS:
            i += 1
        while i < n and text[i] in CLOSERS:
            i += 1
        # A boundary needs white space after it: "3.5", "example.com" and "١٠:٠٨" never split.
        if i < n and not text[i].isspace():
            continue
        if _is_boundary(text, start, run_start, i):
            return i
    return n


def _is_boundary(text: str, sentence_start: int, run_start: int, run_end: int) -> bool:
    run = text[run_start:run_end].rstrip("".join(CLOSERS))
    next_char = _next_visible(text, run_end)
    if next_char is None:
        return True
    if run == ".":
        word = _word_before(text, sentence_start, run_start)
        next_word = _word_after(text, run_end)
        if _is_abbreviation(word, next_word, _word_before(text, sentence_start, run_start - len(word) - 1)):
            return False
        # "e.g. this": a Latin lower-case letter after a period continues the sentence.
        if next_char.isascii() and next_char.islower():
            return False
    elif set(run) <= {".", "…"} and run_end == run_start + len(run):
        # An ellipsis alone marks a pause inside an Arabic sentence far more often than its end
        # ("...مثلي... وربما أكثر مني..."); with ? or ! ("...؟") it still ends one.
        return False
    return True


def _word_before(text: str, sentence_start: int, index: int) -> str:
    j = index
    while j > sentence_start and not text[j - 1].isspace():
        j -= 1
    return text[j:index].lstrip("\"'«“‘([{‹-")


def _word_after(text: str, index: int) -> str:
    while index < len(text) and text[index].isspace():
        index += 1
    j = index
    while j < len(text) and not text[j].isspace():
        j += 1
    return text[index:j]


def _letters(word: str) -> str:
    return "".join(c for c in word if c.isalpha())


def _is_abbreviation(word: str, next_word: str = "", previous_word: str = "") -> bool:
    """Whether "word." is a title, an abbreviation or an initial rather than a sentence's end."""
    if not word:
        return False
    lowered = word.lower()
    if lowered in ABBREVIATIONS:
        return True
    # Arabic writes "and", "to", "by" as one-letter prefixes: "وأ.د." is "and Prof. Dr.".
    if len(lowered) > 2 and lowered[0] in _CLITICS and lowered[1:] in ABBREVIATIONS:
        return True
    parts = [part for part in lowered.split(".") if part]
    if not parts or not all(part.isalpha() for part in parts):
        return False
    if all(len(part) == 1 for part in parts):
        # "J. Smith", "ن. وين", "U.S.": an initial continues in its own script. A Latin letter
        # before Arabic ("...من A إلى B. تعلم") ends the sentence.
        return not next_word or _same_script(parts[-1], _letters(next_word)[:1] or parts[-1])
    # Two-letter initials come in runs: "دي. كي. أريا" (D. K. Arya).
    short = len(parts) == 1 and len(parts[0]) <= 2
    return short and (_is_initial(next_word) or _is_initial(previous_word))


def _is_initial(word: str) -> bool:
    return word.endswith(".") and 0 < len(_letters(word)) <= 2 and word[:-1].isalpha()


def _same_script(a: str, b: str) -> bool:
    return a.isascii() == b.isascii()


def _next_visible(text: str, index: int) -> str | None:
    while index < len(text):
        if not text[index].isspace():
            return text[index]
        index += 1
    return None


def has_arabic(text: str) -> bool:
    """Whether `text` holds at least one Arabic letter."""
    return _ARABIC_LETTER.search(text) is not None


def count_arabic(text: str, chunk: int = 64 * 1024) -> int:
    """How many Arabic letters `text` holds; counted a chunk at a time, since one regex call over
    megabytes holds the GIL (and so the event loop's health answers) until it ends."""
    return sum(_ARABIC_LETTER.subn("", text[i : i + chunk])[1] for i in range(0, len(text), chunk))


# Where a sentence too long for the model may be cut, best first: after a semicolon, after a comma,
# before a conjunction "و" that starts a word, and as a last resort at any word boundary.
_CUT_AFTER = ("؛;", "،,:")
_CONJUNCTIONS = ("و",)


def split_long(text: str, word_spans: list[tuple[int, int, int]], budget: int) -> list[tuple[int, int]]:
    """Cut one sentence into parts of at most `budget` tokens, at the best clause boundaries.

    `word_spans` are the sentence's words as (start, end, tokens). Parts are (start, end) offsets into
    `text` that together cover every word; nothing is dropped. A single word over the budget (a long
    run without spaces) is cut inside, in proportion to its characters.
    """
    words = _cut_oversized_words(word_spans, budget)
    parts: list[tuple[int, int]] = []
    first = 0
    while first < len(words):
        total = 0
        last_fit = first
        for k in range(first, len(words)):
            total += words[k][2]
            if total > budget and k > first:
                break
            last_fit = k
        if last_fit == len(words) - 1:
            parts.append((words[first][0], words[-1][1]))
            break
        cut = _best_cut(text, words, first, last_fit, budget)
        parts.append((words[first][0], words[cut][1]))
        first = cut + 1
    return parts


def _best_cut(text: str, words: list[tuple[int, int, int]], first: int, last_fit: int, budget: int) -> int:
    """Index of the last word of the next part: the latest good clause boundary in the fitting words."""
    # Parts shorter than a third of the budget are worse than a cut at a plain word boundary.
    floor = first
    used = 0
    for k in range(first, last_fit + 1):
        used += words[k][2]
        if used >= budget // 3:
            floor = k
            break
    for marks in _CUT_AFTER:
        for k in range(last_fit, floor - 1, -1):
            if text[words[k][1] - 1] in marks:
                return k
    for k in range(last_fit, floor - 1, -1):
        following = text[words[k + 1][0] : words[k + 1][1]]
        if following.startswith(_CONJUNCTIONS) and len(following) > 2:
            return k
    return last_fit


def _cut_oversized_words(word_spans: list[tuple[int, int, int]], budget: int) -> list[tuple[int, int, int]]:
    words: list[tuple[int, int, int]] = []
    for start, end, tokens in word_spans:
        if tokens <= budget:
            words.append((start, end, tokens))
            continue
        pieces = -(-tokens // budget)  # ceil
        step = -(-(end - start) // pieces)
        for s in range(start, end, step):
            e = min(end, s + step)
            words.append((s, e, -(-tokens * (e - s) // (end - start))))
    return words


def word_spans(text: str) -> list[tuple[int, int]]:
    """The (start, end) offsets of the white-space separated words of `text`."""
    return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]

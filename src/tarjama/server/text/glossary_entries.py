"""A glossary's entries checked: one rule for a request's own terms and for a stored glossary.

Each entry is an Arabic term and the English it must get. Both sides are trimmed and must be
non-empty, within --max-term-characters, without control characters (a term is one line of a TSV
file), and the term must be able to occur in a text (a term of only
tatweel or diacritics is removed before matching). A term given twice is refused rather than one of
its renderings silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterable

from .rules import normalize


class InvalidEntries(ValueError):
    """An entry cannot be used; the message names the field and the entry (the doors answer it as
    INVALID_ARGUMENT). Not errors.InvalidRequest: text/ stays below the errors and settings."""


# U+2028 and U+2029 break a line as a line feed does (str.splitlines, DeepL's clients reading TSV).
LINE_SEPARATORS = "\u2028\u2029"


def has_control(text: str) -> bool:
    """Whether `text` holds a C0 or C1 control character or a line or paragraph separator: a term or a
    name is one line (of a TSV file, of `tarjama glossary list`)."""
    return any(c < " " or "\x7f" <= c <= "\x9f" or c in LINE_SEPARATORS for c in text)


def checked_entries(
    entries: Iterable[tuple[str, str]],
    count: int,
    limits: tuple[int, int],
    field: str,
    strip_diacritics: bool,
) -> dict[str, str]:
    """`entries` (`count` of them) as {term: rendering}, in their order, within `limits` (the most
    entries, the most characters a side); InvalidEntries naming `field` otherwise. A stored glossary
    is checked with `strip_diacritics` True: any request may apply it."""
    most, cap = limits
    if count > most:
        raise InvalidEntries(f"{field} has {count} entries; this server accepts at most {most}")
    terms: dict[str, str] = {}
    for source, target in entries:
        term, english = source.strip(), target.strip()
        if not term or not english:
            raise InvalidEntries(f"{field}: the entry {source[:40]!r} -> {target[:40]!r} has an empty side")
        if has_control(term + english):
            raise InvalidEntries(f"{field}: the entry {term[:40]!r} holds a control character (a tab, a line break)")
        if len(term) > cap or len(english) > cap:
            raise InvalidEntries(f"{field}: the entry {term[:40]!r}... is over {cap} characters on a side")
        if not normalize(term, strip_diacritics=strip_diacritics).strip():
            raise InvalidEntries(
                f"{field}: the term {term[:40]!r} is only tatweel or diacritics, which are removed before "
                "matching, so it can never occur"
            )
        if term in terms:
            raise InvalidEntries(f"{field}: the term {term[:40]!r} is given twice (once with each rendering)")
        terms[term] = english
    return terms

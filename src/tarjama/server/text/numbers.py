"""Numbers an editor must be able to trust: every number in an Arabic sentence must appear in its
English in some accepted form, or the sentence is flagged NUMBER_MISMATCH.

Arabic side: Latin, Arabic-Indic (٠-٩) and Persian (۰-۹) digits, with ٫ or . as the decimal mark and
٬ or , between groups of three; a number followed by a written multiplier (ألف/آلاف, مليون/ملايين,
مليار/مليارات) counts with it: "50 ألفاً" is 50,000. Digits inside Latin words (COVID-19 is kept as it
is written anyway) are not numbers here.
English side (looser: "M16" holds 16): digits with , or . grouping ("50,000", "50000", "2.5"), a
number with a scale word ("50 thousand", "2.5 million", "3bn"), times, the words zero to twenty, and
month names (a date's month).
A "1,5" in the Arabic may be a decimal or a thousands group; either reading is accepted. Everything
here is linear in the text (no pattern can backtrack).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
# A number: digits, then groups after a separator. Bounded, and not glued to a Latin letter.
_ARABIC_NUMBER = re.compile(r"(?<![A-Za-z0-9.,٫٬])([0-9]{1,15}(?:[.,٫٬][0-9]{1,15}){0,6})")
_TIME = re.compile(r"(?<![0-9])([0-9]{1,2}):([0-9]{2})(?![0-9])")
_ARABIC_SCALE = re.compile(r"\s{0,3}(?:و?)(ألف|آلاف|الف|مليون|ملايين|مليار|مليارات|بليون)")
_ARABIC_SCALES = {
    "ألف": 1000, "آلاف": 1000, "الف": 1000,
    "مليون": 10**6, "ملايين": 10**6,
    "مليار": 10**9, "مليارات": 10**9, "بليون": 10**9,
}  # fmt: skip
_ENGLISH_NUMBER = re.compile(
    r"(?<![0-9.,])([0-9]{1,15}(?:[.,][0-9]{1,15}){0,6})(?:\s{0,2}(thousand|million|billion|trillion|k|m|bn|tn)\b)?",
    re.IGNORECASE,
)
_ENGLISH_SCALES = {"thousand": 1000, "k": 1000, "million": 10**6, "m": 10**6, "billion": 10**9, "bn": 10**9,
                   "trillion": 10**12, "tn": 10**12}  # fmt: skip
_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty"
).split()
_ENGLISH_WORD = re.compile(r"\b(" + "|".join(_WORDS) + r")\b", re.IGNORECASE)
# A date's month may come back as its name: "2/3/2020" -> "March 2, 2020".
_MONTHS = "january february march april may june july august september october november december".split()
_ENGLISH_MONTH = re.compile(r"\b(" + "|".join(m.capitalize() for m in _MONTHS) + r")\b")


def readings(digits: str) -> set[Decimal]:
    """The values a written number can mean: with `.`/`٫` as decimal and `,`/`٬` as grouping, and for an
    ambiguous single separator both ways."""
    text = digits.translate(_DIGITS)
    values = set()
    groups = re.split(r"[.,٫٬]", text)
    separators = re.findall(r"[.,٫٬]", text)
    if not separators:
        return {Decimal(text)}
    # Thousands grouping: every separator is a grouping mark and every later group has 3 digits.
    if all(len(g) == 3 for g in groups[1:]) and set(separators) <= {",", "٬", "."} and len(set(separators)) == 1:
        values.add(Decimal("".join(groups)))
    # One decimal mark last, grouping before it.
    if separators[-1] in ".,٫" and all(s in ",٬" for s in separators[:-1]):
        try:
            values.add(Decimal("".join(groups[:-1]) + "." + groups[-1]))
        except InvalidOperation:
            pass
    return values or {Decimal("".join(groups))}


def time_values(match: re.Match[str]) -> set[Decimal]:
    """A time's accepted forms: 12:30 as 12:30, 1230 or 12.30; 12:00 also as plain 12."""
    hour, minutes = int(match.group(1)), int(match.group(2))
    values = {Decimal(hour * 100 + minutes), Decimal(hour) + Decimal(minutes) / 100}
    return values | ({Decimal(hour)} if minutes == 0 else set())


def arabic_numbers(sentence: str) -> list[set[Decimal]]:
    """Each number of an Arabic sentence, as the set of values it may mean (with its written scale).
    A time ("12:30") asks for its hour, and its minutes unless they are zero ("12.00 GMT" is fine)."""
    text = sentence.translate(_DIGITS)
    found = []
    for match in _TIME.finditer(text):
        found.append(time_values(match))
    text = _TIME.sub(lambda m: " " * len(m.group(0)), text)
    for match in _ARABIC_NUMBER.finditer(text):
        if re.match(r"[A-Za-z]", text[match.end() : match.end() + 1]):
            continue  # part of a Latin token such as 802.11n
        values = readings(match.group(1))
        scale = _ARABIC_SCALE.match(text, match.end())
        if scale:
            factor = _ARABIC_SCALES[scale.group(1)]
            values |= {v * factor for v in values}
        found.append(values)
    return found


def english_values(text: str) -> set[Decimal]:
    values: set[Decimal] = {v for match in _TIME.finditer(text) for v in time_values(match)}
    for match in _ENGLISH_NUMBER.finditer(text):
        read = readings(match.group(1))
        values |= read
        if match.group(2):
            factor = _ENGLISH_SCALES[match.group(2).lower()]
            values |= {v * factor for v in read}
    values |= {Decimal(_WORDS.index(w.lower())) for w in _ENGLISH_WORD.findall(text)}
    values |= {Decimal(_MONTHS.index(m.lower()) + 1) for m in _ENGLISH_MONTH.findall(text)}
    return values


def numbers_match(arabic: str, english: str) -> bool:
    """Whether every number of the Arabic sentence appears in its English in an accepted form."""
    wanted = arabic_numbers(arabic)
    if not wanted:
        return True
    present = english_values(english)
    return all(values & present for values in wanted)

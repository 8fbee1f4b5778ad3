"""Checks on a sentence's English that an editor should see as flags: loops, odd lengths, leftover Arabic.

Each check is cheap and conservative: a flag is a reason to look, not a verdict.
"""

from __future__ import annotations

import re
from itertools import accumulate

from .flags import Flag
from .segmentation import has_arabic

# English pieces per Arabic piece for opus-mt-ar-en lies around 0.8-1.6 on news; far outside it,
# something was dropped or invented.
MIN_RATIO = 0.35
MAX_RATIO = 3.0
MIN_SOURCE_TOKENS = 6  # below this a ratio says little ("نعم." → "Yes, it is.")

_WORD = re.compile(r"\w+|[^\w\s]")
# Inside a word, letters only ([^\W\d_]: digits and punctuation runs are figures, rules and ellipses):
# one letter seven times ("eeeeeee"; quoted interjections run to six: "Zzzzz", "Nooooo", "Wooooow",
# "Aaaaargh", found by an attacker; "Hmmmm", "XXXIII" are shorter), two letters five times
# ("hahahahaha"; "hahaha", "banana" are English), or a piece of 3 to 20 letters three times
# ("ingingingin..."; "Mississippi", "couscous" repeat twice at most). The piece is bounded so that a
# long word costs a linear scan: unbounded, the scan grew with the square of the word (1.8 s at 8,000 letters).
_LOOP_IN_WORD = re.compile(r"([^\W\d_])\1{6,}|([^\W\d_]{2})\2{4,}|([^\W\d_]{3,20}?)\3{2,}", re.IGNORECASE)
# Links, addresses, handles and hashtags are copied from the source (rules.PROTECTED), not written by
# the model: their letters may repeat ("#GOOOAL", a video id).
_COPIED_MARKS = ("://", "www.", "@", "#")


def has_repetition(text: str) -> bool:
    """A loop of words, a loop inside a word, or a long run of one letter: the model stuck on a piece."""
    return has_word_loop(text) or has_loop_in_word(text)


def has_loop_in_word(text: str) -> bool:
    """A piece repeated inside one word ("cancelledingingingingss") or one letter run on ("eeeeeeeeeee")."""
    return any(
        _LOOP_IN_WORD.search(token) for token in text.split() if not any(mark in token for mark in _COPIED_MARKS)
    )


def has_word_loop(text: str) -> bool:
    """A loop: the same n-gram three times in a row (four for a single word: "very very" is English).

    An n-gram repeated k times is a run of n*(k-1) positions j where word j equals word j+n, so one
    linear scan per n finds it.
    """
    words = [w.lower() for w in _WORD.findall(text)]
    # Words before each position: a loop of marks alone ("------", "......", "?!?!?!") is typography.
    seen = list(accumulate((w.isalnum() for w in words), initial=0))
    for n in range(1, 7):
        need = n * (3 if n == 1 else 2)
        run = 0
        for j in range(len(words) - n):
            if words[j] != words[j + n] or seen[j + n] == seen[j]:
                run = 0
                continue
            run += 1
            if run >= need:
                return True
    return False


def has_odd_length(source_tokens: int, output_tokens: int) -> bool:
    if source_tokens < MIN_SOURCE_TOKENS:
        return False
    ratio = output_tokens / source_tokens
    return ratio < MIN_RATIO or ratio > MAX_RATIO


def quality_flags(translation: str, source_tokens: int, output_tokens: int) -> list[Flag]:
    """The quality flags of one translated sentence (its source and output measured in model pieces)."""
    if not translation.strip():
        return [Flag.EMPTY]
    flags = []
    if has_repetition(translation):
        flags.append(Flag.REPETITION)
    if has_odd_length(source_tokens, output_tokens):
        flags.append(Flag.LENGTH_RATIO)
    if has_arabic(translation):
        flags.append(Flag.UNTRANSLATED_ARABIC)
    return flags

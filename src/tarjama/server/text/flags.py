"""The sentence flags, one typed enum: what the pipeline and the quality checks may say about a sentence.

Names and meanings are the proto's `Sentence.Flag` (a test checks they are the same set); the
gRPC door maps them to the proto's numbers. Being `str`, they count and print as their names.
"""

from __future__ import annotations

from enum import Enum


class Flag(str, Enum):
    SPLIT = "SPLIT"  # too long for the model: translated in parts
    PROTECTED_RESTORED = "PROTECTED_RESTORED"  # URLs, handles, Latin names put back into the output
    PLACEHOLDER_LOST = "PLACEHOLDER_LOST"  # the model dropped a protected span; re-inserted
    PASSTHROUGH = "PASSTHROUGH"  # no Arabic letters: passed through untranslated
    REPETITION = "REPETITION"  # a loop in the output: of words, inside a word, or one letter run on (quality.py)
    LENGTH_RATIO = "LENGTH_RATIO"  # much shorter or longer than the source predicts
    UNTRANSLATED_ARABIC = "UNTRANSLATED_ARABIC"  # Arabic script left in the English
    EMPTY = "EMPTY"  # no output
    OUTPUT_CAPPED = "OUTPUT_CAPPED"  # generation stopped at the output-length cap
    TERM_LOST = "TERM_LOST"  # the model dropped a glossary term's rendering; re-inserted
    NUMBER_MISMATCH = "NUMBER_MISMATCH"  # a number of the Arabic is missing from the English (numbers.py)
    BOILERPLATE = "BOILERPLATE"  # page furniture (furniture.py): returned in place, kept out of the summary
    MARKUP_PLACED = "MARKUP_PLACED"  # html: inline markup placed by position in the sentence (markup/html.py)
    NAME_VARIANT = "NAME_VARIANT"  # a name spelt unlike its first rendering in the article (names.py)
    TERM_EXPANDED = "TERM_EXPANDED"  # the model wrote part of a glossary term's rendering; expanded in place

    def __str__(self) -> str:
        return self.value


def plan_flags(translated: bool, parts: int) -> tuple[Flag, ...]:
    """What a sentence's plan alone says of it: PASSTHROUGH when it is not translated (no Arabic), SPLIT
    when it is too long for the model and goes in `parts`. Segment, the translation and the CLI's local
    segmentation all decide them here."""
    if not translated:
        return (Flag.PASSTHROUGH,)
    return (Flag.SPLIT,) if parts > 1 else ()

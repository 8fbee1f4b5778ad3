"""NUMBER_MISMATCH: every number of the Arabic, in some accepted form, in the English."""

from __future__ import annotations

from pathlib import Path

import pytest

from tarjama.server.text.numbers import numbers_match

DATA = Path(__file__).resolve().parent / "fixtures" / "data"


@pytest.mark.parametrize(
    ("arabic", "english"),
    [
        ("قتل 50 ألفاً في الحرب", "50,000 were killed in the war"),
        ("قتل 50 ألفاً في الحرب", "50 thousand were killed in the war"),
        ("قتل 50 ألف شخص", "50000 people were killed"),
        ("بلغت الميزانية 3 مليارات دولار", "The budget reached $3 billion"),
        ("بلغت الميزانية 3 مليارات دولار", "The budget reached $3bn"),
        ("حضر ١٬٢٠٠ شخص", "1,200 people attended"),
        ("ارتفع بنسبة ٣٫٥ في المئة", "It rose by 3.5 percent"),
        ("ارتفع بنسبة 2,5%", "It rose by 2.5%"),
        ("في الساعة ١٢:٠٠ بتوقيت جرينتش", "at 12.00 GMT"),
        ("في الساعة 12:30", "at 1230"),
        ("في 2/3/2020", "on March 2, 2020"),
        ("أصيب 5 أشخاص", "Five people were injured"),
        ("أطلق النار من بندقيته م16", "He fired his M16 rifle"),
        ("معيار 802.11n", "the 802.11n standard"),
        ("قال المتحدث إن الاجتماع سيعقد غدا", "The spokesman said the meeting will be held tomorrow"),
    ],
)
def test_numbers_in_an_accepted_form_are_found(arabic: str, english: str) -> None:
    assert numbers_match(arabic, english)


@pytest.mark.parametrize(
    ("arabic", "english"),
    [
        ("قتل 50 ألفاً في الحرب", "5,000 were killed in the war"),
        ("قتل 50 ألفاً في الحرب", "Thousands were killed in the war"),
        ("حضر ١٬٢٠٠ شخص", "120 people attended"),
        ("ارتفع بنسبة ٣٫٥ في المئة", "It rose by 35 percent"),
        ("في عام 2019 و 2020", "in 2019"),
        ("في الساعة 12:30", "at 12"),
    ],
)
def test_a_missing_or_garbled_number_is_caught(arabic: str, english: str) -> None:
    assert not numbers_match(arabic, english)


def test_human_references_are_rarely_flagged() -> None:
    """On FLORES devtest's human translations, under 2% of the sentences with digits are flagged (the rest
    write a number another way: Roman numerals, 1200 GMT for 12:00, a figure reference)."""
    arabic = (DATA / "flores200-devtest.ara").read_text(encoding="utf-8").splitlines()
    english = (DATA / "flores200-devtest.eng").read_text(encoding="utf-8").splitlines()
    with_digits = [(a, e) for a, e in zip(arabic, english, strict=True) if any(c.isdigit() for c in a)]
    flagged = [a for a, e in with_digits if not numbers_match(a, e)]
    assert len(with_digits) > 150 and len(flagged) / len(with_digits) < 0.02, flagged

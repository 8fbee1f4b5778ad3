"""Normalisation, protected spans, glossary terms and quality checks, as units."""

from __future__ import annotations

from tarjama.server.text.quality import has_arabic, has_odd_length, has_repetition, quality_flags
from tarjama.server.text.rules import normalize, prepare, restore


def test_normalize_removes_tatweel_and_folds_presentation_forms() -> None:
    assert normalize("الحكـــومة") == "الحكومة"
    assert normalize("ﻻ") == "لا"
    assert normalize("مُحَمَّد", strip_diacritics=True) == "محمد"
    assert normalize("مُحَمَّد") == "مُحَمَّد"
    assert normalize("٣٫٥ و 3.5") == "٣٫٥ و 3.5", "digits are kept as written"


def test_protected_spans_are_found() -> None:
    text = "زوروا https://example.com/a?b=1 أو راسلوا news@example.org وتابعوا @tarjama و#غزة مع BBC News."
    kept = [k.text for k in prepare(text, {}).keeps]
    assert kept == ["https://example.com/a?b=1", "news@example.org", "@tarjama", "#غزة", "BBC News"]


def test_an_all_latin_sentence_needs_no_protection() -> None:
    assert prepare("Reuters reported it.", {}).keeps == ()


def test_glossary_term_is_replaced_even_after_a_clitic() -> None:
    prepared = prepare("وقال مارتيلي إن لمارتيلي خطة.", {"مارتيلي": "Michel Martelly"})
    assert prepared.text == "وقال Michel Martelly إن ل Michel Martelly خطة."
    assert [k.term for k in prepared.keeps] == ["مارتيلي", "مارتيلي"]


def test_restore_keeps_verbatim_fixes_altered_and_inserts_lost_spans() -> None:
    keeps = prepare("قال BBC إن الموقع www.example.com مغلق", {}).keeps
    assert restore("BBC said www.example.com is closed", keeps) == (
        restore("BBC said www.example.com is closed", keeps)
    )
    verbatim = restore("BBC said www.example.com is closed", keeps)
    assert (verbatim.text, verbatim.restored, verbatim.lost) == ("BBC said www.example.com is closed", False, ())
    altered = restore("bbc said www. example. com is closed", keeps)
    assert altered.text == "BBC said www.example.com is closed" and altered.restored and not altered.lost
    lost = restore("He said the site is closed.", keeps)
    assert "www.example.com" in lost.text and "BBC" in lost.text and len(lost.lost) == 2
    assert lost.text.endswith(".")


def test_repetition_loops_are_caught_and_normal_english_is_not() -> None:
    assert has_repetition("the war of the war of the war of the war")
    assert has_repetition("no no no no")
    assert not has_repetition("It was a very very long day, he said.")
    assert not has_repetition("Wait... what?!!!")


def test_length_ratio_and_leftover_arabic() -> None:
    assert has_odd_length(40, 5) and has_odd_length(10, 40)
    assert not has_odd_length(20, 22) and not has_odd_length(3, 30)
    assert has_arabic("The minister said الحكومة will act")
    assert quality_flags("", 10, 0) == ["EMPTY"]
    assert quality_flags("A normal sentence.", 10, 11) == []

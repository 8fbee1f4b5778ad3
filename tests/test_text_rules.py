"""Normalisation, protected spans, glossary terms and quality checks, as units."""

from __future__ import annotations

import pytest

from tarjama.server.text.quality import has_arabic, has_odd_length, has_repetition, quality_flags
from tarjama.server.text.rules import Keep, normalize, prepare, restore


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


def restored_term(source: str, terms: dict[str, str], english: str) -> tuple[str, list[str], list[str]]:
    """`english` restored against `source`'s keeps: its text, and the renderings lost and expanded."""
    result = restore(english, prepare(source, terms).keeps)
    return result.text, [k.text for k in result.lost], [k.text for k in result.expanded]


MARTELLY = {"مارتيلي": "Michel Martelly"}


@pytest.mark.parametrize(
    "english",
    [
        "It is Martelly's fifth CEP.",  # issue 19: came back "It is Martelly's fifth Michel Martelly CEP."
        "It is Michael Martelly's fifth CEP.",  # both words, one of them spelt close
    ],
)
def test_a_part_of_a_terms_rendering_is_expanded_in_place_not_doubled(english: str) -> None:
    text, lost, expanded = restored_term("إنه خامس مجلس انتخابي لمارتيلي.", MARTELLY, english)
    assert (text, lost, expanded) == ("It is Michel Martelly's fifth CEP.", [], ["Michel Martelly"])


def test_a_part_is_the_rendering_words_side_by_side_in_order() -> None:
    terms = {"الرئيس مارتيلي": "President Michel Martelly", "البشير": "Omar al-Bashir"}
    assert restored_term("قال الرئيس مارتيلي.", terms, "President Martelly said.")[0] == (
        "President Michel Martelly said."
    )
    assert restored_term("قال البشير.", terms, "al-Bashir said it.")[0] == "Omar al-Bashir said it."
    # The model's own article goes with the part it stood for: not "a the Council met."
    assert restored_term("اجتمع المجلس.", {"المجلس": "the Council"}, "A Council met.")[0] == "the Council met."


@pytest.mark.parametrize(
    ("rendering", "english"),
    [
        # Ordinary English that shares a word with the rendering (found by an attacker): inserted as before.
        ("White House", "He drove a white car to the meeting."),  # lowercase is not the name
        ("United Nations", "The nations united against it."),
        ("Mohammed bin Salman", "Mohammed Ali was a boxer, the crown prince said."),  # not the last word
        ("New York Times", "He lives in New York."),
        ("Saudi Aramco", "Saudi Arabia said."),
        ("Central Bank of Egypt", "Egypt's government said."),  # the last word alone, after "of"
        ("Michel Martelly", "Martell cognac sales rose."),  # a close spelling alone
        ("Michel Aoun", "Michael Jordan arrived."),
        ("Michel Martelly", "It is martelly's fifth CEP."),
        ("Michel Martelly", "It is Martelli's fifth CEP."),
        ("Michel Martelly", "It is Michel's fifth CEP."),  # a first name is not the person
    ],
)
def test_english_that_only_shares_a_word_with_the_rendering_is_left_alone(rendering: str, english: str) -> None:
    result = restore(english, (Keep(rendering, 0.5, term="مصطلح"),))
    assert not result.expanded and result.lost and rendering in result.text


@pytest.mark.parametrize(
    "source, terms, english, inserted",
    [
        # A word under three letters or a common one ("al", "the", "of") is no part of a rendering.
        ("قال البشير.", {"البشير": "Omar al-Bashir"}, "Al said it.", "Al Omar al-Bashir said it."),
        ("اجتمع المجلس.", {"المجلس": "the Council"}, "The meeting was held.", "The meeting the Council was held."),
        ("رأى وزير التجارة.", {"وزير التجارة": "Minister of Commerce"}, "He saw the head of it.",
         "He Minister of Commerce saw the head of it."),
        # Not a close spelling: other consonants.
        ("قال مارتيلي.", MARTELLY, "Martin said.", "Martin Michel Martelly said."),
        # "Martelly" of a Latin name kept verbatim in the sentence is that name's, not the term's.
        ("قال مارتيلي عن Martelly Foundation.", MARTELLY, "He spoke of the Martelly Foundation.",
         "He Michel Martelly spoke of the Martelly Foundation."),
        # Two terms of the sentence share "Biden": it tells neither, so each is inserted as before.
        ("قال بايدن وهنتر بايدن.", {"بايدن": "Joe Biden", "هنتر بايدن": "Hunter Biden"}, "Biden said.",
         "Joe Biden Biden Hunter Biden said."),
    ],
)  # fmt: skip
def test_words_that_do_not_tell_the_term_are_not_expanded(
    source: str, terms: dict[str, str], english: str, inserted: str
) -> None:
    text, lost, expanded = restored_term(source, terms, english)
    assert (text, expanded) == (inserted, []) and lost


def test_a_part_already_inside_the_rendering_is_not_expanded_again() -> None:
    # The term twice in the Arabic, "Martelly" twice in the English: the first expanded, and then the
    # sentence reads as news English does (the full name, then the surname), as when the model writes it
    # so: the second is neither expanded nor the name inserted again.
    twice = "قال مارتيلي إن حزب مارتيلي فاز."
    assert restored_term(twice, MARTELLY, "Martelly said Martelly's party won.") == (
        "Michel Martelly said Martelly's party won.", [], ["Michel Martelly"]
    )
    assert restored_term(twice, MARTELLY, "Michel Martelly said Martelly's party won.") == (
        "Michel Martelly said Martelly's party won.", [], []
    )
    assert restored_term(twice, MARTELLY, "He said his party won.")[0].count("Michel Martelly") == 2
    # First names alone are not the people (a name's part must hold its last word): both inserted.
    both = restored_term("قال بايدن وهنتر بايدن.", {"بايدن": "Joe Biden", "هنتر بايدن": "Hunter Biden"},
                         "Joe and Hunter said.")  # fmt: skip
    assert both[2] == [] and sorted(both[1]) == ["Hunter Biden", "Joe Biden"]


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

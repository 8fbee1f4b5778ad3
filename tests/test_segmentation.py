"""Paragraph and sentence segmentation: the examples users complain about, and the invariants."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tarjama.server.text.segmentation import split_long, split_paragraphs, split_sentences, word_spans


def sentences(text: str) -> list[str]:
    return [s.text for s in split_sentences(text)]


def test_blank_lines_separate_paragraphs_and_are_not_paragraphs() -> None:
    text = "الفقرة الأولى.\n\n   \nالفقرة الثانية.\r\nالفقرة الثالثة.\n"
    assert split_paragraphs(text) == ["الفقرة الأولى.", "الفقرة الثانية.", "الفقرة الثالثة."]


def test_paragraph_text_is_kept_exactly_with_its_spaces() -> None:
    assert split_paragraphs("  نص بمسافات.  \n\nآخر") == ["  نص بمسافات.  ", "آخر"]


def test_arabic_question_mark_ends_a_sentence() -> None:
    assert sentences("هل انتهى الاجتماع؟ نعم انتهى.") == ["هل انتهى الاجتماع؟", "نعم انتهى."]


def test_arabic_comma_and_semicolon_do_not_end_a_sentence() -> None:
    text = "قال الوزير، في مؤتمر صحفي؛ إن الحكومة ستتحرك."
    assert sentences(text) == [text]


def test_closing_quotes_and_brackets_stay_with_their_sentence() -> None:
    text = 'قال: "انتهى الأمر." ثم غادر (بسرعة.) وانتهى «كل شيء.» حقا!'
    assert sentences(text) == ['قال: "انتهى الأمر."', "ثم غادر (بسرعة.)", "وانتهى «كل شيء.»", "حقا!"]


def test_runs_of_terminators_end_once() -> None:
    assert sentences("ماذا؟! لا أصدق...؟ حسنا.") == ["ماذا؟!", "لا أصدق...؟", "حسنا."]


def test_an_ellipsis_inside_a_sentence_does_not_end_it() -> None:
    text = 'قال: "كانت غريبة الأطوار مثلي... وربما أكثر مني… آمل أنها في مكان أفضل."'
    assert sentences(text) == [text]
    assert sentences('انتظرنا طويلا..." ثم غادرنا.') == ['انتظرنا طويلا..."', "ثم غادرنا."]


def test_initials_and_titles_stay_with_the_name() -> None:
    text = "وقال نائب المفتش العام دي. كي. أريا إن ن. وين وأ.د. سمير وصلوا مع J. Smith."
    assert sentences(text) == [text]


def test_a_latin_letter_before_arabic_can_end_a_sentence() -> None:
    assert sentences("الرحلات المباشرة من A إلى B. تعلم الخطوط الجوية ذلك.") == [
        "الرحلات المباشرة من A إلى B.",
        "تعلم الخطوط الجوية ذلك.",
    ]


def test_numbers_urls_and_titles_do_not_end_sentences() -> None:
    text = "ارتفع المؤشر 3.5 بالمئة عند ١٠:٠٨ وفق example.com وقال د. أحمد إن Mr. Smith وصل."
    assert sentences(text) == [text]


def test_offsets_are_code_points_into_the_paragraph() -> None:
    paragraph = "  أولا.  ثانيا؟ ثالثا"
    spans = split_sentences(paragraph)
    assert [(s.start, s.end) for s in spans] == [(2, 7), (9, 15), (16, 21)]
    assert all(paragraph[s.start : s.end] == s.text for s in spans)


ARABIC_WORDS = st.sampled_from(["قال", "الوزير", "إن", "غدا", "3.5", "١٠:٠٨", "د.", "U.S.", "(نعم)", "«قال»", "x"])
PUNCT = st.sampled_from([".", "؟", "!", "…", "،", "؛", "?", '."', ".»", ")", ""])
SPACE = st.sampled_from([" ", "  ", "\t", " \u00a0"])
TEXT = st.lists(st.tuples(ARABIC_WORDS, PUNCT, SPACE), max_size=40).map(
    lambda parts: "".join(w + p + s for w, p, s in parts)
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(TEXT, st.text(max_size=200)))
def test_every_character_is_in_one_sentence_or_the_space_between(paragraph: str) -> None:
    spans = split_sentences(paragraph)
    covered = [False] * len(paragraph)
    previous_end = 0
    for span in spans:
        assert paragraph[span.start : span.end] == span.text
        assert span.text and not span.text[0].isspace() and not span.text[-1].isspace()
        assert span.start >= previous_end, "spans are in order and never overlap"
        for i in range(span.start, span.end):
            covered[i] = True
        previous_end = span.end
    assert all(covered[i] or paragraph[i].isspace() for i in range(len(paragraph)))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="ابت ثج\n\r .؟", max_size=30), max_size=10).map("\n".join))
def test_paragraphs_are_the_non_blank_lines_in_order(text: str) -> None:
    paragraphs = split_paragraphs(text)
    assert all(p.strip() for p in paragraphs)
    assert "".join(paragraphs).replace(" ", "") == "".join(text.split())


@settings(max_examples=200, deadline=None)
@given(TEXT, st.integers(min_value=3, max_value=40))
def test_long_sentence_parts_cover_every_word_within_budget(text: str, budget: int) -> None:
    words = [(s, e, max(1, (e - s) // 3)) for s, e in word_spans(text)]
    parts = split_long(text, words, budget)
    if not words:
        assert parts == []
        return
    assert parts[0][0] == words[0][0] and parts[-1][1] == words[-1][1]
    for (_, end), (start, _) in zip(parts, parts[1:], strict=False):
        assert end <= start and not text[end:start].strip(), "parts are separated only by white space"
    for start, end in parts:
        inside = [w for w in words if w[0] >= start and w[1] <= end]
        assert sum(w[2] for w in inside) <= budget or len(inside) <= 1


def test_long_sentence_is_cut_after_a_clause_mark_first() -> None:
    text = "كلمة " * 10 + "نهاية؛ " + "كلمة " * 10 + "أخيرة"
    words = [(s, e, 1) for s, e in word_spans(text)]
    parts = split_long(text, words, 15)
    assert text[parts[0][0] : parts[0][1]].endswith("نهاية؛")


def test_a_word_longer_than_the_budget_is_cut_inside_and_kept_whole() -> None:
    text = "ا" * 1000
    parts = split_long(text, [(0, 1000, 400)], 100)
    assert len(parts) == 4
    assert "".join(text[s:e] for s, e in parts) == text

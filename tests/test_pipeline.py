"""The pipeline with a fake engine: coverage of long text, passthrough, flags, terms, protected spans."""

from __future__ import annotations

import asyncio
import re

import pytest

from tarjama.server.document import Document
from tarjama.server.pipeline import TranslationPipeline
from tarjama.server.settings import Settings

from fakes import FakeEngine


def run(document: Document, engine: FakeEngine | None = None, **settings: object):  # noqa: ANN201
    pipeline = TranslationPipeline(engine or FakeEngine(), Settings(**settings))  # type: ignore[arg-type]
    try:
        return asyncio.run(pipeline.translate(document, None))
    finally:
        pipeline.close()


def doc(*paragraphs: str, **options: object) -> Document:
    return Document("d", tuple(paragraphs), **options)  # type: ignore[arg-type]


def test_a_5000_word_paragraph_without_punctuation_loses_nothing() -> None:
    words = [("كلمة" if i % 7 else "وكلمة") + ("،" if i % 50 == 49 else "") for i in range(5000)]
    paragraph = " ".join(words)
    engine = FakeEngine()
    result = run(doc(paragraph), engine, max_segment_tokens=120)
    (sentence,) = result.paragraphs[0].sentences
    assert (sentence.start, sentence.end) == (0, len(paragraph))
    assert "SPLIT" in sentence.flags
    sent = [" ".join(item.tokens[:-1]) for batch in engine.batches for item in batch]
    assert all(len(s.split()) <= 119 for s in sent), "every part fits the budget"
    assert sum(len(s.split()) for s in sent) == 5000, "the parts hold every word once"
    assert len(sentence.translation.split()) == 5000, "one English word per Arabic word: nothing dropped"


def test_cuts_prefer_clause_marks() -> None:
    paragraph = " ".join(["كلمة"] * 30 + ["نهاية؛"] + ["كلمة"] * 30)
    engine = FakeEngine()
    run(doc(paragraph), engine, max_segment_tokens=50)
    first = " ".join(engine.batches[0][0].tokens[:-1]) if len(engine.batches[0]) else ""
    parts = [" ".join(i.tokens[:-1]) for b in engine.batches for i in b]
    assert any(p.endswith("نهاية؛") for p in parts), (first, parts)


def test_a_paragraph_without_arabic_passes_through_untouched() -> None:
    engine = FakeEngine()
    result = run(doc("By John Smith, Reuters.  More at 11.", "قال الوزير."), engine)
    byline = result.paragraphs[0]
    assert byline.translation == "By John Smith, Reuters.  More at 11." or byline.translation == (
        "By John Smith, Reuters. More at 11."
    )
    assert all(s.flags == ("PASSTHROUGH",) and s.translation == s.source for s in byline.sentences)
    assert sum(len(b) for b in engine.batches) == 1, "only the Arabic paragraph reaches the model"


@pytest.mark.parametrize(
    "sentence, flag",
    [("قال فارغ.", "EMPTY"), ("قال تكرار.", "REPETITION"), ("قال اترك هنا.", "UNTRANSLATED_ARABIC")],
)
def test_quality_flags_appear_where_they_should(sentence: str, flag: str) -> None:
    result = run(doc(sentence))
    assert flag in result.paragraphs[0].sentences[0].flags
    assert result.flag_counts()[flag] == 1


def test_output_cap_is_flagged() -> None:
    result = run(doc("قال تكرار الآن."), max_output_tokens=5)
    assert "OUTPUT_CAPPED" in result.paragraphs[0].sentences[0].flags


def test_length_ratio_flag() -> None:
    result = run(doc("قال فارغ ولكن هنا كلمات كثيرة جدا في هذه الجملة الطويلة."))
    assert "EMPTY" in result.paragraphs[0].sentences[0].flags
    short = run(doc("قال اترك " + "كلمة " * 30 + "."))
    assert "LENGTH_RATIO" in short.paragraphs[0].sentences[0].flags


def test_protected_spans_come_back_verbatim_or_flagged() -> None:
    text = "قال المتحدث عبر @tarjama إن التقرير على https://example.com/r?id=7 الآن."
    kept = run(doc(text)).paragraphs[0].sentences[0]
    assert "@tarjama" in kept.translation and "https://example.com/r?id=7" in kept.translation
    assert "PLACEHOLDER_LOST" not in kept.flags
    lost = run(doc(text), FakeEngine(lossy=True)).paragraphs[0].sentences[0]
    assert "@tarjama" in lost.translation and "https://example.com/r?id=7" in lost.translation
    assert "PLACEHOLDER_LOST" in lost.flags
    assert lost.translation.index("@tarjama") < lost.translation.index("https://"), "put back in source order"


def test_glossary_terms_are_applied_reported_and_flagged_when_lost() -> None:
    terms = {"مارتيلي": "Michel Martelly", "المجلس": "the Council"}
    result = run(doc("قال مارتيلي إن المجلس اجتمع.", "وأكد لمارتيلي ذلك.", terms=terms))
    english = [p.translation for p in result.paragraphs]
    assert "Michel Martelly" in english[0] and "the Council" in english[0] and "Michel Martelly" in english[1]
    assert {(t.source, t.occurrences, t.kept) for t in result.terms} == {("مارتيلي", 2, True), ("المجلس", 1, True)}
    lossy = run(doc("قال مارتيلي إن المجلس اجتمع.", terms=terms), FakeEngine(lossy=True))
    sentence = lossy.paragraphs[0].sentences[0]
    assert "TERM_LOST" in sentence.flags and "Michel Martelly" in sentence.translation
    assert not any(t.kept for t in lossy.terms)


def test_normalisation_never_touches_the_echoed_source() -> None:
    source = "قال الوزيــــر إن ﻻ شيء تغيّر."
    engine = FakeEngine()
    result = run(doc(source, strip_diacritics=True), engine)
    assert result.paragraphs[0].source == source and result.paragraphs[0].sentences[0].source == source
    sent = " ".join(engine.batches[0][0].tokens)
    assert "ـ" not in sent and "ﻻ" not in sent and "ّ" not in sent


def test_token_counts_are_reported_per_sentence() -> None:
    result = run(doc("جملة أولى هنا. جملة ثانية."))
    assert [s.source_tokens for s in result.paragraphs[0].sentences] == [4, 3]
    assert re.match(r"w w w", result.paragraphs[0].sentences[0].translation)

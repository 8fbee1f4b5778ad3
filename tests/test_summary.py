"""Summaries: extractive (exact provenance), abstractive through both engines, and chunking coverage."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from tarjama.client import TarjamaClient
from tarjama.server.engines.base import EngineInfo
from tarjama.server.settings import Settings
from tarjama.server.summary import (
    AbstractiveSummarizer,
    ExtractiveSummarizer,
    SourceSentence,
    attribute,
    chunk_paragraphs,
    sentences_of,
)

from conftest import InProcessServer, ServerProcess, article

DATA = Path(__file__).resolve().parent / "fixtures" / "data"
ENGLISH = (DATA / "flores200-devtest.eng").read_text(encoding="utf-8").splitlines()


def extract(sentences: list[SourceSentence], length: str = "MEDIUM", count: int = 0):  # noqa: ANN201
    return ExtractiveSummarizer().summarize_now(sentences, length, count)


def test_extractive_is_verbatim_exact_in_provenance_and_in_article_order() -> None:
    sentences = sentences_of(ENGLISH[:40])
    summary = extract(sentences)
    assert len(summary.sentences) == 5
    positions = []
    for s in summary.sentences:
        (paragraph,) = s.paragraphs
        assert s.text in ENGLISH[paragraph] and s.score == 1.0
        positions.append(next(k for k, x in enumerate(sentences) if x.text == s.text and x.paragraph == paragraph))
    assert positions == sorted(positions)
    assert summary.text == " ".join(s.text for s in summary.sentences)
    assert extract(sentences) == summary, "deterministic"


@pytest.mark.parametrize("length, expected", [("SHORT", 3), ("MEDIUM", 5), ("LONG", 8)])
def test_extractive_respects_the_length_option(length: str, expected: int) -> None:
    assert len(extract(sentences_of(ENGLISH[:60]), length).sentences) == expected
    assert len(extract(sentences_of(ENGLISH[:60]), length, count=2).sentences) == 2


def test_extractive_on_one_paragraph_and_on_two_hundred() -> None:
    one = extract(sentences_of([ENGLISH[0] + " " + ENGLISH[1]]))
    assert [s.paragraphs for s in one.sentences] == [(0,), (0,)]
    many = extract(sentences_of(ENGLISH[:200]), "LONG")
    assert len(many.sentences) == 8 and all(0 <= s.paragraphs[0] < 200 for s in many.sentences)
    # TextRank has no bias to the lead: the picks spread over the article.
    assert max(s.paragraphs[0] for s in many.sentences) > 100


def test_extractive_never_repeats_a_sentence() -> None:
    # Regression: repeated boilerplate (here one sentence in six paragraphs) filled the whole summary.
    boilerplate = "Television reports show white smoke coming from the plant."
    paragraphs = [boilerplate] * 6 + ENGLISH[:6]
    summary = extract(sentences_of(paragraphs))
    texts = [s.text for s in summary.sentences]
    assert len(texts) == len(set(texts)) == 5
    assert texts.count(boilerplate) <= 1 and all(s.paragraphs != (3,) for s in summary.sentences)


def test_attribution_cites_the_supporting_paragraphs_and_flags_unsupported_ones() -> None:
    sentences = sentences_of(ENGLISH[:10])
    (supported, invented) = attribute(ENGLISH[3] + " Zebras quietly painted purple umbrellas.", sentences)
    assert supported.paragraphs[0] == 3 and supported.score > 0.9 and not supported.unsupported
    assert invented.unsupported and invented.paragraphs == ()


class FirstSentenceEngine:
    """A fake summary model: the first sentence of what it is given. Window: 60 words."""

    info = EngineInfo("summary", "first-sentence", "0", "", "fake", "cpu", "none")
    window = 60

    def __init__(self) -> None:
        self.inputs: list[str] = []

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(t.split()) for t in texts]

    def generate(self, batch):  # noqa: ANN001, ANN201
        self.inputs += [item.text for item in batch]
        return [sentences_of([item.text])[0].text for item in batch]

    def close(self) -> None:
        pass


def test_a_document_longer_than_the_window_is_summarised_to_its_end() -> None:
    engine = FirstSentenceEngine()
    summarizer = AbstractiveSummarizer(engine, Settings())
    paragraphs = ENGLISH[:30]  # about 700 words: a dozen windows
    try:
        summary = asyncio.run(summarizer.summarize(sentences_of(paragraphs), "MEDIUM", 0, None))
    finally:
        summarizer.close()
    assert len(engine.inputs) > 5 and all(len(t.split()) <= 60 for t in engine.inputs)
    texts = [s.text for s in summary.sentences]
    last_part = next(t for t in engine.inputs if paragraphs[-1] in t)
    first_part = next(t for t in engine.inputs if paragraphs[0] in t)
    assert sentences_of([last_part])[0].text in texts, "the last part of the article is in the summary"
    assert sentences_of([first_part])[0].text in texts
    cited = {p for s in summary.sentences for p in s.paragraphs}
    assert max(cited) >= 20 and min(cited) <= 2


def test_parts_are_cut_at_paragraph_boundaries_and_fit_the_window() -> None:
    sentences = sentences_of(ENGLISH[:30])
    parts = chunk_paragraphs(sentences, FirstSentenceEngine().count_tokens, 60)
    assert [s for part in parts for s in part] == sentences, "in order, nothing left out"
    for part in parts:
        assert sum(len(s.text.split()) for s in part) <= 60 or len({s.paragraph for s in part}) == 1
    boundaries = [(a[-1].paragraph, b[0].paragraph) for a, b in zip(parts, parts[1:], strict=False)]
    long_paragraphs = {p for p in range(30) if len(ENGLISH[p].split()) > 60}
    assert all(x != y or x in long_paragraphs for x, y in boundaries)


@pytest.mark.parametrize("engine", ["ctranslate2", "torch"])
def test_abstractive_summary_through_a_real_server(engine, fixture_models, base_settings, memorised_pairs):
    settings = replace(
        base_settings,
        engine=engine,
        translation_model=str(fixture_models["memorised"]),
        summary_model=str(fixture_models["bart"]),
    )
    server = InProcessServer(settings)
    server.wait_serving()
    try:
        arabic, english = article(memorised_pairs, [1, 2, 1, 3, 1, 2, 1, 1, 2, 1, 1, 3, 1, 2, 1, 1])
        with TarjamaClient(server.address) as client:
            response = client.translate(paragraphs=arabic, summarize=True)
            info = client.info()
            english_only = client.summarize("\n".join(english))
    finally:
        server.stop()
    assert [p.translation for p in response.paragraphs] == english
    summary = response.summary
    assert summary.method == "abstractive" and summary.model == str(fixture_models["bart"]) and summary.text
    for sentence in summary.sentences:
        assert all(0 <= p < 16 for p in sentence.paragraphs)
        assert sentence.paragraphs or sentence.unsupported
    assert response.info.timings.summarize_ms > 0
    assert [m.role for m in info.models] == ["translation", "summary"] and info.models[1].engine == engine
    assert english_only.summary.text


def test_summary_server_has_no_torch(fixture_models, cache_dir):
    # The default server: CTranslate2 for translation and for the BART summariser. transformers'
    # AutoTokenizer would import torch (about 200 MB of RSS) only to split words.
    process = ServerProcess(
        ["--translation-model", str(fixture_models["memorised"]), "--summary-model", str(fixture_models["bart"])]
        + ["--cache-dir", str(cache_dir)]
    )
    try:
        process.wait_serving()
        with TarjamaClient(process.address, timeout=60) as client:
            assert client.summarize("The council met today. It voted on the budget.").summary.method == "abstractive"
        assert "libtorch" not in Path(f"/proc/{process.proc.pid}/maps").read_text()
    finally:
        process.stop()

"""TERM_EXPANDED through the pipeline and the doors (issue 19): with `terms={"مارتيلي": "Michel Martelly"}` a
sentence came back "It is Martelly's fifth Michel Martelly CEP…", the model's part of the rendering and
the whole inserted beside it. The part is now expanded in place; the units are in test_text_rules.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from tarjama.client import TarjamaClient
from tarjama.server.document import Document
from tarjama.server.engines.base import Hypothesis, SourceItem
from tarjama.server.pipeline import TranslationPipeline
from tarjama.server.settings import Settings
from tarjama.v1 import tarjama_pb2 as pb

from conftest import engine_server, post_json
from fakes import FakeEngine

TERMS = {"مارتيلي": "Michel Martelly", "المجلس": "the Council"}


class SurnameEngine(FakeEngine):
    """The fake engine, writing only the surname of "Michel Martelly" (as a possessive), as the model did."""

    def _one(self, item: SourceItem) -> Hypothesis:
        hypothesis = super()._one(item)
        return replace(hypothesis, text=hypothesis.text.replace("Michel Martelly", "Martelly's"))


def test_the_pipeline_expands_the_part_flags_the_sentence_and_counts_it_as_kept() -> None:
    pipeline = TranslationPipeline(SurnameEngine(), Settings())  # type: ignore[arg-type]
    document = Document("d", ("قال مارتيلي إن المجلس اجتمع.", "وأكد لمارتيلي ذلك.", "قال الوزير."), terms=TERMS)
    try:
        result = asyncio.run(pipeline.translate(document, None))
    finally:
        pipeline.close()
    sentences = [p.sentences[0] for p in result.paragraphs]
    assert sentences[0].translation == "w Michel Martelly's w the Council w"
    assert sentences[1].translation == "w w Michel Martelly's w"  # the clitic ل is a word of its own
    assert [s.flags for s in sentences] == [("TERM_EXPANDED",), ("TERM_EXPANDED",), ()]
    assert result.flag_counts() == {"TERM_EXPANDED": 2}
    reports = {t.source: (t.occurrences, t.kept, t.expanded) for t in result.terms}
    assert reports == {"مارتيلي": (2, True, 2), "المجلس": (1, True, 0)}


def test_the_grpc_and_http_answers_carry_the_flag_and_the_count(base_settings) -> None:  # noqa: ANN001
    with engine_server(base_settings, SurnameEngine()) as server:
        with TarjamaClient(server.address) as client:
            answer = client.translate("قال مارتيلي إن المجلس اجتمع.\nقال الوزير.", terms=TERMS)
        assert [list(p.sentences[0].flags) for p in answer.paragraphs] == [[pb.Sentence.TERM_EXPANDED], []]
        assert answer.info.flag_counts["TERM_EXPANDED"] == 1
        assert {t.source: (t.kept, t.expanded) for t in answer.terms} == {"مارتيلي": (True, 1), "المجلس": (True, 0)}
        body = post_json(server.http + "/v1/translate", {"text": "وأكد لمارتيلي ذلك.", "options": {"terms": TERMS}})
        sentence = body["paragraphs"][0]["sentences"][0]
        assert sentence["flags"] == ["TERM_EXPANDED"] and "Michel Martelly's" in sentence["translation"], body
        assert {t["source"]: t.get("expanded", 0) for t in body["terms"]} == {"مارتيلي": 1, "المجلس": 0}, body

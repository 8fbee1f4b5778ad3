"""BOILERPLATE: page furniture in plain text is flagged, returned in place, and kept out of the summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from tarjama.client import TarjamaClient
from tarjama.server.text.furniture import is_furniture
from tarjama.v1 import tarjama_pb2 as pb

from conftest import article

DATA = Path(__file__).resolve().parent / "fixtures" / "data"


@pytest.mark.parametrize(
    "line",
    ["+ الخط -", "حجم الخط", "A A A", "المساهمون", "بقلم: أحمد محمد", "كتب - محمد علي", "تصوير: رويترز",
     "(رويترز)", "أ ف ب", "الصورة: أرشيفية", "شارك على فيسبوك", "فيسبوك تويتر واتساب", "اقرأ أيضاً: الحكومة تعلن",
     "آخر تحديث: 12 مارس 2024"],  # fmt: skip
)
def test_page_furniture_is_recognised(line: str) -> None:
    assert is_furniture(line)


@pytest.mark.parametrize(
    "line",
    ["قال المتحدث إن الاجتماع سيعقد غدا.",
     "كتب الرئيس رسالة إلى البرلمان يطالب فيها بإصلاحات واسعة في النظام الانتخابي.",
     "رويترز تقول إن الاجتماع تأجل إلى الأسبوع المقبل بسبب الخلافات",
     "الخط الأحمر الذي رسمه الرئيس لن يتم تجاوزه أبدا في هذه المفاوضات"],  # fmt: skip
)
def test_article_text_is_not_furniture(line: str) -> None:
    assert not is_furniture(line)


def test_no_real_sentence_is_taken_for_furniture() -> None:
    sentences = (DATA / "flores200-devtest.ara").read_text(encoding="utf-8").splitlines()
    assert not [s for s in sentences if is_furniture(s)]


def test_furniture_is_returned_in_place_flagged_and_never_summarised(hardened_server, memorised_pairs) -> None:
    arabic, english = article(memorised_pairs, [1] * 6)
    page = ["+ الخط -", "المساهمون", *arabic[:3], "تصوير: رويترز", *arabic[3:]]
    with TarjamaClient(hardened_server.address, timeout=60) as client:
        response = client.translate("\n".join(page), summarize=True, summary_length=pb.LONG)
    assert [p.source for p in response.paragraphs] == page, "every line in its place"
    furniture = {0, 1, 5}
    for p in response.paragraphs:
        flagged = [pb.Sentence.BOILERPLATE in s.flags for s in p.sentences]
        assert all(flagged) if p.index in furniture else not any(flagged), p.source
    assert [p.translation for i, p in enumerate(response.paragraphs) if i not in furniture] == english
    assert response.summary.sentences
    for sentence in response.summary.sentences:
        assert not furniture & set(sentence.paragraphs), sentence
    assert response.info.flag_counts["BOILERPLATE"] == 3

"""REPETITION: loops of words, loops inside a word and runs of one letter (issue 19), never on real English.

An editor tried the fixture model and got `cancelledingingingingingingingssss` and `eeeeeeeeeee` with no
flag: only loops of whole words were caught.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tarjama.client import TarjamaClient
from tarjama.server.document import Document
from tarjama.server.engines.base import Hypothesis, SourceItem
from tarjama.server.pipeline import TranslationPipeline
from tarjama.server.settings import Settings
from tarjama.server.text.quality import has_loop_in_word, has_repetition, has_word_loop, quality_flags
from tarjama.v1 import tarjama_pb2 as pb

from conftest import engine_server, post_json
from fakes import FakeEngine

DATA = Path(__file__).resolve().parent / "fixtures" / "data"
REPORTED = {  # what the fixture model wrote, by a word of the Arabic that steers the fake engine to it
    "ألغيت": "Theoc the topsmith have cancelledingingingingingingingssss.",
    "الجولة": "Aeros say the eeeeeeeeeee theleve the tour.",
}


class LoopingEngine(FakeEngine):
    """The fake engine, writing the reported garbage for a sentence that holds one of REPORTED's words."""

    def _one(self, item: SourceItem) -> Hypothesis:
        for word, english in REPORTED.items():
            if word in {token.strip(".") for token in item.tokens}:
                return Hypothesis(english, len(english.split()), -0.1, False)
        return super()._one(item)


@pytest.mark.parametrize("english", REPORTED.values())
def test_the_reported_loops_inside_a_word_are_caught(english: str) -> None:
    assert not has_word_loop(english), "no whole word repeats: the old check missed it"
    assert has_loop_in_word(english) and has_repetition(english)
    assert quality_flags(english, 5, 9) == ["REPETITION"]


@pytest.mark.parametrize(
    "english",
    [
        "have cancelledingingingingingingingssss.",  # a piece of three letters, seven times
        "cancelledcancelledcancelled",  # a whole word three times without spaces
        "the eeeeeeeeeee tour",  # one letter eleven times
        "it was sssssss",  # seven is long enough
        "HAVEEEEEEE",  # case does not hide it
        "anananananan",  # two letters six times
        "TheTheThe",  # mixed case
    ],
)
def test_loops_inside_a_word_and_runs_of_one_letter_are_caught(english: str) -> None:
    assert has_repetition(english)


@pytest.mark.parametrize(
    "english",
    [
        "Zzz",
        "Zzzzz", "Mmmmm", "Nooooo", "Weeeee", "Oooooh", "Wooooow", "Aaaaargh",  # quoted interjections
        "Hmmmm, he said.",
        "Aaah",
        "Mississippi",
        "banana",
        "couscous and bonbons",
        "hahaha",
        "hahahaha",
        "Baden-Baden, Walla Walla and Pago Pago",
        "Kamehameha, Humuhumunukunukuapuaa, Llanfairpwllgwyngyll",
        "bookkeeper, goddessship, Tsetse",
        "Phase III trials and Super Bowl XXXIII, MMXXIV",
        "AAA batteries, the WWW and the CCC",
        "1000000, 2222 and 0.0000001",
        "------",
        "Wait.... what?!?!?!",
        "______ and ======",
        "See https://www.youtube.com/watch?v=aaaaaaaaaa or www.zzzzzzzz.com",
        "Write to aaaaaa@example.com or @zzzzzzz, #GOOOOOAL",
    ],
)
def test_real_english_is_not_flagged(english: str) -> None:
    assert not has_repetition(english)


def test_word_loops_are_still_caught() -> None:
    assert has_repetition("the war of the war of the war of the war")
    assert has_repetition("the war, the war, the war,")
    assert has_repetition("no no no no")
    assert not has_repetition("It was a very very long day, he said.")
    assert not has_repetition("- - - - - - and ..........")  # a loop of marks alone is typography


def test_no_human_reference_sentence_is_flagged() -> None:
    """FLORES-200 devtest and TICO-19 test, every English reference line: 0 flagged (3,112 lines)."""
    for name, lines in (("flores200-devtest.eng", 1012), ("tico19-test.eng", 2100)):
        english = (DATA / name).read_text(encoding="utf-8").splitlines()
        assert len(english) == lines
        flagged = [line for line in english if has_repetition(line)]
        assert flagged == [], (name, flagged)


def test_a_huge_word_is_scanned_in_linear_time() -> None:
    # The Thue-Morse word has no piece three times in a row, so every piece is tried at every letter: with
    # the piece unbounded (`{3,}?`) that took 1.8 s for 8,000 letters and grew with the square (about 20
    # minutes for these 200,000); bounded, 0.2 s.
    word = "".join("ab"[i.bit_count() % 2] for i in range(200_000))
    started = time.perf_counter()
    assert not has_loop_in_word(word)
    assert time.perf_counter() - started < 10


def test_the_flag_reaches_the_pipelines_sentences_and_counts() -> None:
    pipeline = TranslationPipeline(LoopingEngine(), Settings())  # type: ignore[arg-type]
    try:
        document = Document("d", ("قال ألغيت.", "قال الجولة.", "قال الوزير."))
        result = asyncio.run(pipeline.translate(document, None))
    finally:
        pipeline.close()
    assert [p.sentences[0].flags for p in result.paragraphs] == [("REPETITION",), ("REPETITION",), ()]
    assert result.flag_counts()["REPETITION"] == 2


def test_the_flag_reaches_the_grpc_and_http_responses(base_settings) -> None:  # noqa: ANN001
    with engine_server(base_settings, LoopingEngine()) as server:
        with TarjamaClient(server.address) as client:
            answer = client.translate("قال ألغيت.\nقال الوزير.")
        assert [list(p.sentences[0].flags) for p in answer.paragraphs] == [[pb.Sentence.REPETITION], []]
        assert answer.info.flag_counts["REPETITION"] == 1
        body = post_json(server.http + "/v1/translate", {"text": "قال الجولة."})
        assert body["paragraphs"][0]["sentences"][0]["flags"] == ["REPETITION"], body

"""Inputs that used to hang, freeze or exhaust the server, each answered (or refused) in bounded time.

Every reproduction of issue 8 is here, against `tarjama serve` in its own process, with a health
probe running beside it: health must answer within 100 ms throughout, as a Kubernetes probe would
need, and the server must still translate correctly afterwards.
"""

from __future__ import annotations

import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from tarjama.client import TarjamaClient, TarjamaError
from tarjama.client.formats import render
from tarjama.server.summary import (
    FALLBACK_METHOD,
    AbstractiveSummarizer,
    ExtractiveSummarizer,
    SourceSentence,
)
from tarjama.server.text.rules import prepare
from tarjama.v1 import tarjama_pb2 as pb

from conftest import (  # noqa: F401 - the bound, for the others
    HEALTH_BOUND_S,
    HealthMonitor,
    assert_still_translates,
    raw_call,
    varint,
    wire_field,
)

LIMIT = 200_000  # --max-characters


def finishes(function, seconds: float) -> bool:  # noqa: ANN001
    """Whether `function()` returns within `seconds` (run on a daemon thread, so a hang cannot stall the suite)."""
    done = threading.Event()
    threading.Thread(target=lambda: (function(), done.set()), daemon=True).start()
    return done.wait(seconds)


# -- 1. a glossary target that contains its source term --------------------------------------------


@pytest.mark.parametrize(
    "terms",
    [{"مصر": "مصر"}, {"الأمم المتحدة": "United Nations (الأمم المتحدة)"}, {"مصر": "مصر مصر", "ومصر": "و"}],
)
def test_a_glossary_target_containing_its_term_is_replaced_once(terms: dict[str, str]) -> None:
    sentence = "قال ممثل مصر في الأمم المتحدة إن مصر تدعم القرار."
    result: list = []
    assert finishes(lambda: result.append(prepare(sentence, terms)), 5), "the replacement loop never ends"
    source = next(iter(terms))
    occurrences = sentence.count(source)
    assert sum(1 for k in result[0].keeps if k.term == source) == occurrences


def test_self_containing_glossary_through_the_server_short_and_long(hardened_server, memorised_pairs) -> None:
    terms = {"مصر": "مصر", "الأمم المتحدة": "United Nations (الأمم المتحدة)"}
    short = "قال ممثل مصر في الأمم المتحدة إن مصر تدعم القرار."
    long = "\n".join([short] * 60)  # over 2,000 characters: planned off the event loop
    with HealthMonitor(hardened_server.address) as health, TarjamaClient(hardened_server.address, timeout=60) as client:
        for text in (short, long):
            response = client.translate(text, terms=terms)
            reports = {t.source: t.occurrences for t in response.terms}
            assert reports["مصر"] == 2 * text.count(short)
    health.check()
    assert_still_translates(hardened_server.address, memorised_pairs)


def test_a_term_that_normalises_to_nothing_is_refused(hardened_server) -> None:
    with TarjamaClient(hardened_server.address, timeout=10) as client, pytest.raises(TarjamaError) as error:
        client.translate("قال الوزير إن مصر تدعم القرار.", terms={"ـ": "-"})
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "options.terms" in error.value.message and "tatweel" in error.value.message


# -- 2 and the adversarial set: pathological text at the limit --------------------------------------

ADVERSARIAL = {
    "no spaces, Arabic": "ب" * (LIMIT - 1000),
    "no spaces, Latin with one Arabic letter": "a" * 50_000 + "ب",
    "all punctuation": "!؟.،" * 49_000 + "ب",
    "e-mail-like run": "a@b." * 49_000 + "ب",
    "URL-like run": ("http://x.y/" + "ب" * 5) * 12_000,
    "words": "كلمة " * 39_000,
    "Latin names between Arabic words": "ab ب " * 5_000,
    "one-word sentences": "نعم. " * 39_000,
    "diacritics and tatweel only": "\u064e\u0640" * 99_000 + "ب",
    "zero-width and direction marks": "\u200f\u200b\u202bب" * 49_000,
}


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_pathological_text_is_answered_in_seconds_with_health_answering(hardened_server, name: str) -> None:
    text = ADVERSARIAL[name]
    assert len(text) <= LIMIT
    with HealthMonitor(hardened_server.address) as health, TarjamaClient(hardened_server.address) as client:
        started = time.monotonic()
        segmented = client.segment(text, timeout=60)
        translated = client.translate(text, summarize=True, timeout=120)
        summarized = client.summarize(text, timeout=60)
        elapsed = time.monotonic() - started
    assert len(segmented.paragraphs) == len(translated.paragraphs) >= 1
    for paragraph in translated.paragraphs:
        covered = "".join(s.source for s in paragraph.sentences)
        assert covered.replace(" ", "") == paragraph.source.replace(" ", ""), "every character is in a sentence"
    assert summarized.summary.sentences
    assert elapsed < 90, f"{name}: {elapsed:.1f}s"
    health.check(name)


ADVERSARIAL_HTML = {
    "19,000 line breaks": "<p>ب" + "<br>" * 19_000 + "</p>",
    "19,000 sibling blocks": "<div>" + "<p>x</p>" * 19_000 + "<p>خبر</p></div>",
    "19,000 inline elements around Arabic": "<p>" + "<span>ب</span>" * 19_000 + "</p>",
    "19,000 inline elements around Latin": "<p>خبر " + "<b>a</b> " * 19_000 + "</p>",
    "1,900 blocks split by text": "<div>" + "خبر<p>x</p>" * 1_900 + "</div>",
    "199 levels of nesting": "<div>" * 199 + "خبر",
    "200,000 elements (refused)": "<p>ب" + "<br>" * 200_000 + "</p>",
    "300 levels of nesting (refused)": "<div>" * 300 + "خبر",
}


@pytest.mark.parametrize("name", list(ADVERSARIAL_HTML))
def test_pathological_html_is_answered_in_seconds_with_health_answering(hardened_server, name: str) -> None:
    html = ADVERSARIAL_HTML[name]
    with HealthMonitor(hardened_server.address) as health, TarjamaClient(hardened_server.address) as client:
        started = time.monotonic()
        try:
            translated = client.translate(html=html, timeout=120)
        except TarjamaError as exc:
            assert "refused" in name and exc.code == grpc.StatusCode.INVALID_ARGUMENT, exc
        else:
            assert "refused" not in name and translated.html and translated.paragraphs
        elapsed = time.monotonic() - started
    assert elapsed < 60, f"{name}: {elapsed:.1f}s"
    health.check(name)


def test_the_server_still_translates_after_the_adversarial_set(hardened_server, memorised_pairs) -> None:
    assert_still_translates(hardened_server.address, memorised_pairs)


# -- 3. extractive summaries in linear memory -------------------------------------------------------


def test_extractive_summary_memory_is_linear_in_sentences() -> None:
    # 10,000 sentences: a dense similarity matrix alone is 800 MB; the sparse products need a few MB.
    words = "minister council election budget health school army court market oil water rain".split()
    sentences = [
        SourceSentence(i // 5, f"The {words[i % 12]} and the {words[(i * 7) % 12]} met on day {i}.")
        for i in range(10_000)
    ]
    tracemalloc.start()
    started = time.monotonic()
    summary = ExtractiveSummarizer().summarize_now(sentences, "MEDIUM", 0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(summary.sentences) == 5
    assert peak < 150 * 1024 * 1024, f"peak {peak / 2**20:.0f} MB"
    assert time.monotonic() - started < 30


# -- 6. a large glossary --------------------------------------------------------------------------


def test_a_large_glossary_is_matched_off_the_event_loop_and_capped(hardened_server) -> None:
    terms = {f"مصطلح{i}": f"term{i}" for i in range(10_000)}
    with HealthMonitor(hardened_server.address) as health, TarjamaClient(hardened_server.address, timeout=60) as client:
        response = client.translate("قال إن مصطلح7 ومصطلح9999 مهمان.", terms=terms)
        info = client.info()
    kept = {t.source: t.occurrences for t in response.terms if t.occurrences}
    assert kept == {"مصطلح7": 1, "مصطلح9999": 1}
    health.check()
    assert info.limits.max_glossary_terms == 10_000 and info.limits.max_term_characters == 200
    with TarjamaClient(hardened_server.address, timeout=60) as client, pytest.raises(TarjamaError) as error:
        client.translate("نص.", terms={**terms, "زائد": "extra"})
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT and "at most 10000" in error.value.message


# -- 7. what a client gets wrong is INVALID_ARGUMENT, naming the field ------------------------------


BAD_REQUESTS = [
    ("Summarize", pb.SummarizeRequest(text="Text.", length=4).SerializeToString(), "length: 4 is not"),
    ("Summarize", pb.SummarizeRequest(text="Text.", length=99).SerializeToString(), "length: 99 is not"),
    ("Summarize", wire_field(2, b"Text.") + varint(4 << 3) + varint(-1), "length: -1 is not"),
    (
        "Translate",
        pb.TranslateRequest(
            text="نص.", summarize=True, options=pb.TranslateOptions(summary_length=7)
        ).SerializeToString(),
        "options.summary_length: 7",
    ),
    ("Translate", wire_field(2, b"\xd9\x86\xff\xfe"), "text: not valid UTF-8"),
    ("Segment", wire_field(3, b"ok") + wire_field(3, b"\xc3\x28"), "paragraphs: not valid UTF-8"),
    (
        "Translate",
        wire_field(2, "نص.".encode()) + wire_field(5, wire_field(1, wire_field(1, b"\xe2\x82"))),
        "options.terms.key",
    ),
    ("Translate", wire_field(2, "نص.".encode())[:-2], "text"),
    ("Translate", varint(2 << 3 | 2) + varint(2**31) + b"abc", "runs past the end"),
    ("Translate", b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", "not a valid tarjama.v1.TranslateRequest"),
    ("GetInfo", b"\x0a\x05ab", "not a valid tarjama.v1.GetInfoRequest"),
    ("Summarize", pb.SummarizeRequest(text="Text.", sentences=51).SerializeToString(), "sentences: 51"),
]


@pytest.mark.parametrize(("method", "payload", "named"), BAD_REQUESTS)
def test_malformed_and_out_of_range_requests_get_invalid_argument(hardened_server, method, payload, named) -> None:
    with grpc.insecure_channel(hardened_server.address) as channel:
        code, details = raw_call(channel, method, payload)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)
    assert named in details and "\n" not in details and "Error" not in details.split(":")[0]


def test_only_what_a_request_uses_is_validated(hardened_server) -> None:
    # No summary asked for: an out-of-range summary length or sentence count is not the request's business.
    options = pb.TranslateOptions(summary_length=9, summary_sentences=500)
    with grpc.insecure_channel(hardened_server.address) as channel:
        payload = pb.TranslateRequest(text="قال الوزير.", options=options).SerializeToString()
        assert raw_call(channel, "Translate", payload)[0] == grpc.StatusCode.OK


def test_bad_requests_leave_no_traceback_in_the_log(hardened_server) -> None:
    with grpc.insecure_channel(hardened_server.address) as channel:
        for method, payload, _ in BAD_REQUESTS:
            raw_call(channel, method, payload)
    assert "Traceback" not in hardened_server.log()


# -- 8. a burst of calls on one channel ---------------------------------------------------------------


def test_thousands_of_concurrent_calls_on_one_channel_are_answered_never_cancelled(hardened_server) -> None:
    # grpc-core used to cancel, without a word, calls past its 1,000 pending (a third of 5,000).
    with grpc.insecure_channel(hardened_server.address) as channel:
        stub = channel.unary_unary(
            "/tarjama.v1.Translator/Translate",
            request_serializer=pb.TranslateRequest.SerializeToString,
            response_deserializer=pb.TranslateResponse.FromString,
        )
        calls = [stub.future(pb.TranslateRequest(text=f"قال المتحدث رقم {i}."), timeout=120) for i in range(4000)]
        codes: dict[str, int] = {}
        for call in calls:
            code = call.code()
            codes[code.name] = codes.get(code.name, 0) + 1
    assert set(codes) <= {"OK", "RESOURCE_EXHAUSTED"}, codes


# -- 9. an abstractive model that writes nothing ---------------------------------------------------


class SilentSummaryEngine:
    """A summary engine whose model returns empty text for everything."""

    window = 256

    class info:  # noqa: N801 - the attribute engines expose
        id = "silent-model"

    def generate(self, items):  # noqa: ANN001, ANN201
        return ["" for _ in items]

    def count_tokens(self, texts):  # noqa: ANN001, ANN201
        return [len(t.split()) for t in texts]

    def close(self) -> None:
        pass


def test_an_empty_abstractive_summary_falls_back_to_extractive_and_says_so(caplog) -> None:
    import asyncio

    from tarjama.server.settings import Settings

    summarizer = AbstractiveSummarizer(SilentSummaryEngine(), Settings())
    sentences = [SourceSentence(i, f"The council met on day {i} to vote on the budget.") for i in range(6)]
    try:
        summary = asyncio.run(summarizer.summarize(sentences, "SHORT", 0, None))
    finally:
        summarizer.close(5)
    assert summary.method == FALLBACK_METHOD and len(summary.sentences) == 3
    assert all(s.text in {x.text for x in sentences} for s in summary.sentences)
    assert "returned no text" in caplog.text
    printed = render(pb.TranslateResponse(summary=pb.Summary(method=FALLBACK_METHOD, text="A.", sentences=[
        pb.SummarySentence(text="A.", paragraphs=[0])])), "text")  # fmt: skip
    assert "summary model returned nothing" in printed
    empty = render(pb.TranslateResponse(summary=pb.Summary(method="abstractive")), "text")
    assert "no summary" in empty, "an empty summary is said, not silently dropped"


def test_many_clients_during_the_adversarial_load_all_get_answers(hardened_server, memorised_pairs) -> None:
    # Small requests keep being answered while a limit-size article is planned and translated.
    big = ADVERSARIAL["words"]
    with ThreadPoolExecutor(max_workers=4) as pool, TarjamaClient(hardened_server.address, timeout=120) as client:
        heavy = pool.submit(client.translate, big)
        small = [pool.submit(client.translate, memorised_pairs[i][0]) for i in range(6)]
        assert [f.result().paragraphs[0].translation for f in small] == [memorised_pairs[i][1] for i in range(6)]
        assert len(heavy.result().paragraphs) == 1


def test_the_ctranslate2_server_with_device_auto_never_loads_torch(hardened_server) -> None:
    # `--device auto` used to ask torch whether a GPU is visible, mapping libtorch (about 200 MB of
    # RSS) into a server that never uses it. Each engine now asks only its own library. (The
    # abstractive summariser's light tokenizer keeps torch out too: see test_summary_server_has_no_torch.)
    maps = Path(f"/proc/{hardened_server.proc.pid}/maps").read_text()
    assert "libtorch" not in maps


def test_a_glossary_cannot_multiply_the_article(hardened_server) -> None:
    """Found by an attacker: a one-letter term with a 200-character target, 99,999 times in the text, made a
    300 KB request a 41 MB answer (20 million characters of English, and as much for the model to read)."""
    with TarjamaClient(hardened_server.address, timeout=60) as client:
        with pytest.raises(TarjamaError) as refused:
            client.translate("ب " * 2_000, terms={"ب": "x" * 200})
        assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "would add 400000 characters to the article; this server accepts at most 200000" in refused.value.message



def test_a_small_request_whose_glossary_multiplies_it_is_worked_off_the_event_loop(hardened_server) -> None:
    """Found by an attacker: 4,066 bytes whose one-letter term has a 150-character target (195,000
    characters added, within --max-characters) were counted small by their size as sent, so planning,
    checking and writing 290,000 characters of English ran on the event loop: health waited 288 ms."""
    import asyncio

    from tarjama.server.request import admit
    from tarjama.server.settings import Settings

    text, terms = "ب " * 1_300, {"ب": "x" * 150}
    message = pb.TranslateRequest(text=text, options=pb.TranslateOptions(terms=terms))
    assert message.ByteSize() <= 4096
    assert not asyncio.run(admit(message, Settings(), None)).small, "its text work must leave the event loop"
    plain = pb.TranslateRequest(text="ب " * 500, options=pb.TranslateOptions(terms={"مارتيلي": "Michel Martelly"}))
    assert asyncio.run(admit(plain, Settings(), None)).small, "a glossary that cannot multiply it changes nothing"
    address = hardened_server.address
    with HealthMonitor(address) as health, TarjamaClient(address, timeout=120) as client:
        for _ in range(2):
            assert client.translate(text, terms=terms).terms[0].occurrences == 1_300
    health.check("a 4 KB request that its glossary makes 290,000 characters")

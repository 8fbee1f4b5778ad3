"""An in-process server on a free port over a real channel: alignment under concurrency, errors, info."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from tarjama.client import TarjamaClient, TarjamaError
from tarjama.v1 import tarjama_pb2 as pb

from conftest import article


def assert_aligned(response: pb.TranslateResponse, arabic: list[str], english: list[str]) -> None:
    assert [p.source for p in response.paragraphs] == arabic
    assert [p.index for p in response.paragraphs] == list(range(len(arabic)))
    assert [p.translation for p in response.paragraphs] == english
    for paragraph in response.paragraphs:
        for sentence in paragraph.sentences:
            assert paragraph.source[sentence.source_start : sentence.source_end] == sentence.source


def test_concurrent_clients_each_get_their_own_document_exactly(ct2_server, memorised_pairs):
    # Twelve documents of different shapes, rotated through the pairs, sent at once: any mix-up in
    # batching or reassembly puts a sentence in the wrong paragraph or document and fails here.
    documents = []
    for d in range(12):
        shape = [1 + (d + k) % 3 for k in range(3 + d % 5)]
        rotated = memorised_pairs[d:] + memorised_pairs[:d]
        documents.append(article(rotated, shape))

    def send(doc):  # noqa: ANN001, ANN202
        arabic, _ = doc
        with TarjamaClient(ct2_server.address) as client:
            return client.translate("\n\n".join(arabic), id=f"doc-{len(arabic)}")

    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(send, documents))
    for (arabic, english), response in zip(documents, responses, strict=True):
        assert_aligned(response, arabic, english)
        assert response.id == f"doc-{len(arabic)}"


def test_paragraphs_field_is_taken_as_given(ct2_server, memorised_pairs):
    arabic, english = article(memorised_pairs, [2, 1, 3])
    with TarjamaClient(ct2_server.address) as client:
        response = client.translate(paragraphs=arabic)
    assert_aligned(response, arabic, english)
    assert [len(p.sentences) for p in response.paragraphs] == [2, 1, 3]


def test_response_reports_model_decoding_and_timings(ct2_server, memorised_pairs):
    with TarjamaClient(ct2_server.address) as client:
        response = client.translate(memorised_pairs[0][0])
        info = client.info()
    assert response.info.model.engine == "ctranslate2" and response.info.model.compute_type == "int8"
    assert response.info.decoding.beam_size == 4
    assert response.info.timings.total_ms > 0 and response.info.sentences == 1
    assert info.models[0].role == "translation" and info.models[0].revision.startswith("local-")
    assert info.limits.max_characters > 0 and info.limits.max_paragraphs > 0
    assert info.server_version


@pytest.mark.parametrize(
    "request_kwargs, message",
    [
        ({}, "text is empty"),
        ({"text": " \n\t\n "}, "only white space"),
        ({"paragraphs": ["نص", "  "]}, "paragraphs[1] is empty"),
        ({"text": "نص", "paragraphs": ["نص"]}, "either text or paragraphs"),
    ],
)
def test_bad_requests_get_invalid_argument_naming_the_problem(ct2_server, request_kwargs, message):
    stub_request = pb.TranslateRequest(**request_kwargs)
    with grpc.insecure_channel(ct2_server.address) as channel:
        from tarjama.v1 import tarjama_pb2_grpc

        with pytest.raises(grpc.RpcError) as error:
            tarjama_pb2_grpc.TranslatorStub(channel).Translate(stub_request, timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in error.value.details()


def test_limits_are_enforced_before_queueing(fixture_models, base_settings):
    from dataclasses import replace

    from conftest import InProcessServer

    settings = replace(
        base_settings, translation_model=str(fixture_models["memorised"]), max_characters=50, max_paragraphs=2
    )
    server = InProcessServer(settings)
    server.wait_serving()
    try:
        with TarjamaClient(server.address) as client:
            with pytest.raises(TarjamaError) as error:
                client.translate("ا" * 51)
            assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT and "at most 50" in error.value.message
            with pytest.raises(TarjamaError) as error:
                client.translate("أ\nب\nت")
            assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT and "3 paragraphs" in error.value.message
    finally:
        assert server.stop() == 0


def test_an_oversized_message_is_refused_and_the_server_keeps_serving(ct2_server, memorised_pairs):
    with TarjamaClient(ct2_server.address) as client:
        with pytest.raises(TarjamaError) as error:
            client.translate("ب" * (3 * 1024 * 1024))  # 6 MB of UTF-8, over the 4 MiB limit
        assert error.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert client.health() == "SERVING"
        assert client.translate(memorised_pairs[1][0]).paragraphs[0].translation == memorised_pairs[1][1]


def test_summary_without_a_summariser_is_a_failed_precondition(ct2_server):
    with TarjamaClient(ct2_server.address) as client:
        with pytest.raises(TarjamaError) as error:
            client.translate("نص عربي.", summarize=True)
    assert error.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "summar" in error.value.message


def test_a_very_long_unpunctuated_paragraph_comes_back_whole(ct2_server, memorised_pairs):
    words = " ".join(a.rstrip(".") for a, _ in memorised_pairs).split()
    paragraph = " ".join(words[i % len(words)] for i in range(1500))  # no sentence ends at all
    with TarjamaClient(ct2_server.address) as client:
        response = client.translate(paragraph, timeout=120)
    (only,) = response.paragraphs
    assert only.source == paragraph
    (sentence,) = only.sentences
    assert (sentence.source_start, sentence.source_end) == (0, len(paragraph))
    assert pb.Sentence.SPLIT in sentence.flags
    assert response.info.sentences > 1, "translated in several parts, none truncated"


def test_health_and_reflection(fixture_models, base_settings):
    from dataclasses import replace

    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    from conftest import InProcessServer

    server = InProcessServer(
        replace(base_settings, translation_model=str(fixture_models["memorised"]), reflection=True)
    )
    server.wait_serving()
    try:
        with grpc.insecure_channel(server.address) as channel:
            services = ProtoReflectionDescriptorDatabase(channel).get_services()
        assert "tarjama.v1.Translator" in services and "grpc.health.v1.Health" in services
        with TarjamaClient(server.address) as client:
            assert client.health("tarjama.v1.Translator") == "SERVING"
    finally:
        assert server.stop() == 0


def test_protected_spans_and_terms_come_back_verbatim_through_a_real_server(ct2_server, memorised_pairs):
    # The fixture model never saw a URL or a handle: it drops them, and the server puts them back.
    arabic = memorised_pairs[0][0].rstrip(".") + " عبر https://example.com/news?id=42 و@tarjama."
    with TarjamaClient(ct2_server.address) as client:
        response = client.translate(arabic, terms={"لونا": "Luna Vachon"})
        glossary = client.translate(memorised_pairs[2][0], terms={"لونا": "Luna Vachon"})
    sentence = response.paragraphs[0].sentences[0]
    assert "https://example.com/news?id=42" in sentence.translation and "@tarjama" in sentence.translation
    assert pb.Sentence.PLACEHOLDER_LOST in sentence.flags or sentence.translation.count("@tarjama") == 1
    assert response.info.flag_counts.get("PLACEHOLDER_LOST", 0) == sum(
        pb.Sentence.PLACEHOLDER_LOST in s.flags for p in response.paragraphs for s in p.sentences
    )
    (report,) = glossary.terms
    assert (report.source, report.target, report.occurrences) == ("لونا", "Luna Vachon", 1)
    assert "Luna Vachon" in glossary.paragraphs[0].translation
    assert report.kept == (pb.Sentence.TERM_LOST not in glossary.paragraphs[0].sentences[0].flags)


def test_segment_rpc_gives_sentences_offsets_and_token_counts(ct2_server, memorised_pairs):
    arabic, _ = article(memorised_pairs, [2, 1])
    with TarjamaClient(ct2_server.address) as client:
        response = client.segment("\n\n".join(arabic + ["Reuters"]))
    assert [p.source for p in response.paragraphs] == arabic + ["Reuters"]
    assert [len(p.sentences) for p in response.paragraphs] == [2, 1, 1]
    assert all(s.source_tokens > 0 for p in response.paragraphs[:2] for s in p.sentences)
    assert response.paragraphs[2].sentences[0].flags == [pb.Sentence.PASSTHROUGH]
    assert response.source_tokens == sum(s.source_tokens for p in response.paragraphs for s in p.sentences)
    assert not any(p.translation for p in response.paragraphs)

"""Deadlines and cancellation through a real server: the dropped work never reaches the model."""

from __future__ import annotations

import time
from dataclasses import replace

import grpc
import pytest

from tarjama.client import TarjamaClient, TarjamaError
from tarjama.server.pipeline import TranslationPipeline
from tarjama.server.runtime import Models
from tarjama.v1 import tarjama_pb2 as pb
from tarjama.v1 import tarjama_pb2_grpc as pb_grpc

from conftest import InProcessServer, wait_until
from fakes import FakeEngine


class SlowEngine(FakeEngine):
    def translate(self, batch):  # noqa: ANN001, ANN201
        time.sleep(0.15)
        return super().translate(batch)


@pytest.fixture()
def slow_server(base_settings):  # noqa: ANN001, ANN201
    engine = SlowEngine()
    settings = replace(base_settings, max_batch_size=4)
    server = InProcessServer(settings, load=lambda s: Models(TranslationPipeline(engine, s)))
    server.wait_serving()
    yield server, engine
    server.stop()


def forty_sentences() -> list[str]:
    return [f"قال المتحدث رقم {i} كلاما." for i in range(40)]  # 10 batches of 4: 1.5 s of engine time


def seen(engine: FakeEngine) -> int:
    return sum(len(batch) for batch in engine.batches)


def test_a_passed_deadline_drops_the_rest_of_the_document(slow_server):
    server, engine = slow_server
    with TarjamaClient(server.address) as client:
        with pytest.raises(TarjamaError) as error:
            client.translate(paragraphs=forty_sentences(), timeout=0.4)
        assert error.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        wait_until(lambda: client.info().stats.queued_tokens == 0, 10, "the expired request left the queue")
        assert seen(engine) < 20, "the expired request's queued sentences never reached the model"
        assert client.translate("قال الوزير.").paragraphs[0].translation == "w w"


def test_a_cancelled_call_drops_its_queued_sentences(slow_server):
    server, engine = slow_server
    with TarjamaClient(server.address) as client, grpc.insecure_channel(server.address) as channel:
        call = pb_grpc.TranslatorStub(channel).Translate.future(
            pb.TranslateRequest(paragraphs=forty_sentences()), timeout=30
        )
        wait_until(lambda: seen(engine), 10, "the call's first batch reached the model")
        call.cancel()
        wait_until(lambda: client.info().stats.queued_tokens == 0, 10, "its queue space is freed")
        assert seen(engine) < 20


class PoisonEngine(FakeEngine):
    """Fails any batch holding the word سم ("poison")."""

    def translate(self, batch):  # noqa: ANN001, ANN201
        if any("سم" in item.tokens for item in batch):
            raise RuntimeError("engine exploded")
        return super().translate(batch)


def test_a_failing_batch_fails_its_request_with_internal_and_the_server_keeps_serving(base_settings):
    engine = PoisonEngine()
    server = InProcessServer(base_settings, load=lambda s: Models(TranslationPipeline(engine, s)))
    server.wait_serving()
    try:
        with TarjamaClient(server.address) as client:
            with pytest.raises(TarjamaError) as error:
                client.translate("قال سم هنا.")
            assert error.value.code == grpc.StatusCode.INTERNAL
            assert "exploded" not in error.value.message, "no internals in the message"
            assert client.health() == "SERVING"
            assert client.translate("قال الوزير.").paragraphs[0].translation == "w w"
    finally:
        server.stop()


def test_a_full_queue_refuses_at_once_while_health_answers(base_settings):
    engine = SlowEngine()
    settings = replace(base_settings, max_batch_size=4, max_queue_tokens=60)
    server = InProcessServer(settings, load=lambda s: Models(TranslationPipeline(engine, s)))
    server.wait_serving()
    try:
        with TarjamaClient(server.address) as client, grpc.insecure_channel(server.address) as channel:
            first = pb_grpc.TranslatorStub(channel).Translate.future(
                pb.TranslateRequest(paragraphs=forty_sentences()), timeout=30
            )
            # Its first batch runs; the rest of it fills the queue.
            wait_until(lambda: client.info().stats.queued_tokens, 10, "the first request's sentences are queued")
            started = time.monotonic()
            # A plain channel: TarjamaClient would retry the refusal with backoff (as it should).
            with grpc.insecure_channel(server.address, options=[("grpc.enable_retries", 0)]) as plain:
                stub = plain.unary_unary(
                    "/tarjama.v1.Translator/Translate",
                    request_serializer=pb.TranslateRequest.SerializeToString,
                    response_deserializer=pb.TranslateResponse.FromString,
                )
                with pytest.raises(grpc.RpcError) as error:
                    stub(pb.TranslateRequest(paragraphs=forty_sentences()[:10]), timeout=30)
            assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "overloaded" in error.value.details()
            assert time.monotonic() - started < 0.5, "refused at once, not queued"
            assert client.health() == "SERVING"
            assert len(first.result().paragraphs) == 40
            assert client.info().stats.overloaded == 1
    finally:
        server.stop()

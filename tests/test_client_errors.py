"""The client's typed errors: each refusal of a real server arrives as its own TarjamaError subclass (one table
from status code to class), for the unary call, the stream, health and info alike, so that a newsroom tool can
`except Overloaded:` and retry instead of comparing status codes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import grpc
import pytest

from tarjama.client import (
    DeadlineExceeded,
    FeatureUnavailable,
    Internal,
    InvalidArgument,
    NotFound,
    Overloaded,
    TarjamaClient,
    TarjamaError,
    Unauthenticated,
    Unavailable,
)
from tarjama.client.client import ERRORS, error_from
from tarjama.server.engines.base import EngineInfo, Hypothesis, SourceItem
from tarjama.server.parallelism import Parallelism
from tarjama.server.pipeline import TranslationPipeline
from tarjama.server.runtime import Models

from conftest import InProcessServer, free_port, serve_memorised

POISON = "سم"  # a batch holding this word fails in the engine


class GatedEngine:
    """Translates every word as "w", but only once `gate` is open; a batch with POISON raises."""

    info = EngineInfo("translation", "gated", "0", "", "fake", "cpu", "none")
    parallelism = Parallelism("cpu", (0,), 1, 1, 32, "test")

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.running = threading.Event()  # a batch has reached the engine

    def tokenize(self, texts: list[str]) -> list[tuple[str, ...]]:
        return [(*text.split(), "</s>") for text in texts]

    def translate(self, batch: list[SourceItem]) -> list[Hypothesis]:
        self.running.set()
        self.gate.wait(60)
        if any(POISON in item.tokens for item in batch):
            raise RuntimeError("engine exploded")
        return [Hypothesis("w", 1, -0.1, False) for _ in batch]

    def close(self) -> None:
        self.gate.set()


@pytest.fixture()
def gated(base_settings) -> Iterator[tuple[InProcessServer, GatedEngine]]:  # noqa: ANN001 - the fixture's Settings
    engine = GatedEngine()
    settings = replace(base_settings, max_batch_size=4, max_queue_tokens=60)
    server = InProcessServer(settings, load=lambda s: Models(TranslationPipeline(engine, s)))
    server.wait_serving()
    yield server, engine
    engine.gate.set()
    server.stop()


def sentences(count: int) -> list[str]:
    return [f"قال المتحدث رقم {i} كلاما." for i in range(count)]


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return "said the server"


def test_one_table_maps_each_status_code_to_its_class() -> None:
    expected = {
        grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
        grpc.StatusCode.FAILED_PRECONDITION: FeatureUnavailable,
        grpc.StatusCode.RESOURCE_EXHAUSTED: Overloaded,
        grpc.StatusCode.UNAVAILABLE: Unavailable,
        grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
        grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
        grpc.StatusCode.INTERNAL: Internal,
        grpc.StatusCode.NOT_FOUND: NotFound,
    }
    for code, cls in expected.items():
        error = error_from(FakeRpcError(code))
        assert type(error) is cls and isinstance(error, TarjamaError), (code, error)
        assert error.code == code and error.message == "said the server"
        assert str(error) == f"{code.name}: said the server"
    assert all(issubclass(cls, TarjamaError) for cls in ERRORS.values())
    # A code without a class of its own is still a TarjamaError, and the old constructor still works.
    assert type(error_from(FakeRpcError(grpc.StatusCode.ABORTED))) is TarjamaError
    assert TarjamaError(grpc.StatusCode.ABORTED, "x").code == grpc.StatusCode.ABORTED


def test_a_bad_request_is_invalid_argument_unary_and_streamed(ct2_server) -> None:  # noqa: ANN001
    with TarjamaClient(ct2_server.address, timeout=30) as client:
        with pytest.raises(InvalidArgument) as empty:
            client.translate("")
        assert empty.value.code == grpc.StatusCode.INVALID_ARGUMENT and "text is empty" in empty.value.message
        with pytest.raises(InvalidArgument):
            list(client.translate_stream("نص", paragraphs=["نص"]))
        with pytest.raises(FeatureUnavailable) as no_summariser:  # started with --summary-model none
            client.translate("نص عربي.", summarize=True)
        assert no_summariser.value.code == grpc.StatusCode.FAILED_PRECONDITION


def test_a_full_queue_is_overloaded_after_the_clients_retries(gated) -> None:  # noqa: ANN001
    server, engine = gated
    with TarjamaClient(server.address, timeout=60) as client, ThreadPoolExecutor(1) as pool:
        first = pool.submit(client.translate, paragraphs=sentences(40))  # one batch runs, the rest fill the queue
        deadline = time.monotonic() + 30
        while not (engine.running.is_set() and client.info().stats.queued_tokens):
            assert time.monotonic() < deadline, "the first request never queued"
            time.sleep(0.02)
        with pytest.raises(Overloaded) as refused:  # every retry refused too: the engine is held
            client.translate(paragraphs=sentences(10))
        assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "overloaded" in refused.value.message
        engine.gate.set()
        assert len(first.result(60).paragraphs) == 40


def test_a_passed_timeout_is_deadline_exceeded_unary_and_streamed(gated) -> None:  # noqa: ANN001
    server, _ = gated
    with TarjamaClient(server.address) as client:
        with pytest.raises(DeadlineExceeded):
            client.translate("قال الوزير.", timeout=0.3)
        with pytest.raises(DeadlineExceeded) as late:
            list(client.translate_stream("قال الوزير.", timeout=0.3))
        assert late.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_an_engine_failure_is_internal_without_internals(gated) -> None:  # noqa: ANN001
    server, engine = gated
    engine.gate.set()
    with TarjamaClient(server.address, timeout=30) as client:
        with pytest.raises(Internal) as failed:
            client.translate(f"قال {POISON} هنا.")
        assert failed.value.code == grpc.StatusCode.INTERNAL and "exploded" not in failed.value.message
        assert client.translate("قال الوزير.").paragraphs[0].translation == "w"


def test_a_missing_or_unknown_token_is_unauthenticated(fixture_models, cache_dir, memorised_pairs, tmp_path) -> None:  # noqa: ANN001
    token = "t" * 32
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"desk:{token}\n")
    server = serve_memorised(fixture_models, cache_dir, "--auth-tokens-file", str(tokens))  # SIGHUP: a process
    try:
        server.wait_serving()  # health needs no token
        arabic, english = memorised_pairs[0]
        for wrong in (None, "u" * 32):
            with TarjamaClient(server.address, token=wrong, timeout=30) as client:
                with pytest.raises(Unauthenticated) as refused:
                    client.translate(arabic)
                assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED and "Bearer" in refused.value.message
                with pytest.raises(Unauthenticated):
                    list(client.translate_stream(arabic))
        with TarjamaClient(server.address, token=token, timeout=30) as client:
            assert client.translate(arabic).paragraphs[0].translation == english
    finally:
        server.stop()


def test_nobody_listening_is_unavailable_for_health_and_calls() -> None:
    with TarjamaClient(f"127.0.0.1:{free_port()}") as client:
        with pytest.raises(Unavailable):
            client.health(timeout=5)
        with pytest.raises(Unavailable):
            client.info(timeout=10)

"""Fault injection: no request and no fault in an engine worker leaves a server that says SERVING while
it cannot translate (issue 17, item 1).

- Every deadline is bounded: `?timeout=` past --max-deadline-s is a 400 naming the limit, a gRPC deadline
  past it is clamped, and the batcher never waits on a timer the platform cannot represent (a timeout of
  10¹⁰ s killed both worker threads with OverflowError while health said SERVING).
- A worker whose loop raises fails only the requests of the batch it held and is replaced. (An engine
  call that raises fails its request with INTERNAL and the server keeps serving:
  test_deadlines.py::test_a_failing_batch_fails_its_request_with_internal_and_the_server_keeps_serving.)
- A batch hung past --engine-watchdog-s: health NOT_SERVING, queued work UNAVAILABLE, the process exits 3.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tarjama.client import TarjamaClient, TarjamaError
from tarjama.server import batcher as batcher_module
from tarjama.server.batcher import Batcher, BatchLimits
from tarjama.server.errors import EngineFailure, EngineUnavailable
from tarjama.server.pipeline import TranslationPipeline
from tarjama.server.runtime import Models
from tarjama.server.scheduling import Scheduler

from conftest import InProcessServer, free_port, wait_until
from fakes import FakeEngine

HERE = Path(__file__).resolve().parent
SERVICE = "tarjama.v1.Translator"


class RecordingPipeline(TranslationPipeline):
    """Remembers the deadline each translation was given, as seconds from then."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.deadlines: list[float | None] = []

    def translate_stream(self, document, deadline, **options):  # noqa: ANN001, ANN003, ANN201
        self.deadlines.append(None if deadline is None else deadline - time.monotonic())
        return super().translate_stream(document, deadline, **options)


def loader(into: list, kind: type[TranslationPipeline] = TranslationPipeline):  # type: ignore[type-arg]  # noqa: ANN201
    """A `load=` for serve(): the fake engine in a pipeline of `kind`, kept in `into` for the test."""

    def load(settings):  # noqa: ANN001, ANN202
        pipeline = kind(FakeEngine(), settings)
        into.append(pipeline)
        return Models(pipeline)

    return load


@pytest.fixture()
def fake_server(base_settings):  # noqa: ANN001, ANN201
    """An in-process server (gRPC and HTTP) over the fake engine, with its pipeline at hand."""
    made: list[RecordingPipeline] = []
    http_port = free_port()
    server = InProcessServer(
        replace(base_settings, http_port=http_port, max_deadline_s=600), load=loader(made, RecordingPipeline)
    )
    server.wait_serving()
    server.http = f"http://127.0.0.1:{http_port}"  # type: ignore[attr-defined]
    server.pipeline = made[0]  # type: ignore[attr-defined]
    yield server
    server.stop()


def post(url: str, body: dict) -> tuple[int, dict]:  # type: ignore[type-arg]
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def alive_workers(batcher: Batcher) -> int:  # type: ignore[type-arg]
    return batcher.live_workers


# -- deadlines ----------------------------------------------------------------------------------------


def test_a_huge_http_timeout_is_a_400_naming_the_limit_and_the_server_still_translates(fake_server) -> None:
    # The report: ?timeout=10000000000 answered 200, then every later Translate hung for good.
    url = fake_server.http + "/v1/translate"
    status, answer = post(url + "?timeout=10000000000", {"text": "قال الوزير."})
    assert status == 400 and answer["error"]["status"] == "INVALID_ARGUMENT", answer
    assert "at most 600 seconds" in answer["error"]["message"] and "max-deadline-s" in answer["error"]["message"]
    status, answer = post(url + "?timeout=600", {"text": "قال الوزير."})  # the limit itself is allowed
    assert status == 200 and answer["paragraphs"][0]["translation"] == "w w"
    status, answer = post(url + "?timeout=3", {"text": "قال الوزير."})
    assert status == 200 and answer["paragraphs"][0]["translation"] == "w w"
    assert alive_workers(fake_server.pipeline.batcher) == fake_server.pipeline.batcher.workers


def test_a_huge_grpc_deadline_is_clamped_and_the_server_still_translates(fake_server) -> None:
    # grpc's Python client takes timeouts up to about 9e9 s (past that it fails at once, DEADLINE_EXCEEDED);
    # the server is told at most about 1e8 s (grpc-timeout has 8 digits): still over --max-deadline-s.
    with TarjamaClient(fake_server.address) as client:
        assert client.translate("قال الوزير.", timeout=5e9).paragraphs[0].translation == "w w"
        assert client.translate("قال الوزير.", timeout=3).paragraphs[0].translation == "w w"
        assert client.health() == "SERVING"
    clamped, short = fake_server.pipeline.deadlines
    assert 590 < clamped <= 600, f"a 5·10⁹ s deadline reached the pipeline as {clamped:.0f}s (limit 600)"
    assert 2 < short < 3.5, "a deadline within the limit is left as it is"
    assert alive_workers(fake_server.pipeline.batcher) == fake_server.pipeline.batcher.workers


@pytest.mark.parametrize("far", [1e10, math.inf])
def test_the_batcher_survives_any_deadline_it_is_given(far: float) -> None:
    engine = lambda items: [i.upper() for i in items]  # noqa: E731
    batcher: Batcher[str, str] = Batcher(engine, BatchLimits(max_batch_delay_s=0.002), workers=2)
    try:
        assert batcher.submit(["a"], [1], time.monotonic() + far).future.result(5) == ["A"]
        # The workers now wait on that deadline; before, Condition.wait raised OverflowError and both died.
        assert batcher.submit(["b"], [1], time.monotonic() + 3).future.result(5) == ["B"]
        assert alive_workers(batcher) == 2
    finally:
        batcher.stop(5)


# -- a worker whose loop raises -------------------------------------------------------------------------


class Armed:
    """Makes one call of a Scheduler method raise, once armed (the batcher's workers call it under their lock)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
        self.armed = threading.Event()
        original = getattr(Scheduler, name)

        def replacement(batcher, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            if self.armed.is_set():
                self.armed.clear()
                raise RuntimeError("a bug in the scheduling")
            return original(batcher, *args, **kwargs)

        monkeypatch.setattr(Scheduler, name, replacement)


@pytest.mark.parametrize(
    ("where", "outcome"),
    [
        ("measured", "INTERNAL"),  # after the engine ran: the batch it held fails, and only that
        ("_batch_size", "OK"),  # before it took anything: the replacement worker serves the request
    ],
)
def test_a_worker_whose_loop_raises_is_replaced_and_the_server_keeps_serving(
    base_settings, monkeypatch, where: str, outcome: str
) -> None:
    fault = Armed(monkeypatch, where)
    pipeline: list[TranslationPipeline] = []
    server = InProcessServer(base_settings, load=loader(pipeline))
    try:
        server.wait_serving()
        batcher = pipeline[0].batcher
        with TarjamaClient(server.address, timeout=10) as client:
            assert client.translate("قال الوزير.").paragraphs[0].translation == "w w"
            fault.armed.set()
            try:
                client.translate("قال المتحدث.")
                got = "OK"
            except TarjamaError as exc:
                got = exc.code.name
                assert "scheduling" not in exc.message, "no internals in the message"
            assert got == outcome
            assert not fault.armed.is_set(), "the fault was injected"
            assert client.health() == "SERVING"
            for _ in range(3):  # served by the replacement, as many workers as before
                assert client.translate("قال الرئيس.").paragraphs[0].translation == "w w"
        assert batcher.stats.worker_restarts == 1
        assert alive_workers(batcher) == batcher.workers
    finally:
        server.stop()


def test_workers_that_keep_failing_mean_the_engine_cannot_run(monkeypatch) -> None:
    # The same fault on every pass would otherwise replace workers for ever (and hold the queue).
    monkeypatch.setattr(Scheduler, "wait_s", lambda self, now: 1 / 0)
    told: list[str] = []
    batcher: Batcher[str, str] = Batcher(lambda items: items, BatchLimits(), workers=2)
    batcher.supervise(0, told.append)
    ticket = batcher.submit(["a"], [1])
    with pytest.raises(EngineUnavailable) as error:
        ticket.future.result(10)
    assert "failed" in str(error.value) and "retry on another instance" in str(error.value)
    assert batcher.stats.worker_restarts == batcher_module.MAX_RESTARTS + 1
    assert len(told) == 1
    with pytest.raises(EngineUnavailable):
        batcher.submit(["b"], [1])
    assert batcher.stop(5)


def test_a_batch_that_raises_fails_its_requests_as_engine_failures() -> None:
    # The engine's own error stays the batch's: no worker is replaced for it.
    def engine(items: list[str]) -> list[str]:
        if "boom" in items:
            raise RuntimeError("engine exploded")
        return items

    batcher: Batcher[str, str] = Batcher(engine, BatchLimits(max_batch_delay_s=0.002))
    with pytest.raises(EngineFailure):
        batcher.submit(["boom"], [1]).future.result(5)
    assert batcher.submit(["fine"], [1]).future.result(5) == ["fine"]
    assert batcher.stats.worker_restarts == 0
    batcher.stop(5)


# -- a batch hung past the watchdog -------------------------------------------------------------------

HUNG_SERVER = """
import asyncio, logging, sys, threading
sys.path.insert(0, sys.argv[1])
from fakes import FakeEngine
from tarjama.server.app import exit_now, serve
from tarjama.server.pipeline import TranslationPipeline
from tarjama.server.runtime import Models
from tarjama.server.settings import Settings

class HangingEngine(FakeEngine):
    def translate(self, batch):
        if any("توقف" in item.tokens for item in batch):  # "stop": this batch never returns
            print("the engine hangs", file=sys.stderr, flush=True)  # the test waits for this line
            threading.Event().wait()
        return super().translate(batch)

logging.basicConfig(level="INFO", stream=sys.stderr)
settings = Settings(port=0, http_port=int(sys.argv[2]), engine_watchdog_s=1.0, summary_model="none",
                    device="cpu", threads=1, cache_dir=sys.argv[3])
listening = lambda port: print(port, flush=True)
load = lambda s: Models(TranslationPipeline(HangingEngine(), s))
code = asyncio.run(serve(settings, on_listening=listening, load=load))
exit_now(code)
"""


def test_a_batch_hung_past_the_watchdog_turns_health_not_serving_and_the_process_exits(tmp_path) -> None:
    http_port = free_port()
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-c", HUNG_SERVER, str(HERE), str(http_port), str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
        )
    try:
        port = process.stdout.readline().strip()  # type: ignore[union-attr]
        assert port, log_path.read_text()
        address = f"127.0.0.1:{port}"
        with grpc.insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if health.Check(health_pb2.HealthCheckRequest(), timeout=2).status == 1:
                        break
                except grpc.RpcError:
                    pass
                time.sleep(0.05)
            translate = channel.unary_unary(
                f"/{SERVICE}/Translate",
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=lambda b: b,
            )
            from tarjama.v1 import tarjama_pb2 as pb

            hung = translate.future(pb.TranslateRequest(text="قال توقف هنا."), timeout=60)
            # Its batch is on the engine; the next request queues behind it.
            wait_until(lambda: "the engine hangs" in log_path.read_text(), 30, "the hung batch reached the engine")
            queued = translate.future(pb.TranslateRequest(text="قال الوزير."), timeout=60)
            hung_at = time.monotonic()
            assert hung.exception(30) is not None and hung.code() == grpc.StatusCode.UNAVAILABLE
            assert queued.exception(5) is not None and queued.code() == grpc.StatusCode.UNAVAILABLE
            assert "retry on another instance" in queued.details()
            # Health already says so (it does for a moment before the process exits), on every door.
            seen: dict[str, set[object]] = {"": set(), SERVICE: set(), "/healthz": set()}
            while process.poll() is None and time.monotonic() < hung_at + 30:
                for name in ("", SERVICE):
                    try:
                        seen[name].add(health.Check(health_pb2.HealthCheckRequest(service=name), timeout=1).status)
                    except grpc.RpcError as exc:
                        seen[name].add(exc.code().name)
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=1) as answer:
                        seen["/healthz"].add(answer.status)
                except urllib.error.HTTPError as exc:
                    seen["/healthz"].add(exc.code)
                except OSError:
                    seen["/healthz"].add("closed")
                time.sleep(0.02)
        code = process.wait(30)
        exited_after = time.monotonic() - hung_at
        log = log_path.read_text()
        assert code == 3, log
        assert exited_after < 10, f"exited {exited_after:.1f}s after the watchdog's limit of 1s"
        not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
        serving = health_pb2.HealthCheckResponse.SERVING
        for name in ("", SERVICE):
            assert not_serving in seen[name] and serving not in seen[name], (name, seen)
        assert 503 in seen["/healthz"] and 200 not in seen["/healthz"], seen
        lines = [line for line in log.splitlines() if "the engine cannot run" in line]
        assert len(lines) == 1 and "watchdog" in lines[0] and "exiting with code 3" in lines[0], log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

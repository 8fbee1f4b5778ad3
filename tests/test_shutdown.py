"""Stopping `tarjama serve`, as Kubernetes and an impatient operator do, and waiting for one to start.

- SIGTERM: health turns NOT_SERVING (and keeps answering), in-flight requests get the grace period,
  then queued work is failed with UNAVAILABLE and the process exits 0 within a few seconds, however
  much work was queued.
- A second signal exits at once; a signal during model conversion ends the conversion and exits.
- `tarjama health --wait` ends with an error when the server it waits for has gone.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from tarjama.client import TarjamaClient, TarjamaError
from tarjama.v1 import tarjama_pb2 as pb

from conftest import ServerProcess, wait_until
from fakes import FakeEngine

pytestmark = pytest.mark.slow

# A random model writes to its output cap, so this is a lot of engine work: minutes, not seconds.
HEAVY = [f"قال المتحدث رقم {i} إن الاجتماع سيعقد غدا في العاصمة." for i in range(40)]


def busy_server(fixture_models, cache_dir, *flags: str) -> ServerProcess:  # noqa: ANN001
    process = ServerProcess(
        [
            "--translation-model",
            str(fixture_models["random"]),
            "--summary-model",
            "none",
            "--max-output-tokens",
            "256",
            "--max-output-ratio",
            "20",
            "--cache-dir",
            str(cache_dir),
            *flags,
        ]  # fmt: skip
    )
    process.wait_serving()
    return process


def flood(address: str, count: int) -> tuple[grpc.Channel, list]:  # noqa: ANN001
    channel = grpc.insecure_channel(address)
    translate = channel.unary_unary(
        "/tarjama.v1.Translator/Translate",
        request_serializer=pb.TranslateRequest.SerializeToString,
        response_deserializer=pb.TranslateResponse.FromString,
    )
    return channel, [translate.future(pb.TranslateRequest(paragraphs=HEAVY), timeout=600) for _ in range(count)]


def wait_holding(address: str, count: int) -> None:
    """Until the server has taken all `count` flooded requests and holds work in its queue."""
    with TarjamaClient(address) as client:
        wait_until(lambda: (s := client.info(timeout=10).stats).requests >= count and s.queued_tokens > 0,
                   60, f"the server holds the {count} requests, work queued")  # fmt: skip


def test_sigterm_drains_for_the_grace_period_then_drops_queued_work_and_exits(fixture_models, cache_dir) -> None:
    process = busy_server(fixture_models, cache_dir, "--grace-period-s", "2")
    try:
        channel, calls = flood(process.address, 24)
        wait_holding(process.address, 24)
        assert not all(c.done() for c in calls), "the work outlasts the grace period"
        signalled = time.monotonic()
        process.proc.send_signal(signal.SIGTERM)
        statuses = set()

        def probe() -> bool:
            try:
                statuses.add(client.health(timeout=1))
            except TarjamaError as exc:
                statuses.add(exc.code.name)
            return "NOT_SERVING" in statuses

        with TarjamaClient(process.address) as client:  # while draining, probes get an answer: NOT_SERVING
            wait_until(probe, 5, lambda: f"a probe was answered NOT_SERVING while draining (got {statuses})", 0.1)
        code = process.proc.wait(30)
        exited_after = time.monotonic() - signalled
        assert code == 0, process.log()
        assert exited_after < 2 + 6, f"exited {exited_after:.1f}s after SIGTERM with a 2s grace period"
        outcomes = {c.code().name for c in calls}
        assert outcomes <= {"OK", "UNAVAILABLE"} and "UNAVAILABLE" in outcomes, outcomes
        channel.close()
        assert "grace period over" in process.log()
    finally:
        process.kill()


def test_a_second_signal_exits_at_once(fixture_models, cache_dir) -> None:
    process = busy_server(fixture_models, cache_dir, "--grace-period-s", "60")
    try:
        channel, calls = flood(process.address, 8)
        wait_holding(process.address, 8)
        process.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: "shutting down" in process.log(), 10, "the server began draining")
        assert process.proc.poll() is None, "still draining within its 60 s grace"
        again = time.monotonic()
        process.proc.send_signal(signal.SIGINT)
        assert process.proc.wait(5) == 128 + signal.SIGINT
        assert time.monotonic() - again < 3
        channel.close()
    finally:
        process.kill()


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def converting_server(fixture_models, cache_dir: Path) -> ServerProcess:  # noqa: ANN001
    """A server with an empty cache: it must convert the model to CTranslate2 (a child process) first."""
    return ServerProcess(
        ["--translation-model", str(fixture_models["memorised"]), "--summary-model", "none"]
        + ["--cache-dir", str(cache_dir)]
    )


def test_sigterm_during_model_conversion_ends_it_and_exits(fixture_models, tmp_path) -> None:
    process = converting_server(fixture_models, tmp_path)
    try:
        process.wait_listening()
        wait_until(lambda: "converting" in process.log(), 60, "the server logged that it converts the model")
        converters = wait_until(lambda: children_of(process.proc.pid), 10, "the conversion runs in a child process")
        signalled = time.monotonic()
        process.proc.send_signal(signal.SIGTERM)
        assert process.proc.wait(10) == 0, process.log()
        assert time.monotonic() - signalled < 5
        gone = lambda: not any(Path(f"/proc/{pid}").exists() for pid in converters)  # noqa: E731
        wait_until(gone, 0.5, "the converter was ended too")
    finally:
        process.kill()


# `tarjama ARGS` that says on stdout when a health check was first answered, so the test can stop the
# server once the waiter has seen it (the CLI prints nothing until it ends).
WAITER = """
import sys
from tarjama.client import TarjamaClient
from tarjama.client.cli import main
check = TarjamaClient.health
def health(self, *args, **kwargs):
    status = check(self, *args, **kwargs)
    print("answered", status, flush=True)
    TarjamaClient.health = check
    return status
TarjamaClient.health = health
sys.exit(main(sys.argv[1:]))
"""


def test_health_wait_ends_when_the_server_it_waits_for_exits(fixture_models, tmp_path) -> None:
    # The README's first command: `tarjama serve &` then `tarjama health --wait 1800`. A server that
    # answered (NOT_SERVING while converting) and then exited must not be waited for half an hour.
    process = converting_server(fixture_models, tmp_path)
    try:
        address = process.wait_listening()
        waiter = subprocess.Popen(
            [sys.executable, "-c", WAITER, "health", "--wait", "1800", "--server", address],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert select.select([waiter.stdout], [], [], 60)[0], "the waiter got an answer"
        assert waiter.stdout.readline().startswith("answered")  # type: ignore[union-attr]
        process.proc.send_signal(signal.SIGTERM)
        process.proc.wait(10)
        gone = time.monotonic()
        _, stderr = waiter.communicate(timeout=30)
        assert waiter.returncode == 1
        assert time.monotonic() - gone < 12
        assert "stopped answering" in stderr
    finally:
        process.kill()


def test_health_wait_gives_up_when_nothing_ever_listens(monkeypatch, capsys) -> None:
    from tarjama.client import cli

    monkeypatch.setattr(cli, "NEVER_UP_AFTER_S", 1.5)
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends: nothing listens there
    started = time.monotonic()
    assert cli.main(["health", "--wait", "600", "--server", f"127.0.0.1:{port}"]) == 1
    assert time.monotonic() - started < 10
    assert "nothing has answered" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux")
def test_the_readme_error_line_names_the_hf_command(tmp_path) -> None:
    from tarjama.server.errors import ModelUnavailable
    from tarjama.server.models import resolve_model

    with pytest.raises(ModelUnavailable) as error:
        os.environ["HF_HUB_OFFLINE"] = "1"
        try:
            resolve_model("Helsinki-NLP/opus-mt-ar-en", None, str(tmp_path), "translation")
        finally:
            del os.environ["HF_HUB_OFFLINE"]
    assert "hf download Helsinki-NLP/opus-mt-ar-en" in str(error.value)
    assert "huggingface-cli" not in Path(__file__).parent.parent.joinpath("README.md").read_text()


def test_closing_twice_releases_each_engine_once() -> None:
    # Shutdown fails every queue at once (close(0)), then waits (close(rest)); when a worker has
    # already ended by the first call, the second must not release the engine again.
    from tarjama.server.pipeline import TranslationPipeline
    from tarjama.server.runtime import Models
    from tarjama.server.settings import Settings

    class CountingEngine(FakeEngine):
        closed = 0

        def close(self) -> None:
            CountingEngine.closed += 1

    pipeline = TranslationPipeline(CountingEngine(), Settings())
    assert pipeline.close(5) and pipeline.close(5)
    assert Models(TranslationPipeline(CountingEngine(), Settings())).close(5)
    assert CountingEngine.closed == 2

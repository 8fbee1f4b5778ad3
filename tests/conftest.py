"""Shared fixtures: the locally built models, and servers in this process or in a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import NoReturn, TypeVar

import pytest

from tarjama.client import TarjamaClient, TarjamaError

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "fixtures"))

warnings.filterwarnings("ignore", message="Recommended: pip install sacremoses")

# Every server the tests start (in this process or as a subprocess) keeps its state, the stored
# glossaries' SQLite database, in a directory of this session, never in the user's own state directory.
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="tarjama-test-state-")


def needs(module: str, extra: str):  # noqa: ANN201
    """`module`, imported; the test is skipped only when it is not installed at all. A module that is
    installed but fails to import fails the test: pytest.importorskip would hide a broken install."""
    import importlib
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        pytest.skip(f"{module} is not installed (pip install 'tarjama[{extra}]')")
    return importlib.import_module(module)


@pytest.fixture(scope="session")
def fixture_models() -> dict[str, Path]:
    needs("torch", "server")
    from build_models import ensure_models

    return ensure_models()


# The models that give the memorised pairs back exactly: one in opus-mt-ar-en's ids and activation, one
# with opus-mt-tc-big-ar-en's quirks (</s> not id 0, pad = decoder start = the last id, relu, 1024
# positions, bad_words_ids); see build_models.py.
MEMORISED_MODELS = ("memorised", "memorised-tcbig")


@pytest.fixture(params=MEMORISED_MODELS)
def memorised_model(request: pytest.FixtureRequest, fixture_models: dict[str, Path]) -> Path:
    """Each of MEMORISED_MODELS in turn: a test that asks for it runs once per model."""
    return fixture_models[request.param]


@pytest.fixture(scope="session")
def memorised_pairs(fixture_models: dict[str, Path]) -> list[tuple[str, str]]:
    return [tuple(p) for p in json.loads((fixture_models["memorised"] / "memorised.json").read_text())]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tarjama-cache")


def article(pairs: list[tuple[str, str]], shape: list[int]) -> tuple[list[str], list[str]]:
    """Arabic paragraphs made of memorised sentences (`shape` = sentences per paragraph) and their English."""
    arabic, english, k = [], [], 0
    for count in shape:
        chosen = [pairs[(k + j) % len(pairs)] for j in range(count)]
        k += count
        arabic.append(" ".join(a for a, _ in chosen))
        english.append(" ".join(e for _, e in chosen))
    return arabic, english


def saved_page(body: list[str]) -> str:
    """A news page as a browser saves it: menus, a font widget, share buttons, related stories."""
    paragraphs = "\n".join(f"<p>{p}</p>" for p in body[1:])  # body[0] is the headline
    return f"""<!doctype html><html lang="ar" dir="rtl"><head><meta charset="utf-8">
<title>{body[0][:30]} | صحيفة الخبر</title><meta name="author" content="أحمد علي">
<meta property="article:published_time" content="2024-03-12"><script>var tracking = "لا تترجم";</script></head>
<body><nav><a href="/">الرئيسية</a> <a href="/world">العالم</a> <a href="/sport">رياضة</a></nav>
<div class="font-size">+ الخط -</div>
<article><h1>{body[0]}</h1><p class="byline">بقلم: أحمد علي</p>
{paragraphs}
<figure><img src="photo.jpg" alt=""><figcaption>تصوير: رويترز</figcaption></figure>
<div class="share">شارك على فيسبوك تويتر واتساب</div></article>
<aside><h3>اقرأ أيضاً</h3><ul><li>خبر آخر عن الاقتصاد</li><li>خبر عن الطقس</li></ul></aside>
<footer>جميع الحقوق محفوظة © 2024</footer></body></html>"""


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`tarjama ARGS...` as a subprocess, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "tarjama.client.cli", *args], capture_output=True, text=True, timeout=timeout
    )


class InProcessServer:
    """`serve()` on its own event loop in a thread, on a free port; stopped like SIGTERM would."""

    def __init__(self, settings, load=None) -> None:  # noqa: ANN001
        from tarjama.server.app import load_models, serve

        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._port: int | None = None
        self._listening = threading.Event()
        self.exit_code: int | None = None
        self.error: BaseException | None = None

        def listening(port: int) -> None:
            self._port = port
            self._listening.set()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self.exit_code = self._loop.run_until_complete(
                    serve(settings, stop=self._stop, on_listening=listening, load=load or load_models)
                )
            except BaseException as exc:  # surfaced by wait_serving
                self.error = exc
            finally:
                self._listening.set()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        self._listening.wait(60)
        if self.error:
            raise self.error
        self.address = f"127.0.0.1:{self._port}"

    def wait_serving(self, timeout: float = 120) -> None:
        wait_serving(self.address, timeout, lambda: self.error)

    def stop(self) -> int | None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        return self.exit_code


def free_port() -> int:
    """A loopback port nobody listens on now (for servers, such as the metrics exporter, that need one)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], timeout: float, what: str | Callable[[], str], period: float = 0.05
) -> T:
    """Poll `condition` until it is truthy and return its value; fail naming `what` (a callable: worded at
    the failure) after `timeout` s. Tests wait for the thing to happen this way, never for a fixed time
    that a loaded machine outlasts."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what() if callable(what) else what}: not so after {timeout:g} s")
        time.sleep(period)
    return value


def varint(value: int) -> bytes:
    """A protobuf varint, written by hand so tests can send bytes no message class would."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def wire_field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def assert_still_translates(address: str, memorised_pairs: list[tuple[str, str]]) -> None:
    arabic, english = article(memorised_pairs, [2, 1, 3])
    with TarjamaClient(address, timeout=30) as client:
        response = client.translate("\n".join(arabic))
    assert [p.translation for p in response.paragraphs] == english


def wait_serving(
    address: str, timeout: float, failed: Callable[[], object] = lambda: None, **client_options: object
) -> None:
    deadline = time.monotonic() + timeout
    with TarjamaClient(address, **client_options) as client:  # type: ignore[arg-type]
        while time.monotonic() < deadline:
            if failed():
                raise AssertionError(f"server failed to start: {failed()}")
            try:
                if client.health(timeout=2) == "SERVING":
                    return
            except TarjamaError:
                pass
            time.sleep(0.1)
    raise AssertionError(f"server at {address} did not become SERVING in {timeout}s")


@pytest.fixture(scope="session")
def base_settings(cache_dir: Path):  # noqa: ANN201
    from tarjama.server.settings import Settings

    return Settings(port=0, cache_dir=str(cache_dir), device="cpu", threads=2, grace_period_s=5, summary_model="none")


@contextlib.contextmanager
def engine_server(base_settings, engine) -> Iterator[InProcessServer]:  # noqa: ANN001 - settings and a fake engine
    """An in-process server, HTTP on (`.http` its base URL), whose one translation model is `engine`
    (a fake of tests/fakes.py), stopped after."""
    from tarjama.server.pipeline import TranslationPipeline
    from tarjama.server.runtime import Models

    http_port = free_port()
    load = lambda settings: Models(TranslationPipeline(engine, settings))  # noqa: E731
    server = InProcessServer(replace(base_settings, http_port=http_port), load=load)
    try:
        server.wait_serving()
        server.http = f"http://127.0.0.1:{http_port}"  # type: ignore[attr-defined]
        yield server
    finally:
        server.stop()


def post_json(url: str, body: object, timeout: float = 30) -> dict:  # type: ignore[type-arg]
    """POST `body` as JSON to `url`; the JSON answer (a 2xx)."""
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


@pytest.fixture(scope="session")
def ct2_server(fixture_models: dict[str, Path], base_settings) -> Iterator[InProcessServer]:  # noqa: ANN001
    server = InProcessServer(replace(base_settings, translation_model=str(fixture_models["memorised"])))
    server.wait_serving()
    yield server
    server.stop()


class ServerProcess:
    """`tarjama serve` as a real subprocess, on a free port read back from its log."""

    def __init__(
        self, args: list[str], env: dict[str, str] | None = None, preexec_fn: Callable[[], None] | None = None
    ) -> None:
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"tarjama-serve-{os.getpid()}-{id(self)}.log"
        self._log = open(self.log_path, "w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tarjama.client.cli", "serve", "--port", "0", *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            preexec_fn=preexec_fn,  # e.g. lowered resource limits
        )
        self.address = ""

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_listening(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(r"listening on ([\d.]+:\d+)", self.log())
            if match:
                self.address = match.group(1)
                return self.address
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.05)
        raise AssertionError(f"server did not listen in {timeout}s:\n{self.log()}")

    def wait_serving(
        self, timeout: float = 120, client_options: dict[str, object] | None = None, address: str | None = None
    ) -> str:
        """Wait for SERVING, asking through `client_options` (TLS, a token) at `address` if given."""
        self.wait_listening()
        failed = lambda: self.proc.poll() is not None and self.log()  # noqa: E731
        wait_serving(address or self.address, timeout, failed, **(client_options or {}))
        return self.address

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def serve_memorised(fixture_models, cache_dir, *args: str, preexec_fn=None) -> ServerProcess:  # noqa: ANN001
    """`tarjama serve` with the memorised model and extractive summaries, plus `args`."""
    process = ServerProcess(
        [
            "--translation-model",
            str(fixture_models["memorised"]),
            "--summary-model",
            "extractive",
            "--cache-dir",
            str(cache_dir),
            *args,
        ],  # fmt: skip
        preexec_fn=preexec_fn,
    )
    return process


@contextlib.contextmanager
def serving_http(  # noqa: ANN001 - the fixtures' values
    fixture_models,
    cache_dir,
    *args: str,
    token: str | None = None,
    token_name: str = "desk",
    preexec_fn=None,
    more_tokens: str = "",
) -> Iterator[ServerProcess]:
    """`serve_memorised` with `--http-port` (and, given `token`, a tokens file naming it `token_name`,
    with the `glossaries` right, and then the lines of `more_tokens`), SERVING; the process has `.http`
    (its base URL), `.http_port` and `.tokens_path`, and is stopped after."""
    extra: list[str] = []
    tokens_path = None
    if token:
        tokens_path = Path(tempfile.mkdtemp(prefix="tarjama-tokens-")) / "tokens.txt"
        tokens_path.write_text(f"{token_name}:{token} glossaries\n{more_tokens}")
        extra = ["--auth-tokens-file", str(tokens_path)]
    port = free_port()
    process = serve_memorised(fixture_models, cache_dir, *extra, "--http-port", str(port), *args, preexec_fn=preexec_fn)
    try:
        process.wait_serving(client_options={"token": token} if token else None)
        process.http_port = port  # type: ignore[attr-defined]
        process.http = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
        process.tokens_path = tokens_path  # type: ignore[attr-defined]
        yield process
    finally:
        process.stop()


_MONITOR = """
import json, sys, time, grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
address, period = sys.argv[1], float(sys.argv[2])
stub = health_pb2_grpc.HealthStub(grpc.insecure_channel(address))
worst, checks, failures = 0.0, 0, []
import select
while not select.select([sys.stdin], [], [], period)[0]:
    started = time.perf_counter()
    try:
        stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
    except grpc.RpcError as exc:
        failures.append(exc.code().name)
        worst = float("inf")
    worst = max(worst, time.perf_counter() - started)
    checks += 1
    if checks == 1:
        print("connected", flush=True)  # the first check is done: the channel is up
print(json.dumps({"worst_s": worst if worst != float("inf") else 1e9, "checks": checks, "failures": failures}))
"""
# An idle server that only answers health checks: the baseline a probe is measured against.
_REFERENCE = """
import sys
from concurrent import futures
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
servicer = health.HealthServicer()
servicer.set("", health_pb2.HealthCheckResponse.SERVING)
health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
sys.stdin.read()  # until the test session closes its stdin
"""
# How fast health must answer on a quiet machine while the server works (a Kubernetes probe's view).
HEALTH_BOUND_S = 0.1
# ... and while a flood of large requests all arrive at once (hundreds of calls of dozens of paragraphs
# on 2 cores): their text work and the event loop share one interpreter, and health took 100-200 ms.
FLOOD_HEALTH_BOUND_S = 0.5
BASELINE_FACTOR = 3
_reference: subprocess.Popen[str] | None = None


def reference_health_address() -> str:
    """The idle reference server's address, started once per test session (it ends with the session)."""
    global _reference
    if _reference is None or _reference.poll() is not None:
        _reference = subprocess.Popen([sys.executable, "-c", _REFERENCE], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)  # fmt: skip
        _reference.port = int(_reference.stdout.readline())  # type: ignore[union-attr, attr-defined]
    return f"127.0.0.1:{_reference.port}"  # type: ignore[attr-defined]


class HealthMonitor:
    """Polls grpc.health.v1 every 20 ms from its own process, as a probe would, and records the
    slowest answer (a failed check counts as 10⁹ s). `with HealthMonitor(address) as health:` then
    `health.check()`. Its own process: threads of the test itself must not slow the probe down.

    The bound depends on how busy the machine is (CI runs on 2 shared cores), so a second probe polls an
    idle reference server over the same window: the server under test must answer within `bound_s` plus
    a multiple of what the idle one took at worst (`baseline_s`), a baseline taken in the same run.
    """

    def __init__(self, address: str, period_s: float = 0.02, bound_s: float = HEALTH_BOUND_S) -> None:
        self._commands = [[sys.executable, "-c", _MONITOR, target, str(period_s)]
                          for target in (address, reference_health_address())]  # fmt: skip
        self.bound_s = bound_s
        self.worst_s = 0.0
        self.baseline_s = 0.0
        self.checks = 0
        self.failures: list[str] = []

    def __enter__(self) -> HealthMonitor:
        self._processes = [
            subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for command in self._commands
        ]
        for process in self._processes:  # their channels are connected before the work starts
            process.stdout.readline()  # type: ignore[union-attr]
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self._processes:
            process.stdin.write("stop\n")  # type: ignore[union-attr]
            process.stdin.flush()  # type: ignore[union-attr]
        result, baseline = (json.loads(process.communicate(timeout=30)[0]) for process in self._processes)
        self.worst_s, self.checks, self.failures = result["worst_s"], result["checks"], result["failures"]
        self.baseline_s = baseline["worst_s"]

    @property
    def limit_s(self) -> float:
        # The idle server's worst is the scheduling delay the machine's load adds to one answer; the
        # server under test waits it several times per answer (grpc's poller, the event loop, the GIL
        # passing back from a worker thread), so it counts three times.
        return self.bound_s + BASELINE_FACTOR * self.baseline_s

    def within_bound(self) -> bool:
        return self.checks > 0 and not self.failures and self.worst_s < self.limit_s

    def report(self, what: str = "") -> str:
        return (f"{what + ': ' if what else ''}health took {self.worst_s * 1000:.0f} ms at worst over {self.checks} "
                f"checks ({self.failures or 'no failures'}); the bound is {self.bound_s * 1000:.0f} ms plus "
                f"{BASELINE_FACTOR}x an idle server's worst in the same window ({self.baseline_s * 1000:.0f} ms): "
                f"{self.limit_s * 1000:.0f} ms")  # fmt: skip

    def check(self, what: str = "") -> None:
        """Assert that health stayed within its bound (relative to the baseline) throughout."""
        assert self.within_bound(), self.report(what)


def raw_call(channel, method: str, payload: bytes, timeout: float = 30):  # noqa: ANN001, ANN201
    """Send `payload` as the request bytes of tarjama.v1.Translator/`method`; returns (code, details)."""
    import grpc

    call = channel.unary_unary(
        f"/tarjama.v1.Translator/{method}", request_serializer=lambda b: b, response_deserializer=lambda b: b
    )
    try:
        call(payload, timeout=timeout)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or ""


def server_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


@pytest.fixture(scope="session")
def hardened_server(fixture_models: dict[str, Path], cache_dir: Path) -> Iterator[ServerProcess]:
    """`tarjama serve` in its own process (CTranslate2, memorised model, extractive summaries), shared
    by the adversarial, fuzz and soak tests: health latency is measured from outside, as a probe would."""
    process = ServerProcess(
        [
            "--translation-model",
            str(fixture_models["memorised"]),
            "--summary-model",
            "extractive",
            "--threads",
            "2",
            "--cache-dir",
            str(cache_dir),
        ]  # fmt: skip
    )
    process.wait_serving()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server's URL, for the stored glossaries' tests: TARJAMA_TEST_POSTGRES_URL (the server
    .ci/run starts) when set, else a throw-away server of this session when PostgreSQL's binaries are here
    (tests/postgres_server.py), else the test is skipped — failed under TARJAMA_REQUIRE_POSTGRES=1 (CI)."""
    import importlib.util

    required = os.environ.get("TARJAMA_REQUIRE_POSTGRES") == "1"

    def unavailable(reason: str) -> NoReturn:
        if required:
            pytest.fail(f"{reason} (and TARJAMA_REQUIRE_POSTGRES=1)", pytrace=False)
        pytest.skip(reason)

    if importlib.util.find_spec("psycopg") is None:
        unavailable("psycopg is not installed (pip install 'tarjama[postgres]')")
    if url := os.environ.get("TARJAMA_TEST_POSTGRES_URL"):
        yield url
        return
    from postgres_server import ThrowAwayServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        unavailable("no PostgreSQL server: set TARJAMA_TEST_POSTGRES_URL, or install it (Debian: postgresql)")
    try:
        server = ThrowAwayServer(bindir)
    except RuntimeError as exc:  # root without a postgres user or runuser
        unavailable(str(exc))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """A fresh, empty database on the postgres_url server for one test (its URL), dropped after it: each
    test starts without tables, and two servers given this one URL share a database as replicas do."""
    import secrets
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    name = f"tarjama_test_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_url, autocommit=True, connect_timeout=10) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(postgres_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(postgres_url, autocommit=True, connect_timeout=10) as admin:
            # FORCE (PostgreSQL 13+): a server a test left running must not keep the database alive.
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

"""Running it in production: bearer tokens (and their reload), TLS and mTLS, Prometheus metrics, access
logs that never hold the article, connection settings. Real `tarjama serve` processes on loopback."""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.request
from importlib.resources import files
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tarjama.client import TarjamaClient, TarjamaError
from tarjama.server.edges.auth import TokenFile, TokenFileError, bearer_token, parse_tokens
from tarjama.server.text.flags import Flag
from tarjama.v1 import tarjama_pb2 as pb

from conftest import (
    BASELINE_FACTOR,
    HEALTH_BOUND_S,
    ServerProcess,
    free_port,
    needs,
    reference_health_address,
    wait_until,
)
from conftest import serve_memorised as serve

EDITOR_TOKEN = "editor-token-0123456789abcdef"
WIRE_TOKEN = "wire-desk-token-fedcba9876543210"
# A word no test article contains elsewhere: if it shows up in a log, the log holds article text.
SECRET_WORD = "قرطاسيةسرية"


def translate_stub(channel: grpc.Channel):  # noqa: ANN201
    """Translate on a plain channel (no client library: no retries, no balancing)."""
    return channel.unary_unary(
        "/tarjama.v1.Translator/Translate",
        request_serializer=pb.TranslateRequest.SerializeToString,
        response_deserializer=pb.TranslateResponse.FromString,
    )


# -- tokens ------------------------------------------------------------------------------------------


def test_tokens_file_is_parsed_with_comments_and_every_problem_named() -> None:
    tokens = parse_tokens(f"# the desks\neditors:{EDITOR_TOKEN}\n\n wire : {WIRE_TOKEN}  # agency feed\n", "t")
    assert sorted(tokens) == ["editors", "wire"]
    for text, problem in [
        ("editors", "expected name:token"),
        (f"a:{EDITOR_TOKEN}\na:{WIRE_TOKEN}", "used twice"),
        (f"a:{EDITOR_TOKEN}\nb:{EDITOR_TOKEN}", "two names"),
        ("a:short", "shorter than 16"),
        ("# nothing\n", "no tokens"),
    ]:
        with pytest.raises(TokenFileError, match=problem):
            parse_tokens(text, "tokens.txt")


def test_a_token_is_found_by_its_value_and_only_its_name_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"editors:{EDITOR_TOKEN}\nwire:{WIRE_TOKEN}\n")
    tokens = TokenFile(str(path))
    assert tokens.name_for(WIRE_TOKEN) == "wire" and tokens.name_for(EDITOR_TOKEN) == "editors"
    assert tokens.name_for(EDITOR_TOKEN[:-1]) is None and tokens.name_for("") is None and tokens.name_for(None) is None
    assert bearer_token((("authorization", f"Bearer {WIRE_TOKEN}"),)) == WIRE_TOKEN
    assert bearer_token((("authorization", f"bearer {WIRE_TOKEN}"),)) == WIRE_TOKEN
    assert bearer_token((("authorization", WIRE_TOKEN),)) is None
    path.write_text("broken")
    assert not tokens.reload() and tokens.name_for(WIRE_TOKEN) == "wire", "a broken file keeps the tokens in force"


@pytest.fixture(scope="module")
def authed_server(fixture_models, cache_dir, tmp_path_factory):  # noqa: ANN001, ANN201
    tokens = tmp_path_factory.mktemp("auth") / "tokens.txt"
    tokens.write_text(f"# desks\neditors:{EDITOR_TOKEN}\n")
    metrics_port = free_port()
    process = serve(
        fixture_models,
        cache_dir,
        "--auth-tokens-file", str(tokens),
        "--metrics-port", str(metrics_port),
        "--log-format", "json",
        "--reflection",
    )  # fmt: skip
    process.wait_listening()
    process.wait_serving()
    process.tokens_path = tokens  # type: ignore[attr-defined]
    process.metrics_port = metrics_port  # type: ignore[attr-defined]
    yield process
    process.stop()


def test_calls_without_a_known_token_are_refused_before_any_work(authed_server, memorised_pairs) -> None:
    for token in (None, "not-a-token-at-all-0000", EDITOR_TOKEN + "x"):
        with TarjamaClient(authed_server.address, token=token) as client:
            with pytest.raises(TarjamaError) as refused:
                client.translate(memorised_pairs[0][0], timeout=10)
            assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED
            assert "Bearer" in refused.value.message
            assert client.health(timeout=5) == "SERVING", "health stays open for probes"
    with TarjamaClient(authed_server.address, token=EDITOR_TOKEN) as client:
        assert client.translate(memorised_pairs[0][0], timeout=30).paragraphs[0].translation == memorised_pairs[0][1]


def test_reflection_follows_the_auth_setting(authed_server) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with grpc.insecure_channel(authed_server.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        with pytest.raises(grpc.RpcError) as refused:
            list(stub.ServerReflectionInfo(iter([request]), timeout=10))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        answers = list(
            stub.ServerReflectionInfo(
                iter([request]), timeout=10, metadata=(("authorization", f"Bearer {EDITOR_TOKEN}"),)
            )
        )
        names = {s.name for s in answers[0].list_services_response.service}
        assert "tarjama.v1.Translator" in names


def test_get_info_shows_server_paths_only_to_authenticated_callers(authed_server, ct2_server) -> None:
    with TarjamaClient(authed_server.address, token=EDITOR_TOKEN) as client:
        assert client.info(timeout=10).models[0].path, "an authenticated caller sees where the model lives"
    with TarjamaClient(ct2_server.address) as client:
        assert all(not m.path for m in client.info(timeout=10).models), "without auth, no server paths"


def test_sighup_reloads_the_tokens_without_a_restart(authed_server, memorised_pairs) -> None:
    path: Path = authed_server.tokens_path
    path.write_text(f"wire:{WIRE_TOKEN}\n")
    authed_server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    with TarjamaClient(authed_server.address, token=WIRE_TOKEN) as wire:
        while True:
            try:
                wire.translate(memorised_pairs[1][0], timeout=30)
                break
            except TarjamaError as exc:
                assert exc.code == grpc.StatusCode.UNAUTHENTICATED and time.monotonic() < deadline
                time.sleep(0.1)
    with TarjamaClient(authed_server.address, token=EDITOR_TOKEN) as old, pytest.raises(TarjamaError) as refused:
        old.translate(memorised_pairs[1][0], timeout=10)
    assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED
    path.write_text("broken line\n")
    refusals = authed_server.log().count("auth tokens not reloaded")
    authed_server.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: authed_server.log().count("auth tokens not reloaded") > refusals, 10, "the SIGHUP was handled")
    with TarjamaClient(authed_server.address, token=WIRE_TOKEN) as wire:
        assert wire.translate(memorised_pairs[1][0], timeout=30).paragraphs, "a broken file keeps the tokens in force"
    assert "auth tokens not reloaded" in authed_server.log()
    path.write_text(f"editors:{EDITOR_TOKEN}\n")  # as the module's other tests expect
    reloads = authed_server.log().count("auth tokens reloaded from")
    authed_server.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: authed_server.log().count("auth tokens reloaded from") > reloads, 10, "the tokens were reloaded")


# -- metrics -----------------------------------------------------------------------------------------


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:  # noqa: S310 - loopback
        return reply.read().decode()


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_every_rpc_and_agree_with_get_info(authed_server, memorised_pairs) -> None:
    with TarjamaClient(authed_server.address, token=EDITOR_TOKEN) as client:
        for arabic, _ in memorised_pairs[:4]:
            client.translate(arabic, timeout=30)
        with pytest.raises(TarjamaError):
            client.translate("", timeout=10)  # INVALID_ARGUMENT
    with TarjamaClient(authed_server.address) as anonymous, pytest.raises(TarjamaError):
        anonymous.translate(memorised_pairs[0][0], timeout=10)  # UNAUTHENTICATED
    with TarjamaClient(authed_server.address, token=EDITOR_TOKEN) as client:
        stats = client.info(timeout=10).stats
        text = scrape(authed_server.metrics_port)
    translate = "/tarjama.v1.Translator/Translate"
    assert sample(text, "tarjama_requests_total", method=translate, code="OK", caller="editors") >= 4
    assert sample(text, "tarjama_requests_total", method=translate, code="INVALID_ARGUMENT") >= 1
    assert sample(text, "tarjama_requests_total", method=translate, code="UNAUTHENTICATED") >= 1
    assert sample(text, "tarjama_request_duration_seconds_count", method=translate) >= 6
    # One snapshot feeds both: what GetInfo said is what the exporter says (no traffic in between).
    assert sample(text, "tarjama_input_tokens_total") == stats.source_tokens > 0
    assert sample(text, "tarjama_output_tokens_total") == stats.output_tokens > 0
    assert sample(text, "tarjama_cache_hits_total") == stats.cache_hits
    assert sample(text, "tarjama_overloaded_total") == stats.overloaded
    assert sample(text, "tarjama_queue_tokens") == stats.queued_tokens
    assert sample(text, "tarjama_batch_size_count", role="translation") == stats.batches
    assert sample(text, "tarjama_batch_duration_seconds_count", role="translation") == stats.batches
    assert sample(text, "tarjama_queue_duration_seconds_count") == stats.batched_sentences
    for name in ("tarjama_padding_ratio", "tarjama_sentence_flags_total", "tarjama_summary_duration_seconds"):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name


# -- logs ----------------------------------------------------------------------------------------------


def test_access_log_is_one_json_line_per_rpc_and_never_holds_the_text(authed_server) -> None:
    article = f"قال المتحدث إن {SECRET_WORD} ستعقد غدا.\n\nوأضاف أن {SECRET_WORD} مهمة."
    with TarjamaClient(authed_server.address, token=EDITOR_TOKEN) as client:
        response = client.translate(article, id="story-42", summarize=True, timeout=60)
        client.segment(article, id="story-43", timeout=30)
        client.summarize(response.paragraphs[0].translation + " " + SECRET_WORD, id="story-44", timeout=30)
    # Access lines are written as each call ends.
    wait_until(lambda: '"story-44"' in authed_server.log(), 10, "story-44's access line is written")
    log = authed_server.log()
    assert SECRET_WORD not in log, "article text must never reach the log"
    translation_words = {w for p in response.paragraphs for w in p.translation.split() if len(w) > 6}
    assert not any(word in log for word in translation_words if word.isalpha() and not word.isascii())
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("logger") == "tarjama.access"]
    story = next(line for line in access if line.get("document_id") == "story-42")
    assert story["method"] == "/tarjama.v1.Translator/Translate" and story["status"] == "OK"
    assert (
        story["caller"] == "editors"
        and story["paragraphs"] == 2
        and story["characters"] == len(article.replace("\n\n", ""))
        and story["model"] == "default"  # the translation model's name
    )
    assert story["tokens_in"] > 0 and story["tokens_out"] > 0 and story["queue_ms"] >= 0 and story["total_ms"] > 0
    assert {"story-43", "story-44"} <= {line.get("document_id") for line in access}
    assert all("time" in line and "level" in line for line in lines)


def test_flags_are_one_typed_enum_with_the_protos_names() -> None:
    proto = {name for name in pb.Sentence.Flag.keys() if name != "FLAG_UNSPECIFIED"}
    assert {flag.value for flag in Flag} == proto


def test_the_reading_page_explains_every_flag() -> None:
    # Without it the page shows a new flag as its bare name in lower case (TERM_EXPANDED was missing).
    page = (files("tarjama.server") / "static" / "page.js").read_text(encoding="utf-8")
    reasons = page.split("const FLAG_REASONS = {", 1)[1].split("};", 1)[0]
    explained = set(re.findall(r"^\s*([A-Z_]+):", reasons, re.MULTILINE))
    assert explained == {flag.value for flag in Flag}


# -- TLS -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory):  # noqa: ANN001, ANN201
    from pki import make_pki

    return make_pki(tmp_path_factory.mktemp("pki"))


def test_tls_serves_encrypted_and_refuses_the_wrong_trust(fixture_models, cache_dir, pki, memorised_pairs) -> None:
    process = serve(fixture_models, cache_dir, "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key))
    try:
        address = process.wait_listening()  # 127.0.0.1: the certificate names the address too
        process.wait_serving(client_options={"tls_ca": str(pki.ca)}, address=address)
        with TarjamaClient(address, tls_ca=str(pki.ca)) as client:
            assert (
                client.translate(memorised_pairs[0][0], timeout=30).paragraphs[0].translation == memorised_pairs[0][1]
            )
        for options in ({}, {"tls_ca": str(pki.other_ca)}):
            with TarjamaClient(address, **options) as client, pytest.raises(TarjamaError) as refused:
                client.health(timeout=3)
            assert refused.value.code == grpc.StatusCode.UNAVAILABLE
    finally:
        process.stop()


def test_mtls_requires_a_client_certificate_from_the_ca(fixture_models, cache_dir, pki, memorised_pairs) -> None:
    process = serve(
        fixture_models,
        cache_dir,
        "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key), "--tls-client-ca", str(pki.ca),
    )  # fmt: skip
    mutual = {"tls_ca": str(pki.ca), "tls_cert": str(pki.client_cert), "tls_key": str(pki.client_key)}
    try:
        address = process.wait_listening()  # 127.0.0.1: the certificate names the address too
        process.wait_serving(client_options=mutual, address=address)
        with TarjamaClient(address, **mutual) as client:
            assert client.translate(memorised_pairs[0][0], timeout=30).paragraphs
        with TarjamaClient(address, tls_ca=str(pki.ca)) as client, pytest.raises(TarjamaError) as refused:
            client.health(timeout=3)
        assert refused.value.code == grpc.StatusCode.UNAVAILABLE
    finally:
        process.stop()


def test_tls_flags_that_cannot_work_stop_the_server_with_one_line(fixture_models, cache_dir, pki, tmp_path) -> None:
    for args, problem in [
        (["--tls-cert", str(pki.server_cert)], "--tls-cert and --tls-key"),
        (["--tls-client-ca", str(pki.ca)], "--tls-client-ca needs"),
        (["--tls-cert", str(tmp_path / "nope.pem"), "--tls-key", str(pki.server_key)], "nope.pem"),
    ]:
        process = serve(fixture_models, cache_dir, *args)
        code = process.proc.wait(60)
        process.stop()
        assert code != 0 and problem in process.log(), process.log()
        assert "Traceback" not in process.log()


# -- connections -------------------------------------------------------------------------------------


def test_health_answers_with_hundreds_of_idle_connections_open(hardened_server) -> None:
    channels = []
    try:
        for _ in range(300):  # each its own connection (distinct channel arguments defeat sharing)
            channel = grpc.insecure_channel(hardened_server.address, options=[("grpc.use_local_subchannel_pool", 1)])
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            channels.append(channel)
        # The baseline: an idle server's health, asked in turn with this one's, in the same window.
        channels.append(grpc.insecure_channel(reference_health_address()))
        stubs = [health_pb2_grpc.HealthStub(channel) for channel in channels[-2:]]
        worst = [0.0, 0.0]
        for _ in range(20):
            for k, stub in enumerate(stubs):
                started = time.perf_counter()
                stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
                worst[k] = max(worst[k], time.perf_counter() - started)
        limit = HEALTH_BOUND_S + BASELINE_FACTOR * worst[1]
        assert worst[0] < limit, f"health took {worst[0] * 1000:.0f} ms; the bound: {limit * 1000:.0f} ms"
    finally:
        for channel in channels:
            channel.close()


def test_a_public_address_without_auth_gets_a_warning() -> None:
    from tarjama.server.edges.connections import exposure_warning

    assert exposure_warning("0.0.0.0", auth=False) and "anyone" in exposure_warning("0.0.0.0", auth=False)
    assert exposure_warning("10.1.2.3", auth=False)
    assert exposure_warning("0.0.0.0", auth=True) is None
    assert exposure_warning("127.0.0.1", auth=False) is None and exposure_warning("localhost", auth=False) is None
    assert exposure_warning("::1", auth=False) is None


def test_connection_settings_reach_the_server(fixture_models, cache_dir) -> None:
    process = serve(
        fixture_models,
        cache_dir,
        "--max-connection-age-s", "1", "--max-connection-age-grace-s", "1", "--max-concurrent-streams", "4",
    )  # fmt: skip
    try:
        process.wait_serving()
        with grpc.insecure_channel(process.address) as channel:
            stub = translate_stub(channel)
            text = " ".join(["قال المتحدث إن الاجتماع سيعقد غدا."] * 20)
            calls = [stub.future(pb.TranslateRequest(text=text), timeout=60) for _ in range(40)]
            codes = [call.code() for call in calls]
            refused = [c for c, call in zip(codes, calls, strict=True) if c != grpc.StatusCode.OK]
            assert refused and set(refused) == {grpc.StatusCode.RESOURCE_EXHAUSTED}
            assert codes.count(grpc.StatusCode.OK) >= 4
            assert "--max-concurrent-streams" in next(c.details() for c in calls if c.code() != grpc.StatusCode.OK)
        with grpc.insecure_channel(process.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
            states: list[grpc.ChannelConnectivity] = []
            channel.subscribe(states.append)  # called with READY now, then with each change
            wait_until(lambda: any(s != grpc.ChannelConnectivity.READY for s in states), 10,
                       "the server closed the connection for its age")  # fmt: skip
            # The channel reconnects by itself.
            assert stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status == 1
            channel.unsubscribe(states.append)
        assert re.search(r"max connection age 1s", process.log())
    finally:
        process.stop()


def test_the_cli_takes_its_token_from_the_flag_or_the_environment(authed_server) -> None:
    import os
    import subprocess
    import sys

    command = [sys.executable, "-m", "tarjama.client.cli", "info", "--server", authed_server.address]
    bare = {k: v for k, v in os.environ.items() if k != "TARJAMA_TOKEN"}
    refused = subprocess.run(command, capture_output=True, text=True, timeout=60, env=bare)
    assert refused.returncode == 1 and "UNAUTHENTICATED" in refused.stderr and "Traceback" not in refused.stderr
    by_env = subprocess.run(
        command, capture_output=True, text=True, timeout=60, env={**bare, "TARJAMA_TOKEN": EDITOR_TOKEN}
    )
    assert by_env.returncode == 0 and json.loads(by_env.stdout)["models"][0]["path"]
    by_flag = subprocess.run([*command, "--token", EDITOR_TOKEN], capture_output=True, text=True, timeout=60, env=bare)
    assert by_flag.returncode == 0


# -- tracing -------------------------------------------------------------------------------------------


def console_spans(text: str) -> list[dict]:  # type: ignore[type-arg]
    """The spans OpenTelemetry's console exporter printed (indented JSON objects) among log lines."""
    decoder, spans, position = json.JSONDecoder(), [], 0
    while (start := text.find('{\n    "name"', position)) != -1:
        span, position = decoder.raw_decode(text, start)
        spans.append(span)
    return spans


def test_tracing_spans_each_rpc_with_children_and_batch_links(fixture_models, cache_dir) -> None:
    needs("opentelemetry.sdk", "otel")
    process = ServerProcess(
        ["--translation-model", str(fixture_models["memorised"]), "--summary-model", "extractive",
         "--cache-dir", str(cache_dir)],
        env={"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "tarjama-test"},
    )  # fmt: skip
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    try:
        process.wait_serving()
        with grpc.insecure_channel(process.address) as channel:
            stub = translate_stub(channel)
            request = pb.TranslateRequest(text=f"قال إن {SECRET_WORD} مهمة.", summarize=True)
            stub(request, timeout=30, metadata=(("traceparent", f"00-{trace_id}-{parent_id}-01"),))
    finally:
        process.stop()
    log = process.log()
    assert "tracing on" in log and SECRET_WORD not in log
    spans = console_spans(log)
    rpc = next(s for s in spans if s["name"] == "tarjama.v1.Translator/Translate")
    assert rpc["kind"] == "SpanKind.SERVER" and rpc["context"]["trace_id"] == "0x" + trace_id
    assert rpc["parent_id"] == "0x" + parent_id, "the caller's trace continues"
    assert rpc["attributes"]["rpc.system"] == "grpc" and rpc["attributes"]["rpc.grpc.status_code"] == 0
    assert rpc["resource"]["attributes"]["service.name"] == "tarjama-test"
    children = {s["name"]: s for s in spans if s["parent_id"] == rpc["context"]["span_id"]}
    assert {"tarjama.plan", "tarjama.queue", "tarjama.assemble", "tarjama.summary"} <= set(children)
    queue = children["tarjama.queue"]["context"]["span_id"]
    batches = [s for s in spans if s["name"] == "tarjama.batch"]
    assert any(link["context"]["span_id"] == queue for b in batches for link in b["links"])


def test_without_otel_variables_tracing_is_off_and_imports_nothing() -> None:
    import subprocess
    import sys

    probe = (
        "import sys; from tarjama.server import app; from tarjama.server.edges import tracing; "
        "assert not tracing.configure({}); assert tracing.span('x').__enter__() is None; "
        "print(any(m.startswith('opentelemetry') for m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr

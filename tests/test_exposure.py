"""What a client or a scraper can make the server write or show (issue 17, items 9, 10, 12): access lines
that a document id cannot forge or flood, ids bounded at every door, a metrics exporter that is
private unless made public (loopback, its own token, TLS) and names no server path, and tokens files
that are not UTF-8. Real `tarjama serve` processes on loopback, and the exporter in-process."""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import signal
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from tarjama.client import TarjamaClient, TarjamaError
from tarjama.server.edges.access_log import FIELD_CHARACTERS, JsonFormatter, TextFormatter
from tarjama.server.edges.auth import ScrapeToken, TokenFile, TokenFileError
from tarjama.server.edges.metrics import SCRAPE_TIMEOUT_S, metrics_exposure_warning, serve_metrics
from tarjama.server.edges.stats import StatsSnapshot
from tarjama.server.settings import Settings, parse_settings

from conftest import free_port, serving_http
from conftest import serve_memorised as serve

TOKEN = "exposure-desk-token-0123456789ab"
SCRAPE = "scrape-token-0123456789abcdef0123"
# What the issue sent as an id: a newline, then what looks like an access line of another caller.
FORGED_LINE = "2026-01-01 12:00:00,000 INFO tarjama.access: /tarjama.v1.Translator/Translate OK caller=admin"
FORGED_ID = f"story-1\n{FORGED_LINE} document_id=FORGED\u202e"
NOT_UTF8 = b"editors:\xff\xfe-not-utf-8-token-0123456789\n"


def access_record(**fields: object) -> logging.LogRecord:
    record = logging.LogRecord("tarjama.access", logging.INFO, __file__, 1, "%s %s", ("/m", "OK"), None)
    record.access = {"method": "/m", "status": "OK", "caller": "editors", **fields}
    return record


# -- the access line: escaped, quoted, capped ----------------------------------------------------------


def test_an_id_cannot_forge_a_text_access_line_and_a_huge_one_is_capped() -> None:
    line = TextFormatter().format(access_record(document_id=FORGED_ID, paragraphs=2))
    assert "\n" not in line and "\u202e" not in line, "no line break and no bidi control reaches the log"
    # The whole id is one quoted value: what follows it is this line's own next field.
    assert 'document_id="story-1\\n2026-01-01 12:00:00,000 INFO ' in line and line.endswith('\\u202e" paragraphs=2')
    assert " caller=editors " in line and line.count("caller=admin") == 1 and '"' in line.split("caller=admin")[0]
    for value, written in [("a b", '"a b"'), ("a=b", '"a=b"'), ('a"b', '"a\\"b"'), ("a\\b", '"a\\\\b"'), ("", '""')]:
        assert f" document_id={written}" in TextFormatter().format(access_record(document_id=value))
    huge = TextFormatter().format(access_record(document_id="x" * 3_000_000))
    assert len(huge) < FIELD_CHARACTERS + 200 and "…(3000000 characters)" in huge


def test_a_json_access_line_is_one_line_with_the_same_value_and_capped() -> None:
    line = JsonFormatter().format(access_record(document_id=FORGED_ID + "\u2028\ud800"))
    assert "\n" not in line and "\u2028" not in line and "\u202e" not in line and line.isprintable()
    assert json.loads(line)["document_id"] == FORGED_ID + "\u2028\ud800", "escaped as JSON reads it back"
    huge = json.loads(JsonFormatter().format(access_record(document_id="y" * 3_000_000)))["document_id"]
    assert huge == "y" * FIELD_CHARACTERS + "…(3000000 characters)"


@pytest.fixture(scope="module")
def text_server(fixture_models, cache_dir):  # noqa: ANN001, ANN201
    with serving_http(fixture_models, cache_dir, "--log-format", "text", token=TOKEN, token_name="editors") as process:
        yield process


def post(base: str, path: str, body: object) -> tuple[int, dict]:  # type: ignore[type-arg]
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST")
    request.add_header("Authorization", f"Bearer {TOKEN}")
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:  # noqa: S310 - loopback
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_for(text: str, log: Callable[[], str], timeout: float = 10) -> str:
    """The server's log once it holds `text` (access lines are written as the call ends)."""
    deadline = time.monotonic() + timeout
    while text not in (found := log()):
        assert time.monotonic() < deadline, f"{text!r} not in the log:\n{found[-3000:]}"
        time.sleep(0.05)
    return found


def test_a_forged_id_is_logged_escaped_on_its_own_line(text_server, memorised_pairs) -> None:
    with TarjamaClient(text_server.address, token=TOKEN) as client:
        assert client.translate(memorised_pairs[0][0], id=FORGED_ID, timeout=30).id == FORGED_ID
    status, _ = post(text_server.http, "/v1/segment", {"text": memorised_pairs[1][0], "id": FORGED_ID + "-http"})
    assert status == 200
    log = wait_for("-http", text_server.log)
    lines = log.splitlines()
    assert not [line for line in lines if line.startswith(FORGED_LINE[:10])], "no line begins where the id forged one"
    forged = [line for line in lines if "FORGED" in line]
    assert len(forged) == 2 and all(" tarjama.access: " in line and "caller=editors" in line for line in forged)
    assert all('document_id="story-1\\n2026-01-01' in line and "\u202e" not in line for line in forged)


def test_an_id_over_the_limit_is_refused_at_every_door_and_never_logged(text_server, memorised_pairs) -> None:
    limit = Settings().max_id_characters
    arabic = memorised_pairs[0][0]
    with TarjamaClient(text_server.address, token=TOKEN) as client:
        assert client.info(timeout=10).limits.max_id_characters == limit
        assert client.translate(arabic, id="i" * limit, timeout=30).id == "i" * limit, "exactly the limit is fine"
        for call in (client.translate, client.segment, client.summarize):
            with pytest.raises(TarjamaError) as refused:
                call(arabic, id="h" * 3_000_000, timeout=30)
            assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
            assert refused.value.message == f"id has 3000000 characters; this server accepts at most {limit}"
        with pytest.raises(TarjamaError) as refused:
            client.translate(arabic, id="j" * (limit + 1), timeout=30)
        assert refused.value.message == f"id has {limit + 1} characters; this server accepts at most {limit}"
    for path in ("/v1/translate", "/v1/translate:stream", "/v1/segment", "/v1/summarize"):
        status, body = post(text_server.http, path, {"text": arabic, "id": "k" * (limit + 1)})
        assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT", (path, body)
        assert f"id has {limit + 1} characters" in body["error"]["message"]
    log = wait_for("POST /v1/summarize INVALID_ARGUMENT", text_server.log)
    assert "h" * 1000 not in log and "k" * (limit + 1) not in log and len(log) < 200_000
    assert "i" * limit in log, "an id the server accepts is logged whole"


# -- tokens files that are not UTF-8 -------------------------------------------------------------------


def test_a_tokens_file_that_is_not_utf8_is_named_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "tokens.txt"
    path.write_bytes(f"# desks\nwire:{TOKEN}\n".encode() + NOT_UTF8)
    with pytest.raises(TokenFileError, match=r"tokens.txt:3: --auth-tokens-file is not UTF-8 text \(byte \d+\)"):
        TokenFile(str(path))
    path.write_text(f"editors:{TOKEN}\n")
    tokens = TokenFile(str(path))
    path.write_bytes(NOT_UTF8)
    assert not tokens.reload() and tokens.name_for(TOKEN) == "editors", "the tokens in force stay"
    scrape = tmp_path / "scrape"
    scrape.write_bytes(b"\xff" * 20)
    with pytest.raises(TokenFileError, match="--metrics-token-file is not UTF-8"):
        ScrapeToken(str(scrape))
    for text, problem in [("", "one token"), ("two tokens-0123456789", "one token"), ("short", "shorter than 16")]:
        scrape.write_text(text)
        with pytest.raises(TokenFileError, match=problem):
            ScrapeToken(str(scrape))


@pytest.mark.parametrize("flag", ["--auth-tokens-file", "--metrics-token-file"])
def test_serve_with_a_tokens_file_that_is_not_utf8_stops_with_one_line(
    fixture_models,
    cache_dir,
    tmp_path,
    flag,  # noqa: ANN001
) -> None:
    path = tmp_path / "tokens.txt"
    path.write_bytes(NOT_UTF8)
    process = serve(fixture_models, cache_dir, flag, str(path), "--metrics-port", str(free_port()))
    code = process.proc.wait(60)
    process.stop()
    log = process.log()
    assert code == 1 and "Traceback" not in log, log
    said = f"tarjama serve: error: {path}:1: {flag} is not UTF-8 text (byte 8); save it as UTF-8"
    assert log.strip().splitlines()[-1] == said


def test_sighup_with_a_tokens_file_that_is_not_utf8_keeps_the_tokens(text_server, memorised_pairs) -> None:
    path: Path = text_server.tokens_path
    path.write_bytes(NOT_UTF8)
    try:
        text_server.proc.send_signal(signal.SIGHUP)
        log = wait_for("auth tokens not reloaded", text_server.log)
        (line,) = [line for line in log.splitlines() if "auth tokens not reloaded" in line]
        assert f"{path}:1: --auth-tokens-file is not UTF-8 text" in line and "Traceback" not in log
        with TarjamaClient(text_server.address, token=TOKEN) as client:
            assert client.translate(memorised_pairs[0][0], timeout=30).paragraphs, "the old tokens are in force"
    finally:
        path.write_text(f"editors:{TOKEN}\n")


# -- metrics: loopback by default, a token, TLS, no server paths ---------------------------------------


def listening_addresses(port: int) -> set[str]:
    """The addresses TCP sockets listen on at `port` on this machine (from /proc/net/tcp and tcp6;
    an IPv4 address mapped into IPv6, as grpc binds, as the IPv4 one)."""
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            hex_address, hex_port = local.split(":")
            if state != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(hex_address)  # 32-bit words in host (little-endian) order
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            address = ipaddress.ip_address(raw)
            mapped = getattr(address, "ipv4_mapped", None)
            found.add(str(mapped or address))
    return found


@pytest.fixture(scope="module")
def metrics_server(fixture_models, cache_dir, tmp_path_factory):  # noqa: ANN001, ANN201
    """gRPC on 127.0.0.2 (loopback, but not the metrics default), metrics with a scrape token, JSON logs."""
    directory = tmp_path_factory.mktemp("exposure-metrics")
    (directory / "tokens.txt").write_text(f"editors:{TOKEN}\n")
    (directory / "scrape").write_text(SCRAPE + "\n")
    port = free_port()
    process = serve(fixture_models, cache_dir, "--host", "127.0.0.2", "--log-format", "json",
                    "--auth-tokens-file", str(directory / "tokens.txt"),
                    "--metrics-port", str(port), "--metrics-token-file", str(directory / "scrape"))  # fmt: skip
    try:
        process.wait_serving(client_options={"token": TOKEN})
        process.metrics_port = port  # type: ignore[attr-defined]
        process.scrape_path = directory / "scrape"  # type: ignore[attr-defined]
        yield process
    finally:
        process.stop()


def scrape(
    port: int, token: str | None, scheme: str = "http", context: ssl.SSLContext | None = None
) -> tuple[int, str]:
    request = urllib.request.Request(f"{scheme}://127.0.0.1:{port}/metrics")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as reply:  # noqa: S310 - loopback
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_metrics_listen_on_loopback_whatever_the_host(metrics_server) -> None:
    grpc_port = int(metrics_server.address.rsplit(":", 1)[1])
    assert listening_addresses(grpc_port) == {"127.0.0.2"}
    assert listening_addresses(metrics_server.metrics_port) == {"127.0.0.1"}, "not on --host: its own, loopback"
    assert parse_settings(["--host", "0.0.0.0", "--metrics-port", "9100"], {}).metrics_host == "127.0.0.1"
    assert metrics_exposure_warning("0.0.0.0", token=False) and metrics_exposure_warning("0.0.0.0", token=True) is None
    assert metrics_exposure_warning("127.0.0.1", token=False) is None


def test_metrics_need_the_scrape_token_and_name_no_server_path(metrics_server, fixture_models, memorised_pairs) -> None:
    with TarjamaClient(metrics_server.address, token=TOKEN) as client:
        client.translate(memorised_pairs[0][0], id=FORGED_ID, timeout=30)
    for token in (None, "wrong-token-0123456789abcdef", TOKEN, SCRAPE + "x"):
        status, body = scrape(metrics_server.metrics_port, token)
        assert status == 401 and "tarjama_" not in body, token
    status, text = scrape(metrics_server.metrics_port, SCRAPE)
    assert status == 200 and 'caller="editors"' in text
    directory = fixture_models["memorised"]
    labels = re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', text)
    assert ("model", directory.name) in labels, "the model by its directory's name"
    assert str(directory) not in text and str(directory.parent) not in text
    assert not [(k, v) for k, v in labels if "/" in v and k != "method"], "no path in any label but the RPC's name"
    assert all(v.startswith(("/tarjama.v1.", "/grpc.", "POST /v1/")) for k, v in labels if k == "method")
    # The JSON access line of the forged id: one line, the id intact once read.
    lines = [json.loads(line) for line in metrics_server.log().splitlines() if line.startswith("{")]
    assert [line["document_id"] for line in lines if line.get("document_id", "").startswith("story-1")] == [FORGED_ID]


def test_the_scrape_token_is_reread_on_sighup(metrics_server) -> None:
    path: Path = metrics_server.scrape_path
    new = "rotated-scrape-token-0123456789ab"
    path.write_text(new)
    try:
        metrics_server.proc.send_signal(signal.SIGHUP)
        wait_for("metrics token reloaded", metrics_server.log)
        port = metrics_server.metrics_port
        assert scrape(port, new)[0] == 200 and scrape(port, SCRAPE)[0] == 401, "the new token only"
    finally:
        path.write_text(SCRAPE)
        metrics_server.proc.send_signal(signal.SIGHUP)


def test_get_info_names_a_local_model_by_its_directory_without_a_token(ct2_server, fixture_models) -> None:
    with TarjamaClient(ct2_server.address) as client:
        (model,) = client.info(timeout=10).models[:1]
    assert model.id == fixture_models["memorised"].name and not model.path


@pytest.fixture(scope="module")
def pki(tmp_path_factory):  # noqa: ANN001, ANN201
    from pki import make_pki

    return make_pki(tmp_path_factory.mktemp("pki"))


def test_metrics_speak_mtls_when_the_server_does_and_a_silent_client_blocks_no_scrape(pki) -> None:
    settings = Settings(metrics_port=free_port(), tls_cert=str(pki.server_cert), tls_key=str(pki.server_key),
                        tls_client_ca=str(pki.ca))  # fmt: skip
    _, server = serve_metrics(settings, StatsSnapshot, {"model": "m", "engine": "e"}, None)
    port = server.server_address[1]
    try:
        mutual = ssl.create_default_context(cafile=str(pki.ca))
        mutual.load_cert_chain(str(pki.client_cert), str(pki.client_key))
        with socket.create_connection(("127.0.0.1", port), timeout=5):  # connects, then says nothing
            started = time.monotonic()
            status, text = scrape(port, None, "https", mutual)
            assert status == 200 and "tarjama_queue_tokens" in text
            assert time.monotonic() - started < SCRAPE_TIMEOUT_S / 2, "the silent client held up the scrape"
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
            scrape(port, None, "https", ssl.create_default_context(cafile=str(pki.ca)))  # no client certificate
        with pytest.raises((urllib.error.URLError, ConnectionError, http_errors())):
            scrape(port, None, "http")
    finally:
        server.shutdown()
        server.server_close()


def http_errors() -> type[Exception]:
    import http.client

    return http.client.HTTPException

"""The HTTP API's OpenAPI document: served at /openapi.json, equal to the routes, and true of a live server
under schemathesis (generated valid and invalid requests on every route, each answer checked against it).
"""

from __future__ import annotations

import collections
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from starlette.routing import Mount, Route
from test_adversarial import HEALTH_BOUND_S

from tarjama.server.openapi import openapi

from conftest import HealthMonitor, free_port, serve_memorised

TOKEN = "schema-fuzz-token-0123456789abcdef"
# Each route's generated requests in the fuzzing phase, per generation mode (valid and invalid data); the
# examples and coverage phases add their own. Sized for at least 2,000 requests in under 3 minutes.
EXAMPLES_PER_MODE = 110
LEAST_REQUESTS = 2000
# The server's limits, small so that a generated article is quick to translate.
LIMITS = ["--max-characters", "2000", "--max-paragraphs", "20", "--max-glossary-terms", "20",
          "--max-message-bytes", "65536"]  # fmt: skip


def spec_routes() -> set[tuple[str, str]]:
    return {(path, method) for path, item in openapi()["paths"].items() for method in item}


def app_routes() -> set[tuple[str, str]]:
    from tarjama.server.http_api import HttpApi
    from tarjama.server.runtime import Runtime
    from tarjama.server.settings import Settings

    found = set()
    for route in HttpApi(Runtime(Settings()), None, None).app().routes:  # type: ignore[arg-type]
        if isinstance(route, Mount):
            found.add((route.path + "/{path}", "get"))  # StaticFiles
        elif isinstance(route, Route):
            # Starlette answers HEAD wherever it answers GET: the document says so once.
            found |= {(route.path, method.lower()) for method in route.methods or () if method != "HEAD"}
    return found


def test_the_document_has_every_route_and_no_other() -> None:
    assert spec_routes() == app_routes(), "a route without its schema (server/openapi.py), or a schema without a route"


def test_the_document_is_valid_openapi_with_valid_json_schemas() -> None:
    document = openapi()
    assert document["openapi"].startswith("3.1")
    schemathesis.openapi.from_dict(document)  # schemathesis checks the document as it loads it
    for schema in document["components"]["schemas"].values():
        jsonschema_rs.meta.validate(schema)  # each a Draft 2020-12 schema
    json.dumps(document)  # and plain JSON


def test_request_schemas_take_what_the_proto_json_parser_takes() -> None:
    """Examples built from a message: both field spellings, 64-bit numbers as strings, enums as numbers."""
    from google.protobuf import json_format

    from tarjama.v1 import tarjama_pb2 as pb

    request = {"id": "a", "text": "قال الوزير.", "summarize": True,
               "options": {"stripDiacritics": True, "summary_length": "SHORT", "summarySentences": "3",
                           "terms": {"الوزير": "the minister"}, "extract_article": None}}  # fmt: skip
    response = {"id": "x", "paragraphs": [{"index": 0, "source": "أ", "sentences": [
        {"sourceStart": 0, "source_end": 1, "flags": ["SPLIT", 4], "confidence": "NaN"}]}]}  # fmt: skip
    for message, body, component in (
        (pb.TranslateRequest, request, "TranslateRequest"),
        (pb.TranslateResponse, response, "TranslateResponseInput"),
    ):
        json_format.ParseDict(body, message())
        validator = jsonschema_rs.validator_for(component_schema(component))
        assert validator.is_valid(body), list(validator.iter_errors(body))
        assert not validator.is_valid({**body, "unknown": 1})


def test_openapi_json_is_served_open(fuzz_server: Any) -> None:
    answer = requests.get(fuzz_server.http + "/openapi.json", timeout=10)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert answer.json() == json.loads(json.dumps(openapi()))


def component_schema(name: str) -> dict[str, Any]:
    """A component of the document as a schema on its own (its $refs resolved within the document)."""
    return {"$ref": f"#/components/schemas/{name}", "components": openapi()["components"]}


@pytest.fixture(scope="module")
def fuzz_server(fixture_models, cache_dir, tmp_path_factory):  # noqa: ANN001, ANN201
    tokens = tmp_path_factory.mktemp("schema-auth") / "tokens.txt"
    tokens.write_text(f"fuzz:{TOKEN}\n")
    port = free_port()
    process = serve_memorised(fixture_models, cache_dir, "--auth-tokens-file", str(tokens), "--http-port", str(port),
                              *LIMITS)  # fmt: skip
    try:
        process.wait_serving(client_options={"token": TOKEN})
        process.http = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
        yield process
    finally:
        process.stop()


@dataclass
class Fuzzing:
    """What the run sent and got, checked when it ends."""

    base: str
    session: requests.Session = field(default_factory=requests.Session)
    sent: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)  # (path, method)
    statuses: collections.Counter[tuple[str, int]] = field(default_factory=collections.Counter)


@pytest.fixture
def fuzzing(fuzz_server: Any) -> Iterator[Fuzzing]:
    """The run's tally; when it is over: enough requests on every route, health within its bound throughout."""
    run = Fuzzing(fuzz_server.http)
    started = time.monotonic()
    with HealthMonitor(fuzz_server.address) as health:
        yield run
    elapsed = time.monotonic() - started
    run.session.close()
    print(f"\nschemathesis: {sum(run.sent.values())} requests in {elapsed:.0f} s; {dict(run.sent)}")
    print(f"statuses: {dict(sorted(run.statuses.items()))}; health worst {health.worst_s * 1000:.0f} ms")
    assert set(run.sent) == spec_routes(), f"routes not fuzzed: {spec_routes() - set(run.sent)}"
    assert sum(run.sent.values()) >= LEAST_REQUESTS, run.sent
    assert not health.failures and health.worst_s < HEALTH_BOUND_S, (
        f"gRPC health took {health.worst_s * 1000:.0f} ms during the fuzzing ({health.failures})"
    )
    assert fuzz_server.proc.poll() is None, "the server died under the fuzzing"


@pytest.fixture
def api_schema(fuzz_server: Any) -> Any:
    schema = schemathesis.openapi.from_dict(openapi())
    schema.config.update(base_url=fuzz_server.http, headers={"Authorization": f"Bearer {TOKEN}"}, request_timeout=60)
    schema.config.phases.update(phases=["examples", "coverage", "fuzzing"])
    schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
    # Conformance of every answer (status, content type, headers, body), auth enforced; 5xx are
    # judged by no_undocumented_server_error below.
    schema.config.checks.update(
        included_check_names=[
            "status_code_conformance",
            "content_type_conformance",
            "response_headers_conformance",
            "response_schema_conformance",
            "ignored_auth",
        ]
    )
    return schema


def no_undocumented_server_error(ctx: Any, response: Any, case: Any) -> None:
    """No 5xx, except a 503 or 504 the route documents (a shed request, a deadline that passed)."""
    if response.status_code >= 500:
        documented = openapi()["paths"][case.operation.path][case.operation.method.lower()]["responses"]
        assert response.status_code in (503, 504) and str(response.status_code) in documented, (
            f"{case.operation.label} answered {response.status_code}: {response.text[:500]}"
        )


_STREAM_LINE = jsonschema_rs.validator_for(component_schema("TranslateStreamLine"))


def bodies_are_what_they_say(ctx: Any, response: Any, case: Any) -> None:
    """What schemathesis does not read itself: NDJSON line by line, and the exports are well-formed XML."""
    kind = response.headers.get("content-type", [""])[0].split(";")[0]
    if kind == "application/x-ndjson":
        lines = response.content.decode("utf-8").splitlines()
        assert lines, "an empty stream"
        for number, line in enumerate(lines):
            errors = list(_STREAM_LINE.iter_errors(json.loads(line)))
            assert not errors, f"line {number} of the stream: {[str(error) for error in errors][:3]}"
        last = json.loads(lines[-1])
        assert last.get("done") or "error" in last, "the stream ended without its last message"
    elif kind.endswith("xml") and response.status_code == 200:
        ET.fromstring(response.content)


lazy_schema = schemathesis.pytest.from_fixture("api_schema")


@lazy_schema.parametrize()
@settings(max_examples=EXAMPLES_PER_MODE, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_schemathesis_against_a_live_server(case: Any, fuzzing: Fuzzing) -> None:
    """Every route, with the token: valid and invalid bodies, query and path values (examples, coverage and
    fuzzing phases); each answer conforms to the document and none is an undocumented 5xx. The totals and
    the health bound are checked when the run ends (the `fuzzing` fixture)."""
    response = case.call(session=fuzzing.session)
    fuzzing.sent[(case.operation.path, case.operation.method.lower())] += 1
    fuzzing.statuses[(case.operation.label, response.status_code)] += 1
    case.validate_response(response, additional_checks=[no_undocumented_server_error, bodies_are_what_they_say])

"""The HTTP API's OpenAPI document: served at /openapi.json, equal to the routes, and true of a live server
under schemathesis (generated valid and invalid requests on every route, each answer checked against it).
"""

from __future__ import annotations

import collections
import copy
import json
import re
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

if sys.version_info < (3, 11):  # the test extra leaves schemathesis out there: it needs 3.11
    pytest.skip("schemathesis needs Python 3.11", allow_module_level=True)

import jsonschema_rs
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from starlette.routing import Mount, Route

from tarjama.server.doors.openapi import openapi

from conftest import HealthMonitor, serving_http

TOKEN = "schema-fuzz-token-0123456789abcdef"
# Each route's requests in the fuzzing phase (valid and invalid data together); the examples and coverage
# phases add their own (about 1,000 for /v1/export's large schema). Sized for at least 2,000 requests in
# all, in under 3 minutes on two cores.
EXAMPLES_PER_ROUTE = 200
LEAST_REQUESTS = 2000
# The server's limits, small so that a generated article is quick to translate.
LIMITS = ["--max-characters", "2000", "--max-paragraphs", "20", "--max-glossary-terms", "20",
          "--max-message-bytes", "65536"]  # fmt: skip


def spec_routes() -> set[tuple[str, str]]:
    return {(path, method) for path, item in openapi()["paths"].items() for method in item}


def app_routes() -> set[tuple[str, str]]:
    from tarjama.server.doors.http_api import HttpApi
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
    schemathesis.openapi.from_dict(copy.deepcopy(document))  # schemathesis checks the document as it loads it
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


def test_a_body_that_is_not_a_json_object_is_refused() -> None:
    """Found by schemathesis: `[]` was read as an empty message (a 200 empty XLIFF from /v1/export)."""
    from tarjama.server.doors.http_api import parse_json
    from tarjama.server.errors import InvalidRequest
    from tarjama.v1 import tarjama_pb2 as pb

    for body in (b"[]", b" \n[ ]", b'"id"', b"5", b"null", b""):
        with pytest.raises(InvalidRequest, match="is not a tarjama.v1.TranslateResponse in proto3 JSON"):
            parse_json(body, pb.TranslateResponse)
    assert parse_json(b' \r\n{"id": "a"}', pb.TranslateResponse).id == "a"


def test_openapi_json_is_served_open(fuzz_server: Any) -> None:
    answer = requests.get(fuzz_server.http + "/openapi.json", timeout=10)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert answer.json() == json.loads(json.dumps(openapi()))


def component_schema(name: str) -> dict[str, Any]:
    """A component of the document as a schema on its own (its $refs resolved within the document)."""
    return {"$ref": f"#/components/schemas/{name}", "components": openapi()["components"]}


@pytest.fixture(scope="module")
def fuzz_server(fixture_models, cache_dir):  # noqa: ANN001, ANN201
    with serving_http(fixture_models, cache_dir, *LIMITS, token=TOKEN, token_name="fuzz") as process:
        yield process


@dataclass
class Fuzzing:
    """What the run sent and got, and gRPC health polled all along (stopped by `finish`)."""

    base: str
    health: HealthMonitor
    session: requests.Session = field(default_factory=requests.Session)
    sent: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)  # (path, method)
    statuses: collections.Counter[tuple[str, int]] = field(default_factory=collections.Counter)
    started: float = field(default_factory=time.monotonic)
    elapsed: float | None = None

    def finish(self) -> None:
        if self.elapsed is None:
            self.health.__exit__()
            self.session.close()
            self.elapsed = time.monotonic() - self.started


@pytest.fixture(scope="module")
def fuzzing(fuzz_server: Any) -> Iterator[Fuzzing]:
    run = Fuzzing(fuzz_server.http, HealthMonitor(fuzz_server.address).__enter__())
    try:
        yield run
    finally:
        run.finish()


schema = schemathesis.openapi.from_dict(copy.deepcopy(openapi()))  # a copy: the document is built once
schema.config.update(headers={"Authorization": f"Bearer {TOKEN}"}, request_timeout=60)
schema.config.phases.update(phases=["examples", "coverage", "fuzzing"])
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
# Conformance of every answer (status, content type, headers, body), and auth enforced (a request sent
# again without the token gets 401); 5xx are judged by no_undocumented_server_error.
schema.config.checks.update(
    included_check_names=[
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "ignored_auth",
    ]
)


# A body the document allows is mostly an empty article (every field is optional in proto3), which is a
# 400 before any work: in the fuzzing phase such bodies get a generated article, so that the engine, the
# summariser and the answers' schemas are exercised too (the coverage phase still sends them empty).
ARABIC = st.text(st.sampled_from("ابتثجحخدذرزسشصضطظعغفقكلمنهوي ءآأؤإئة ،.؟!\n0123456789٣٤abc<>&\"'"), min_size=1,
                 max_size=400)  # fmt: skip
ENGLISH = st.text(st.sampled_from("abcdefghij klmnop ABC.,;!?\n0123456789"), min_size=1, max_size=400)
ARTICLES = {"/v1/translate": ARABIC, "/v1/translate:stream": ARABIC, "/v1/segment": ARABIC, "/v1/summarize": ENGLISH}


@schema.hook
def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    article = ARTICLES.get(context.operation.path)
    if article is None or not isinstance(body, dict) or any(body.get(key) for key in ("text", "paragraphs", "html")):
        return st.just(body)
    return article.map(lambda text: {**body, "text": text})


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
        try:
            ET.fromstring(response.content)
        except ET.ParseError as exc:
            raise AssertionError(f"the export is not well-formed XML: {exc}") from None


@pytest.mark.slow  # the fuzzing: about three minutes on 2 cores
@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_ROUTE, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_schemathesis_against_a_live_server(case: Any, fuzzing: Fuzzing) -> None:
    """Every route, with the token: valid and invalid bodies, query and path values (examples, coverage and
    fuzzing phases); each answer conforms to the document and none is an undocumented 5xx."""
    response = case.call(base_url=fuzzing.base, session=fuzzing.session)
    fuzzing.sent[(case.operation.path, case.operation.method.lower())] += 1
    fuzzing.statuses[(case.operation.label, response.status_code)] += 1
    case.validate_response(response, additional_checks=[no_undocumented_server_error, bodies_are_what_they_say])


@pytest.mark.slow
def test_the_fuzzing_reached_every_route_and_health_held(fuzzing: Fuzzing, fuzz_server: Any, request: Any) -> None:
    """After the schemathesis tests (defined above, so run before): at least 2,000 requests, on every route,
    with gRPC health within its bound throughout and the server still up."""
    fuzzed = [item for item in request.session.items if item.originalname == "test_schemathesis_against_a_live_server"]
    if len(fuzzed) < len(spec_routes()):
        pytest.skip("this run selected only some of the schemathesis tests (-k)")
    fuzzing.finish()
    health = fuzzing.health
    print(f"\nschemathesis: {sum(fuzzing.sent.values())} requests in {fuzzing.elapsed:.0f} s; {dict(fuzzing.sent)}")
    print(f"statuses: {dict(sorted(fuzzing.statuses.items()))}; {health.report('gRPC')}")
    assert set(fuzzing.sent) == spec_routes(), f"routes not fuzzed: {spec_routes() - set(fuzzing.sent)}"
    assert sum(fuzzing.sent.values()) >= LEAST_REQUESTS, fuzzing.sent
    health.check("during the schemathesis run")
    assert fuzz_server.proc.poll() is None, "the server died under the fuzzing"


@pytest.mark.parametrize(
    ("path", "method", "status", "kind", "content", "why"),
    [
        ("/v1/translate", "POST", 500, "application/json",
         b'{"error": {"code": 500, "status": "INTERNAL", "message": "x"}}', "answered 500"),
        ("/static/{path}", "GET", 503, "application/json",
         b'{"error": {"code": 503, "status": "UNAVAILABLE", "message": "x"}}', None),  # documented: passes
        ("/v1/segment", "POST", 504, "application/json",
         b'{"error": {"code": 504, "status": "DEADLINE_EXCEEDED", "message": "x"}}', "answered 504"),
        ("/v1/translate", "POST", 200, "application/json", b'{"id": "x"}', "Response violates schema"),
        ("/v1/translate", "POST", 400, "text/plain", b"no", "Undocumented Content-Type"),
        ("/v1/translate", "POST", 418, "application/json", b"{}", "Undocumented status code"),
        ("/v1/translate:stream", "POST", 200, "application/x-ndjson", b'{"id": 5}\n', "line 0 of the stream"),
        ("/v1/export", "POST", 200, "application/xliff+xml", b"<xliff>", "not well-formed XML"),
    ],
)  # fmt: skip
def test_the_checks_fail_what_they_must(
    path: str, method: str, status: int, kind: str, content: bytes, why: str | None
) -> None:
    """Each check of the schemathesis run, on an answer it must refuse (and one it must let through)."""
    case = schema[path][method].Case(body={"text": "x"} if method == "POST" else None, media_type="application/json",
                                     path_parameters={"path": "x"} if "{path}" in path else None)  # fmt: skip
    prepared = requests.Request(method, "http://127.0.0.1:9" + path).prepare()
    response = schemathesis.Response(status, {"content-type": [kind]}, content, prepared, 0.01, True)
    checks = [no_undocumented_server_error, bodies_are_what_they_say]
    if why is None:
        case.validate_response(response, additional_checks=checks, excluded_checks=[schemathesis.checks.ignored_auth])
        return
    with pytest.raises(schemathesis.errors.FailureGroup) as failed:
        case.validate_response(response, additional_checks=checks, excluded_checks=[schemathesis.checks.ignored_auth])
    said = " ".join(f"{failure.title} {failure.message}" for failure in failed.value.exceptions)
    assert re.search(why, said), said

"""The HTTP API's contract: an OpenAPI 3.1 document, served at GET /openapi.json.

The bodies are JSON Schemas made from the .proto's message descriptors, so they cannot drift from
the contract. Requests are described as `json_format.Parse` reads them (proto3 JSON: lowerCamelCase or
the proto's field names, integers as numbers or decimal strings, enums as names or numbers, null for
an unset field); answers as the server writes them (the proto's field names, every field without
presence there, 64-bit integers as strings, enums as names). tests/test_http_schema.py keeps the paths
equal to http_api's routes and fuzzes a live server from this document (schemathesis).
"""

from __future__ import annotations

import functools
import json
import mimetypes
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from starlette.requests import Request
from starlette.responses import Response

from tarjama import __version__
from tarjama.v1 import tarjama_pb2 as pb

from ..settings import Settings

STATIC = Path(__file__).resolve().parent.parent / "static"
JSON = "application/json"
NDJSON = "application/x-ndjson"

_T = FieldDescriptor
_SIGNED32, _UNSIGNED32 = (-(2**31), 2**31 - 1), (0, 2**32 - 1)
_INT32 = {_T.TYPE_INT32: _SIGNED32, _T.TYPE_SINT32: _SIGNED32, _T.TYPE_SFIXED32: _SIGNED32,
          _T.TYPE_UINT32: _UNSIGNED32, _T.TYPE_FIXED32: _UNSIGNED32}  # fmt: skip
_SIGNED64, _UNSIGNED64 = (-(2**63), 2**63 - 1), (0, 2**64 - 1)
_INT64 = {_T.TYPE_INT64: _SIGNED64, _T.TYPE_SINT64: _SIGNED64, _T.TYPE_SFIXED64: _SIGNED64,
          _T.TYPE_UINT64: _UNSIGNED64, _T.TYPE_FIXED64: _UNSIGNED64}  # fmt: skip
_FLOAT_MAX = 3.4028234663852886e38
_NON_FINITE = {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}


class _Schemas:
    """Component schemas for proto messages, in the form a request takes ("input") or an answer has."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, message: Descriptor | Any, output: bool) -> dict[str, str]:
        # Any: a message class's DESCRIPTOR is protobuf's Python Descriptor or upb's, by the stubs.
        name = message.name if output or message.name.endswith("Request") else message.name + "Input"
        if name not in self.components:
            self.components[name] = {}  # reserved before the fields: messages may nest themselves
            self.components[name] = self._message(message, output)
        return {"$ref": f"#/components/schemas/{name}"}

    def _message(self, message: Descriptor, output: bool) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        for field in message.fields:
            schema = self._field(field, output)
            if output:
                properties[field.name] = schema
            else:  # either spelling; null leaves the field unset
                properties[field.json_name] = properties[field.name] = {"anyOf": [schema, {"type": "null"}]}
        shape: dict[str, Any] = {
            "type": "object",
            "title": message.full_name,
            "properties": properties,
            "additionalProperties": False,
        }
        if output:  # what has no presence is always written (always_print_fields_with_no_presence)
            shape["required"] = [field.name for field in message.fields if not field.has_presence]
        return shape

    def _field(self, field: FieldDescriptor, output: bool) -> dict[str, Any]:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key, value = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
            schema: dict[str, Any] = {"type": "object", "additionalProperties": self._single(value, output)}
            if key.type != _T.TYPE_STRING:
                schema["propertyNames"] = {"pattern": "^-?[0-9]+$" if key.type != _T.TYPE_BOOL else "^(true|false)$"}
            return schema
        if field.is_repeated:
            return {"type": "array", "items": self._single(field, output)}
        return self._single(field, output)

    def _single(self, field: FieldDescriptor, output: bool) -> dict[str, Any]:
        kind = field.type
        if kind == _T.TYPE_MESSAGE and field.message_type is not None:
            return self.ref(field.message_type, output)
        if kind == _T.TYPE_ENUM and field.enum_type is not None:
            return _enum(field.enum_type, output)
        if kind == _T.TYPE_STRING:
            return {"type": "string"}
        if kind == _T.TYPE_BYTES:
            return {"type": "string", "contentEncoding": "base64"}
        if kind == _T.TYPE_BOOL:
            return {"type": "boolean"}
        if kind in (_T.TYPE_FLOAT, _T.TYPE_DOUBLE):
            number: dict[str, Any] = {"type": "number"}
            if kind == _T.TYPE_FLOAT and not output:
                number |= {"minimum": -_FLOAT_MAX, "maximum": _FLOAT_MAX}
            return {"anyOf": [number, _NON_FINITE]}
        low, high = _INT32.get(kind) or _INT64[kind]
        integer = {"type": "integer", "minimum": low, "maximum": high}
        decimal = {"type": "string", "pattern": "^-?[0-9]+$" if low < 0 else "^[0-9]+$"}
        if output:  # 64-bit integers are strings in proto3 JSON (JavaScript numbers lose them)
            return decimal if kind in _INT64 else integer
        return {"anyOf": [integer, decimal]}


def _enum(enum: EnumDescriptor, output: bool) -> dict[str, Any]:
    names = {"type": "string", "enum": [value.name for value in enum.values]}
    if output:
        return names
    return {"anyOf": [names, {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1}]}


ERROR = {
    "type": "object",
    "title": "Error",
    "description": "Every error of the API: the HTTP status, the gRPC status name and a message that names the field "
    "or the limit (the gRPC API's message for the same request).",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "status", "message"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "integer", "minimum": 400, "maximum": 599},
                "status": {"type": "string", "enum": [code.name for code in grpc.StatusCode if code.name != "OK"]},
                "message": {"type": "string"},
            },
        }
    },
}
EXTRACTED = {
    "type": "object",
    "title": "ExtractedArticle",
    "description": "The article of a saved page: headline, byline, date, then the body (`paragraphs`, what "
    "Translate would be sent), and the page's other text blocks (`dropped`).",
    "required": ["title", "author", "date", "paragraphs", "dropped"],
    "additionalProperties": False,
    "properties": {
        "title": {"type": "string"},
        "author": {"type": "string"},
        "date": {"type": "string"},
        "paragraphs": {"type": "array", "items": {"type": "string"}},
        "dropped": {"type": "array", "items": {"type": "string"}},
    },
}

# Why each status is answered (the mapping from gRPC codes is errors.HTTP_STATUS; the door's own
# refusals are http_guard's).
WHY = {
    400: "INVALID_ARGUMENT (a field, the body or ?timeout= is wrong; the message names it) or FAILED_PRECONDITION "
    "(the request asks for something this server runs without)",
    401: "UNAUTHENTICATED: no bearer token or an unknown one (only with --auth-tokens-file)",
    403: "PERMISSION_DENIED: without tokens, a request whose Origin is not this server's; with tokens, a token "
    "without the right the call needs (writing glossaries: 'glossaries')",
    404: "NOT_FOUND: no stored glossary has the id",
    408: "DEADLINE_EXCEEDED: the headers or the body took longer than --http-header-timeout-s or --http-body-timeout-s",
    413: "the body is over --max-message-bytes",
    415: "INVALID_ARGUMENT: without tokens, a POST to /v1/ whose Content-Type is not application/json",
    421: "PERMISSION_DENIED: without tokens, a Host name this server does not answer to (--http-allowed-hosts)",
    429: "RESOURCE_EXHAUSTED: the queue is full (--max-queue-tokens), retry later; or --max-glossaries are stored",
    500: "INTERNAL: the engine failed on the request (the server log says why); never expected",
    503: "UNAVAILABLE: the models are loading or the server is draining, or --max-http-connections are open "
    "(with Retry-After); for glossary calls, the glossary database cannot be reached",
    504: "DEADLINE_EXCEEDED: the ?timeout= passed",
}
# What the door answers before any route runs, on every route; and the /v1/ routes' own errors.
GUARD = (403, 408, 421, 503)
DOOR = (*GUARD, 400, 401, 413, 415)
ENGINE = (429, 500, 504)
TIMEOUT = {
    "name": "timeout",
    "in": "query",
    "required": False,
    "description": "a deadline in seconds, as a gRPC deadline; at most --max-deadline-s (GetInfo.limits)",
    "schema": {"type": "number", "exclusiveMinimum": 0, "maximum": Settings.max_deadline_s},
}
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
OPEN: list[dict[str, list[str]]] = []


ERROR_REF = {"$ref": "#/components/schemas/Error"}


def _errors(*codes: int) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for code in codes:
        error = {"schema": {"$ref": "#/components/schemas/Error"}}
        answer: dict[str, Any] = {"description": WHY[code], "content": {JSON: error}}
        if code == 401:
            answer["headers"] = {"WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}}}
        if code == 503:
            answer["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
        answers[str(code)] = answer
    return answers


def _post(summary: str, body: dict[str, Any], answers: dict[str, Any], errors: tuple[int, ...], **extra: Any) -> Any:
    return {
        "post": {
            "summary": summary,
            "security": BEARER,
            "parameters": [TIMEOUT, *extra.pop("parameters", [])],
            "requestBody": {"required": True, "content": {JSON: {"schema": body}}},
            "responses": {**answers, **_errors(*sorted(set(errors)))},
            **extra,
        }
    }


def _ok(schema: dict[str, Any], media_type: str = JSON, description: str = "OK") -> dict[str, Any]:
    return {"200": {"description": description, "content": {media_type: {"schema": schema}}}}


# The LibreTranslate-compatible routes (doors/libretranslate_api.py): LibreTranslate's own shapes.
LT_ERROR = {
    "type": "object",
    "title": "LibreTranslateError",
    "description": "LibreTranslate's error shape: the message that names the field, the limit or the language pair",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
}
LT_WHY = {
    400: "a wrong field, a body that is not JSON or a form, a language pair this server does not have, or a limit",
    403: "api_key missing or unknown (only with --auth-tokens-file); or, in Tarjama's shape, the browser guard",
    413: "the body is over --max-message-bytes",
    429: "the queue is full (--max-queue-tokens); retry later",
    500: "the engine failed on the request (the server log says why); never expected",
    503: "the models are loading or the server is draining; or, in Tarjama's shape, --max-http-connections",
    504: "the ?timeout= passed",
}


def _lt_errors(*codes: int) -> dict[str, Any]:
    """LibreTranslate's errors; those the door's guard may answer first (GUARD) in either shape."""
    answers = _errors(*(code for code in GUARD if code not in codes))
    for code in codes:
        schema: dict[str, Any] = {"$ref": "#/components/schemas/LibreTranslateError"}
        if code in GUARD:
            schema = {"anyOf": [schema, ERROR_REF]}
        answers[str(code)] = {"description": LT_WHY[code], "content": {JSON: {"schema": schema}}}
    return answers


def _libretranslate_paths() -> dict[str, Any]:
    texts = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    key = {"type": "string", "description": "a token of --auth-tokens-file (or send Authorization: Bearer)"}
    fields = {
        "q": {**texts, "description": "the text, or an array of texts (one answer each, in order)"},
        "source": {"type": "string", "enum": ["ar", "auto"]},
        "target": {"type": "string", "enum": ["en"]},
        "format": {"type": "string", "enum": ["text", "html"]},
        "api_key": key,
    }
    as_json = {"type": "object", "required": ["q", "source", "target"],
               "properties": {**fields, "alternatives": {"type": "integer", "minimum": 0}}}  # fmt: skip
    as_form = {"type": "object", "required": ["q", "source", "target"],
               "properties": {**fields, "alternatives": {"type": "string", "pattern": "^[0-9]{1,9}$"}}}  # fmt: skip
    detection = {"type": "object", "required": ["confidence", "language"],
                 "properties": {"confidence": {"type": "number", "minimum": 0, "maximum": 100},
                                "language": {"type": "string"}}}  # fmt: skip
    translated = {
        "type": "object",
        "title": "LibreTranslateResponse",
        "required": ["translatedText"],
        "additionalProperties": False,
        "properties": {
            "translatedText": texts,
            "detectedLanguage": {"anyOf": [detection, {"type": "array", "items": detection}]},
            "alternatives": {"type": "array"},
        },
    }
    detect_body = {"type": "object", "required": ["q"], "properties": {"q": texts, "api_key": key}}
    lt_errors = _lt_errors(400, 403, 413, 429, 500, 503, 504)

    def post(summary: str, body: dict[str, Any], form: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        content = {JSON: {"schema": body}, "application/x-www-form-urlencoded": {"schema": form},
                   "multipart/form-data": {"schema": form}}  # fmt: skip
        return {"post": {"summary": summary, "security": BEARER, "parameters": [TIMEOUT],
                         "requestBody": {"required": True, "content": content},
                         "responses": {**_ok(answer), **lt_errors}}}  # fmt: skip

    language = {"type": "object", "required": ["code", "name", "targets"],
                "properties": {"code": {"type": "string"}, "name": {"type": "string"},
                               "targets": {"type": "array", "items": {"type": "string"}}}}  # fmt: skip
    return {
        "/translate": post("LibreTranslate's translate: Arabic (ar, or auto) to English (en), text or html",
                           as_json, as_form, translated),
        "/detect": post("LibreTranslate's detect: the share of Arabic and of Latin letters, the likeliest first",
                        detect_body, detect_body, {"type": "array", "items": detection}),
        "/languages": {"get": {"summary": "LibreTranslate's languages: ar to en (open)", "security": OPEN,
                               "responses": {**_ok({"type": "array", "items": language}), **_errors(*GUARD)}}},
        "/frontend/settings": {"get": {"summary": "LibreTranslate's frontend settings (open)", "security": OPEN,
                                       "responses": {**_ok({"type": "object"}), **_errors(*GUARD)}}},
    }  # fmt: skip


# The DeepL-compatible routes (doors/deepl_api.py): DeepL's v2 shapes.
MODEL_TYPES = ("quality_optimized", "latency_optimized", "prefer_quality_optimized")
DEEPL_ERROR = {
    "type": "object",
    "title": "DeepLError",
    "description": "DeepL's error shape: a message that names the parameter, the limit or the language pair",
    "required": ["message"],
    "additionalProperties": False,
    "properties": {"message": {"type": "string"}},
}
DEEPL_WHY = {
    400: "a wrong parameter, a body that is not JSON or a form, a language pair this server does not have, a limit "
    "(--max-paragraphs elements, --max-characters in all), or a server without stored glossaries",
    403: "no token, an unknown one (DeepL's 403), or one without the 'glossaries' right for writing glossaries; "
    "or, in Tarjama's shape, the browser guard",
    404: "no glossary with that id",
    413: "the body is over --max-message-bytes",
    429: "the queue is full (--max-queue-tokens); DeepL's clients retry with backoff",
    456: "--max-glossaries are stored: DeepL's quota exceeded (Tarjama counts no characters against a quota)",
    500: "the engine failed on the request (the server log says why); never expected",
    503: "the models are loading, the server is draining or the glossary database cannot be reached; or, in Tarjama's "
    "shape, --max-http-connections",
    504: "the ?timeout= passed",
}


def _deepl_errors(*codes: int) -> dict[str, Any]:
    """DeepL's errors; those the door's guard may answer first (GUARD) in either shape."""
    answers = _errors(*(code for code in GUARD if code not in codes))
    for code in codes:
        schema: dict[str, Any] = {"$ref": "#/components/schemas/DeepLError"}
        if code in GUARD:
            schema = {"anyOf": [schema, ERROR_REF]}
        answers[str(code)] = {"description": DEEPL_WHY[code], "content": {JSON: {"schema": schema}}}
    return answers


def _deepl_paths() -> dict[str, Any]:
    text = {"type": "string"}
    texts = {"anyOf": [text, {"type": "array", "items": text, "minItems": 1}]}
    key = {"type": "string", "description": "a token of --auth-tokens-file, for clients that send no Authorization"}
    flag_json = {"anyOf": [{"type": "boolean"}, {"type": "string", "enum": ["0", "1"]}]}
    flag_form = {"type": "string", "enum": ["0", "1", "true", "false"]}
    fields = {
        "source_lang": {"type": "string", "enum": ["AR", "ar"]},
        "target_lang": {"type": "string", "enum": ["EN", "EN-US", "EN-GB", "en", "en-us", "en-gb"]},
        "tag_handling": {"type": "string", "enum": ["html", "xml"]},
        "split_sentences": {"type": "string", "enum": ["0", "1", "nonewlines"]},
        "formality": {"type": "string", "enum": ["default", "more", "less", "prefer_more", "prefer_less"]},
        "context": text,
        "glossary_id": text,
        "model_type": {"type": "string", "enum": list(MODEL_TYPES)},
        "auth_key": key,
    }
    flags = ("preserve_formatting", "show_billed_characters", "outline_detection")
    as_json = {"type": "object", "required": ["text", "target_lang"],
               "properties": {"text": texts, **fields, **{name: flag_json for name in flags}}}  # fmt: skip
    as_form = {"type": "object", "required": ["text", "target_lang"],
               "properties": {"text": texts, **fields, **{name: flag_form for name in flags}}}  # fmt: skip
    translation = {
        "type": "object",
        "required": ["detected_source_language", "text"],
        "additionalProperties": False,
        "properties": {
            "detected_source_language": {"type": "string", "const": "AR"},
            "text": text,
            "billed_characters": {"type": "integer", "minimum": 0},
            "model_type_used": {"type": "string", "enum": ["quality_optimized", "latency_optimized"]},
        },
    }
    translated = {"type": "object", "title": "DeepLTranslations", "required": ["translations"],
                  "additionalProperties": False,
                  "properties": {"translations": {"type": "array", "items": translation}}}  # fmt: skip
    language = {"type": "object", "required": ["language", "name"], "additionalProperties": False,
                "properties": {"language": text, "name": text, "supports_formality": {"type": "boolean"}}}  # fmt: skip
    usage = {"type": "object", "required": ["character_count", "character_limit"],
             "properties": {"character_count": {"type": "integer", "minimum": 0},
                            "character_limit": {"type": "integer", "minimum": 0}}}  # fmt: skip
    glossary = {
        "type": "object",
        "title": "DeepLGlossary",
        "required": ["glossary_id", "name", "ready", "source_lang", "target_lang", "creation_time", "entry_count"],
        "additionalProperties": False,
        "properties": {
            "glossary_id": text, "name": text, "ready": {"type": "boolean"},
            "source_lang": {"type": "string", "const": "ar"}, "target_lang": {"type": "string", "const": "en"},
            "creation_time": text, "entry_count": {"type": "integer", "minimum": 1},
        },
    }  # fmt: skip
    glossary_fields = {"name": text, "source_lang": {"type": "string", "enum": ["ar", "AR"]},
                       "target_lang": {"type": "string", "enum": ["en", "EN"]}, "entries": text,
                       "entries_format": {"type": "string", "enum": ["tsv", "csv"]}, "auth_key": key}  # fmt: skip
    new_glossary = {"type": "object", "required": ["name", "source_lang", "target_lang", "entries"],
                    "properties": glossary_fields}  # fmt: skip
    pairs = {"type": "object", "required": ["supported_languages"],
             "properties": {"supported_languages": {"type": "array", "items": {
                 "type": "object", "required": ["source_lang", "target_lang"],
                 "properties": {"source_lang": text, "target_lang": text}}}}}  # fmt: skip
    glossary_id = {"name": "glossary_id", "in": "path", "required": True, "schema": text}
    kinds = {"type": "string", "enum": ["source", "target"]}
    kind = {"name": "type", "in": "query", "required": False, "schema": kinds}
    reading = _deepl_errors(400, 403, 413, 500, 503, 504)
    finding = _deepl_errors(400, 403, 404, 413, 500, 503, 504)

    def operation(summary: str, answers: dict[str, Any], errors: dict[str, Any], **extra: Any) -> dict[str, Any]:
        parameters = [TIMEOUT, *extra.pop("parameters", [])]
        return {"summary": summary, "security": BEARER, "parameters": parameters,
                "responses": {**answers, **errors}, **extra}  # fmt: skip

    def body(schema: dict[str, Any], form: dict[str, Any] | None = None, required: bool = True) -> dict[str, Any]:
        content = {JSON: {"schema": schema}, "application/x-www-form-urlencoded": {"schema": form or schema}}
        return {"required": required, "content": content}

    languages = operation("DeepL's languages: AR as the source, EN-GB and EN-US as targets", _ok({"type": "array",
                          "items": language}), reading, parameters=[kind])  # fmt: skip
    return {
        "/v2/translate": {"post": operation(
            "DeepL's translate: each `text` from Arabic (AR, or absent) into English (EN, EN-US, EN-GB), in order",
            _ok(translated), _deepl_errors(400, 403, 404, 413, 429, 500, 503, 504),
            requestBody=body(as_json, as_form))},
        "/v2/languages": {"get": languages, "post": {**languages, "requestBody": body(
            {"type": "object", "properties": {"type": kind["schema"], "auth_key": key}}, required=False)}},
        "/v2/usage": {method: operation(
            "DeepL's usage: the characters this token had translated since the server started; no limit (10^12)",
            _ok(usage), reading) for method in ("get", "post")},
        "/v2/glossary-language-pairs": {"get": operation(
            "DeepL's glossary language pairs: ar to en", _ok(pairs), reading)},
        "/v2/glossaries": {
            "get": operation("DeepL's list of glossaries: the stored glossaries, newest first",
                             _ok({"type": "object", "required": ["glossaries"], "properties": {
                                 "glossaries": {"type": "array", "items": glossary}}}), reading),
            "post": operation(
                "DeepL's create glossary: entries as TSV or CSV (needs the 'glossaries' right)",
                {"201": {"description": "created", "content": {JSON: {"schema": glossary}}}},
                _deepl_errors(400, 403, 413, 456, 500, 503, 504), requestBody=body(new_glossary)),
        },
        "/v2/glossaries/{glossary_id}": {
            "get": operation("DeepL's glossary information", _ok(glossary), finding, parameters=[glossary_id]),
            "delete": operation("DeepL's delete glossary (needs the 'glossaries' right)",
                                {"204": {"description": "deleted"}}, finding, parameters=[glossary_id]),
        },
        "/v2/glossaries/{glossary_id}/entries": {"get": operation(
            "DeepL's glossary entries, as TSV", _ok(text, "text/tab-separated-values"), finding,
            parameters=[glossary_id])},
    }  # fmt: skip


@functools.cache
def openapi() -> dict[str, Any]:
    """The document, built once (treat it as read-only)."""
    schemas = _Schemas()
    translate_request = schemas.ref(pb.TranslateRequest.DESCRIPTOR, output=False)
    stream = schemas.ref(pb.TranslateStreamResponse.DESCRIPTOR, output=True)
    stream_line = {"title": "TranslateStreamLine", "anyOf": [stream, {"$ref": "#/components/schemas/Error"}]}
    static_types = sorted({mimetypes.guess_type(p.name)[0] or "application/octet-stream" for p in STATIC.iterdir()})
    text = {"type": "string"}
    health = {**_ok({"type": "string", "const": "SERVING\n"}, "text/plain"), **_errors(*GUARD)}
    health["503"]["content"]["text/plain"] = {"schema": {"type": "string", "const": "NOT_SERVING\n"}}
    paths = {
        "/v1/translate": _post(
            "Translate an Arabic article (TranslateRequest) into English (TranslateResponse), as the gRPC Translate",
            translate_request,
            _ok(schemas.ref(pb.TranslateResponse.DESCRIPTOR, output=True)),
            DOOR + ENGINE + (404,),  # 404: options.glossary_id names no stored glossary
        ),
        "/v1/translate:stream": _post(
            "Translate, with one TranslateStreamResponse per line (NDJSON) as paragraphs are done; an error after "
            "the first line is the last line, as an Error",
            translate_request,
            _ok({"$ref": "#/components/schemas/TranslateStreamLine"}, NDJSON, "one TranslateStreamLine per line"),
            DOOR + ENGINE + (404,),
        ),
        "/v1/segment": _post(
            "Paragraphs and sentences as Translate would see them, with token counts (SegmentResponse)",
            schemas.ref(pb.SegmentRequest.DESCRIPTOR, output=False),
            _ok(schemas.ref(pb.SegmentResponse.DESCRIPTOR, output=True)),
            DOOR + (500,),
        ),
        "/v1/summarize": _post(
            "Summarise English text (SummarizeResponse)",
            schemas.ref(pb.SummarizeRequest.DESCRIPTOR, output=False),
            _ok(schemas.ref(pb.SummarizeResponse.DESCRIPTOR, output=True)),
            DOOR + ENGINE,
        ),
        "/v1/export": _post(
            "A TranslateResponse (as /v1/translate answers it) as XLIFF 2.0 or TMX 1.4",
            schemas.ref(pb.TranslateResponse.DESCRIPTOR, output=False),
            {"200": {"description": "the document", "content": {"application/xliff+xml": {"schema": text},
                                                                "application/x-tmx+xml": {"schema": text}}}},
            DOOR + (500,),
            parameters=[{"name": "format", "in": "query", "required": True,
                         "schema": {"type": "string", "enum": ["xliff", "tmx"]}}],
        ),  # fmt: skip
        "/v1/info": _post(
            "The server's version, models (the translation models by name, the default first), decoding settings, "
            "limits, parallelism and counters (GetInfoResponse), as the gRPC GetInfo",
            schemas.ref(pb.GetInfoRequest.DESCRIPTOR, output=False),
            _ok(schemas.ref(pb.GetInfoResponse.DESCRIPTOR, output=True)),
            DOOR + (500,),
        ),
        **{
            f"/v1/glossaries:{action}": _post(
                f"{summary} (as the gRPC {rpc}){' — needs a token with the glossaries right' if write else ''}",
                schemas.ref(getattr(pb, f"{rpc}Request").DESCRIPTOR, output=False),
                _ok(schemas.ref(answer.DESCRIPTOR, output=True)),
                DOOR + (404, 500, 503) + ((429,) if action == "create" else ()),
            )
            for action, rpc, answer, write, summary in (
                ("create", "CreateGlossary", pb.Glossary, True, "Store a glossary for every tool and replica"),
                ("list", "ListGlossaries", pb.ListGlossariesResponse, False, "The stored glossaries, newest first"),
                ("get", "GetGlossary", pb.Glossary, False, "A stored glossary, with its entries when asked"),
                ("delete", "DeleteGlossary", pb.DeleteGlossaryResponse, True, "Delete a stored glossary"),
            )
        },
        "/v1/extract": _post(
            "The article of a saved news page and what was dropped",
            {"type": "object", "required": ["html"], "properties": {"html": {"type": "string", "minLength": 1}}},
            _ok({"$ref": "#/components/schemas/ExtractedArticle"}),
            DOOR + (429, 500, 504),
        ),
        "/healthz": {"get": {
            "summary": "SERVING, or NOT_SERVING while the models load or the server drains (open, no token)",
            "security": OPEN,
            "responses": health,
        }},
        "/favicon.ico": {"get": {
            "summary": "The page's icon (open)",
            "security": OPEN,
            "responses": {**_ok(text, "image/svg+xml"), **_errors(*GUARD)},
        }},
        "/": {"get": {
            "summary": "The reading page (open: it holds no data)",
            "security": OPEN,
            "responses": {**_ok(text, "text/html"), **_errors(*GUARD)},
        }},
        **_libretranslate_paths(),
        **_deepl_paths(),
        "/openapi.json": {"get": {
            "summary": "This document (open)",
            "security": OPEN,
            "responses": {**_ok({"type": "object"}), **_errors(*GUARD)},
        }},
        "/static/{path}": {"get": {
            "summary": "The reading page's files",
            "security": OPEN,
            "parameters": [{"name": "path", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {
                "200": {"description": "the file", "content": {kind: {"schema": text} for kind in static_types}},
                "404": {"description": "no such file", "content": {JSON: {"schema": ERROR_REF}}},
                **_errors(*GUARD),
            },
        }},
    }  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tarjama HTTP API",
            "version": __version__,
            "description": "Arabic news in English: the gRPC API (tarjama/v1/tarjama.proto) as proto3 JSON over HTTP. "
            "Bodies are the .proto's messages; requests may spell fields in lowerCamelCase or as in the .proto, "
            "answers use the .proto's names. Limits are the server's (GetInfo.limits). GET routes answer HEAD too.",
        },
        "paths": paths,
        "components": {
            "schemas": {**schemas.components, "Error": ERROR, "ExtractedArticle": EXTRACTED,
                        "LibreTranslateError": LT_ERROR, "DeepLError": DEEPL_ERROR,
                        "TranslateStreamLine": stream_line},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "a token of --auth-tokens-file (none needed without it)"}},
        },
    }  # fmt: skip


@functools.cache
def _document_bytes() -> bytes:
    return json.dumps(openapi(), ensure_ascii=False).encode()


async def openapi_json(request: Request) -> Response:
    """GET /openapi.json: open, as the page is (it holds no data)."""
    return Response(_document_bytes(), media_type=JSON)

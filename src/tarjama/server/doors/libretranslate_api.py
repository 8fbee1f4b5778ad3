"""The LibreTranslate-compatible API on --http-port, for the tools that speak it (Weblate's LibreTranslate
backend, OmegaT's LibreTranslate plugin, `libretranslatepy`, LibreTranslate's own page and many more).

    POST /translate          q (a string, or an array of strings: one answer each, in order), source
                             `ar` or `auto`, target `en`, format `text` or `html`, alternatives, api_key
                             -> {"translatedText": ...} (+ detectedLanguage for auto, alternatives: [])
    POST /detect             q -> [{"confidence": 0-100, "language": "ar"}, ...]
    GET  /languages          [{"code": "ar", "name": "Arabic", "targets": ["en"]}, ...]
    GET  /frontend/settings  what LibreTranslate's page and some clients read on start

Bodies are JSON, application/x-www-form-urlencoded or multipart/form-data, as LibreTranslate takes them
(a form field may also be in the query string: OmegaT's plugin cannot send a key any other way). Each
text is a thin translation onto the one request object: a pb.TranslateRequest (its lines as `paragraphs`,
or `html`) through the servicer, as POST /v1/translate does, so the limits, errors and access lines are
the API's own. Errors are LibreTranslate's shape, {"error": "..."}: 400 for a wrong request or a language
pair this server does not have (never a silent Arabic→English), 403 for a missing or unknown api_key
(when the server has tokens), 413 past --max-message-bytes, 429 when the queue is full, 500, 503, 504.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.parse
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import grpc
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tarjama.v1 import tarjama_pb2 as pb

from ..edges import auth
from ..edges.access_log import log_call, new_record, note
from ..edges.auth import TokenFile
from ..errors import InvalidRequest, Unauthenticated
from ..offload import text_work
from ..request import is_small
from ..runtime import Runtime
from .http_common import body_key, check_unicode, failed_call, query_deadline, read_body, while_connected

T = TypeVar("T")


class Translates(Protocol):
    """What this door needs of the servicer (grpc_api.TranslatorServicer): a protocol, not an import, so that
    the doors' import chain does not grow by this module."""

    async def translate(self, request: pb.TranslateRequest, deadline: float | None) -> pb.TranslateResponse: ...

SOURCE, TARGET = "ar", "en"
NAMES = {"ar": "Arabic", "en": "English"}
PAIR = "this server translates Arabic (ar) to English (en) only"
LANGUAGES = [
    {"code": "ar", "name": "Arabic", "targets": ["en"]},
    # Listed as LibreTranslate lists every language it has: tools (Weblate) look both codes up here.
    {"code": "en", "name": "English", "targets": []},
]
# Letters by script, for /detect and source=auto (the server knows no language but these two).
_LETTER = re.compile(r"[^\W\d_]")
_ARABIC = re.compile(
    r"[\u0620-\u064a\u066e-\u06d3\u06d5\u06fa-\u06fc\u0750-\u077f\u08a0-\u08c9\ufb50-\ufdfb\ufe70-\ufefc]"
)
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f\u1e00-\u1eff]")
# Access-line fields that add up over the texts of an array (each text's servicer call notes its own).
_SUMMED = ("paragraphs", "characters", "tokens_in", "tokens_out")


@dataclass
class Fields:
    """A request's fields as LibreTranslate reads them: JSON values, or a form's (and the query's) strings."""

    values: dict[str, Any]
    form: bool

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def text(self, name: str) -> str | None:
        """A field that must be a string (a form's always is); None when absent or empty."""
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise InvalidRequest(f"Invalid request: {name} must be a string, not {_kind(value)}")
        return value


class LibreTranslateApi:
    """LibreTranslate's routes, over the servicer the gRPC server and /v1/ use."""

    def __init__(self, runtime: Runtime, servicer: Translates, tokens: TokenFile | None) -> None:
        self.runtime = runtime
        self.servicer = servicer
        self.tokens = tokens

    def routes(self) -> list[Route]:
        return [
            Route("/translate", self.translate, methods=["POST"]),
            Route("/detect", self.detect, methods=["POST"]),
            Route("/languages", self.languages, methods=["GET"]),
            Route("/frontend/settings", self.frontend_settings, methods=["GET"]),
        ]

    async def languages(self, request: Request) -> Response:
        """Open, as LibreTranslate's is (libretranslatepy sends its key in a GET body: it is not read)."""
        return JSONResponse(LANGUAGES)

    async def frontend_settings(self, request: Request) -> Response:
        settings = self.runtime.settings
        return JSONResponse(
            {
                "charLimit": settings.max_characters,
                "frontendTimeout": 500,
                "apiKeys": self.tokens is not None,
                "keyRequired": self.tokens is not None,
                "suggestions": False,
                "filesTranslation": False,
                "supportedFilesFormat": [],
                "language": {
                    "source": {"code": SOURCE, "name": NAMES[SOURCE]},
                    "target": {"code": TARGET, "name": NAMES[TARGET]},
                },
            }
        )

    async def translate(self, request: Request) -> Response:
        return await self._call(request, "POST /translate", self._translate)

    async def detect(self, request: Request) -> Response:
        return await self._call(request, "POST /detect", self._detect)

    async def _call(self, request: Request, method: str, work: Any) -> Response:
        """Read, authorise, work, answer: the access line and the in-flight count as /v1/ has them."""
        started, record = time.perf_counter(), new_record()
        with self.runtime.counted():
            try:
                fields = await self._fields(request)
                self._admit(request, fields)
                deadline = query_deadline(request, self.runtime.settings)
                body, size = await while_connected(request, work(fields, deadline))
            except Exception as exc:
                return error_response(*failed_call(self.runtime, method, exc, record, started))
        log_call(self.runtime.observer, method, "OK", record, time.perf_counter() - started)
        return await text_work(is_small(size), JSONResponse, body)  # a large answer is encoded off the loop

    def _admit(self, request: Request, fields: Fields | None, body: bytes = b"") -> None:
        """api_key (in the body or the query, as LibreTranslate reads it), or Tarjama's own bearer token.
        Before the body is parsed (`fields` None) the key is looked for in its bytes (http_common.body_key):
        a caller without a valid one is refused before a full parse is spent on it."""
        if fields is None:
            presented: Any = body_key(body, request.url.query, "api_key")
        else:
            presented = fields.get("api_key")
        if not isinstance(presented, str) or not presented:
            presented = auth.bearer_of(request.headers.get("authorization"))
        try:
            auth.admit_token(self.tokens, presented)
        except Unauthenticated:
            if presented:
                raise Unauthenticated("Invalid API key") from None
            raise Unauthenticated(
                "Invalid request: missing api_key parameter (this server needs a token of its --auth-tokens-file)"
            ) from None

    async def _fields(self, request: Request) -> Fields:
        """The body within --max-message-bytes, as LibreTranslate reads it: JSON when the Content-Type says
        so, else a form (urlencoded or multipart) whose fields may also be in the query string."""
        body = await read_body(request, self.runtime.settings)
        if self.tokens is not None:
            self._admit(request, None, body)
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        query = {key: value for key, value in request.query_params.items() if key != "timeout"}
        if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
            parsed = await text_work(is_small(len(body)), _json_object, body)
            return Fields({**query, **parsed}, form=False)
        limit = self.runtime.settings.max_paragraphs + len(FORM_FIELDS)  # q repeated, and the other fields
        if media == "multipart/form-data":
            pairs = await _multipart(request, body, limit)
        elif media in ("application/x-www-form-urlencoded", ""):
            pairs = await text_work(is_small(len(body)), _urlencoded, body, limit)
        else:
            raise InvalidRequest(
                f"Invalid request: a body of {media[:60]!r}; send JSON, application/x-www-form-urlencoded "
                "or multipart/form-data"
            )
        values: dict[str, Any] = dict(query)
        texts = [value for key, value in pairs if key == "q"]
        values |= {key: value for key, value in reversed(pairs) if key != "q"}  # the first of each, as LT reads
        if texts:
            values["q"] = texts[0] if len(texts) == 1 else texts  # q repeated: an array, as in JSON
        return Fields(values, form=True)

    async def _translate(self, fields: Fields, deadline: float | None) -> tuple[dict[str, Any], int]:
        settings = self.runtime.settings
        texts, batch = _texts(fields.get("q"))
        source = (fields.text("source") or "").lower()
        target = (fields.text("target") or "").lower()
        if not source:
            raise InvalidRequest("Invalid request: missing source parameter")
        if not target:
            raise InvalidRequest("Invalid request: missing target parameter")
        alternatives = _alternatives(fields.get("alternatives"))
        text_format = fields.text("format") or "text"
        if source not in (SOURCE, "auto"):
            raise InvalidRequest(f"{source[:40]} is not supported as a source language: {PAIR}")
        if target != TARGET:
            raise InvalidRequest(f"{target[:40]} is not supported as a target language: {PAIR}")
        if text_format not in ("text", "html"):
            raise InvalidRequest(f"{text_format[:40]} format is not supported: send format text or html")
        if batch:
            _check_batch(texts, settings.max_paragraphs, settings.max_characters)
        detections: list[dict[str, Any]] = []
        if source == "auto":
            for index, text in enumerate(texts):
                found = (await text_work(is_small(len(text)), detected, text))[0] if text.strip() else UNKNOWN
                if text.strip() and found["language"] != SOURCE:
                    where = f"q[{index}]" if batch else "the text"
                    raise InvalidRequest(f"{where} is not Arabic (detected {found['language']}): {PAIR}")
                detections.append(found)
        if text_format == "html":
            # One request per document (each has its own markup), HTML_AT_ONCE at a time: 2,000 requests
            # started together held the event loop, and health, for seconds (found by an attacker).
            results = await _all([self._one(index if batch else None, text, deadline) for index, text in
                                  enumerate(texts)], HTML_AT_ONCE)  # fmt: skip
            translations = [translation for translation, _ in results]
            _note_sums([record for _, record in results])
        else:
            translations = await self._lines(texts, deadline)
        answer: dict[str, Any] = {"translatedText": translations if batch else translations[0]}
        if source == "auto":
            answer["detectedLanguage"] = detections if batch else detections[0]
        if alternatives > 0:  # no alternatives are made, in LibreTranslate's shape (as it does for html)
            answer["alternatives"] = [[] for _ in texts] if batch else []
        return answer, sum(len(translation) for translation in translations) * 4

    async def _lines(self, texts: list[str], deadline: float | None) -> list[str]:
        """Plain texts: every non-blank line of every text as one request's paragraphs (one request's
        work, batched together, as Weblate's arrays are meant), put back text by text in each one's own
        layout; a text with nothing to translate is given back as it came, as LibreTranslate does."""
        layouts = [text.splitlines(keepends=True) for text in texts]
        contents = [[content for content in _contents(lines) if content] for lines in layouts]
        paragraphs = [content for text_contents in contents for content in text_contents]
        if not paragraphs:
            return list(texts)
        most = self.runtime.settings.max_paragraphs
        if len(paragraphs) > most:
            raise InvalidRequest(
                f"Invalid request: q has {len(paragraphs)} lines to translate in all; this server accepts at most "
                f"{most} in one request (--max-paragraphs)"
            )
        answer = await self.servicer.translate(pb.TranslateRequest(paragraphs=paragraphs), deadline)
        english = iter(paragraph.translation for paragraph in answer.paragraphs)
        return [
            _relaid(lines, [next(english) for _ in text_contents]) if text_contents else text
            for text, lines, text_contents in zip(texts, layouts, contents, strict=True)
        ]

    async def _one(self, index: int | None, text: str, deadline: float | None) -> tuple[str, dict[str, Any]]:
        """One HTML text through the servicer, as one request (its own access record, summed by the caller)."""
        record = new_record()  # this task's own (its context is a copy): the texts of an array run together
        if not text.strip():
            return text, record  # nothing to translate: given back, as LibreTranslate does
        try:
            answer = await self.servicer.translate(pb.TranslateRequest(html=text), deadline)
        except InvalidRequest as exc:
            if index is None or type(exc) is not InvalidRequest:
                raise
            raise InvalidRequest(f"q[{index}]: {exc}") from None
        return answer.html, record

    async def _detect(self, fields: Fields, deadline: float | None) -> tuple[list[dict[str, Any]], int]:
        texts, batch = _texts(fields.get("q"))
        if batch:
            _check_batch(texts, self.runtime.settings.max_paragraphs, self.runtime.settings.max_characters)
        elif len(texts[0]) > self.runtime.settings.max_characters:
            raise InvalidRequest(
                f"Invalid request: q has {len(texts[0])} characters; this server accepts at most "
                f"{self.runtime.settings.max_characters} (--max-characters)"
            )
        joined = "\n".join(texts)
        note(characters=len(joined))
        return await text_work(is_small(len(joined)), detected, joined), 0


HTML_AT_ONCE = 8  # HTML texts of one array translated at once (each is its own request)
# The fields a form may carry besides repeated q's (the multipart parser's field cap counts them).
FORM_FIELDS = ("source", "target", "format", "alternatives", "api_key", "secret")
# What LibreTranslate answers for a text with nothing to detect.
UNKNOWN: dict[str, Any] = {"confidence": 0.0, "language": "en"}


def error_response(status: int, code: grpc.StatusCode, message: str) -> JSONResponse:
    """LibreTranslate's error shape. It answers 403 for a key it does not know (never 401), and prefixes
    its 429s with "Slowdown:"."""
    if code == grpc.StatusCode.UNAUTHENTICATED:
        status = 403
    if status == 429:
        message = f"Slowdown: {message}"
    return JSONResponse({"error": message}, status_code=status)


def detected(text: str) -> list[dict[str, Any]]:
    """LibreTranslate's detections among the languages this server has: each a share of the letters, in
    percent, the likeliest first; nothing to go on is English at confidence 0, as LibreTranslate says."""
    found_letters = _LETTER.findall(text)
    letters = len(found_letters)
    if not letters:
        return [dict(UNKNOWN)]
    letters_only = "".join(found_letters)  # a script's share counts its letters only (never over 100%)
    shares = {"ar": len(_ARABIC.findall(letters_only)), "en": len(_LATIN.findall(letters_only))}
    found = [{"confidence": round(100 * count / letters, 1), "language": code} for code, count in shares.items()
             if count]  # fmt: skip
    return sorted(found, key=lambda item: -item["confidence"]) or [dict(UNKNOWN)]


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body.decode("utf-8"))  # UTF-8 only: json.loads would guess UTF-16 from a BOM
    except UnicodeDecodeError:
        raise InvalidRequest("Invalid JSON format: the body is not UTF-8") from None
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest(f"Invalid JSON format: {str(exc)[:200]}") from None
    if not isinstance(parsed, dict):
        raise InvalidRequest("Invalid JSON format: send a JSON object")
    check_unicode(parsed)
    return parsed


def _urlencoded(body: bytes, limit: int) -> list[tuple[str, str]]:
    try:
        text = body.decode("utf-8")
        return urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=False, max_num_fields=limit,
                                      errors="strict")  # fmt: skip
    except UnicodeDecodeError:
        raise InvalidRequest("Invalid request: the form is not UTF-8") from None
    except ValueError:
        raise InvalidRequest(f"Invalid request: the form has more than {limit} fields") from None


async def _multipart(request: Request, body: bytes, limit: int) -> list[tuple[str, str]]:
    """A multipart form, parsed by Starlette from the body already read (and bounded); files refused."""

    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=0, max_fields=limit)
    except (MultiPartException, HTTPException) as exc:
        detail = getattr(exc, "detail", None) or getattr(exc, "message", "")
        raise InvalidRequest(f"Invalid request: the multipart form cannot be read ({str(detail)[:200]})") from None
    pairs: list[tuple[str, str]] = []
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):  # max_files=0 refuses them; never read one as text
            raise InvalidRequest("Invalid request: files are not accepted here: send q as a form field")
        pairs.append((key, value))
    return pairs


def _texts(q: Any) -> tuple[list[str], bool]:
    """q as LibreTranslate takes it: a string, or an array of strings (a batch, answered as one)."""
    if q is None or q == "" or q == []:
        raise InvalidRequest("Invalid request: missing q parameter")
    if isinstance(q, str):
        return [q], False
    if not isinstance(q, list):
        raise InvalidRequest(f"Invalid request: q must be a string or an array of strings, not {_kind(q)}")
    for index, item in enumerate(q):
        if not isinstance(item, str):
            raise InvalidRequest(f"Invalid request: q[{index}] must be a string, not {_kind(item)}")
    return q, True


def _check_batch(texts: list[str], max_texts: int, max_characters: int) -> None:
    """An array is one request's work: at most --max-paragraphs texts, --max-characters in all."""
    if len(texts) > max_texts:
        raise InvalidRequest(
            f"Invalid request: q has {len(texts)} texts; this server accepts at most {max_texts} in one request "
            "(--max-paragraphs)"
        )
    characters = sum(map(len, texts))
    if characters > max_characters:
        raise InvalidRequest(
            f"Invalid request: q has {characters} characters in all; this server accepts at most {max_characters} "
            "in one request (--max-characters)"
        )


def _alternatives(value: Any) -> int:
    if value is None or value == "":
        return 0
    try:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError
        return max(0, int(value))
    except (TypeError, ValueError, OverflowError):
        raise InvalidRequest("Invalid request: alternatives parameter is not a number") from None


def _contents(lines: list[str]) -> list[str]:
    """Each line without its line break; a blank one as "" (not sent: the server ignores blank lines)."""
    return [content if content.strip() else "" for content in (_content(line) for line in lines)]


def _content(line: str) -> str:
    return line.splitlines()[0] if line.splitlines() else ""


def _relaid(lines: list[str], translations: list[str]) -> str:
    """The translations in the text's own layout: each non-blank line replaced by its translation, blank
    lines and line breaks kept as they came."""
    contents = _contents(lines)
    if sum(map(bool, contents)) != len(translations):  # never expected: the server answers each paragraph
        return "\n".join(translations)
    given = iter(translations)
    return "".join((next(given) + line[len(_content(line)):]) if content else line
                   for line, content in zip(lines, contents, strict=True))  # fmt: skip


async def _all(works: list[Coroutine[Any, Any, T]], at_once: int) -> list[T]:
    """Every work, `at_once` at a time, answers in order; the first failure cancels the rest (as does a
    client gone)."""
    gate = asyncio.Semaphore(at_once)

    async def gated(work: Coroutine[Any, Any, T]) -> T:
        try:
            async with gate:
                return await work
        finally:
            work.close()  # one cancelled before its turn was never started: closed, not left unawaited

    tasks = [asyncio.ensure_future(gated(work)) for work in works]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _note_sums(records: list[dict[str, Any]]) -> None:
    """The access line of an array: its texts' paragraphs, characters and tokens added up."""
    sums: dict[str, Any] = {}
    for record in records:
        for key, value in record.items():
            if key in _SUMMED and isinstance(value, (int, float)):
                sums[key] = sums.get(key, 0) + value
            elif key == "queue_ms" and isinstance(value, (int, float)):
                sums[key] = max(sums.get(key, 0), value)
            elif key == "model":
                sums.setdefault(key, value)
    note(**sums)


def _kind(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", dict: "an object", list: "an array",
             str: "a string", type(None): "null"}  # fmt: skip
    return names.get(type(value), type(value).__name__)

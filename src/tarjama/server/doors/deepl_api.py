"""The DeepL-compatible API on --http-port: DeepL's v2 routes, each a thin translation onto the servicer.

Tools that speak DeepL (its Python and Node clients with a server URL, Weblate's DeepL backend) work
unmodified against Tarjama. Each route reads DeepL's parameters (a form or a JSON body, and the query
string, as DeepL reads them), makes the one request object Tarjama's own doors make, and answers in
DeepL's shape:

    POST /v2/translate                     text (repeated, or a JSON array) -> {"translations": [...]}, in order
    GET|POST /v2/languages?type=source|target, GET|POST /v2/usage
    POST|GET /v2/glossaries, GET|DELETE /v2/glossaries/{id}, GET /v2/glossaries/{id}/entries (TSV),
    GET /v2/glossary-language-pairs       the stored glossaries (the v2 routes deepl.Translator calls)

What it maps, and why:
- One pair: `source_lang` AR or absent (nothing is detected: `detected_source_language` is AR, and a text
  without Arabic letters comes back as it is), `target_lang` EN, EN-US or EN-GB (any case). Any other
  language is a 400 naming the pair, never a silent Arabic->English.
- Text: each element of `text` is split at its line breaks (blank lines and the whitespace around each line
  kept as they are), and all the lines of all the elements go to the servicer as one request's paragraphs:
  one batch, put back element by element. `split_sentences=nonewlines` joins an element's lines first;
  `0` is accepted, but the model still translates sentence by sentence (a whole article as one sentence
  would be cut at the model's cap).
- Markup: `tag_handling=html` sends each element as the request's `html`. `xml` does the same: what DeepL's
  clients send as xml is inline markup in text (Weblate's `<x id="3"></x>` placeholders, OmegaT's `<b0>`),
  which libxml2's HTML parser keeps in place; the differences from an XML parser (tag names lowercased,
  `<t/>` written back as `<t></t>`) are in the README. The other tag options are accepted and ignored.
- `formality` (English has none: DeepL lists EN-GB and EN-US without formality), `context`,
  `preserve_formatting` and `show_billed_characters` are accepted; `glossary_id` is `options.glossary_id`;
  `model_type` picks among the server's named models (`quality_optimized`: the model named `best`,
  `latency_optimized`: `fast`, `prefer_quality_optimized`: `best` when there is one, else the default).
- Limits: at most --max-paragraphs elements in `text`, their characters at most --max-characters in all,
  each stated in the error; the body within --max-message-bytes (413).
- Usage: `character_count` is the characters (Python's, code points; markup and white space included) of
  the `text` this caller's token had translated through /v2/translate since this server started (each
  replica counts its own); `character_limit` is 10¹², what DeepL answers for an account without a limit.
- Auth: `Authorization: DeepL-Auth-Key <token>` (or Tarjama's `Bearer <token>`, or the `auth_key` field old
  clients send) against the tokens file; writing glossaries needs a token with the `glossaries` right.
- Errors: `{"message": "..."}` with DeepL's statuses: 400, 403 (no token, an unknown one, or a right the
  token has not got), 404, 413, 429 (the queue is full: DeepL's clients retry with backoff), 456 (only for
  --max-glossaries reached: DeepL's "quota exceeded"; Tarjama counts no characters against a quota), 500,
  503 (loading, draining, or the glossary database unreachable), 504 (`?timeout=`).
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tarjama.interchange.glossary_files import EntriesFileError, parse_entries
from tarjama.v1 import tarjama_pb2 as pb

from ..edges import auth
from ..edges.access_log import log_call, new_record, note
from ..edges.auth import TokenFile
from ..errors import InvalidRequest, QuotaExceeded
from ..offload import text_work
from ..request import is_small
from ..runtime import Runtime
from ..settings import Settings
from .http_common import body_key, check_unicode, failed_call, query_deadline, read_body, while_connected
from .openapi import MODEL_TYPES

SOURCE = "AR"
TARGETS = {"EN": "EN", "EN-US": "EN-US", "EN-GB": "EN-GB"}
SOURCE_LANGUAGES = [{"language": "AR", "name": "Arabic"}]
TARGET_LANGUAGES = [
    {"language": "EN-GB", "name": "English (British)", "supports_formality": False},
    {"language": "EN-US", "name": "English (American)", "supports_formality": False},
]
FORMALITIES = ("default", "more", "less", "prefer_more", "prefer_less")
SPLITS = ("0", "1", "nonewlines")
# What DeepL answers as character_limit for an account without one.
NO_LIMIT = 10**12
# HTML elements translated at once for one /v2/translate: each is a request of its own, and together
# they feed the batcher, without a list of thousands holding the loop with their parsing.
HTML_AT_ONCE = 8
AUTH_HOW = "'Authorization: DeepL-Auth-Key <token>'"
LINE_BREAK = re.compile(r"(\r\n|\r|\n)")

Params = dict[str, list[Any]]


class Servicer(Protocol):
    """The servicer methods these routes call (doors/grpc_api.py's TranslatorServicer), in-process."""

    async def translate(self, request: pb.TranslateRequest, deadline: float | None) -> pb.TranslateResponse: ...
    async def create_glossary(self, request: pb.CreateGlossaryRequest) -> pb.Glossary: ...
    async def list_glossaries(self, request: pb.ListGlossariesRequest) -> pb.ListGlossariesResponse: ...
    async def get_glossary(self, request: pb.GetGlossaryRequest) -> pb.Glossary: ...
    async def delete_glossary(self, request: pb.DeleteGlossaryRequest) -> pb.DeleteGlossaryResponse: ...


Work = Callable[[Params, float | None, Request], Awaitable[Response]]


class DeepLApi:
    """DeepL's v2 routes over the servicer the gRPC server uses."""

    def __init__(self, runtime: Runtime, servicer: Servicer, tokens: TokenFile | None) -> None:
        self.runtime = runtime
        self.servicer = servicer
        self.tokens = tokens
        # Characters translated per token name since start (GET /v2/usage); "" without tokens.
        self.characters: collections.Counter[str] = collections.Counter()

    def routes(self) -> list[Route]:
        def route(path: str, methods: list[str], work: Work) -> Route:
            async def endpoint(request: Request) -> Response:
                return await self._call(request, f"{request.method} {path}", work)

            return Route(path, endpoint, methods=methods)

        return [
            route("/v2/translate", ["POST"], self._translate),
            route("/v2/languages", ["GET", "POST"], self._languages),
            route("/v2/usage", ["GET", "POST"], self._usage),
            route("/v2/glossary-language-pairs", ["GET"], self._pairs),
            route("/v2/glossaries", ["GET", "POST"], self._glossaries),
            route("/v2/glossaries/{glossary_id}", ["GET", "DELETE"], self._glossary),
            route("/v2/glossaries/{glossary_id}/entries", ["GET"], self._entries),
        ]

    async def _call(self, request: Request, method: str, work: Work) -> Response:
        """Authorise, read the parameters, do the work, answer: the access line and the in-flight count as
        Tarjama's own routes have them; errors in DeepL's shape."""
        started, record = time.perf_counter(), new_record()
        settings = self.runtime.settings
        with self.runtime.counted():
            try:
                header = request.headers.get("authorization")
                if header is not None or self.tokens is None:  # a token in the header: checked before the body
                    auth.admit_token(self.tokens, presented_token(header), AUTH_HOW)
                body = await read_body(request, settings)
                if header is None and self.tokens is not None:  # refused before a full parse if it has none
                    auth.admit_token(self.tokens, body_key(body, request.url.query, "auth_key"), AUTH_HOW)
                kind = request.headers.get("content-type", "")
                params = await text_work(is_small(len(body)), read_params, body, kind, request.url.query)
                if header is None and self.tokens is not None:  # old clients: auth_key in the form or query
                    key = single(params, "auth_key")  # not a string (a JSON list, a number): no key
                    auth.admit_token(self.tokens, key if isinstance(key, str) else None, AUTH_HOW)
                deadline = query_deadline(request, settings)
                answer = await while_connected(request, work(params, deadline, request))
            except Exception as exc:
                status, _, message = failed_call(self.runtime, method, exc, record, started)
                return deepl_error(exc, status, message)
        log_call(self.runtime.observer, method, "OK", record, time.perf_counter() - started)
        return answer

    # -- translation -------------------------------------------------------------------------------

    async def _translate(self, params: Params, deadline: float | None, request: Request) -> Response:
        settings = self.runtime.settings
        texts = texts_of(params, settings)
        target = target_of(params)
        source_of(params)
        tags = choice(params, "tag_handling", ("html", "xml"))
        split = choice(params, "split_sentences", SPLITS)
        choice(params, "formality", FORMALITIES)
        string(params, "context")
        for name in ("preserve_formatting", "show_billed_characters", "outline_detection"):
            flag(params, name)
        model, used = model_for(choice(params, "model_type", MODEL_TYPES), settings)
        options = pb.TranslateOptions(model=model, glossary_id=string(params, "glossary_id") or "")
        if tags is not None:
            english = await self._html(texts, options, deadline)
        else:
            english = await self._text(texts, options, deadline, nonewlines=split == "nonewlines")
        counted = [len(text) for text in texts]
        self.characters[auth.caller.get()] += sum(counted)
        note(paragraphs=len(texts), characters=sum(counted), target=target)
        billed = flag(params, "show_billed_characters")
        translations = []
        for text, characters in zip(english, counted, strict=True):
            answer: dict[str, Any] = {"detected_source_language": SOURCE, "text": text}
            if billed:
                answer["billed_characters"] = characters
            if used is not None:
                answer["model_type_used"] = used
            translations.append(answer)
        return await text_work(is_small(sum(counted)), JSONResponse, {"translations": translations})

    async def _text(
        self, texts: list[str], options: pb.TranslateOptions, deadline: float | None, nonewlines: bool
    ) -> list[str]:
        """Every line of every text as one request's paragraphs (one batch), put back text by text."""
        paragraphs, layouts = await text_work(is_small(sum(map(len, texts))), lines_of, texts, nonewlines)
        if not paragraphs:  # only blank texts: nothing to translate, each comes back as it was
            return list(texts)
        message = pb.TranslateRequest(paragraphs=paragraphs, options=options)
        response = await self.servicer.translate(message, deadline)
        english = [""] * len(paragraphs)
        for paragraph in response.paragraphs:
            english[paragraph.index] = paragraph.translation
        return ["".join(english[part] if isinstance(part, int) else part for part in layout) for layout in layouts]

    async def _html(self, texts: list[str], options: pb.TranslateOptions, deadline: float | None) -> list[str]:
        """Each text as a request's html (its markup kept in place), HTML_AT_ONCE at a time."""
        gate = asyncio.Semaphore(HTML_AT_ONCE)

        async def one(text: str) -> str:
            if not text.strip():
                return text
            async with gate:
                response = await self.servicer.translate(pb.TranslateRequest(html=text, options=options), deadline)
            return response.html

        tasks = [asyncio.ensure_future(one(text)) for text in texts]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:  # one failed (or the client left): the others stop too
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    # -- languages and usage -----------------------------------------------------------------------

    async def _languages(self, params: Params, deadline: float | None, request: Request) -> Response:
        kind = choice(params, "type", ("source", "target")) or "source"
        return JSONResponse(SOURCE_LANGUAGES if kind == "source" else TARGET_LANGUAGES)

    async def _usage(self, params: Params, deadline: float | None, request: Request) -> Response:
        return JSONResponse({"character_count": self.characters[auth.caller.get()], "character_limit": NO_LIMIT})

    async def _pairs(self, params: Params, deadline: float | None, request: Request) -> Response:
        return JSONResponse({"supported_languages": [{"source_lang": "ar", "target_lang": "en"}]})

    # -- stored glossaries -------------------------------------------------------------------------

    async def _glossaries(self, params: Params, deadline: float | None, request: Request) -> Response:
        if request.method == "GET":
            found = await self.servicer.list_glossaries(pb.ListGlossariesRequest())
            return JSONResponse({"glossaries": [glossary_json(glossary) for glossary in found.glossaries]})
        name = string(params, "name")
        if not name or not name.strip():
            raise InvalidRequest("Parameter 'name' not specified: a glossary needs a name")
        glossary_pair(string(params, "source_lang"), string(params, "target_lang"))
        entries = string(params, "entries")
        if entries is None:
            raise InvalidRequest("Parameter 'entries' not specified: the glossary's entries, as TSV or CSV")
        form = choice(params, "entries_format", ("tsv", "csv")) or "tsv"
        settings = self.runtime.settings
        pairs = await text_work(is_small(len(entries)), entries_of, entries, form, settings.max_glossary_terms)
        message = pb.CreateGlossaryRequest(
            name=name,
            entries=[pb.GlossaryEntry(source=source, target=target) for source, target in pairs],
            source_lang="ar",
            target_lang="en",
        )
        created = await self.servicer.create_glossary(message)
        return JSONResponse(glossary_json(created), status_code=201)

    async def _glossary(self, params: Params, deadline: float | None, request: Request) -> Response:
        glossary_id = request.path_params["glossary_id"]
        if request.method == "DELETE":
            await self.servicer.delete_glossary(pb.DeleteGlossaryRequest(glossary_id=glossary_id))
            return Response(status_code=204)
        found = await self.servicer.get_glossary(pb.GetGlossaryRequest(glossary_id=glossary_id))
        return JSONResponse(glossary_json(found))

    async def _entries(self, params: Params, deadline: float | None, request: Request) -> Response:
        message = pb.GetGlossaryRequest(glossary_id=request.path_params["glossary_id"], include_entries=True)
        found = await self.servicer.get_glossary(message)
        tsv = "\n".join(f"{entry.source}\t{entry.target}" for entry in found.entries)
        return Response(tsv, media_type="text/tab-separated-values; charset=utf-8")


def presented_token(header: str | None) -> str | None:
    """The token of an `Authorization` header: DeepL's `DeepL-Auth-Key <token>` or Tarjama's `Bearer`."""
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() in ("deepl-auth-key", "bearer"):
        return token.strip() or None
    return None


def deepl_error(exc: Exception, status: int, message: str) -> JSONResponse:
    """DeepL's error shape and statuses: a bad or missing key is its 403, a store at its limit its 456."""
    if isinstance(exc, QuotaExceeded):
        status = 456
    elif status == 401:
        status = 403
    return JSONResponse({"message": message}, status_code=status)


def read_params(body: bytes, content_type: str, query: str) -> Params:
    """The query string's parameters, then the body's (a JSON object, or a form), each name with its values
    in order: a form repeats `text`, JSON gives it as an array."""
    params: Params = collections.defaultdict(list)
    for name, value in parse_form(query.encode(), "the query string"):
        params[name].append(value)
    media = content_type.split(";", 1)[0].strip().lower()
    if (media == "application/json" or (not media and body.lstrip()[:1] == b"{")) and body.strip():
        try:
            document = json.loads(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidRequest("the body is not UTF-8") from None
        except (ValueError, RecursionError):
            raise InvalidRequest("the body is not JSON (send a JSON object, or a form)") from None
        if not isinstance(document, dict):
            raise InvalidRequest("the body is not a JSON object")
        check_unicode(document)
        for name, value in document.items():
            if name == "text" and isinstance(value, list):
                params[name].extend(value)
            else:
                params[name].append(value)
    elif media == "multipart/form-data":
        raise InvalidRequest("send the parameters as application/x-www-form-urlencoded or JSON, not multipart")
    elif body:
        for name, value in parse_form(body, "the form"):
            params[name].append(value)
    return dict(params)


def parse_form(data: bytes, what: str) -> list[tuple[str, str]]:
    try:
        return urllib.parse.parse_qsl(data.decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeError:
        raise InvalidRequest(f"{what} is not UTF-8 (percent-escapes included)") from None


def single(params: Params, name: str) -> Any:
    """A parameter's value (the last, if sent more than once); None when absent."""
    values = params.get(name)
    return values[-1] if values else None


def string(params: Params, name: str) -> str | None:
    value = single(params, name)
    if value is not None and not isinstance(value, str):
        raise InvalidRequest(f"Parameter '{name}' must be a string")
    return value


def choice(params: Params, name: str, allowed: Sequence[str]) -> str | None:
    """A parameter that takes one of `allowed` (any case), or None when absent or empty."""
    value = single(params, name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # split_sentences: 0 or 1 as a JSON number
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value.lower() not in allowed:
        shown = value[:40] if isinstance(value, str) else type(value).__name__
        raise InvalidRequest(f"Value for '{name}' not supported: {shown!r} (one of {', '.join(allowed)})")
    return value.lower()


def flag(params: Params, name: str) -> bool | None:
    """A boolean parameter: true/false in JSON, 1/0 (or true/false) in a form; None when absent."""
    value = single(params, name)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("0", "1", "true", "false"):
        return value.lower() in ("1", "true")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise InvalidRequest(f"Parameter '{name}' must be 0 or 1 (or true or false)")


def texts_of(params: Params, settings: Settings) -> list[str]:
    """`text`: at least one string, at most --max-paragraphs of them, --max-characters in all."""
    texts = params.get("text") or []
    if not texts:
        raise InvalidRequest("Parameter 'text' not specified: send the Arabic text (repeat it, or a JSON array)")
    if len(texts) > settings.max_paragraphs:
        raise InvalidRequest(
            f"Parameter 'text' has {len(texts)} elements; this server accepts at most {settings.max_paragraphs} "
            "(--max-paragraphs)"
        )
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidRequest(f"Parameter 'text': element {i} is not a string")
    characters = sum(map(len, texts))
    if characters > settings.max_characters:
        raise InvalidRequest(
            f"Parameter 'text' has {characters} characters in all; this server accepts at most "
            f"{settings.max_characters} (--max-characters)"
        )
    return texts


def not_our_pair(what: str, value: str) -> InvalidRequest:
    return InvalidRequest(
        f"Value for '{what}' not supported: {value[:40]!r}. This server translates Arabic (source_lang AR) "
        "into English (target_lang EN, EN-US or EN-GB) only"
    )


def target_of(params: Params) -> str:
    target = string(params, "target_lang")
    if not target:
        raise InvalidRequest("Parameter 'target_lang' not specified: EN, EN-US or EN-GB")
    found = TARGETS.get(target.strip().upper())
    if found is None:
        raise not_our_pair("target_lang", target)
    return found


def source_of(params: Params) -> None:
    source = string(params, "source_lang")
    if source and source.strip().upper() != SOURCE:
        raise not_our_pair("source_lang", source)


def model_for(model_type: str | None, settings: Settings) -> tuple[str, str | None]:
    """`model_type` as one of the server's named models: (options.model, model_type_used). The model named
    `best` counts as DeepL's quality_optimized, any other as latency_optimized."""
    names = [model.name for model in settings.translation_models()]
    if model_type is None:
        return "", None
    if model_type == "latency_optimized":
        chosen = "fast" if "fast" in names else names[0]
    elif "best" in names:
        chosen = "best"
    elif model_type == "quality_optimized":
        raise InvalidRequest(
            f"model_type quality_optimized needs a model named 'best'; this server's models are {', '.join(names)} "
            "(prefer_quality_optimized falls back to the default)"
        )
    else:
        chosen = names[0]
    return chosen, "quality_optimized" if chosen == "best" else "latency_optimized"


def lines_of(texts: list[str], nonewlines: bool) -> tuple[list[str], list[list[str | int]]]:
    """Each text's non-blank lines as paragraphs, and how to put each text back: its pieces in order,
    the text kept as it is (line breaks, blank lines, the white space around a line), an int where the
    English of that paragraph goes."""
    paragraphs: list[str] = []
    layouts: list[list[str | int]] = []
    for text in texts:
        layout: list[str | int] = []
        parts = [LINE_BREAK.sub(" ", text)] if nonewlines else LINE_BREAK.split(text)
        for part in parts:
            content = part.strip()
            if not content:
                layout.append(part)
                continue
            lead = part[: len(part) - len(part.lstrip())]
            trail = part[len(part.rstrip()) :]
            layout += [lead, len(paragraphs), trail]
            paragraphs.append(content)
        layouts.append(layout)
    return paragraphs, layouts


def glossary_pair(source: str | None, target: str | None) -> None:
    """A glossary's languages: ar and en (any case; EN-US or EN-GB as en, as DeepL's clients strip them)."""
    if not source:
        raise InvalidRequest("Parameter 'source_lang' not specified: ar")
    if not target:
        raise InvalidRequest("Parameter 'target_lang' not specified: en")
    if source.strip().upper() != SOURCE:
        raise not_our_pair("source_lang", source)
    if target.strip().upper() not in TARGETS:
        raise not_our_pair("target_lang", target)


def entries_of(entries: str, form: str, most: int) -> list[tuple[str, str]]:
    """DeepL's glossary entries: TSV (`source<TAB>target` a line) or CSV (`source,target` and optionally
    `,ar,en`), blank lines skipped, as the CLI reads a glossary file (interchange/glossary_files.py);
    what the entries must be is the servicer's check."""
    try:
        found = parse_entries(entries, form, most)
    except EntriesFileError as exc:
        raise InvalidRequest(f"entries: {exc}") from None
    if not found:
        raise InvalidRequest("entries: no entries (one 'source<TAB>target' a line, or CSV with entries_format csv)")
    return found


def glossary_json(glossary: pb.Glossary) -> dict[str, Any]:
    """A stored glossary as DeepL's v2 API describes one (its entries are GET .../entries)."""
    return {
        "glossary_id": glossary.glossary_id,
        "name": glossary.name,
        "ready": True,  # stored before it is acknowledged: usable at once
        "source_lang": glossary.source_lang or "ar",
        "target_lang": glossary.target_lang or "en",
        "creation_time": glossary.creation_time,
        "entry_count": glossary.entry_count,
    }

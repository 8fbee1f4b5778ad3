"""`--http-port`: the API over HTTP with JSON, and the reading page for editors (Starlette on uvicorn).

It runs on the server's event loop beside gRPC and calls the same servicer methods in-process, so
the answers, limits and error messages are the gRPC ones. The same tokens (`Authorization: Bearer`)
guard it; the health check and the page itself (which holds no data) are open.

    POST /v1/translate           TranslateRequest (proto3 JSON) -> TranslateResponse, the shape of
                                 `tarjama translate --format json`
    POST /v1/translate:stream    the same request -> one TranslateStreamResponse per line (NDJSON),
                                 paragraphs as they are done
    POST /v1/segment, /v1/summarize
    POST /v1/export?format=xliff|tmx   a TranslateResponse (JSON) -> XLIFF 2.0 or TMX
    POST /v1/extract             {"html": a saved news page} -> its article and what was dropped
    GET  /healthz                200 SERVING, or 503 while the models load or the server drains
    GET  /                       the reading page (and /static/...)

`?timeout=SECONDS` sets a deadline, as a gRPC deadline does. Errors are
{"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "..."}} with the HTTP status below.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import uvicorn
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tarjama.interchange.exports import ExportError, ExportLimits, check_export, render_tmx, render_xliff
from tarjama.interchange.messages import to_dict
from tarjama.v1 import tarjama_pb2 as pb

from ..edges import auth
from ..edges.access_log import log_call, new_record
from ..edges.auth import TokenFile
from ..edges.http_guard import ACCEPT_BATCH, BrowserGuard, HttpLimits, guarded_protocol
from ..errors import (
    InvalidRequest,
    StartupError,
    Unauthenticated,
    http_status_for,
)
from ..markup.extraction import extract
from ..offload import text_work
from ..request import is_small
from ..runtime import Runtime
from ..validation import check_article_size
from .deepl_api import DeepLApi
from .grpc_api import TranslatorServicer
from .http_common import failed_call, query_deadline, read_body, while_connected
from .libretranslate_api import LibreTranslateApi
from .openapi import openapi_json

log = logging.getLogger("tarjama.http")

STATIC = Path(__file__).resolve().parent.parent / "static"
def error_response(status: int, code: grpc.StatusCode, message: str) -> JSONResponse:
    """The API's error shape: the HTTP status, the gRPC code's name and the message (errors.py)."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(status, code, message), status_code=status, headers=headers)


def error_body(status: int, code: grpc.StatusCode, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "status": code.name, "message": message}}


class HttpApi:
    """The routes, over the servicer the gRPC server uses."""

    def __init__(self, runtime: Runtime, servicer: TranslatorServicer, tokens: TokenFile | None) -> None:
        self.runtime = runtime
        self.servicer = servicer
        self.tokens = tokens

    def app(self) -> Starlette:
        app = Starlette(
            middleware=[Middleware(PrivateHeaders), *self._browser_guard()],
            routes=[
                Route("/", self.page),
                Route("/favicon.ico", self.favicon),
                Route("/healthz", self.healthz),
                Route("/openapi.json", openapi_json),
                Route("/v1/translate", self.translate, methods=["POST"]),
                Route("/v1/translate:stream", self.translate_stream, methods=["POST"]),
                Route("/v1/segment", self.segment, methods=["POST"]),
                Route("/v1/summarize", self.summarize, methods=["POST"]),
                Route("/v1/export", self.export, methods=["POST"]),
                Route("/v1/extract", self.extract, methods=["POST"]),
                Route("/v1/info", self.info, methods=["POST"]),
                *self._glossary_routes(),
                *DeepLApi(self.runtime, self.servicer, self.tokens).routes(),  # /v2/: the DeepL-compatible API
                *LibreTranslateApi(self.runtime, self.servicer, self.tokens).routes(),  # LibreTranslate's
                Mount("/static", StaticFiles(directory=STATIC), name="static"),
            ],
            exception_handlers={HTTPException: routing_error},
        )
        # /v1/translate/ is a 404, not a 307 to a Location built from the Host header the client sent.
        app.router.redirect_slashes = False
        return app

    def _browser_guard(self) -> list[Middleware]:
        """Without tokens, the checks that keep other sites' pages out (see http_guard.BrowserGuard)."""
        if self.tokens is not None:
            return []
        settings = self.runtime.settings
        names = [settings.host, *settings.http_allowed_hosts.split(",")]
        return [Middleware(BrowserGuard, allowed_hosts=names)]

    async def page(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def favicon(self, request: Request) -> Response:
        """Browsers ask for /favicon.ico whatever the page says: the page's icon, not a 404 in every log."""
        icon = STATIC / "favicon.svg"
        return FileResponse(icon, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

    async def healthz(self, request: Request) -> Response:
        serving = self.runtime.models is not None and not self.runtime.shutting_down
        status = "SERVING" if serving else "NOT_SERVING"
        return Response(status + "\n", status_code=200 if serving else 503, media_type="text/plain")

    async def translate(self, request: Request) -> Response:
        async def call(message: Any, deadline: float | None) -> Any:
            return await self.servicer.translate(message, deadline)

        return await self._unary(request, "POST /v1/translate", pb.TranslateRequest, call)

    async def segment(self, request: Request) -> Response:
        async def call(message: Any, deadline: float | None) -> Any:
            return await self.servicer.segment(message)

        return await self._unary(request, "POST /v1/segment", pb.SegmentRequest, call)

    async def info(self, request: Request) -> Response:
        async def call(message: Any, deadline: float | None) -> Any:
            return self.servicer.info(message)

        return await self._unary(request, "POST /v1/info", pb.GetInfoRequest, call)

    def _glossary_routes(self) -> list[Route]:
        """POST /v1/glossaries:create|list|get|delete: the gRPC glossary calls, proto3 JSON in and out."""
        calls = {
            "create": (pb.CreateGlossaryRequest, "create_glossary"),
            "list": (pb.ListGlossariesRequest, "list_glossaries"),
            "get": (pb.GetGlossaryRequest, "get_glossary"),
            "delete": (pb.DeleteGlossaryRequest, "delete_glossary"),
        }

        def route(action: str, message_class: type, method: str) -> Route:
            path = f"/v1/glossaries:{action}"

            async def endpoint(request: Request) -> Response:
                async def call(message: Any, deadline: float | None) -> Any:
                    return await getattr(self.servicer, method)(message)

                return await self._unary(request, f"POST {path}", message_class, call)

            return Route(path, endpoint, methods=["POST"])

        return [route(action, *call) for action, call in calls.items()]

    async def summarize(self, request: Request) -> Response:
        return await self._unary(request, "POST /v1/summarize", pb.SummarizeRequest, self.servicer.summarize)

    async def export(self, request: Request) -> Response:
        renderers = {"xliff": (render_xliff, "application/xliff+xml"), "tmx": (render_tmx, "application/x-tmx+xml")}
        chosen = renderers.get(request.query_params.get("format", ""))

        settings = self.runtime.settings
        limits = ExportLimits(settings.max_paragraphs, settings.max_characters, settings.max_id_characters)

        async def call(message: Any, deadline: float | None) -> Any:
            if chosen is None:
                raise InvalidRequest(f"format must be one of {', '.join(renderers)}")
            small = is_small(message.ByteSize())  # a large one is checked and written off the loop
            return Response(await text_work(small, exported, message, chosen[0], limits), media_type=chosen[1])

        return await self._unary(request, "POST /v1/export", pb.TranslateResponse, call)

    async def extract(self, request: Request) -> Response:
        """{"html": a saved page} -> its article (title, author, date, paragraphs) and what was dropped."""

        async def call(page: str, deadline: float | None) -> Any:
            article = await extract(page, deadline)  # in its own process and lane, as options.extract_article
            check_article_size(article.paragraphs, self.runtime.settings)  # what Translate would refuse
            fields = {"title": article.title, "author": article.author, "date": article.date}
            body = {**fields, "paragraphs": article.paragraphs, "dropped": article.dropped}
            return await text_work(False, JSONResponse, body)  # up to the page's size: off the loop

        return await self._unary(request, "POST /v1/extract", page_of, call)

    async def translate_stream(self, request: Request) -> Response:
        method = "POST /v1/translate:stream"
        started, record = time.perf_counter(), new_record()
        try:
            self._authorise(request)
            message = await self._message(request, pb.TranslateRequest)
            messages = self.servicer.translate_stream(message, self._deadline(request))
            held = contextlib.ExitStack()  # the call counts as in flight until its last line is sent: lines()
            held.enter_context(self.runtime.counted())
            try:
                # Errors before the first paragraph get their own status; a client that leaves before
                # it is noticed here (after it, StreamingResponse watches for the disconnect).
                first = await while_connected(request, anext(messages))
            except BaseException:
                held.close()
                raise
        except Exception as exc:
            return self._failed(method, exc, record, started)

        async def lines() -> AsyncIterator[bytes]:
            code = "OK"
            try:
                yield _json_line(first)
                async for message in messages:
                    yield _json_line(message)
            except Exception as exc:  # after the first line the status is sent: the error is the last line
                status, grpc_code, text = http_status_for(exc)
                yield (json.dumps(error_body(status, grpc_code, text)) + "\n").encode()
                code = grpc_code.name
            except asyncio.CancelledError:
                code = "CANCELLED"
                raise
            finally:
                await messages.aclose()
                held.close()
                log_call(self.runtime.observer, method, code, record, time.perf_counter() - started)

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    async def _unary(
        self,
        request: Request,
        method: str,
        body: type | Callable[[bytes], Any],
        call: Callable[[Any, float | None], Awaitable[Any]],
    ) -> Response:
        """Authorise, parse, call, answer: as the gRPC handler does, with the access line and metrics.
        `body` is the proto message class the body holds (in proto3 JSON), or a function that reads it."""
        started, record = time.perf_counter(), new_record()
        with self.runtime.counted():
            try:
                self._authorise(request)
                message = await self._message(request, body)
                result = await while_connected(request, call(message, self._deadline(request)))
            except Exception as exc:
                return self._failed(method, exc, record, started)
        log_call(self.runtime.observer, method, "OK", record, time.perf_counter() - started)
        if isinstance(result, Response):
            return result
        return await text_work(is_small(result.ByteSize()), json_response, result)

    def _failed(self, method: str, exc: Exception, record: dict[str, Any], started: float) -> Response:
        return error_response(*failed_call(self.runtime, method, exc, record, started))

    def _authorise(self, request: Request) -> None:
        if self.tokens is None:
            return
        presented = auth.bearer_of(request.headers.get("authorization"))
        if presented is None:
            raise Unauthenticated("no bearer token: send 'Authorization: Bearer <token>'")
        auth.admit_token(self.tokens, presented)  # the caller's name and rights, as gRPC's interceptor sets them

    async def _message(self, request: Request, read: type | Callable[[bytes], Any]) -> Any:
        """The body, within --max-message-bytes, as a proto3 JSON message of class `read`, or as `read`
        reads it. A large body is parsed off the event loop, as gRPC's large requests are checked: the
        loop also answers health checks."""
        body = await self._body(request)
        parse = functools.partial(parse_json, message_class=read) if isinstance(read, type) else read
        return await text_work(is_small(len(body)), parse, body)

    async def _body(self, request: Request) -> bytes:
        """The body, within --max-message-bytes."""
        return await read_body(request, self.runtime.settings)

    def _deadline(self, request: Request) -> float | None:
        return query_deadline(request, self.runtime.settings)


async def routing_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such route, another method, a static file that is not there) in the
    API's error shape, not as plain text."""
    assert isinstance(exc, HTTPException)
    codes = {404: grpc.StatusCode.NOT_FOUND, 405: grpc.StatusCode.UNIMPLEMENTED}
    code = codes.get(exc.status_code, grpc.StatusCode.INVALID_ARGUMENT)
    allowed = {name.lower(): value for name, value in (exc.headers or {}).items()}.get("allow")
    message = f"{request.method[:20]} {request.url.path[:200]}: " + (
        f"use {allowed}" if allowed else "no such route; GET /openapi.json lists them"
    )
    answer = error_response(exc.status_code, code, message)
    answer.headers.update(exc.headers or {})
    return answer


class PrivateHeaders:
    """Headers on every answer: unpublished stories are not kept by caches on the way (no-store on the
    API), and the page may load and send nothing but to this server (a content security policy)."""

    POLICY = (
        "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data: blob:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Everything but the page and its files may carry a story: the compatible APIs' routes too.
        path = scope["path"]
        api = not (path in ("/", "/favicon.ico", "/healthz", "/openapi.json") or path.startswith("/static/"))

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = self.POLICY
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                if api:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, with_headers)


def parse_json(body: bytes, message_class: type) -> Any:
    """The body as a proto3 JSON message of `message_class`; InvalidRequest saying why not."""
    name = message_class.DESCRIPTOR.full_name  # type: ignore[attr-defined]
    try:
        text = body.decode("utf-8")
        if not text.lstrip(" \t\r\n").startswith("{"):  # json_format.Parse takes `[]` for an empty message
            raise InvalidRequest(f"the body is not a {name} in proto3 JSON: send a JSON object")
        return json_format.Parse(text, message_class())
    except UnicodeDecodeError:
        raise InvalidRequest("the body is not UTF-8") from None
    except json_format.ParseError as exc:
        raise InvalidRequest(f"the body is not a {name} in proto3 JSON: {str(exc)[:300]}") from None


def page_of(body: bytes) -> str:
    """/v1/extract's body: {"html": "<the saved page>"}."""
    try:
        page = json.loads(body).get("html")
    except (ValueError, AttributeError, RecursionError):
        page = None
    if not isinstance(page, str) or not page.strip():
        raise InvalidRequest('send {"html": "<the saved page>"}')
    return page


def exported(
    message: pb.TranslateResponse, render: Callable[[pb.TranslateResponse], str], limits: ExportLimits
) -> bytes:
    """/v1/export's answer: the response checked against the limits, then rendered (UTF-8)."""
    try:
        check_export(message, limits)
        return render(message).encode()
    except ExportError as exc:
        raise InvalidRequest(str(exc)) from None


def json_response(message: Any) -> JSONResponse:
    return JSONResponse(to_dict(message))


def _json_line(message: Any) -> bytes:
    return (json.dumps(to_dict(message), ensure_ascii=False) + "\n").encode()


async def start_http(
    runtime: Runtime, servicer: TranslatorServicer, tokens: TokenFile | None, port: int
) -> tuple[Any, asyncio.Task[None], int]:
    """Serve the HTTP API on the running event loop; returns uvicorn's server, its task, and the port."""
    settings = runtime.settings
    tls: dict[str, Any] = {}
    if settings.tls_cert:
        import ssl

        tls = {"ssl_certfile": settings.tls_cert, "ssl_keyfile": settings.tls_key}
        if settings.tls_client_ca:
            tls |= {"ssl_ca_certs": settings.tls_client_ca, "ssl_cert_reqs": ssl.CERT_REQUIRED}
    config = uvicorn.Config(
        HttpApi(runtime, servicer, tokens).app(),
        host=settings.host,
        port=port,
        log_config=None,  # our logging; our access lines
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=max(1, int(settings.grace_period_s)),
        # The h11 protocol with the connection cap and the header and body timeouts (http_guard).
        http=guarded_protocol(
            HttpLimits(settings.max_http_connections, settings.http_header_timeout_s, settings.http_body_timeout_s)
        ),
        backlog=ACCEPT_BATCH,
        ws="none",  # no WebSocket routes; an upgraded connection would leave the count the cap keeps
        **tls,
    )
    listening = listening_socket(settings.host, port)
    server = EmbeddedServer(config)
    task = asyncio.ensure_future(server.serve(sockets=[listening]))
    while not server.started:
        if task.done():
            listening.close()
            raise StartupError(f"cannot serve HTTP on {settings.host}:{port}")
        await asyncio.sleep(0.01)
    return server, task, listening.getsockname()[1]


def listening_socket(host: str, port: int) -> socket.socket:
    """The HTTP port, bound here rather than by uvicorn, which ends the whole process (SystemExit, with a
    traceback) when the port is taken; one that is becomes one line and exit code 1, as gRPC's does."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        both = host == "::" and socket.has_dualstack_ipv6()  # "::" means every address, IPv4 too
        return socket.create_server((host, port), family=family, backlog=ACCEPT_BATCH, dualstack_ipv6=both)
    except OSError as exc:
        raise StartupError(f"cannot listen on {host}:{port} for HTTP: {exc.strerror or exc}") from None


class EmbeddedServer(uvicorn.Server):
    """uvicorn's Server without its signal handling: `tarjama serve` owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

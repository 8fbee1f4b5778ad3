"""A small synchronous Python client for the Tarjama server; the CLI uses it too."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tarjama.interchange.messages import to_dict  # noqa: F401  # re-exported: the client's public API
from tarjama.v1 import tarjama_pb2 as pb
from tarjama.v1 import tarjama_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing's own from Python 3.11

DEFAULT_SERVER = "localhost:50051"
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# Translate, Segment and Summarize are idempotent, so a call is retried on another replica when the
# one it reached died or drains (UNAVAILABLE) or is overloaded (RESOURCE_EXHAUSTED), with backoff,
# within the call's deadline. Calls are spread over every address the target resolves to
# (round_robin), skipping replicas whose health is not SERVING (still loading, or draining).
SERVICE_CONFIG = {
    "loadBalancingConfig": [{"round_robin": {}}],
    # Retries stop once failures outrun successes (a failure costs a token, a success returns a tenth)
    # by about 50, so an overload is not multiplied. With 10 tokens, the few calls in flight on a
    # replica that died, plus those sent to one draining, switched retries off: the replica test lost
    # a call in about one run in four.
    "retryThrottling": {"maxTokens": 100, "tokenRatio": 0.1},
    "healthCheckConfig": {"serviceName": "tarjama.v1.Translator"},
    "methodConfig": [
        {
            "name": [{"service": "tarjama.v1.Translator"}],
            "retryPolicy": {
                "maxAttempts": 5,
                "initialBackoff": "0.2s",
                "maxBackoff": "3s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE", "RESOURCE_EXHAUSTED"],
            },
        },
        # Creating a glossary is not idempotent (a retry after a lost answer would store it twice), and
        # a second delete of one that was deleted says NOT_FOUND: neither is retried.
        {
            "name": [
                {"service": "tarjama.v1.Translator", "method": "CreateGlossary"},
                {"service": "tarjama.v1.Translator", "method": "DeleteGlossary"},
            ]
        },
    ],
}
# A call is only retried while its request is still buffered: room for a limit-size article.
RETRY_BUFFER_BYTES = 16 * 1024 * 1024


class TarjamaError(Exception):
    """A call the server refused or could not finish: the gRPC status code and its message.

    What a call raises is the subclass for its code (`ERRORS`), so a caller can `except Overloaded:`
    and retry later; a code without a subclass of its own arrives as TarjamaError itself."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


class InvalidArgument(TarjamaError):
    """INVALID_ARGUMENT: the request is wrong (the message names the field); sending it again will not help."""


class FeatureUnavailable(TarjamaError):
    """FAILED_PRECONDITION: the request needs something this server was started without (e.g. a summariser)."""


class Overloaded(TarjamaError):
    """RESOURCE_EXHAUSTED: the server's queue is full; retry later. (The client already retried a few times,
    with backoff.) gRPC also says this for a message over the server's size limit."""


class Unavailable(TarjamaError):
    """UNAVAILABLE: no server answers at the address, or it is still loading its models or shutting down."""


class DeadlineExceeded(TarjamaError):
    """DEADLINE_EXCEEDED: the call's timeout passed before the server finished."""


class Unauthenticated(TarjamaError):
    """UNAUTHENTICATED: the server wants a bearer token (`token=`) it knows."""


class PermissionDenied(TarjamaError):
    """PERMISSION_DENIED: the token is known but may not make this call."""


class NotFound(TarjamaError):
    """NOT_FOUND: what the call names (a stored glossary) does not exist."""


class Cancelled(TarjamaError):
    """CANCELLED: the call was cancelled before it finished."""


class Internal(TarjamaError):
    """INTERNAL or UNKNOWN: the server failed (its log says why); the message holds no internals."""


# The one table from status code to exception: every call's grpc.RpcError goes through `error_from`.
ERRORS: dict[grpc.StatusCode, type[TarjamaError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.FAILED_PRECONDITION: FeatureUnavailable,
    grpc.StatusCode.RESOURCE_EXHAUSTED: Overloaded,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.CANCELLED: Cancelled,
    grpc.StatusCode.INTERNAL: Internal,
    grpc.StatusCode.UNKNOWN: Internal,
}


def error_from(exc: grpc.RpcError) -> TarjamaError:
    """The typed error for a failed call (a grpc.Call's code and details)."""
    code = exc.code()
    return ERRORS.get(code, TarjamaError)(code, exc.details() or "")


class TarjamaClient:
    """Calls tarjama.v1.Translator on one server.

    >>> with TarjamaClient("localhost:50051") as client:
    ...     response = client.translate("النص العربي")
    ...     print(response.paragraphs[0].translation)
    """

    def __init__(
        self,
        server: str = DEFAULT_SERVER,
        *,
        timeout: float | None = None,
        token: str | None = None,
        tls: bool = False,
        tls_ca: str | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
    ) -> None:
        """`server`: any gRPC target: `host:port`, `dns:///tarjama.newsroom.svc:50051` (every replica
        behind a headless Service), `ipv4:10.0.0.1:50051,10.0.0.2:50051`, `unix:/run/tarjama.sock`.
        `token`: the bearer token a server with --auth-tokens-file wants. `tls`: encrypt, trusting
        `tls_ca` (a PEM file) or the system's roots; `tls_cert` and `tls_key` for a server that asks
        for client certificates (mTLS). Any of the `tls_*` files implies `tls`."""
        self.server = server
        self.timeout = timeout
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self._credentials = None
        if tls or tls_ca or tls_cert or tls_key:
            if bool(tls_cert) != bool(tls_key):
                raise ValueError("a client certificate needs both tls_cert and tls_key")
            self._credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(tls_ca), private_key=_read(tls_key), certificate_chain=_read(tls_cert)
            )
        self._channel = self._open(SERVICE_CONFIG)
        self._stub = pb_grpc.TranslatorStub(self._channel)
        # Health is asked on a channel of its own without client-side health checking: on the main
        # channel a replica that is not SERVING is skipped, so its NOT_SERVING could never be read.
        self._health_channel: grpc.Channel | None = None

    def _open(self, service_config: dict[str, Any]) -> grpc.Channel:
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            # Reconnect within a couple of seconds once a server (re)starts, not after minutes.
            ("grpc.initial_reconnect_backoff_ms", 500),
            ("grpc.max_reconnect_backoff_ms", 2000),
            ("grpc.service_config", json.dumps(service_config)),
            ("grpc.enable_retries", 1),
            ("grpc.per_rpc_retry_buffer_size", RETRY_BUFFER_BYTES),
            ("grpc.retry_buffer_size", 4 * RETRY_BUFFER_BYTES),
        ]
        if self._credentials is not None:
            return grpc.secure_channel(self.server, self._credentials, options=options)
        return grpc.insecure_channel(self.server, options=options)

    def translate(
        self, text: str | None = None, *, timeout: float | None = None, **options: Unpack[TranslateArgs]
    ) -> pb.TranslateResponse:
        """Translate an article given as `text` (paragraphs on separate lines), as `paragraphs`, or as
        `html` (the response's `html` is then the same document in English). With `extract_article`,
        `html` is a saved news page: only its article is translated, and `extraction` says what was
        dropped. The options are `TranslateArgs`'s: `id`, `summarize`, `summary_length`, `terms` (a
        glossary, Arabic term -> required English, checked in every sentence), `strip_diacritics`.
        """
        return self._call(self._stub.Translate, translate_request(text, **options), timeout)

    def translate_stream(
        self, text: str | None = None, *, timeout: float | None = None, **options: Unpack[TranslateArgs]
    ) -> Iterator[pb.TranslateStreamResponse]:
        """As `translate`, but yields the paragraphs in order as the server finishes them; the last
        message (`done`) carries the summary, term reports and info. `response_from_stream` joins them."""
        request = translate_request(text, **options)
        call = self._stub.TranslateStream(
            request, timeout=timeout if timeout is not None else self.timeout, metadata=self._metadata
        )
        try:
            yield from call
        except grpc.RpcError as exc:
            raise error_from(exc) from None
        finally:
            call.cancel()  # a caller that stops reading early frees the server's work

    def segment(
        self,
        text: str | None = None,
        *,
        paragraphs: Sequence[str] | None = None,
        id: str = "",
        timeout: float | None = None,
    ) -> pb.SegmentResponse:
        """Paragraphs and sentences with offsets and token counts, as the server would translate them."""
        request = pb.SegmentRequest(id=id, text=text or "", paragraphs=list(paragraphs or ()))
        return self._call(self._stub.Segment, request, timeout)

    def summarize(
        self,
        text: str | None = None,
        *,
        paragraphs: Sequence[str] | None = None,
        id: str = "",
        length: int = 0,
        sentences: int = 0,
        timeout: float | None = None,
    ) -> pb.SummarizeResponse:
        """Summarise English text; each summary sentence cites the paragraphs it rests on."""
        request = pb.SummarizeRequest(
            id=id,
            text=text or "",
            paragraphs=list(paragraphs or ()),
            length=length,  # type: ignore[arg-type]  # an int is a pb.SummaryLength
            sentences=sentences,
        )
        return self._call(self._stub.Summarize, request, timeout)

    # -- stored glossaries -------------------------------------------------------------------------

    def create_glossary(
        self, name: str, entries: Mapping[str, str] | Iterable[tuple[str, str]], *, timeout: float | None = None
    ) -> pb.Glossary:
        """Store a glossary for the whole newsroom (Arabic term -> required English); its `glossary_id`
        is what `translate(glossary_id=...)` takes. Needs a token with the `glossaries` right."""
        pairs = entries.items() if isinstance(entries, Mapping) else entries
        request = pb.CreateGlossaryRequest(
            name=name,
            entries=[pb.GlossaryEntry(source=source, target=target) for source, target in pairs],
            source_lang="ar",
            target_lang="en",
        )
        return self._call(self._stub.CreateGlossary, request, timeout)

    def list_glossaries(self, *, timeout: float | None = None) -> list[pb.Glossary]:
        """Every stored glossary, newest first, without its entries."""
        return list(self._call(self._stub.ListGlossaries, pb.ListGlossariesRequest(), timeout).glossaries)

    def get_glossary(self, glossary_id: str, *, entries: bool = True, timeout: float | None = None) -> pb.Glossary:
        request = pb.GetGlossaryRequest(glossary_id=glossary_id, include_entries=entries)
        return self._call(self._stub.GetGlossary, request, timeout)

    def delete_glossary(self, glossary_id: str, *, timeout: float | None = None) -> None:
        self._call(self._stub.DeleteGlossary, pb.DeleteGlossaryRequest(glossary_id=glossary_id), timeout)

    def find_glossary(self, name_or_id: str, *, timeout: float | None = None) -> pb.Glossary:
        """The stored glossary with this id, or else the one with this name (without entries). A name
        two glossaries share is ambiguous: InvalidArgument, listing their ids; none: NotFound."""
        glossaries = self.list_glossaries(timeout=timeout)
        for glossary in glossaries:
            if glossary.glossary_id == name_or_id:
                return glossary
        named = [g for g in glossaries if g.name == name_or_id]
        if len(named) > 1:
            ids = ", ".join(g.glossary_id for g in named)
            raise InvalidArgument(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{len(named)} glossaries are named {name_or_id!r}: give an id ({ids})",
            )
        if not named:
            raise NotFound(grpc.StatusCode.NOT_FOUND, f"no glossary is named {name_or_id!r} or has it as its id")
        return named[0]

    def has_summarizer(self, *, timeout: float | None = 10) -> bool:
        """Whether the server was started with a summariser."""
        return any(model.role == "summary" for model in self.info(timeout=timeout).models)

    def info(self, *, timeout: float | None = None) -> pb.GetInfoResponse:
        return self._call(self._stub.GetInfo, pb.GetInfoRequest(), timeout)

    def health(self, service: str = "", *, timeout: float | None = None) -> str:
        """SERVING, NOT_SERVING or SERVICE_UNKNOWN, as grpc.health.v1 reports it."""
        if self._health_channel is None:
            self._health_channel = self._open({"loadBalancingConfig": [{"round_robin": {}}]})
        stub = health_pb2_grpc.HealthStub(self._health_channel)
        reply = self._call(stub.Check, health_pb2.HealthCheckRequest(service=service), timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    def _call(self, method: Any, request: Any, timeout: float | None) -> Any:
        try:
            return method(request, timeout=timeout if timeout is not None else self.timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise error_from(exc) from None

    def close(self) -> None:
        self._channel.close()
        if self._health_channel is not None:
            self._health_channel.close()

    def __enter__(self) -> TarjamaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TranslateArgs(TypedDict, total=False):
    """What `translate` and `translate_stream` take besides `text` and `timeout`: the one list of options,
    so that a new one is a line here and one in `translate_request`."""

    paragraphs: Sequence[str] | None
    html: str | None
    id: str
    summarize: bool
    summary_length: int  # a pb.SummaryLength
    terms: dict[str, str] | None
    strip_diacritics: bool
    extract_article: bool
    model: str  # a translation model's name (GetInfo's models); empty: the server's default
    glossary_id: str  # a stored glossary (create_glossary, list_glossaries); `terms` win over its entries


def translate_request(text: str | None = None, **options: Unpack[TranslateArgs]) -> pb.TranslateRequest:
    """The TranslateRequest for `translate`'s arguments (a missing option is the proto's default)."""
    unknown = options.keys() - TranslateArgs.__annotations__.keys()
    if unknown:  # what a signature that named every option said of a misspelt one
        raise TypeError(f"unexpected keyword argument {sorted(unknown)[0]!r}")
    return pb.TranslateRequest(
        id=options.get("id", ""),
        text=text or "",
        paragraphs=list(options.get("paragraphs") or ()),
        html=options.get("html") or "",
        summarize=options.get("summarize", False),
        options=pb.TranslateOptions(
            terms=options.get("terms") or {},
            strip_diacritics=options.get("strip_diacritics", False),
            summary_length=options.get("summary_length", 0),  # type: ignore[arg-type]  # an int is a pb.SummaryLength
            extract_article=options.get("extract_article", False),
            model=options.get("model", ""),
            glossary_id=options.get("glossary_id", ""),
        ),
    )


def response_from_stream(messages: Iterable[pb.TranslateStreamResponse]) -> pb.TranslateResponse:
    """The TranslateResponse a stream adds up to (what Translate returns for the same request)."""
    response = pb.TranslateResponse()
    for message in messages:
        response.id = message.id
        response.paragraphs.extend(message.paragraphs)
        if message.done:
            if message.HasField("summary"):
                response.summary.CopyFrom(message.summary)
            if message.HasField("extraction"):
                response.extraction.CopyFrom(message.extraction)
            response.html = message.html
            response.info.CopyFrom(message.info)
            response.terms.extend(message.terms)
    return response


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None

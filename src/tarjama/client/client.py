"""A small synchronous Python client for the Tarjama server; the CLI uses it too."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tarjama.v1 import tarjama_pb2 as pb
from tarjama.v1 import tarjama_pb2_grpc as pb_grpc

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
        }
    ],
}
# A call is only retried while its request is still buffered: room for a limit-size article.
RETRY_BUFFER_BYTES = 16 * 1024 * 1024


class TarjamaError(Exception):
    """A call the server refused or could not finish: the gRPC status code and its message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


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
        self,
        text: str | None = None,
        *,
        paragraphs: Sequence[str] | None = None,
        html: str | None = None,
        id: str = "",
        summarize: bool = False,
        summary_length: int = 0,
        terms: dict[str, str] | None = None,
        strip_diacritics: bool = False,
        extract_article: bool = False,
        timeout: float | None = None,
    ) -> pb.TranslateResponse:
        """Translate an article given as `text` (paragraphs on separate lines), as `paragraphs`, or as
        `html` (the response's `html` is then the same document in English). With `extract_article`,
        `html` is a saved news page: only its article is translated, and `extraction` says what was
        dropped.

        `terms` is a glossary (Arabic term -> required English) checked in every sentence.
        """
        request = translate_request(text, paragraphs, id, summarize, summary_length, terms, strip_diacritics)
        request.html = html or ""
        request.options.extract_article = extract_article
        return self._call(self._stub.Translate, request, timeout)

    def translate_stream(
        self,
        text: str | None = None,
        *,
        paragraphs: Sequence[str] | None = None,
        html: str | None = None,
        id: str = "",
        summarize: bool = False,
        summary_length: int = 0,
        terms: dict[str, str] | None = None,
        strip_diacritics: bool = False,
        extract_article: bool = False,
        timeout: float | None = None,
    ) -> Iterator[pb.TranslateStreamResponse]:
        """As `translate`, but yields the paragraphs in order as the server finishes them; the last
        message (`done`) carries the summary, term reports and info. `response_from_stream` joins them."""
        request = translate_request(text, paragraphs, id, summarize, summary_length, terms, strip_diacritics)
        request.html = html or ""
        request.options.extract_article = extract_article
        call = self._stub.TranslateStream(
            request, timeout=timeout if timeout is not None else self.timeout, metadata=self._metadata
        )
        try:
            yield from call
        except grpc.RpcError as exc:
            raise TarjamaError(exc.code(), exc.details() or "") from None
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
            raise TarjamaError(exc.code(), exc.details() or "") from None

    def close(self) -> None:
        self._channel.close()
        if self._health_channel is not None:
            self._health_channel.close()

    def __enter__(self) -> TarjamaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def translate_request(
    text: str | None,
    paragraphs: Sequence[str] | None,
    id: str,
    summarize: bool,
    summary_length: int,
    terms: dict[str, str] | None,
    strip_diacritics: bool,
) -> pb.TranslateRequest:
    return pb.TranslateRequest(
        id=id,
        text=text or "",
        paragraphs=list(paragraphs or ()),
        summarize=summarize,
        options=pb.TranslateOptions(
            terms=terms or {}, strip_diacritics=strip_diacritics, summary_length=summary_length
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


def to_dict(message: Any) -> dict[str, Any]:
    """A response as proto3 JSON with the proto's field names, every field present."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )

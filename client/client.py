"""A small synchronous Python client for the Tarjama server; the CLI uses it too."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tarjama.v1 import tarjama_pb2 as pb
from tarjama.v1 import tarjama_pb2_grpc as pb_grpc

DEFAULT_SERVER = "localhost:50051"
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


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
        """`token`: the bearer token a server with --auth-tokens-file wants. `tls`: encrypt, trusting
        `tls_ca` (a PEM file) or the system's roots; `tls_cert` and `tls_key` for a server that asks
        for client certificates (mTLS). Any of the `tls_*` files implies `tls`."""
        self.server = server
        self.timeout = timeout
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            # Reconnect within a couple of seconds once a server (re)starts, not after minutes.
            ("grpc.initial_reconnect_backoff_ms", 500),
            ("grpc.max_reconnect_backoff_ms", 2000),
        ]
        if tls or tls_ca or tls_cert or tls_key:
            if bool(tls_cert) != bool(tls_key):
                raise ValueError("a client certificate needs both tls_cert and tls_key")
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(tls_ca), private_key=_read(tls_key), certificate_chain=_read(tls_cert)
            )
            self._channel = grpc.secure_channel(server, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(server, options=options)
        self._stub = pb_grpc.TranslatorStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    def translate(
        self,
        text: str | None = None,
        *,
        paragraphs: Sequence[str] | None = None,
        id: str = "",
        summarize: bool = False,
        summary_length: int = 0,
        terms: dict[str, str] | None = None,
        strip_diacritics: bool = False,
        timeout: float | None = None,
    ) -> pb.TranslateResponse:
        """Translate an article given as `text` (paragraphs on separate lines) or as `paragraphs`.

        `terms` is a glossary (Arabic term -> required English) checked in every sentence.
        """
        request = pb.TranslateRequest(
            id=id,
            text=text or "",
            paragraphs=list(paragraphs or ()),
            summarize=summarize,
            options=pb.TranslateOptions(
                terms=terms or {}, strip_diacritics=strip_diacritics, summary_length=summary_length
            ),
        )
        return self._call(self._stub.Translate, request, timeout)

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
            id=id, text=text or "", paragraphs=list(paragraphs or ()), length=length, sentences=sentences
        )
        return self._call(self._stub.Summarize, request, timeout)

    def has_summarizer(self, *, timeout: float | None = 10) -> bool:
        """Whether the server was started with a summariser."""
        return any(model.role == "summary" for model in self.info(timeout=timeout).models)

    def info(self, *, timeout: float | None = None) -> pb.GetInfoResponse:
        return self._call(self._stub.GetInfo, pb.GetInfoRequest(), timeout)

    def health(self, service: str = "", *, timeout: float | None = None) -> str:
        """SERVING, NOT_SERVING or SERVICE_UNKNOWN, as grpc.health.v1 reports it."""
        reply = self._call(self._health.Check, health_pb2.HealthCheckRequest(service=service), timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    def _call(self, method: Any, request: Any, timeout: float | None) -> Any:
        try:
            return method(request, timeout=timeout if timeout is not None else self.timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise TarjamaError(exc.code(), exc.details() or "") from None

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> TarjamaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


def to_dict(message: Any) -> dict[str, Any]:
    """A response as proto3 JSON with the proto's field names, every field present."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )

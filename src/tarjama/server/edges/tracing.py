"""OpenTelemetry traces: a span per RPC with children for the work inside it; off, and free, unless asked.

With the `otel` extra installed and the standard variables set (`OTEL_TRACES_EXPORTER`, or an
`OTEL_EXPORTER_OTLP_ENDPOINT` / `..._TRACES_ENDPOINT`; `OTEL_SERVICE_NAME`, default `tarjama`),
each RPC gets a server span named after its method with the gRPC semantic conventions (`rpc.system`,
`rpc.service`, `rpc.method`, `rpc.grpc.status_code`), continuing a caller's `traceparent`. Inside
it: `tarjama.plan` (segmentation and tokenising), `tarjama.queue` (waiting for and running in
batches), `tarjama.assemble` (restoring protected spans and terms, checks), `tarjama.summary`.
A batch serves many requests, so each `tarjama.batch` span *links* to the queue spans it served.
Spans carry sizes and ids, never text. Without configuration nothing of OpenTelemetry is imported,
and `span()` is a shared no-op context manager.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import grpc

from . import auth
from .interception import OPEN_SERVICES, Behavior, Context, Handler, HandlerInterceptor, replace_behavior
from .stats import Observer

log = logging.getLogger(__name__)

_tracer: Any = None  # an opentelemetry Tracer once configured
_NOOP = contextlib.nullcontext()


def wanted(environ: Mapping[str, str]) -> bool:
    """Whether the standard OTEL_* variables ask for traces."""
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none" or environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return bool(
        exporter or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure(environ: Mapping[str, str] | None = None) -> bool:
    """Set up the tracer from OTEL_* variables; returns whether tracing is on."""
    global _tracer
    environ = os.environ if environ is None else environ
    if not wanted(environ):
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor
    except ImportError:
        log.warning(
            "OTEL_* variables are set but the otel extra is not installed: "
            "pip install -c constraints.txt '.[server,otel]' in the repository"
        )
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": environ.get("OTEL_SERVICE_NAME", "tarjama")}))
    for name in (n.strip().lower() for n in (environ.get("OTEL_TRACES_EXPORTER") or "otlp").split(",")):
        if name == "console":  # for trying it out: one JSON object per span on stdout
            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
        elif name == "otlp":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # reads OTEL_EXPORTER_OTLP_*
        else:
            log.warning("OTEL_TRACES_EXPORTER=%s is not supported here (otlp, console)", name)
    trace.set_tracer_provider(provider)
    _tracer = trace.get_tracer("tarjama")
    log.info("tracing on: OpenTelemetry spans per RPC (%s)", environ.get("OTEL_TRACES_EXPORTER") or "otlp")
    return True


def span(name: str, **attributes: Any) -> contextlib.AbstractContextManager[Any]:
    """A child span of the current one, or a no-op when tracing is off."""
    if _tracer is None:
        return _NOOP
    started: contextlib.AbstractContextManager[Any] = _tracer.start_as_current_span(name, attributes=attributes)
    return started


def current_context() -> Any:
    """The current span's context, to link a batch to the requests it served (None when off)."""
    if _tracer is None:
        return None
    from opentelemetry import trace

    return trace.get_current_span().get_span_context()


class BatchSpans(Observer):
    """Records each engine batch as a span after it ran, linked to the requests' queue spans."""

    def batch(self, role: str, size: int, seconds: float, tags: Sequence[Any] = ()) -> None:
        contexts = tags
        if _tracer is None:
            return
        from opentelemetry.trace import Link

        end_ns = time.time_ns()
        start_ns = end_ns - int(seconds * 1e9)
        links = [Link(c) for c in {id(c): c for c in contexts if c is not None}.values()]
        batch = _tracer.start_span(
            "tarjama.batch", start_time=start_ns, links=links, attributes={"tarjama.role": role, "tarjama.size": size}
        )
        batch.end(end_time=end_ns)


class Tracing(HandlerInterceptor):
    """The server span of every RPC but health checks, continuing the caller's trace."""

    def wrap(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        if _tracer is None or not handler.unary_unary or details.method.startswith(OPEN_SERVICES):
            return handler
        from opentelemetry import propagate
        from opentelemetry.trace import SpanKind, Status, StatusCode

        service, _, method = details.method.lstrip("/").partition("/")
        carrier = {key: value for key, value in details.invocation_metadata or () if isinstance(value, str)}

        def wrap(behavior: Behavior) -> Behavior:
            async def unary(request: Any, context: Context) -> Any:
                attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}
                with _tracer.start_as_current_span(
                    f"{service}/{method}", context=propagate.extract(carrier), kind=SpanKind.SERVER,
                    attributes=attributes, record_exception=False, set_status_on_exception=False,
                ) as rpc:  # fmt: skip
                    try:
                        return await behavior(request, context)
                    finally:
                        code = context.code()
                        code = code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.OK
                        rpc.set_attribute("rpc.grpc.status_code", code.value[0])
                        if code != grpc.StatusCode.OK:  # the status, never the message (it may quote text)
                            rpc.set_status(Status(StatusCode.ERROR, code.name))
                        name = auth.caller.get()
                        if name:
                            rpc.set_attribute("tarjama.caller", name)

            return unary

        return replace_behavior(handler, wrap)

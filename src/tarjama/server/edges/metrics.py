"""Prometheus metrics on `--metrics-port` (prometheus-client), from the same stats as GetInfo.

Counters and gauges are read at scrape time from `Runtime.stats()`, the snapshot GetInfo reports,
so the two can never disagree. Histograms (request, batch, queue and summary times) are observed as
things happen, through the `Observer` the batchers and the access log call. Names are a contract.

Exposure is a choice: the exporter listens on `--metrics-host` (loopback unless told otherwise, and
independent of `--host`), speaks TLS (and mTLS) when the server does, and with `--metrics-token-file`
answers 401 to a scrape without that bearer token. Labels hold no server paths: `model` is the id
callers without a token see (`public_model_id`). `caller` is the token's name (never the token):
operators choose those names, and who may read them is what the host and token above decide.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler

from prometheus_client import CollectorRegistry, Counter, Histogram, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

from ..errors import StartupError
from ..settings import Settings
from .auth import ScrapeToken
from .connections import LOOPBACK
from .stats import Observer, StatsSnapshot

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
# How long a scraper may take to send its request (and finish a TLS handshake) before it is dropped.
SCRAPE_TIMEOUT_S = 10.0


class SnapshotCollector(Collector):
    """Counters and gauges from the stats snapshot that GetInfo also reads."""

    def __init__(self, snapshot: Callable[[], StatsSnapshot], labels: dict[str, str]) -> None:
        self._snapshot = snapshot
        self._labels = labels

    def collect(self) -> Iterable[Metric]:
        s = self._snapshot()
        names, values = list(self._labels), list(self._labels.values())

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            family = CounterMetricFamily(name, doc, labels=names)
            family.add_metric(values, value)
            return family

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            family = GaugeMetricFamily(name, doc, labels=names)
            family.add_metric(values, value)
            return family

        yield counter("tarjama_input_tokens", "Source tokens translated by the engine", s.source_tokens)
        yield counter("tarjama_output_tokens", "Tokens the engine wrote", s.output_tokens)
        yield counter("tarjama_cache_hits", "Sentences answered from the translation cache", s.cache_hits)
        yield counter("tarjama_overloaded", "Requests refused because the queue was full", s.overloaded)
        yield counter("tarjama_shed", "Requests refused or dropped: they could not meet their deadline", s.shed)
        flags = CounterMetricFamily(
            "tarjama_sentence_flags", "Translated sentences by quality flag", labels=[*names, "flag"]
        )
        for flag, count in sorted(s.flag_counts.items()):
            flags.add_metric([*values, flag], count)
        yield flags
        yield gauge("tarjama_queue_tokens", "Source tokens waiting for a batch now", s.queued_tokens)
        padding = s.padded_source_tokens / s.source_tokens if s.source_tokens else 1.0
        yield gauge("tarjama_padding_ratio", "Padded over real source tokens in batches so far (1 = none)", padding)
        yield gauge("tarjama_in_flight_requests", "RPCs being handled now", s.in_flight)


class PrometheusObserver(Observer):
    """Histograms and per-RPC counters, observed as they happen."""

    def __init__(self, registry: CollectorRegistry, labels: dict[str, str]) -> None:
        self._labels = labels
        self.requests = Counter(
            "tarjama_requests",
            "RPCs by method and gRPC status, refused ones included",
            ["method", "code", "caller"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "tarjama_request_duration_seconds", "Time to answer an RPC", ["method"], buckets=SECONDS, registry=registry
        )
        self.queue_seconds = Histogram(
            "tarjama_queue_duration_seconds",
            "Time a sentence waits before its batch starts",
            list(labels),
            buckets=SECONDS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "tarjama_batch_size", "Sentences per engine batch", [*labels, "role"], buckets=SIZES, registry=registry
        )
        self.batch_seconds = Histogram(
            "tarjama_batch_duration_seconds",
            "Time the engine took for one batch",
            [*labels, "role"],
            buckets=SECONDS,
            registry=registry,
        )
        self.summary_seconds = Histogram(
            "tarjama_summary_duration_seconds",
            "Time to summarise one article",
            list(labels),
            buckets=SECONDS,
            registry=registry,
        )

    def request(self, method: str, code: str, caller: str, seconds: float) -> None:
        self.requests.labels(method, code, caller).inc()
        self.request_seconds.labels(method).observe(seconds)

    def queued(self, role: str, seconds: list[float]) -> None:
        if role != "translation":
            return
        histogram = self.queue_seconds.labels(*self._labels.values())
        for value in seconds:
            histogram.observe(value)

    def batch(self, role: str, size: int, seconds: float, tags: Sequence[object] = ()) -> None:
        self.batch_size.labels(*self._labels.values(), role).observe(size)
        self.batch_seconds.labels(*self._labels.values(), role).observe(seconds)

    def summary(self, seconds: float) -> None:
        self.summary_seconds.labels(*self._labels.values()).observe(seconds)


class ScrapeHandler(WSGIRequestHandler):
    """One scrape; quiet (no line per request), and a client that sends nothing is dropped."""

    timeout = SCRAPE_TIMEOUT_S  # the socket's timeout while the request is read and answered

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


class MetricsServer(ThreadingWSGIServer):
    """prometheus-client's threaded WSGI server, with TLS negotiated on each connection's own thread:
    wrapping the listening socket (as `start_http_server` does) runs every handshake inside accept(),
    where one client that connects and stays silent stops all scrapes."""

    def __init__(self, address: tuple[str, int], family: int, tls: ssl.SSLContext | None) -> None:
        self.address_family = family
        self.tls = tls
        super().__init__(address, ScrapeHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is None:
            return super().finish_request(request, client_address)
        request.settimeout(SCRAPE_TIMEOUT_S)
        try:
            secure = self.tls.wrap_socket(request, server_side=True)
        except OSError as exc:  # a handshake that fails or times out: that client's problem only
            log.debug("metrics: TLS handshake with %s failed: %s", client_address, exc)
            return
        try:
            super().finish_request(secure, client_address)
        finally:
            secure.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a traceback to stderr for any error, a scraper that times out included.
        log.debug("metrics: request from %s failed", client_address, exc_info=True)


def guarded(app: WSGIApplication, token: ScrapeToken | None) -> WSGIApplication:
    """The exporter's WSGI app, answering 401 to a scrape without `Authorization: Bearer <token>`."""
    if token is None:
        return app

    def guarded_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if token.accepts(environ.get("HTTP_AUTHORIZATION")):
            return app(environ, start_response)
        headers = [("Content-Type", "text/plain; charset=utf-8"), ("WWW-Authenticate", 'Bearer realm="metrics"')]
        start_response("401 Unauthorized", headers)
        return [b"send 'Authorization: Bearer <the token of --metrics-token-file>'\n"]

    return guarded_app


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's own TLS (and mTLS) for the exporter, from the same PEM files; None for plaintext."""
    if not settings.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
        if settings.tls_client_ca:
            context.load_verify_locations(settings.tls_client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise StartupError(f"cannot serve metrics with TLS from --tls-cert/--tls-key/--tls-client-ca: {exc}") from None
    return context


def serve_metrics(
    settings: Settings, snapshot: Callable[[], StatsSnapshot], labels: dict[str, str], token: ScrapeToken | None
) -> tuple[PrometheusObserver, MetricsServer]:
    """Start the exporter on --metrics-host:--metrics-port (https when the server has TLS, behind the
    scrape token when there is one); the observer to hand the server, and the exporter's server."""
    host, port = settings.metrics_host, settings.metrics_port
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(snapshot, labels))
    observer = PrometheusObserver(registry, labels)
    tls = tls_context(settings)
    try:
        family = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        server = MetricsServer((host, port), family, tls)
    except OSError as exc:
        raise StartupError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from None
    server.set_app(guarded(make_wsgi_app(registry), token))
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    bound = server.server_address[1]
    scheme = "https" if tls else "http"
    log.info(
        "metrics on %s://%s:%d/metrics (%s)", scheme, host, bound, "scrape token required" if token else "no token"
    )
    warning = metrics_exposure_warning(host, token=token is not None)
    if warning:
        log.warning(warning)
    return observer, server


def metrics_exposure_warning(host: str, *, token: bool) -> str | None:
    """What to say when other machines can scrape without a token (the labels name the callers)."""
    if token or host in LOOPBACK or host.startswith("127."):
        return None
    return (
        f"metrics on {host} without --metrics-token-file: anyone who can reach the port can read the request "
        "counts of every caller; give it a token, or keep --metrics-host 127.0.0.1"
    )

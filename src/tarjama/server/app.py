"""Startup and shutdown: `tarjama serve`.

The port opens first with health NOT_SERVING; models load and warm up on a worker thread; health turns
SERVING. On SIGTERM/SIGINT health turns NOT_SERVING (and still answers, so probes see it), new
requests get UNAVAILABLE, and in-flight ones have the grace period to finish. Then whatever is still
queued is failed with UNAVAILABLE, the engines get a few seconds to finish the batch they are on, and
the process exits 0. A second signal exits at once; a signal while the models load or convert exits
without waiting for them. A model that cannot be loaded ends the process with one line on stderr and
exit code 1. An engine that cannot run (a batch on it past --engine-watchdog-s, or its workers failing
over and over) turns health NOT_SERVING, fails what is queued with UNAVAILABLE and ends the process with
exit code 3, so that it is restarted: a server never says SERVING while nothing can translate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tarjama.v1 import tarjama_pb2 as pb

from .batcher import ComputeGate
from .dependencies import SERVER_EXTRA
from .doors.grpc_api import TranslatorServicer
from .doors.grpc_wire import add_translator_service
from .edges import tracing
from .edges.access_log import AccessLog, JsonFormatter, TextFormatter
from .edges.auth import AuthInterceptor, ScrapeToken, TokenFile, TokenFileError
from .edges.connections import StreamLimit, exposure_warning, tls_credentials
from .edges.log_filter import RepeatFilter
from .edges.metrics import serve_metrics
from .edges.stats import Observer, Observers
from .engines.allocator import describe as describe_allocator
from .engines.base import Engine
from .errors import ModelUnavailable, StartupError, StoreUnavailable
from .glossaries import Glossaries, open_store
from .models import public_model_id
from .pipeline import TranslationPipeline
from .runtime import Models, Runtime
from .settings import NamedModel, Settings, build_parser
from .startup import prepare
from .summary import load_summarizer

log = logging.getLogger("tarjama.server")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Translator"].full_name
WARMUP_TEXT = "قال المتحدث إن الاجتماع سيعقد غدا."
PENDING_CALLS_LIMIT = 1_000_000
# After the grace period, how long the engines may take to finish the batch they are running.
ENGINE_STOP_S = 3.0
# When an engine cannot run (hung past --engine-watchdog-s, or its workers keep failing) the process exits
# with this code, so that Kubernetes (or systemd) restarts it; health says NOT_SERVING for this long first,
# so that probes and clients asking see why rather than a closed port.
ENGINE_FAILED_EXIT = 3
ENGINE_FAILED_LINGER_S = 0.5
T = TypeVar("T")
# The HTTP API while it serves: uvicorn's server, the task serving it, and its port (doors/http_api.py).
HttpServing = tuple[Any, asyncio.Task[None], int]


def load_models(settings: Settings) -> Models:
    """Load the translation models (and the summariser) and run one input through each."""
    preload_text_formats()
    start_extraction()
    named = settings.translation_models()
    engines: list[Engine] = []
    pipelines: list[TranslationPipeline] = []
    try:
        for model in named:
            engines.append(load_translation_engine(settings, model))
        # Every model's engine is planned for the whole machine (one rule, the same flags). With several,
        # one gate lets as many batches run at once as one plan has workers, over all the models.
        gate = ComputeGate(engines[0].parallelism.workers) if len(engines) > 1 else None
        pipelines = [TranslationPipeline(e, settings, m.name, gate) for e, m in zip(engines, named, strict=True)]
        summarizer = load_summarizer(settings)
    except BaseException:
        for pipeline in pipelines:  # each closes its engine
            pipeline.close(ENGINE_STOP_S)
        for engine in engines[len(pipelines) :]:  # loaded, but no pipeline took them yet
            engine.close()
        raise
    return Models(pipelines[0], summarizer, tuple(pipelines[1:]))


def preload_text_formats() -> None:
    """Import what a first html or saved-page request would, before SERVING: an import holds the
    interpreter (lxml's and trafilatura's for up to a second), and health checks would wait on it."""
    from .markup import html  # noqa: F401

    try:
        import trafilatura  # noqa: F401
    except ImportError:  # options.extract_article then answers that it needs the server extra
        pass


def start_extraction() -> None:
    """The saved-page extraction process, started (and its imports done) before SERVING."""
    from .markup.extraction import start_extraction as start

    try:
        start()
    except Exception as exc:  # no process can start here (no /dev/shm, an unguarded __main__): only pages need it
        log.warning("saved-page extraction could not start its process (%s: %s); it tries again on the first page",
                    type(exc).__name__, exc)  # fmt: skip


def load_translation_engine(settings: Settings, model: NamedModel) -> Engine:
    """Load a translation model into its engine and run one sentence through it."""
    from .engines import load_engine
    from .engines.base import SourceItem

    try:
        engine = load_engine(settings, model)
        tokens = engine.tokenize([WARMUP_TEXT])[0]
        engine.translate([SourceItem(tokens, 8)])  # first call allocates; keep that off a user's request
    except ModelUnavailable:
        raise
    except Exception as exc:  # a broken checkpoint: one line, not a traceback
        log.debug("loading failed", exc_info=True)
        raise ModelUnavailable(
            f"cannot load translation model '{model.ref}' with --engine {settings.engine} ({type(exc).__name__}: {exc})"
        ) from None
    return engine


def observe(runtime: Runtime, scrape_token: ScrapeToken | None) -> bool:
    """Whoever is told about calls, batches and summaries: the metrics exporter (--metrics-port) and
    the tracer (OTEL_*). Returns whether calls are traced."""
    settings = runtime.settings
    observers: list[Observer] = []
    if settings.metrics_port:
        # The model as callers without a token see it: a label must not tell where the weights lie.
        models = ",".join(public_model_id(model.ref) for model in settings.translation_models())
        labels = {"model": models, "engine": settings.engine}
        observers.append(serve_metrics(settings, runtime.stats, labels, scrape_token)[0])
    traced = tracing.configure()
    if traced:
        observers.append(tracing.BatchSpans())
    if observers:
        runtime.observer = Observers(*observers)
    return traced


async def grpc_server(
    runtime: Runtime, tokens: TokenFile | None, traced: bool
) -> tuple[grpc.aio.Server, health.aio.HealthServicer, TranslatorServicer]:
    """The gRPC server with its interceptors and options, health (NOT_SERVING until the models load),
    the Translator service and, with --reflection, reflection; not yet listening."""
    settings = runtime.settings
    # The access log is outermost, so it also records (and counts) the calls auth refuses; so does
    # the trace.
    interceptors: list[grpc.aio.ServerInterceptor] = [AccessLog(runtime.observer)]
    if traced:
        interceptors.append(tracing.Tracing())
    if tokens is not None:
        interceptors.append(AuthInterceptor(tokens))
    interceptors.append(StreamLimit(settings.max_concurrent_streams))
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", max(settings.max_message_bytes, 64 * 1024 * 1024)),
        # grpc-core holds calls the server has not picked up yet and, past 1,000 of them, cancels
        # some at random with no message (a burst of 5,000 calls lost a third that way). Let them
        # all reach the servicer, whose queue limit answers an overload with RESOURCE_EXHAUSTED.
        ("grpc.server.max_pending_requests", PENDING_CALLS_LIMIT),
        ("grpc.server.max_pending_requests_hard_limit", PENDING_CALLS_LIMIT),
        # grpc sets SO_REUSEPORT by default: a second `tarjama serve` on the same port started too, and
        # the kernel shared the calls between the two servers (perhaps with different models).
        ("grpc.so_reuseport", 0),
        # Connections close after an age (calls in flight get the grace), so clients re-resolve and
        # spread over replicas as they come and go. Keepalive enforcement stays grpc's: pings more
        # often than every 5 minutes without calls are refused. Calls per connection are limited by
        # connections.StreamLimit, which answers the excess explicitly.
        ("grpc.max_connection_age_ms", int(settings.max_connection_age_s * 1000)),
        ("grpc.max_connection_age_grace_ms", int(settings.max_connection_age_grace_s * 1000)),
    ]
    server = grpc.aio.server(options=options, interceptors=interceptors)
    health_servicer = health.aio.HealthServicer()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    servicer = TranslatorServicer(runtime)
    add_translator_service(servicer, server)
    if settings.reflection:
        from grpc_reflection.v1alpha import reflection

        names = (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, server)
    return server, health_servicer, servicer


async def serve(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    on_listening: Callable[[int], None] | None = None,
    load: Callable[[Settings], Models] = load_models,
) -> int:
    """Serve until SIGTERM/SIGINT (or until `stop` is set, for callers that own the signals)."""
    tokens = TokenFile(settings.auth_tokens_file) if settings.auth_tokens_file else None
    scrape_token = ScrapeToken(settings.metrics_token_file) if settings.metrics_token_file else None
    credentials = tls_credentials(settings)
    glossaries = open_glossaries(settings)
    runtime = Runtime(settings, auth=tokens is not None, glossaries=glossaries)
    traced = observe(runtime, scrape_token)
    server, health_servicer, servicer = await grpc_server(runtime, tokens, traced)
    address = f"{settings.host}:{settings.port}"
    try:
        port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    except RuntimeError as exc:
        raise StartupError(f"cannot listen on {address}: {exc}") from None
    await server.start()
    warning = exposure_warning(settings.host, auth=tokens is not None)
    if warning:
        log.warning(warning)
    log.info(
        "listening on %s:%d (%s, %s; max connection age %gs; health NOT_SERVING while the models load)",
        settings.host,
        port,
        ("mTLS" if settings.tls_client_ca else "TLS") if credentials else "plaintext",
        f"auth: {len(tokens.names)} token names" if tokens else "no auth",
        settings.max_connection_age_s,
    )
    http = await start_http_api(runtime, servicer, tokens) if settings.http_port else None
    if on_listening:
        on_listening(port)

    if stop is None:
        stop = asyncio.Event()
        install_signal_handlers(stop)
    reloadable = [t for t in (tokens, scrape_token) if t is not None]
    if reloadable and hasattr(signal, "SIGHUP"):
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, lambda: [t.reload() for t in reloadable])

    loading = in_daemon_thread(load, settings)
    waiting_for_stop: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
    await asyncio.wait({loading, waiting_for_stop}, return_when=asyncio.FIRST_COMPLETED)
    if not loading.done():  # stopped while loading: nothing in flight, leave without waiting for it
        log.info("stopping while the models load; abandoning the load")
        from .models import stop_conversions

        await asyncio.to_thread(stop_conversions)
        await stop_http_api(http)
        await server.stop(0)
        glossaries.close()
        return 0
    try:
        runtime.models = loading.result()
    except ModelUnavailable:
        await stop_http_api(http)
        await server.stop(0)
        raise
    for batcher in runtime.batchers():
        batcher.observer = runtime.observer
    engine_failed = supervise_engines(runtime)
    # The models and libraries are loaded for good: keep them out of the cyclic collector, whose full
    # passes over them held the GIL (and so health checks) for up to 50 ms during large requests.
    gc.freeze()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    served = ", ".join(f"{m.name}={m.ref}" for m in settings.translation_models())
    log.info("serving %s on %s:%d", served, settings.host, port)

    await asyncio.wait({waiting_for_stop, engine_failed}, return_when=asyncio.FIRST_COMPLETED)
    if engine_failed.done():
        waiting_for_stop.cancel()
        await stop_for_restart(runtime, health_servicer, engine_failed.result(), server, http)
        return ENGINE_FAILED_EXIT
    await drain(runtime, health_servicer, settings.grace_period_s)
    # Whatever is still queued fails now (UNAVAILABLE); the engines may finish the batch they are on.
    closed = await asyncio.to_thread(runtime.models.close, ENGINE_STOP_S)
    await asyncio.gather(server.stop(1.0), stop_http_api(http))  # time for those answers to reach their clients
    if not closed:
        log.warning("an engine is still running a batch; exiting without waiting for it")
    glossaries.close()
    log.info("stopped")
    return 0


def open_glossaries(settings: Settings) -> Glossaries:
    """The stored glossaries' store (a URL that can never connect stops the start here), and its
    database reached once in the background, so the log says where it is and whether it answers,
    without holding the ports back for up to PostgreSQL's connect timeout."""
    glossaries = Glossaries(open_store(settings), settings)
    _background.add(task := asyncio.ensure_future(report_glossaries(glossaries, settings)))
    task.add_done_callback(_background.discard)
    return glossaries


_background: set[asyncio.Task[None]] = set()  # referenced until done (the loop keeps only weak ones)


async def report_glossaries(glossaries: Glossaries, settings: Settings) -> None:
    """One that does not answer is a warning, not a failed start: translation needs no database, and
    glossary calls get UNAVAILABLE until it answers. A database of a newer schema is one too."""
    where = "PostgreSQL, --database-url" if settings.database_url else str(getattr(glossaries.store, "path", ""))
    try:
        await glossaries.check()
    except StoreUnavailable:
        log.warning(
            "stored glossaries: the database (%s) does not answer (see above); glossary calls "
            "get UNAVAILABLE until it does, translation goes on without them",
            where,
        )
    else:
        log.info("stored glossaries: %s, %s", glossaries.backend, where)


async def stop_for_restart(
    runtime: Runtime,
    health_servicer: health.aio.HealthServicer,
    reason: str,
    server: grpc.aio.Server,
    http: HttpServing | None,
) -> None:
    """An engine cannot run: health NOT_SERVING (for good), everything queued failed, the ports closed."""
    log.error(
        "the engine cannot run: %s; health NOT_SERVING, queued requests failed (UNAVAILABLE), exiting with "
        "code %d to be restarted",
        reason,
        ENGINE_FAILED_EXIT,
    )
    runtime.shutting_down = True
    await health_servicer.enter_graceful_shutdown()  # NOT_SERVING for "" and the service, and it stays so
    await asyncio.sleep(ENGINE_FAILED_LINGER_S)
    assert runtime.models is not None
    await asyncio.to_thread(runtime.models.close, 0)  # the other engines' queues too; nobody waits for a hung batch
    await asyncio.gather(server.stop(1.0), stop_http_api(http))


def supervise_engines(runtime: Runtime) -> asyncio.Future[str]:
    """Watch every engine's batcher (--engine-watchdog-s); the future gets the reason once one cannot run."""
    loop = asyncio.get_running_loop()
    failed: asyncio.Future[str] = loop.create_future()

    def resolve(reason: str) -> None:
        if not failed.done():
            failed.set_result(reason)

    def on_failed(reason: str) -> None:  # called on a batcher thread
        try:
            loop.call_soon_threadsafe(resolve, reason)
        except RuntimeError:
            pass  # the loop is gone: the server has already stopped

    for batcher in runtime.batchers():
        batcher.supervise(runtime.settings.engine_watchdog_s, on_failed)
    return failed


async def start_http_api(runtime: Runtime, servicer: TranslatorServicer, tokens: TokenFile | None) -> HttpServing:
    """--http-port: the HTTP API and the reading page, on this event loop (see http_api.py)."""
    settings = runtime.settings
    try:
        from .doors.http_api import start_http

        http = await start_http(runtime, servicer, tokens, settings.http_port)
    except ImportError as exc:
        raise StartupError(f"--http-port needs starlette and uvicorn ({exc}): {SERVER_EXTRA}") from None
    except (OSError, SystemExit) as exc:  # uvicorn exits when it cannot bind
        raise StartupError(f"cannot listen on {settings.host}:{settings.http_port} for HTTP ({exc})") from None
    scheme = "https" if settings.tls_cert else "http"
    log.info("HTTP API and reading page on %s://%s:%d/", scheme, settings.host, http[2])
    return http


async def stop_http_api(http: HttpServing | None) -> None:
    if http is None:
        return
    server, task, _ = http
    server.should_exit = True
    with contextlib.suppress(Exception, SystemExit):
        await task


async def drain(runtime: Runtime, health_servicer: health.aio.HealthServicer, grace_s: float) -> None:
    """Refuse new work and report NOT_SERVING, while in-flight requests get up to `grace_s` to finish."""
    log.info(
        "shutting down: health NOT_SERVING, new requests refused, %d in flight (grace %.0fs)",
        runtime.in_flight,
        grace_s,
    )
    runtime.shutting_down = True
    await health_servicer.enter_graceful_shutdown()  # health keeps answering, with NOT_SERVING
    deadline = time.monotonic() + grace_s
    while runtime.in_flight and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if runtime.in_flight:
        log.warning("grace period over: failing %d requests still in flight", runtime.in_flight)


def install_signal_handlers(stop: asyncio.Event) -> None:
    """SIGTERM/SIGINT start a graceful stop; a second one ends the process at once."""
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            log.warning("second %s: exiting now", sig.name)
            exit_now(128 + sig)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)


def in_daemon_thread(function: Callable[[Settings], T], settings: Settings) -> asyncio.Future[T]:
    """Run `function` on a daemon thread (not the loop's executor, whose shutdown would wait for it)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def deliver(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        result, error = None, None
        try:
            result = function(settings)
        except BaseException as exc:  # delivered to the awaiting coroutine
            error = exc
        try:
            loop.call_soon_threadsafe(deliver, result, error)
        except RuntimeError:
            pass  # the loop is gone: the server stopped while this was loading

    threading.Thread(target=run, name="model-loader", daemon=True).start()
    return future


def raise_open_files_limit(settings: Settings) -> None:
    """Raise the soft limit on open files to the hard one (often 1024 and 1M): every connection,
    gRPC or HTTP, is a descriptor, and running out stops the gRPC port too. Logs what it is."""
    try:
        import resource
    except ImportError:  # not on a POSIX system
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):  # a hard limit the platform will not grant (macOS: unlimited)
            log.debug("cannot raise the open files limit to %s", hard, exc_info=True)
    now = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    raised = f" (raised from {soft})" if now != soft else ""
    log.info("open files limit: %s%s", "unlimited" if now == resource.RLIM_INFINITY else now, raised)
    # HTTP connections past the cap are refused at once, but each still takes a descriptor for a moment.
    if settings.http_port and now != resource.RLIM_INFINITY and now < settings.max_http_connections + 256:
        log.warning(
            "the open files limit (%d) leaves little beside --max-http-connections %d: raise it (ulimit -n) "
            "or lower the cap",
            now,
            settings.max_http_connections,
        )


def exit_now(code: int) -> None:
    """End the process without interpreter teardown, which would wait for native engine threads,
    an abandoned model load or a conversion (they hold no state that needs saving)."""
    extraction = sys.modules.get(f"{__package__}.markup.extraction")
    if extraction is not None:  # its processes' queues hold semaphores that would be reported as leaked
        extraction.LANE.close()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m tarjama.server`."""
    return run_with(build_parser().parse_args(argv))


def run_with(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """Run the server from parsed flags (also the CLI's `tarjama serve`, which passes the settings it has
    already prepared, dependencies checked); returns the exit code."""
    prepared = prepare("serve", args) if settings is None else settings
    if isinstance(prepared, int):
        return prepared
    settings = prepared
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    handler.addFilter(RepeatFilter())  # a failure that repeats writes a few lines, not gigabytes
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler])
    log.info(describe_allocator())  # set in prepare, before logging was
    raise_open_files_limit(settings)
    try:
        code = asyncio.run(serve(settings))
    except (StartupError, TokenFileError) as exc:
        print(f"tarjama serve: error: {exc}", file=sys.stderr)
        code = 1
    exit_now(code)
    return code  # not reached


if __name__ == "__main__":
    sys.exit(main())

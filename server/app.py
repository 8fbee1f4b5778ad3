"""Startup and shutdown: `tarjama serve`.

The port opens first with health NOT_SERVING; models load and warm up on a worker thread; health turns
SERVING. On SIGTERM/SIGINT health turns NOT_SERVING (and still answers, so probes see it), new
requests get UNAVAILABLE, and in-flight ones have the grace period to finish. Then whatever is still
queued is failed with UNAVAILABLE, the engines get a few seconds to finish the batch they are on, and
the process exits 0. A second signal exits at once; a signal while the models load or convert exits
without waiting for them. A model that cannot be loaded ends the process with one line on stderr and
exit code 1.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tarjama.v1 import tarjama_pb2 as pb

from .engines.base import EngineInfo
from .errors import ModelUnavailable
from .pipeline import TranslationPipeline
from .servicer import TranslatorServicer
from .settings import Settings, build_parser, settings_from
from .summary import Summarizer, load_summarizer
from .validation import add_translator_service

log = logging.getLogger("tarjama.server")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Translator"].full_name
WARMUP_TEXT = "قال المتحدث إن الاجتماع سيعقد غدا."
PENDING_CALLS_LIMIT = 1_000_000
# After the grace period, how long the engines may take to finish the batch they are running.
ENGINE_STOP_S = 3.0
T = TypeVar("T")


@dataclass
class Models:
    """What startup loads: the translation pipeline and the summariser (None when turned off)."""

    pipeline: TranslationPipeline
    summarizer: Summarizer | None = None

    def close(self, timeout: float) -> bool:
        """Fail all queued work at once, then give the running batches `timeout` seconds in all.

        Returns False when an engine is still mid-batch (it is then left alone, not released).
        """
        parts = [self.pipeline] + ([self.summarizer] if self.summarizer is not None else [])
        for part in parts:
            part.close(0)
        deadline = time.monotonic() + timeout
        return all([part.close(max(0.0, deadline - time.monotonic())) for part in parts])


@dataclass
class Runtime:
    """What the servicer reads: the settings, the loaded models (None while loading), the state."""

    settings: Settings
    models: Models | None = None
    shutting_down: bool = False
    in_flight: int = 0  # RPCs being handled now; shutdown waits for them up to the grace period
    _model_pbs: list[pb.ModelInfo] | None = None

    @property
    def pipeline(self) -> TranslationPipeline | None:
        return self.models.pipeline if self.models else None

    @property
    def summarizer(self) -> Summarizer | None:
        return self.models.summarizer if self.models else None

    def model_pbs(self) -> list[pb.ModelInfo]:
        """The loaded models as the API reports them: built once, read by every response."""
        if self.models is None:
            return []
        if self._model_pbs is None:
            self._model_pbs = self._build_model_pbs(self.models)
        return self._model_pbs

    @staticmethod
    def _build_model_pbs(models: Models) -> list[pb.ModelInfo]:
        infos = [models.pipeline.engine.info]
        summarizer = models.summarizer
        out = [_model_pb(info) for info in infos]
        if summarizer is not None:
            engine = getattr(summarizer, "engine", None)
            if engine is not None:
                out.append(_model_pb(engine.info))
            else:
                out.append(pb.ModelInfo(role="summary", id=summarizer.model, engine=summarizer.method, device="cpu"))
        return out


def _model_pb(info: EngineInfo) -> pb.ModelInfo:
    return pb.ModelInfo(
        role=info.role,
        id=info.id,
        revision=info.revision,
        path=info.path,
        engine=info.engine,
        device=info.device,
        compute_type=info.compute_type,
    )


def check_server_dependencies() -> None:
    """The base install has no torch; say how to get the server's packages instead of a traceback."""
    import importlib.util

    missing = [
        m
        for m in ("torch", "transformers", "sentencepiece", "ctranslate2", "sacremoses")
        if importlib.util.find_spec(m) is None
    ]
    if missing:
        raise ModelUnavailable(
            f"the server needs {', '.join(missing)}: install them with pip install 'tarjama[server]'"
        )


def load_models(settings: Settings) -> Models:
    """Load the translation model (and the summariser) and run one input through each."""
    pipeline = load_pipeline(settings)
    try:
        summarizer = load_summarizer(settings)
    except BaseException:
        pipeline.close(ENGINE_STOP_S)
        raise
    return Models(pipeline, summarizer)


def load_pipeline(settings: Settings) -> TranslationPipeline:
    """Load the translation model into its engine and run one sentence through it."""
    from .engines import load_engine
    from .engines.base import SourceItem

    try:
        engine = load_engine(settings)
        tokens = engine.tokenize([WARMUP_TEXT])[0]
        engine.translate([SourceItem(tokens, 8)])  # first call allocates; keep that off a user's request
    except ModelUnavailable:
        raise
    except Exception as exc:  # a broken checkpoint: one line, not a traceback
        log.debug("loading failed", exc_info=True)
        raise ModelUnavailable(
            f"cannot load translation model '{settings.translation_model}' "
            f"with --engine {settings.engine} ({type(exc).__name__}: {exc})"
        ) from None
    return TranslationPipeline(engine, settings)


async def serve(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    on_listening: Callable[[int], None] | None = None,
    load: Callable[[Settings], Models] = load_models,
) -> int:
    """Serve until SIGTERM/SIGINT (or until `stop` is set, for callers that own the signals)."""
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", max(settings.max_message_bytes, 64 * 1024 * 1024)),
        # grpc-core holds calls the server has not picked up yet and, past 1,000 of them, cancels
        # some at random with no message (a burst of 5,000 calls lost a third that way). Let them
        # all reach the servicer, whose queue limit answers an overload with RESOURCE_EXHAUSTED.
        ("grpc.server.max_pending_requests", PENDING_CALLS_LIMIT),
        ("grpc.server.max_pending_requests_hard_limit", PENDING_CALLS_LIMIT),
    ]
    server = grpc.aio.server(options=options)
    runtime = Runtime(settings)
    health_servicer = health.aio.HealthServicer()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    add_translator_service(TranslatorServicer(runtime), server)
    if settings.reflection:
        from grpc_reflection.v1alpha import reflection

        names = (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, server)
    address = f"{settings.host}:{settings.port}"
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise ModelUnavailable(f"cannot listen on {address}: {exc}") from None
    await server.start()
    log.info("listening on %s:%d (health NOT_SERVING while the models load)", settings.host, port)
    if on_listening:
        on_listening(port)

    if stop is None:
        stop = asyncio.Event()
        install_signal_handlers(stop)

    loading = in_daemon_thread(load, settings)
    waiting_for_stop = asyncio.ensure_future(stop.wait())
    await asyncio.wait({loading, waiting_for_stop}, return_when=asyncio.FIRST_COMPLETED)
    if not loading.done():  # stopped while loading: nothing in flight, leave without waiting for it
        log.info("stopping while the models load; abandoning the load")
        from .models import stop_conversions

        await asyncio.to_thread(stop_conversions)
        await server.stop(0)
        return 0
    try:
        runtime.models = loading.result()
    except ModelUnavailable:
        await server.stop(0)
        raise
    # The models and libraries are loaded for good: keep them out of the cyclic collector, whose full
    # passes over them held the GIL (and so health checks) for up to 50 ms during large requests.
    gc.freeze()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("serving %s on %s:%d", settings.translation_model, settings.host, port)

    await waiting_for_stop
    await drain(runtime, health_servicer, settings.grace_period_s)
    # Whatever is still queued fails now (UNAVAILABLE); the engines may finish the batch they are on.
    closed = await asyncio.to_thread(runtime.models.close, ENGINE_STOP_S)
    await server.stop(1.0)  # time for those answers to reach their clients
    if not closed:
        log.warning("an engine is still running a batch; exiting without waiting for it")
    log.info("stopped")
    return 0


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


def exit_now(code: int) -> None:
    """End the process without interpreter teardown, which would wait for native engine threads,
    an abandoned model load or a conversion (they hold no state that needs saving)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m tarjama.server`."""
    return run_with(build_parser().parse_args(argv))


def run_with(args: argparse.Namespace) -> int:
    """Run the server from parsed flags (also the CLI's `tarjama serve`); returns the exit code."""
    try:
        settings = settings_from(args, os.environ)
    except ValueError as exc:
        print(f"tarjama serve: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        check_server_dependencies()
        code = asyncio.run(serve(settings))
    except ModelUnavailable as exc:
        print(f"tarjama serve: error: {exc}", file=sys.stderr)
        code = 1
    exit_now(code)
    return code  # not reached


if __name__ == "__main__":
    sys.exit(main())

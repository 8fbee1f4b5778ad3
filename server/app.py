"""Startup and shutdown: `tarjama serve`.

The port opens first with health NOT_SERVING; models load and warm up on a worker thread; health turns
SERVING. On SIGTERM/SIGINT health turns NOT_SERVING, new requests get UNAVAILABLE, in-flight ones
have the grace period to finish, and the process exits 0. A model that cannot be loaded ends the
process with one line on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tarjama.v1 import tarjama_pb2 as pb
from tarjama.v1 import tarjama_pb2_grpc as pb_grpc

from .engines.base import EngineInfo
from .errors import ModelUnavailable
from .pipeline import TranslationPipeline
from .servicer import TranslatorServicer
from .settings import Settings, build_parser, settings_from
from .summary import Summarizer, load_summarizer

log = logging.getLogger("tarjama.server")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Translator"].full_name
WARMUP_TEXT = "قال المتحدث إن الاجتماع سيعقد غدا."


@dataclass
class Models:
    """What startup loads: the translation pipeline and the summariser (None when turned off)."""

    pipeline: TranslationPipeline
    summarizer: Summarizer | None = None

    def close(self) -> None:
        self.pipeline.close()
        if self.summarizer is not None:
            self.summarizer.close()


@dataclass
class Runtime:
    """What the servicer reads: the settings, the loaded models (None while loading), the state."""

    settings: Settings
    models: Models | None = None
    shutting_down: bool = False
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
        m for m in ("torch", "transformers", "sentencepiece", "ctranslate2") if importlib.util.find_spec(m) is None
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
        pipeline.close()
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
    ]
    server = grpc.aio.server(options=options)
    runtime = Runtime(settings)
    health_servicer = health.aio.HealthServicer()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    pb_grpc.add_TranslatorServicer_to_server(TranslatorServicer(runtime), server)
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
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

    loading = asyncio.ensure_future(asyncio.to_thread(load, settings))
    waiting_for_stop = asyncio.ensure_future(stop.wait())
    await asyncio.wait({loading, waiting_for_stop}, return_when=asyncio.FIRST_COMPLETED)
    if not loading.done():  # stopped while loading: nothing in flight, leave at once
        await server.stop(0)
        return 0
    try:
        runtime.models = loading.result()
    except ModelUnavailable:
        await server.stop(0)
        raise
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("serving %s on %s:%d", settings.translation_model, settings.host, port)

    await waiting_for_stop
    log.info("shutting down: finishing in-flight requests (grace %.0fs)", settings.grace_period_s)
    runtime.shutting_down = True
    await health_servicer.enter_graceful_shutdown()
    await server.stop(settings.grace_period_s)
    runtime.models.close()
    log.info("stopped")
    return 0


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
        return asyncio.run(serve(settings))
    except ModelUnavailable as exc:
        print(f"tarjama serve: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

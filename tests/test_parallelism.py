"""Several batches in flight: the rule that sizes them, and English that does not depend on it."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace

import pytest
import sacrebleu

from tarjama.server.document import Document
from tarjama.server.parallelism import plan
from tarjama.server.pipeline import TranslationPipeline
from tarjama.server.settings import Settings, parse_settings
from tarjama.v1 import tarjama_pb2 as pb


def test_cpu_rule_is_one_single_threaded_worker_per_core_with_smaller_batches() -> None:
    two = plan(Settings(threads=2), "cpu")
    assert (two.workers, two.threads_per_worker, two.max_batch_size) == (2, 1, 16)
    assert two.chosen_by.startswith("rule:") and "one thread per worker" in two.chosen_by
    one = plan(Settings(threads=1), "cpu")
    assert (one.workers, one.threads_per_worker, one.max_batch_size) == (1, 1, 32)
    eight = plan(Settings(threads=8, threads_per_worker=2), "cpu")
    assert (eight.workers, eight.threads_per_worker) == (4, 2)


def test_flags_win_and_say_so() -> None:
    chosen = plan(Settings(threads=2, engine_workers=3, threads_per_worker=1, max_batch_size=8), "cpu")
    assert (chosen.workers, chosen.max_batch_size, chosen.chosen_by) == (3, 8, "flags")


def test_gpu_rule_runs_two_workers_on_every_listed_device() -> None:
    chosen = plan(Settings(device_index="0,1"), "cuda")
    assert chosen.device_indices == (0, 1)
    assert (chosen.workers_per_device, chosen.workers, chosen.max_batch_size) == (2, 4, 64)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--device-index", "0,x"], "--device-index"),
        (["--device-index", "1,1"], "--device-index"),
        (["--engine-workers", "-1"], "--engine-workers"),
        (["--threads-per-worker", "-2"], "--threads-per-worker"),
    ],
)
def test_bad_parallelism_flags_are_refused_by_name(flags: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_settings(flags, environ={})


def test_parallelism_flags_are_read_from_the_environment() -> None:
    settings = parse_settings([], environ={"TARJAMA_ENGINE_WORKERS": "3", "TARJAMA_THREADS_PER_WORKER": "2"})
    assert (settings.engine_workers, settings.threads_per_worker) == (3, 2)


@pytest.mark.parametrize("engine_name", ["ctranslate2", "torch"])
def test_same_english_through_every_worker_count_and_batch_size(
    engine_name, memorised_model, memorised_pairs, base_settings
):
    """Each memorised model gives its pairs back exactly (chrF 100) however the batches are formed."""
    from tarjama.server.engines import load_engine

    sources = [a for a, _ in memorised_pairs]
    references = [e for _, e in memorised_pairs]
    rng = random.Random(7)
    for workers in (1, 2, 3):
        settings = replace(
            base_settings,
            translation_model=str(memorised_model),
            engine=engine_name,
            engine_workers=workers,
            threads_per_worker=1,
        )
        engine = load_engine(settings)
        assert engine.parallelism.workers == workers
        try:
            for batch_size in (1, 4, 32):
                pipeline = TranslationPipeline(engine, replace(settings, max_batch_size=batch_size))
                assert pipeline.batcher.workers == workers
                # Several documents at once, each the pairs in its own order, so batches mix them.
                orders = [rng.sample(range(len(sources)), len(sources)) for _ in range(3)]

                async def run_all(orders=orders, pipeline=pipeline):  # noqa: ANN001, ANN202
                    documents = [Document(f"d{k}", tuple(sources[i] for i in order)) for k, order in enumerate(orders)]
                    return await asyncio.gather(*(pipeline.translate(d, None) for d in documents))

                translated = asyncio.run(run_all())
                assert max(pipeline.batcher.stats.size_histogram) <= batch_size
                for order, document in zip(orders, translated, strict=True):
                    english = [p.translation for p in document.paragraphs]
                    expected = [references[i] for i in order]
                    chrf = sacrebleu.corpus_chrf(english, [expected]).score
                    assert chrf == pytest.approx(100.0), (workers, batch_size, english, expected)
                assert pipeline.batcher.stop(30)
        finally:
            engine.close()


def test_get_info_reports_the_parallelism_chosen(ct2_server) -> None:  # noqa: ANN001
    import grpc

    from tarjama.v1 import tarjama_pb2_grpc as pb_grpc

    with grpc.insecure_channel(ct2_server.address) as channel:
        info = pb_grpc.TranslatorStub(channel).GetInfo(pb.GetInfoRequest(), timeout=10)
    chosen = info.parallelism
    assert chosen.workers == 2 and chosen.threads_per_worker == 1  # the tests' settings give 2 cores
    assert chosen.max_batch_size == 16 and chosen.max_batch_tokens > 0
    assert chosen.device == "cpu" and list(chosen.device_indices) == []
    assert chosen.chosen_by.startswith("rule:")

"""The offline ceiling: CTranslate2 alone, length-sorted batches, W workers x T threads.

Run by `bench.compare` in a child process of its own (under `taskset` for a core count), so nothing
else is loaded beside CTranslate2 (torch's OpenMP pool in the same process skews its threading):

    python -m bench.ceiling MODEL_DIR TOKENS.json CONFIGS.json   # prints one JSON result per config

TOKENS.json: a list of source-piece lists; CONFIGS.json: [{"workers", "threads", "batch_size"}, ...] plus
"beam_size", "max_output_tokens", "device", "compute_type" in each. The workers are Python threads each
calling `translate_batch` on the next batch, as the server's batcher does. glibc's malloc is set as
the server sets it (`tarjama.server.engines.allocator`), so the ceiling is the best CTranslate2 can do
here; TARJAMA_BENCH_MALLOC=default leaves glibc's defaults, to measure what that setting is worth.
"""

from __future__ import annotations

import json
import os
import queue
import resource
import sys
import threading
import time


def open_translator(model_dir: str, config: dict):  # type: ignore[type-arg]  # noqa: ANN201
    import ctranslate2

    return ctranslate2.Translator(
        model_dir,
        device=config["device"],
        device_index=config.get("device_index", [0]),
        compute_type=config["compute_type"],
        inter_threads=config["workers"],
        intra_threads=config["threads"],
    )


def measure(model_dir: str, tokens: list[list[str]], config: dict) -> dict:  # type: ignore[type-arg]
    translator = open_translator(model_dir, config)
    options = {"beam_size": config["beam_size"], "max_decoding_length": config["max_output_tokens"]}
    translator.translate_batch(tokens[:2], max_input_length=0, **options)  # warm-up: allocations
    ordered = sorted(tokens, key=len)
    size = config["batch_size"]
    pending: queue.SimpleQueue[list[list[str]]] = queue.SimpleQueue()
    for start in range(0, len(ordered), size):
        pending.put(ordered[start : start + size])
    batch_seconds: list[float] = []
    out_tokens = [0]
    lock = threading.Lock()

    def worker() -> None:
        while True:
            try:
                batch = pending.get_nowait()
            except queue.Empty:
                return
            started = time.perf_counter()
            results = translator.translate_batch(batch, max_input_length=0, **options)
            with lock:
                batch_seconds.append(time.perf_counter() - started)
                out_tokens[0] += sum(len(r.hypotheses[0]) for r in results)

    threads = [threading.Thread(target=worker) for _ in range(config["workers"])]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    used = resource.getrusage(resource.RUSAGE_SELF)
    return {
        **{k: config[k] for k in ("workers", "threads", "batch_size")},
        "sentences_per_s": len(ordered) / wall,
        "page_faults_per_sentence": (used.ru_minflt - usage.ru_minflt) / len(ordered),
        "kernel_ms_per_sentence": (used.ru_stime - usage.ru_stime) * 1000 / len(ordered),
        "output_tokens_per_s": out_tokens[0] / wall,
        "batch_s": sum(batch_seconds) / len(batch_seconds),  # one batch's time, beside the others running
    }


def direct_latency_ms(model_dir: str, tokens: list[list[str]], config: dict, repeats: int) -> float:  # type: ignore[type-arg]
    """Median time of one direct engine call on one sentence, as the server's engine is configured."""
    import statistics

    translator = open_translator(model_dir, config)
    options = {"beam_size": config["beam_size"], "max_decoding_length": config["max_output_tokens"]}
    translator.translate_batch(tokens[:1], max_input_length=0, **options)
    times = []
    for i in range(repeats):
        started = time.perf_counter()
        translator.translate_batch([tokens[i % len(tokens)]], max_input_length=0, **options)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    model_dir, tokens_path, configs_path = sys.argv[1:4]
    if os.environ.get("TARJAMA_BENCH_MALLOC") != "default":
        from tarjama.server.engines import allocator

        allocator.tune(len(os.sched_getaffinity(0)))
    tokens = json.loads(open(tokens_path, encoding="utf-8").read())
    for config in json.loads(open(configs_path, encoding="utf-8").read()):
        if config.get("direct_repeats"):
            result = {"direct_latency_ms": direct_latency_ms(model_dir, tokens, config, config["direct_repeats"])}
        else:
            result = measure(model_dir, tokens, config)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

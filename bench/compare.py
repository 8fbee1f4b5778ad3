"""The serving benchmark: Tarjama under concurrent load against an offline ceiling and a naive server.

    python -m bench.compare                      # opus-mt-ar-en-shaped random model, built locally
    python -m bench.compare --model ./opus-mt-ar-en

In one run, on the same sentences and decoding settings (beam 4, 64 output tokens):
1. ceiling: offline CTranslate2 over length-sorted batches, searched over workers x threads x batch
   size; the best is the ceiling (before and after the served run), with the one-batch-at-a-time
   figure beside it; each in a process of its own with only CTranslate2 loaded (bench/ceiling.py);
2. served: `tarjama serve` with default flags in its own process, N concurrent clients, one sentence
   per request;
3. naive: transformers generate() one request at a time, as a plain per-request server does;
4. idle latency: one request on an idle server against a direct engine call, configured as the server;
5. fairness: single-sentence requests sent while a 200-paragraph article is in flight;
6. peak RSS of the server process;
7. scaling: the search and the served run again on fewer cores (taskset), for a table by cores.
Served throughput is printed as a ratio of each reference. Random weights rarely emit
end-of-sentence, so sentences are chosen long enough that the 64-token cap binds for every system.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import grpc

from tarjama.server.text.segmentation import split_sentences
from tarjama.v1 import tarjama_pb2 as pb
from tarjama.v1 import tarjama_pb2_grpc as pb_grpc

from .ceiling import open_translator
from .data import flores_sentences
from .loadgen import latency_summary, percentile, run_load

ROOT = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- references ------------------------------------------------------------------------------------


GPU_WORKERS = (1, 2, 4)  # workers per GPU the search tries


def grid(cores: int, batch_sizes: list[int], device: str = "cpu") -> list[tuple[int, int, int]]:
    """Every (workers, threads per worker, batch size) that uses exactly `cores` cores (on CPU), or
    1, 2 and 4 workers per GPU (on CUDA, where CPU threads hardly matter)."""
    if device == "cpu":
        pairs = [(cores // t, t) for t in range(1, cores + 1) if cores % t == 0]
    else:
        pairs = [(w, 1) for w in GPU_WORKERS]
    return [(w, t, b) for w, t in pairs for b in batch_sizes]


def offline(
    ct2_dir: str,
    tokens: list[list[str]],
    configs: list[dict],  # type: ignore[type-arg]
    args: argparse.Namespace,
    cpus: str | None,
    env: dict[str, str] | None = None,
) -> list[dict]:  # type: ignore[type-arg]
    """Run bench.ceiling in a process of its own (only CTranslate2 loaded), pinned to `cpus` if given,
    with `env` added to its environment."""
    common = {
        "beam_size": args.beam_size,
        "max_output_tokens": args.max_output_tokens,
        "device": args.device,
        "device_index": [int(i) for i in args.device_index.split(",")],
        "compute_type": args.compute_type,
    }
    with tempfile.TemporaryDirectory() as scratch:
        tokens_path, configs_path = Path(scratch, "tokens.json"), Path(scratch, "configs.json")
        tokens_path.write_text(json.dumps(tokens))
        configs_path.write_text(json.dumps([{**common, **c} for c in configs]))
        command = [sys.executable, "-m", "bench.ceiling", ct2_dir, str(tokens_path), str(configs_path)]
        if cpus:
            command = ["taskset", "-c", cpus, *command]
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, check=False, env={**os.environ, **(env or {})}
        )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def config_of(result: dict) -> dict:  # type: ignore[type-arg]
    return {"workers": result["workers"], "threads": result["threads"], "batch_size": result["batch_size"]}


def label(c: dict) -> str:  # type: ignore[type-arg]
    return f"{c['workers']} x {c['threads']}, batch {c['batch_size']}"


def naive_server(model_path: str, sentences: list[str], args: argparse.Namespace) -> dict[str, float]:
    """transformers generate() one request at a time: how a plain per-request server behaves."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForSeq2SeqLM.from_pretrained(model_path).eval()
    out_tokens = 0
    with torch.inference_mode():
        model.generate(**tokenizer([sentences[0]], return_tensors="pt"), num_beams=args.beam_size, max_new_tokens=4)
        started = time.perf_counter()
        for sentence in sentences:
            inputs = tokenizer([sentence], return_tensors="pt")
            output = model.generate(**inputs, num_beams=args.beam_size, max_new_tokens=args.max_output_tokens)
            out_tokens += output.shape[1] - 1
        wall = time.perf_counter() - started
    del model
    gc.collect()
    return {"sentences_per_s": len(sentences) / wall, "output_tokens_per_s": out_tokens / wall}


# -- the served system -----------------------------------------------------------------------------


class Server:
    """`tarjama serve` in its own process, as users run it: default flags unless told, pinned to `cpus`."""

    def __init__(
        self,
        model: str,
        cache_dir: str,
        args: argparse.Namespace,
        max_batch_size: int | None = None,
        summary_model: str = "none",
        env: dict[str, str] | None = None,
        cpus: str | None = None,
        flags: list[str] | None = None,
    ) -> None:
        self.log_file = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)  # noqa: SIM115
        command = [
            sys.executable, "-m", "tarjama.server",
            "--translation-model", model,
            "--engine", args.engine,
            "--device", args.device,
            "--compute-type", args.compute_type,
            "--beam-size", str(args.beam_size),
            "--max-output-tokens", str(args.max_output_tokens),
            "--cache-dir", cache_dir,
            "--summary-model", summary_model,
            "--port", "0",
            *(["--max-batch-size", str(max_batch_size)] if max_batch_size else []),
            *(flags or []),
        ]  # fmt: skip
        if cpus:
            command = ["taskset", "-c", cpus, *command]
        self.proc = subprocess.Popen(
            command, stdout=self.log_file, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        self.address = self._wait_listening()
        self._wait_serving()

    def parallelism(self) -> dict[str, object]:
        """What the server chose (GetInfo), as a dict."""
        from google.protobuf.json_format import MessageToDict

        with grpc.insecure_channel(self.address) as channel:
            info = pb_grpc.TranslatorStub(channel).GetInfo(pb.GetInfoRequest(), timeout=30)
        return MessageToDict(info.parallelism, preserving_proto_field_name=True)

    def _wait_listening(self) -> str:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            match = re.search(r"listening on ([\d.]+:\d+)", Path(self.log_file.name).read_text())
            if match:
                return match.group(1)
            if self.proc.poll() is not None:
                raise RuntimeError(Path(self.log_file.name).read_text())
            time.sleep(0.1)
        raise RuntimeError("server did not start")

    def _wait_serving(self) -> None:
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        deadline = time.monotonic() + 900
        with grpc.insecure_channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                try:
                    if stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status == 1:
                        return
                except grpc.RpcError:
                    pass
                if self.proc.poll() is not None:
                    raise RuntimeError(Path(self.log_file.name).read_text())
                time.sleep(0.2)
        raise RuntimeError("server did not become SERVING")

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)
        os.unlink(self.log_file.name)


def idle_vs_direct(
    address: str,
    sentences: list[str],
    tokens: list[list[str]],
    ct2_dir: str,
    config: dict,  # type: ignore[type-arg]
    args: argparse.Namespace,
) -> tuple[float, float]:
    """Median ms of one request on the idle server and of a direct engine call configured as the server
    runs it, taken in turns (each after a pause longer than the batcher's idle threshold), so the
    machine's drift over a run, which is larger than the difference, falls on both alike."""
    translator = open_translator(
        ct2_dir,
        {
            **config,
            "device": args.device,
            "device_index": [int(i) for i in args.device_index.split(",")],
            "compute_type": args.compute_type,
        },
    )
    options = {"beam_size": args.beam_size, "max_decoding_length": args.max_output_tokens, "max_input_length": 0}
    translator.translate_batch(tokens[:1], **options)
    served, direct = [], []
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.TranslatorStub(channel)
        stub.Translate(pb.TranslateRequest(paragraphs=[sentences[0]]), timeout=600)
        for i in range(args.latency_repeats):
            time.sleep(0.1)
            started = time.perf_counter()
            stub.Translate(pb.TranslateRequest(paragraphs=[sentences[i % len(sentences)]]), timeout=600)
            served.append((time.perf_counter() - started) * 1000)
            time.sleep(0.1)
            started = time.perf_counter()
            translator.translate_batch([tokens[i % len(tokens)]], **options)
            direct.append((time.perf_counter() - started) * 1000)
    del translator
    return statistics.median(served), statistics.median(direct)


async def fairness(address: str, article: list[str], singles: list[str]) -> dict[str, float]:
    """Latency of one-sentence requests sent, one after another, while a long article is in flight."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.TranslatorStub(channel)
        started = time.perf_counter()
        long_call = asyncio.ensure_future(stub.Translate(pb.TranslateRequest(paragraphs=article), timeout=3600))
        await asyncio.sleep(0.5)
        latencies = []
        k = 0
        while not long_call.done():
            sent = time.perf_counter()
            await stub.Translate(pb.TranslateRequest(paragraphs=[singles[k % len(singles)]]), timeout=600)
            if not long_call.done():  # count only requests that overlapped the article throughout
                latencies.append((time.perf_counter() - sent) * 1000)
            k += 1
        response = await long_call
        article_s = time.perf_counter() - started
    assert len(response.paragraphs) == len(article)
    return {"article_s": article_s, "samples": len(latencies), **latency_summary(latencies)}


# -- the run ---------------------------------------------------------------------------------------


def main() -> None:  # noqa: PLR0915 - one linear script, easier to read in one piece
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="HF Marian checkpoint (default: an opus-mt-ar-en-shaped random model)")
    parser.add_argument("--engine", default="ctranslate2", choices=("ctranslate2",))
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--device-index", default="0", help="CUDA devices, e.g. 0,1 (for the ceiling and the server)")
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--beam-size", type=int, default=4)
    parser.add_argument("--max-output-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--sentences", type=int, default=320, help="sentences in the served and ceiling runs")
    parser.add_argument("--search-sentences", type=int, default=160, help="sentences per config in the search")
    parser.add_argument("--batch-sizes", default="8,16,32", help="batch sizes the ceiling search tries")
    parser.add_argument(
        "--core-counts", help="core counts for the scaling table (default: 1, 2, 4, ... up to all the cores)"
    )
    parser.add_argument("--naive-sentences", type=int, default=24)
    parser.add_argument("--fairness-paragraphs", type=int, default=200)
    parser.add_argument("--latency-repeats", type=int, default=20)
    parser.add_argument("--server-flags", default="", help="extra `tarjama serve` flags for the served runs")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    cpus = sorted(os.sched_getaffinity(0))
    cores = len(cpus)
    core_counts = (
        [int(c) for c in args.core_counts.split(",")]
        if args.core_counts
        else sorted({min(cores, 2**k) for k in range(cores.bit_length() + 1)})
    )
    if args.device != "cpu":
        core_counts = [cores]  # a table by CPU cores says nothing about a GPU
    server_flags = args.server_flags.split() + (["--device-index", args.device_index] if args.device != "cpu" else [])

    def pinned(n: int) -> str | None:
        return None if n == cores else ",".join(map(str, cpus[:n]))

    model = args.model
    if model is None:
        sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
        from build_models import ensure_models

        log("building the opus-mt-ar-en-shaped random model (once)")
        model = str(ensure_models(opus_shape=True)["opus-shape"])
    cache_dir = str(ROOT / "tests" / ".cache" / "bench")

    from tarjama.server.engines.marian_tokenizer import MarianTokenizer
    from tarjama.server.models import ctranslate2_model_dir, resolve_model

    tokenizer = MarianTokenizer(model)  # the server's own tokenizer: no torch in this process yet
    # The cap binds when 2 x source tokens + 10 >= max output tokens (the server's proportional cap).
    need = math.ceil((args.max_output_tokens - 10) / 2) + 1
    # One sentence per line as the server segments it, so every system translates the same units.
    pool = [s for s in flores_sentences() if len(split_sentences(s)) == 1]
    pool = [s for s, t in zip(pool, tokenizer.tokenize(pool), strict=True) if len(t) >= need]
    sentences = [pool[i % len(pool)] for i in range(args.sentences)]
    tokens = [list(t) for t in tokenizer.tokenize(sentences)]
    search_tokens = tokens[: args.search_sentences]
    ct2_dir = str(
        ctranslate2_model_dir(resolve_model(model, None, cache_dir, "translation"), args.compute_type, cache_dir)
    )
    results: dict[str, object] = {
        "machine": f"{platform.machine()}, {cores} cores, {platform.processor() or ''}".strip(", "),
        "command": " ".join(["python -m bench.compare", *sys.argv[1:]]),
        "model": model,
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "sentences": len(sentences),
        "mean_source_tokens": statistics.fmean(len(t) for t in tokens),
    }

    def search(n: int) -> list[dict]:  # type: ignore[type-arg]
        configs = [{"workers": w, "threads": t, "batch_size": b} for w, t, b in grid(n, batch_sizes, args.device)]
        log(f"ceiling search on {n} core(s): {len(configs)} configs x {len(search_tokens)} sentences")
        found = offline(ct2_dir, search_tokens, configs, args, pinned(n))
        for r in found:
            log(f"  {label(r)}: {r['sentences_per_s']:.2f} sentences/s")
        return found

    searched = search(cores)
    best = max(searched, key=lambda r: r["sentences_per_s"])
    # The one-batch-at-a-time design, for reference.
    single = {"workers": 1, "threads": cores if args.device == "cpu" else 1, "batch_size": 32}
    reference_configs = [config_of(best)] + ([single] if config_of(best) != single else [])
    log(f"ceiling before, {len(sentences)} sentences: best ({label(best)}) and one batch at a time")
    before = offline(ct2_dir, tokens, reference_configs, args, None)

    log(f"served run: tarjama serve with default flags {' '.join(server_flags)}, {args.concurrency} clients")
    server = Server(model, cache_dir, args, flags=server_flags)
    try:
        chosen = server.parallelism()
        log(f"  the server chose: {chosen}")
        served_config = {
            "workers": int(chosen["workers"]),
            "threads": int(chosen.get("threads_per_worker", 1)),
            "batch_size": int(chosen["max_batch_size"]),
        }
        log(f"idle latency against a direct engine call ({label(served_config)}), in turns")
        idle_ms, direct_ms = idle_vs_direct(server.address, sentences, tokens, ct2_dir, served_config, args)
        load_result = asyncio.run(run_load(server.address, sentences, concurrency=args.concurrency))
        log(f"  {load_result.sentences_per_s:.2f} sentences/s")
        log(f"fairness: {args.fairness_paragraphs}-paragraph article with single-sentence requests")
        article = [pool[i % len(pool)] for i in range(args.fairness_paragraphs)]
        fair = asyncio.run(fairness(server.address, article, sentences))
        rss = server.peak_rss_mb()
    finally:
        server.stop()
    log("direct engine call on one sentence with one batch at a time, for reference")
    repeats = args.latency_repeats
    direct_single = offline(ct2_dir, tokens, [{**single, "direct_repeats": repeats}], args, None)[0]
    # A full batch of the served configuration, measured in the search (or now, if it was not in it).
    served_offline = next((r for r in searched if config_of(r) == served_config), None)
    if served_offline is None:
        served_offline = offline(ct2_dir, search_tokens, [served_config], args, None)[0]

    log("ceiling after")
    after = offline(ct2_dir, tokens, reference_configs, args, None)

    scaling = []
    for n in core_counts:
        if n == cores:
            scaling.append(
                {"cores": n, "best": best, "single_batch": before[-1], "served": load_result.sentences_per_s}
            )
            continue
        found = search(n)
        n_best = max(found, key=lambda r: r["sentences_per_s"])
        n_single = offline(ct2_dir, search_tokens, [{"workers": 1, "threads": n, "batch_size": 32}], args, pinned(n))[0]
        log(f"served run on {n} core(s) (taskset), {len(search_tokens)} sentences")
        pinned_server = Server(model, cache_dir, args, cpus=pinned(n), flags=server_flags)
        try:
            n_served = asyncio.run(
                run_load(pinned_server.address, sentences[: len(search_tokens)], concurrency=args.concurrency)
            )
        finally:
            pinned_server.stop()
        scaling.append({"cores": n, "best": n_best, "single_batch": n_single, "served": n_served.sentences_per_s})

    log(f"naive server: generate() one request at a time, {args.naive_sentences} sentences")
    naive = naive_server(model, sentences[: args.naive_sentences], args)

    served_rate = load_result.sentences_per_s
    best_before, best_after = before[0]["sentences_per_s"], after[0]["sentences_per_s"]
    single_before, single_after = before[-1]["sentences_per_s"], after[-1]["sentences_per_s"]
    results.update(
        {
            "ceiling_search": searched,
            "ceiling_before": before,
            "ceiling_after": after,
            "served": {
                "parallelism": chosen,
                "load": asdict(load_result),
                "idle_latency_ms": idle_ms,
                "fairness": fair,
                "fairness_bound_ms": idle_ms + 2 * served_offline["batch_s"] * 1000,
                "peak_rss_mb": rss,
            },
            "direct_latency_ms": {
                label(served_config): direct_ms,
                f"{label(single)} (separate run)": direct_single["direct_latency_ms"],
            },
            "scaling": scaling,
            "naive": naive,
            "ratios": {
                "served_vs_ceiling_best": served_rate / max(best_before, best_after),
                "served_vs_ceiling_mean": served_rate / ((best_before + best_after) / 2),
                "served_vs_single_batch_ceiling": served_rate / max(single_before, single_after),
                "best_vs_single_batch_ceiling": (best_before + best_after) / (single_before + single_after),
                "served_vs_naive": served_rate / naive["sentences_per_s"],
                "idle_latency_vs_direct": idle_ms / direct_ms,
            },
        }
    )
    print(render(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, default=str))


def render(r: dict) -> str:  # type: ignore[type-arg]
    ratios, served = r["ratios"], r["served"]
    load, fair = served["load"], served["fairness"]
    lat = load["latency_ms"]
    before, after = r["ceiling_before"], r["ceiling_after"]
    lines = [
        f"machine: {r['machine']}; model: {r['model']}; {r['sentences']} sentences, "
        f"mean {r['mean_source_tokens']:.1f} source tokens",
        "",
        "ceiling search (workers x threads per worker, batch size: sentences/s):",
        *(f"  {label(c)}: {c['sentences_per_s']:.2f}" for c in r["ceiling_search"]),
        "",
        "| system | sentences/s | target tokens/s |",
        "|---|---|---|",
        f"| ceiling before: best offline ({label(before[0])}) | {before[0]['sentences_per_s']:.2f} "
        f"| {before[0]['output_tokens_per_s']:.0f} |",
        f"| ceiling before: one batch at a time ({label(before[-1])}) | {before[-1]['sentences_per_s']:.2f} "
        f"| {before[-1]['output_tokens_per_s']:.0f} |",
        f"| **served, {load['concurrency']} clients, default flags ({served['parallelism'].get('chosen_by', '')})** "
        f"| **{load['sentences_per_s']:.2f}** | **{load['output_tokens_per_s']:.0f}** |",
        f"| ceiling after: best offline | {after[0]['sentences_per_s']:.2f} | {after[0]['output_tokens_per_s']:.0f} |",
        f"| ceiling after: one batch at a time | {after[-1]['sentences_per_s']:.2f} "
        f"| {after[-1]['output_tokens_per_s']:.0f} |",
        f"| naive server (generate, one at a time) | {r['naive']['sentences_per_s']:.2f} "
        f"| {r['naive']['output_tokens_per_s']:.0f} |",
        "",
        f"served / best ceiling: {ratios['served_vs_ceiling_best']:.3f} (the faster run), "
        f"{ratios['served_vs_ceiling_mean']:.3f} (their mean); "
        f"served / one-batch ceiling: {ratios['served_vs_single_batch_ceiling']:.2f}x; "
        f"best / one-batch ceiling: {ratios['best_vs_single_batch_ceiling']:.2f}x; "
        f"served / naive: {ratios['served_vs_naive']:.1f}x",
        "",
        "| latency p50 / p95 / p99 (ms) | errors | batch sizes | padding | idle latency (ms) | direct call (ms) "
        "| fairness p95 (ms) | bound: idle + 2 batches (ms) | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {lat['p50']:.0f} / {lat['p95']:.0f} / {lat['p99']:.0f} | {sum(load['errors'].values())} "
        f"| {load['batch_sizes']} | {load['padding_ratio']:.2f} | {served['idle_latency_ms']:.0f} "
        f"| {'; '.join(f'{k}: {v:.0f}' for k, v in r['direct_latency_ms'].items())} "
        f"| {fair['p95']:.0f} (n={fair['samples']}) | {served['fairness_bound_ms']:.0f} "
        f"| {served['peak_rss_mb']:.0f} |",
        "",
        "| cores | best offline (config) | one batch at a time | served, default flags | served / best |",
        "|---|---|---|---|---|",
    ]
    for row in r["scaling"]:
        lines.append(
            f"| {row['cores']} | {row['best']['sentences_per_s']:.2f} ({label(row['best'])}) "
            f"| {row['single_batch']['sentences_per_s']:.2f} | {row['served']:.2f} "
            f"| {row['served'] / row['best']['sentences_per_s']:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()


__all__ = ["percentile"]

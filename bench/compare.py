"""The serving benchmark: Tarjama under concurrent load against an offline ceiling and a naive server.

    python -m bench.compare                      # opus-mt-ar-en-shaped random model, built locally
    python -m bench.compare --model ./opus-mt-ar-en

In one run, on the same sentences and decoding settings (beam 4, 64 output tokens):
1. ceiling: offline CTranslate2 translate_batch over all sentences, length-sorted (before and after);
2. served: `tarjama serve` in its own process, N concurrent clients, one sentence per request;
3. naive: transformers generate() one request at a time, as a plain per-request server does;
4. idle latency: one request on an idle server against a direct engine call;
5. fairness: single-sentence requests sent while a 200-paragraph article is in flight;
6. peak RSS of the server process.
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

from tarjama.server.segmentation import split_sentences
from tarjama.v1 import tarjama_pb2 as pb
from tarjama.v1 import tarjama_pb2_grpc as pb_grpc

from .data import flores_sentences
from .loadgen import latency_summary, percentile, run_load

ROOT = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- references ------------------------------------------------------------------------------------


def load_ct2(model_dir: str, device: str, compute_type: str, threads: int):  # noqa: ANN201
    import ctranslate2

    return ctranslate2.Translator(
        model_dir, device=device, compute_type=compute_type, inter_threads=1, intra_threads=threads
    )


def ceiling(translator, tokens: list[list[str]], args: argparse.Namespace) -> dict[str, float]:  # noqa: ANN001
    """Offline throughput: all sentences at once, length-sorted into batches of the server's size."""
    ordered = sorted(tokens, key=len)
    started = time.perf_counter()
    results = translator.translate_batch(
        ordered,
        max_batch_size=args.max_batch_size,
        beam_size=args.beam_size,
        max_decoding_length=args.max_output_tokens,
        max_input_length=0,
    )
    wall = time.perf_counter() - started
    out_tokens = sum(len(r.hypotheses[0]) for r in results)
    batches = math.ceil(len(ordered) / args.max_batch_size)
    return {
        "sentences_per_s": len(ordered) / wall,
        "output_tokens_per_s": out_tokens / wall,
        "batch_s": wall / batches,
        "mean_output_tokens": out_tokens / len(ordered),
    }


def direct_latency(translator, tokens: list[list[str]], args: argparse.Namespace, repeats: int) -> float:  # noqa: ANN001
    """Median time of one direct engine call on one sentence."""
    times = []
    for i in range(repeats):
        started = time.perf_counter()
        translator.translate_batch(
            [tokens[i % len(tokens)]],
            beam_size=args.beam_size,
            max_decoding_length=args.max_output_tokens,
            max_input_length=0,
        )
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def naive_server(model_path: str, sentences: list[str], args: argparse.Namespace) -> dict[str, float]:
    """transformers generate() one request at a time: how a plain per-request server behaves."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    torch.set_num_threads(args.threads)
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
    """`tarjama serve` in its own process, as users run it."""

    def __init__(
        self,
        model: str,
        cache_dir: str,
        args: argparse.Namespace,
        max_batch_size: int,
        summary_model: str = "none",
        env: dict[str, str] | None = None,
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
            "--max-batch-size", str(max_batch_size),
            "--threads", str(args.threads),
            "--cache-dir", cache_dir,
            "--summary-model", summary_model,
            "--port", "0",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            command, stdout=self.log_file, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        self.address = self._wait_listening()
        self._wait_serving()

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


async def idle_latency(address: str, sentences: list[str], repeats: int) -> float:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.TranslatorStub(channel)
        times = []
        for i in range(repeats):
            started = time.perf_counter()
            await stub.Translate(pb.TranslateRequest(paragraphs=[sentences[i % len(sentences)]]), timeout=600)
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


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
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--beam-size", type=int, default=4)
    parser.add_argument("--max-output-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--sentences", type=int, default=320, help="sentences in the served and ceiling runs")
    parser.add_argument("--naive-sentences", type=int, default=12)
    parser.add_argument("--batch-sizes", default="32,16", help="server --max-batch-size values to compare")
    parser.add_argument("--fairness-paragraphs", type=int, default=200)
    parser.add_argument("--latency-repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    args.max_batch_size = batch_sizes[0]

    model = args.model
    if model is None:
        sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
        from build_models import ensure_models

        log("building the opus-mt-ar-en-shaped random model (once)")
        model = str(ensure_models(opus_shape=True)["opus-shape"])
    cache_dir = str(ROOT / "tests" / ".cache" / "bench")

    from transformers import AutoTokenizer

    from tarjama.server.models import ctranslate2_model_dir, resolve_model

    tokenizer = AutoTokenizer.from_pretrained(model)
    # The cap binds when 2 x source tokens + 10 >= max output tokens (the server's proportional cap).
    need = math.ceil((args.max_output_tokens - 10) / 2)
    # One sentence per line as the server segments it, so every system translates the same units.
    pool = [s for s in flores_sentences() if len(split_sentences(s)) == 1 and len(tokenizer(s).input_ids) >= need]
    sentences = [pool[i % len(pool)] for i in range(args.sentences)]
    tokens = [tokenizer.convert_ids_to_tokens(tokenizer(s).input_ids) for s in sentences]
    ct2_dir = str(
        ctranslate2_model_dir(resolve_model(model, None, cache_dir, "translation"), args.compute_type, cache_dir)
    )
    results: dict[str, object] = {
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, {platform.processor() or ''}".strip(
            ", "
        ),
        "model": model,
        "settings": {k: v for k, v in vars(args).items() if k != "out"} | {"out": None},
        "sentences": len(sentences),
        "mean_source_tokens": statistics.fmean(len(t) for t in tokens),
    }

    log(f"ceiling (before), {len(sentences)} sentences")
    translator = load_ct2(ct2_dir, args.device, args.compute_type, args.threads)
    direct_ms = direct_latency(translator, tokens, args, args.latency_repeats)
    ceilings = {
        b: ceiling(translator, tokens, argparse.Namespace(**{**vars(args), "max_batch_size": b})) for b in batch_sizes
    }
    before = ceilings[batch_sizes[0]]
    del translator
    gc.collect()

    served: dict[int, dict[str, object]] = {}
    for b in batch_sizes:
        log(f"served run: --max-batch-size {b}, {args.concurrency} clients")
        server = Server(model, cache_dir, args, b)
        try:
            idle_ms = asyncio.run(idle_latency(server.address, sentences, args.latency_repeats))
            load = run_load(server.address, sentences, concurrency=args.concurrency)
            load_result = asyncio.run(load)
            log(f"fairness: {args.fairness_paragraphs}-paragraph article with single-sentence requests")
            article = [pool[i % len(pool)] for i in range(args.fairness_paragraphs)]
            fair = asyncio.run(fairness(server.address, article, sentences))
            rss = server.peak_rss_mb()
        finally:
            server.stop()
        full_batch_s = ceilings[b]["batch_s"]
        served[b] = {
            "load": asdict(load_result),
            "idle_latency_ms": idle_ms,
            "fairness": fair,
            "fairness_bound_ms": idle_ms + 2 * full_batch_s * 1000,
            "peak_rss_mb": rss,
        }

    log("ceiling (after)")
    translator = load_ct2(ct2_dir, args.device, args.compute_type, args.threads)
    after = ceiling(translator, tokens, args)
    del translator
    gc.collect()

    log(f"naive server: generate() one request at a time, {args.naive_sentences} sentences")
    naive = naive_server(model, sentences[: args.naive_sentences], args)

    main_run = served[batch_sizes[0]]
    load = main_run["load"]
    ceiling_mean = (before["sentences_per_s"] + after["sentences_per_s"]) / 2
    results.update(
        {
            "ceiling_before": before,
            "ceiling_after": after,
            "ceilings_by_batch_size": ceilings,
            "direct_latency_ms": direct_ms,
            "served": served,
            "naive": naive,
            "ratios": {
                "served_vs_ceiling_best": load["sentences_per_s"]
                / max(before["sentences_per_s"], after["sentences_per_s"]),  # type: ignore[index]
                "served_vs_ceiling_mean": load["sentences_per_s"] / ceiling_mean,  # type: ignore[index]
                "served_vs_naive": load["sentences_per_s"] / naive["sentences_per_s"],  # type: ignore[index]
                "ceiling_vs_naive": ceiling_mean / naive["sentences_per_s"],
                "idle_latency_vs_direct": main_run["idle_latency_ms"] / direct_ms,  # type: ignore[operator]
            },
        }
    )
    print(render(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, default=str))


def render(r: dict) -> str:  # type: ignore[type-arg]
    ratios = r["ratios"]
    lines = [
        f"machine: {r['machine']}; model: {r['model']}; {r['sentences']} sentences, "
        f"mean {r['mean_source_tokens']:.1f} source tokens",
        "",
        "| system | sentences/s | target tokens/s |",
        "|---|---|---|",
        f"| ceiling before (offline translate_batch) | {r['ceiling_before']['sentences_per_s']:.2f} "
        f"| {r['ceiling_before']['output_tokens_per_s']:.0f} |",
    ]
    for b, run in r["served"].items():
        load = run["load"]
        lines.append(
            f"| served, {load['concurrency']} clients, max batch {b} | {load['sentences_per_s']:.2f} "
            f"| {load['output_tokens_per_s']:.0f} |"
        )
    lines += [
        f"| ceiling after | {r['ceiling_after']['sentences_per_s']:.2f} "
        f"| {r['ceiling_after']['output_tokens_per_s']:.0f} |",
        f"| naive server (generate, one at a time) | {r['naive']['sentences_per_s']:.2f} "
        f"| {r['naive']['output_tokens_per_s']:.0f} |",
        "",
        f"served / ceiling: {ratios['served_vs_ceiling_best']:.3f} (against the faster ceiling), "
        f"{ratios['served_vs_ceiling_mean']:.3f} (against their mean); "
        f"served / naive: {ratios['served_vs_naive']:.1f}x; "
        f"ceiling / naive: {ratios['ceiling_vs_naive']:.1f}x",
        "",
        "| max batch | latency p50 / p95 / p99 (ms) | errors | batch sizes | padding | idle latency (ms) "
        "| fairness p95 (ms) | bound: idle + 2 full batches (ms) | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for b, run in r["served"].items():
        load, fair = run["load"], run["fairness"]
        lat = load["latency_ms"]
        lines.append(
            f"| {b} | {lat['p50']:.0f} / {lat['p95']:.0f} / {lat['p99']:.0f} | {sum(load['errors'].values())} "
            f"| {load['batch_sizes']} | {load['padding_ratio']:.2f} | {run['idle_latency_ms']:.0f} "
            f"| {fair['p95']:.0f} (n={fair['samples']}) | {run['fairness_bound_ms']:.0f} | {run['peak_rss_mb']:.0f} |"
        )
    lines += ["", f"direct engine call on one sentence: {r['direct_latency_ms']:.0f} ms"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()


__all__ = ["percentile"]

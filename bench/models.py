"""Two translation models in one server: what each costs, and whether they share the machine.

    python -m bench.models --out bench/results-models.json     # random models in each real shape

In one run, with the same sentences, decoding settings (beam 4, 64 output tokens) and flags:
1. offline: each model alone in CTranslate2 (bench/ceiling.py, in a process of its own), over
   bench.compare's search (workers x threads x batch size using every core); the best is the ceiling;
2. one-model servers: `tarjama serve` with only that model, `--concurrency` clients; the server's CPU
   per sentence split into its engine's threads, its Python threads and gRPC's core threads;
3. a two-model server (`--translation-model fast=...,best=...`): the same load on one model while
   the other is idle, for each model (the sharing target: >= 0.9x the one-model server);
4. the two-model server with both loaded at once, each with its own clients, the sentence counts in
   proportion to their one-model rates so that both run for about the same time: each model's rate
   as a share of its own one-model rate (first-come batch slots: their batches take turns);
5. the two-model server's peak RSS.
Steps 2-4 run `--rounds` times, interleaved, and each figure is the median: the machine drifts by
more over a run than the differences measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict
from pathlib import Path

from tarjama.server.text.segmentation import split_sentences

from .compare import ROOT, Server, grid, offline
from .data import flores_sentences
from .loadgen import LoadResult, run_load

SERVED_CONFIG = {"workers": 2, "threads": 1, "batch_size": 16}  # what the server chooses on 2 cores


def log(message: str) -> None:
    print(f"[bench.models {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def fixture_models() -> tuple[str, str]:
    sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
    from build_models import ensure_models

    log("building the opus-mt-ar-en- and opus-mt-tc-big-ar-en-shaped random models (once)")
    built = ensure_models(opus_shape=True, tcbig_shape=True)
    return str(built["opus-shape"]), str(built["tcbig-shape"])


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """Each thread's name and CPU seconds so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # ended meanwhile
            continue
        out[int(tid)] = (name, (int(fields[11]) + int(fields[12])) / ticks)
    return out


def python_threads(pid: int) -> set[int]:
    """The OS ids of the interpreter's threads (py-spy reads them); the rest are native: the engine's
    workers, and gRPC's core."""
    py_spy = Path(sys.executable).with_name("py-spy")
    try:
        dump = subprocess.run([str(py_spy), "dump", "--json", "-p", str(pid)], capture_output=True, text=True)
    except FileNotFoundError:
        dump = None
    if dump is None or dump.returncode != 0:
        log("py-spy (pip install py-spy) could not read the server's threads: the CPU split counts them all as engine")
        return set()
    return {int(t["os_thread_id"]) for t in json.loads(dump.stdout or "[]") if t.get("os_thread_id")}


def cpu_split(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], python: set[int],
              sentences: int) -> dict[str, float]:  # fmt: skip
    """CPU milliseconds per sentence: the server's Python threads (event loop, text work, batcher
    threads waiting on the engine), gRPC's core threads, and the engine's native threads."""
    split = {"python_ms": 0.0, "grpc_core_ms": 0.0, "engine_ms": 0.0}
    for tid, (name, seconds) in after.items():
        spent = seconds - before.get(tid, (name, 0.0))[1]
        grpc_core = name.startswith(("grpc", "event_engine"))
        key = "python_ms" if tid in python else "grpc_core_ms" if grpc_core else "engine_ms"
        split[key] += spent * 1000 / sentences
    return split


def rates(result: LoadResult) -> dict[str, float]:
    return {"sentences_per_s": result.sentences_per_s, "output_tokens_per_s": result.output_tokens_per_s,
            "errors": sum(result.errors.values()), "p50_ms": result.latency_ms["p50"]}  # fmt: skip


async def both(address: str, fast: list[str], best: list[str], concurrency: int) -> tuple[LoadResult, LoadResult]:
    return await asyncio.gather(
        run_load(address, fast, concurrency=concurrency, model="fast"),
        run_load(address, best, concurrency=concurrency, model="best"),
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Watched:
    """A server with its metrics endpoint, and what a load cost it: CPU by kind of thread, page faults,
    kernel time, and the share of the time its engine workers were busy."""

    def __init__(self, model: str, cache_dir: str, args: argparse.Namespace, env: dict[str, str] | None = None) -> None:
        self.metrics_port = free_port()
        self.server = Server(model, cache_dir, args, env=env, flags=["--metrics-port", str(self.metrics_port)])
        self.address = self.server.address
        self.workers = int(self.server.parallelism()["workers"])

    def engine_seconds(self) -> float:
        """Seconds of engine batches so far, over every translation model (from /metrics)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=30) as reply:
            text = reply.read().decode()
        pattern = r'tarjama_batch_duration_seconds_sum\{[^}]*role="translation"[^}]*\} ([0-9.e+-]+)'
        return sum(float(value) for value in re.findall(pattern, text))

    def process(self) -> tuple[int, float]:
        """Minor page faults and kernel CPU seconds of the server process so far."""
        fields = Path(f"/proc/{self.server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[7]), int(fields[12]) / os.sysconf("SC_CLK_TCK")

    def load(self, sentences: list[str], concurrency: int, model: str = "") -> tuple[LoadResult, dict[str, float]]:
        asyncio.run(run_load(self.address, sentences[:16], concurrency=16, model=model))  # warm
        python = python_threads(self.server.proc.pid)
        threads, engine, (faults, kernel) = thread_cpu(self.server.proc.pid), self.engine_seconds(), self.process()
        result = asyncio.run(run_load(self.address, sentences, concurrency=concurrency, model=model))
        after_faults, after_kernel = self.process()
        cost = cpu_split(threads, thread_cpu(self.server.proc.pid), python, result.sentences)
        cost["engine_busy_share"] = (self.engine_seconds() - engine) / (self.workers * result.wall_s)
        cost["page_faults_per_sentence"] = (after_faults - faults) / result.sentences
        cost["kernel_ms_per_sentence"] = (after_kernel - kernel) * 1000 / result.sentences
        return result, cost

    def stop(self) -> None:
        self.server.stop()


# glibc's defaults, for the comparison: a malloc variable set to its default value, so that the server
# (tarjama.server.engines.allocator) and the ceiling leave malloc as glibc has it.
GLIBC_DEFAULTS = {"MALLOC_ARENA_TEST": "8"}


def main() -> None:  # noqa: PLR0915 - one linear script, easier to read in one piece
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", help="HF Marian checkpoint for `fast` (default: opus-mt-ar-en's shape, random)")
    parser.add_argument("--best", help="HF Marian checkpoint for `best` (default: opus-mt-tc-big-ar-en's shape)")
    parser.add_argument("--engine", default="ctranslate2", choices=("ctranslate2",))
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--device-index", default="0")
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--beam-size", type=int, default=4)
    parser.add_argument("--max-output-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--sentences", type=int, default=400, help="sentences for `fast` in each run")
    parser.add_argument("--best-sentences", type=int, default=200, help="sentences for `best` in each run")
    parser.add_argument("--search-share", type=float, default=0.4,
                        help="share of the sentences each configuration of the ceiling search runs")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=2, help="runs of each kind, interleaved (median)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()

    fast_model, best_model = (args.fast, args.best) if args.fast and args.best else fixture_models()
    cache_dir = str(ROOT / "tests" / ".cache" / "bench")
    from tarjama.server.engines.marian_tokenizer import MarianTokenizer
    from tarjama.server.models import ctranslate2_model_dir, resolve_model

    # Long enough under both tokenizers that the 64-token cap binds (2 x source + 10 >= the cap).
    need = math.ceil((args.max_output_tokens - 10) / 2) + 1
    pool = [s for s in flores_sentences() if len(split_sentences(s)) == 1]
    tokenizers = {name: MarianTokenizer(path) for name, path in (("fast", fast_model), ("best", best_model))}
    for tokenizer in tokenizers.values():
        pool = [s for s, t in zip(pool, tokenizer.tokenize(pool), strict=True) if len(t) >= need]
    counts = {"fast": args.sentences, "best": args.best_sentences}
    sentences = {name: [pool[i % len(pool)] for i in range(n)] for name, n in counts.items()}
    paths = {"fast": fast_model, "best": best_model}
    results: dict[str, object] = {
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, {platform.processor()}".strip(", "),
        "command": " ".join(["python -m bench.models", *sys.argv[1:]]),
        "models": paths,
        "settings": {k: str(v) for k, v in vars(args).items() if k != "out"},
    }
    ct2_dirs = {name: str(ctranslate2_model_dir(resolve_model(path, None, cache_dir, "translation"),
                                                args.compute_type, cache_dir))
                for name, path in paths.items()}  # fmt: skip
    tokens = {name: [list(t) for t in tokenizers[name].tokenize(sentences[name])] for name in paths}

    # 1. The ceiling search, on a share of the sentences; its best configuration is then run on all of
    # them in every round, beside the served runs, so each ratio compares runs minutes apart.
    best_config = {}
    searched = {}
    for name in paths:
        configs = [{"workers": w, "threads": t, "batch_size": b}
                   for w, t, b in grid(len(os.sched_getaffinity(0)), [8, 16, 32], args.device)]  # fmt: skip
        subset = tokens[name][: max(32, round(len(tokens[name]) * args.search_share))]
        log(f"ceiling search {name}: {len(configs)} configurations x {len(subset)} sentences")
        searched[name] = offline(ct2_dirs[name], subset, configs, args, None)
        for r in searched[name]:
            log(f"  {r['workers']} x {r['threads']}, batch {r['batch_size']}: {r['sentences_per_s']:.2f} sentences/s")
        found = max(searched[name], key=lambda r: r["sentences_per_s"])
        best_config[name] = {k: found[k] for k in ("workers", "threads", "batch_size")}

    runs: dict[str, list[LoadResult]] = {}
    costs: dict[str, list[dict[str, float]]] = {}
    ceilings: dict[str, list[dict[str, float]]] = {}
    peak_rss: dict[str, list[float]] = {}

    def keep(key: str, result: LoadResult, cost: dict[str, float] | None = None) -> None:
        runs.setdefault(key, []).append(result)
        if cost is not None:
            costs.setdefault(key, []).append(cost)
        log(f"  {key}: {result.sentences_per_s:.2f} sentences/s")

    def ceiling(name: str, env: dict[str, str] | None = None, key: str = "") -> None:
        found = offline(ct2_dirs[name], tokens[name], [best_config[name]], args, None, env)[0]
        ceilings.setdefault(key or name, []).append(found)
        log(f"  offline {key or name}: {found['sentences_per_s']:.2f} sentences/s")

    def two_model_runs(env: dict[str, str] | None, tag: str) -> None:
        """The two-model server: each model alone, then both at once; its peak RSS after all three."""
        server = Watched(f"fast={fast_model},best={best_model}", cache_dir, args, env)
        try:
            for name in paths:
                keep(
                    f"{name} alone on the two-model server{tag}", *server.load(sentences[name], args.concurrency, name)
                )
            # Both for about the same time: best's count scaled by the one-model rates of this round.
            fast_rate, best_rate = (runs[f"{n} on a one-model server"][-1].sentences_per_s for n in ("fast", "best"))
            best_share = [pool[i % len(pool)] for i in range(max(16, round(args.sentences * best_rate / fast_rate)))]
            together = asyncio.run(both(server.address, sentences["fast"], best_share, args.concurrency))
            keep(f"fast with both loaded{tag}", together[0])
            keep(f"best with both loaded{tag}", together[1])
            peak_rss.setdefault(f"two{tag}", []).append(server.server.peak_rss_mb())
        finally:
            server.stop()

    for round_ in range(args.rounds):
        log(f"round {round_ + 1} of {args.rounds}")
        for name, path in paths.items():
            ceiling(name)
            server = Watched(path, cache_dir, args)
            try:
                keep(f"{name} on a one-model server", *server.load(sentences[name], args.concurrency))
                peak_rss.setdefault(name, []).append(server.server.peak_rss_mb())
            finally:
                server.stop()
            ceiling(name)
        two_model_runs(None, "")
        if round_ == 0:  # what the allocator setting is worth: the same runs with glibc's defaults
            log("with glibc's malloc defaults")
            for name, path in paths.items():
                ceiling(name, GLIBC_DEFAULTS, f"{name}, glibc defaults")
                server = Watched(path, cache_dir, args, GLIBC_DEFAULTS)
                try:
                    keep(
                        f"{name} on a one-model server, glibc defaults", *server.load(sentences[name], args.concurrency)
                    )
                finally:
                    server.stop()
            two_model_runs(GLIBC_DEFAULTS, ", glibc defaults")

    def median(key: str) -> float:
        return statistics.median(r.sentences_per_s for r in runs[key])

    def median_cost(key: str) -> dict[str, float]:
        return {k: statistics.median(c[k] for c in costs[key]) for k in costs[key][0]}

    table = {}
    for name in paths:
        alone = median(f"{name} on a one-model server")
        # Each round's served rate against the mean of the offline runs just before and after it.
        per_round = [
            run.sentences_per_s / statistics.fmean(c["sentences_per_s"] for c in ceilings[name][2 * i : 2 * i + 2])
            for i, run in enumerate(runs[f"{name} on a one-model server"])
        ]
        table[name] = {
            "offline_search": searched[name],
            "offline_best_config": best_config[name],
            "offline_runs": ceilings[name],
            "offline_median_sentences_per_s": statistics.median(c["sentences_per_s"] for c in ceilings[name]),
            "one_model_server": [rates(r) for r in runs[f"{name} on a one-model server"]],
            "served_over_offline_by_round": per_round,
            "served_over_offline": statistics.median(per_round),
            "two_model_server_alone": [rates(r) for r in runs[f"{name} alone on the two-model server"]],
            "two_model_alone_over_one_model": median(f"{name} alone on the two-model server") / alone,
            "both_loaded": [rates(r) for r in runs[f"{name} with both loaded"]],
            "both_loaded_over_one_model": median(f"{name} with both loaded") / alone,
            "server_cost": median_cost(f"{name} on a one-model server"),
            "one_model_server_peak_rss_mb": max(peak_rss[name]),
            "served_output_tokens_per_s": statistics.median(
                r.output_tokens_per_s for r in runs[f"{name} on a one-model server"]
            ),
            "glibc_defaults": {
                "offline": ceilings[f"{name}, glibc defaults"][0],
                "one_model_server": rates(runs[f"{name} on a one-model server, glibc defaults"][0]),
                "server_cost": costs[f"{name} on a one-model server, glibc defaults"][0],
                "two_model_server_alone": rates(runs[f"{name} alone on the two-model server, glibc defaults"][0]),
            },
        }
    cost = table["fast"]["offline_median_sentences_per_s"] / table["best"]["offline_median_sentences_per_s"]
    results.update({
        "by_model": table,
        "cost_best_over_fast": cost,
        "two_model_server_peak_rss_mb": max(peak_rss["two"]),
        "two_model_server_peak_rss_mb_glibc_defaults": max(peak_rss["two, glibc defaults"]),
    })  # fmt: skip
    text = json.dumps(results, indent=2, default=lambda o: asdict(o))
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

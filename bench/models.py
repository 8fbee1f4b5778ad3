"""Two translation models in one server: what each costs, and whether they share the machine.

    python -m bench.models --out bench/results-models.json     # random models in each real shape

In one run, with the same sentences, decoding settings (beam 4, 64 output tokens) and flags:
1. offline: each model alone in CTranslate2 (bench/ceiling.py, in a process of its own), in the
   configuration the server chooses (2 cores: 2 workers x 1 thread, batches of 16);
2. one-model servers: `tarjama serve` with only that model, `--concurrency` clients;
3. a two-model server (`--translation-model fast=...,best=...`): the same load on one model while
   the other is idle, for each model (the sharing target: >= 0.9x the one-model server);
4. the two-model server with both loaded at once, each with its own clients, the sentence counts in
   proportion to their one-model rates so that both run for about the same time: each model's rate
   as a share of its own one-model rate (first-come batch slots: their batches take turns);
5. the two-model server's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

from tarjama.server.text.segmentation import split_sentences

from .compare import ROOT, Server, offline
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


def rates(result: LoadResult) -> dict[str, float]:
    return {"sentences_per_s": result.sentences_per_s, "output_tokens_per_s": result.output_tokens_per_s,
            "errors": sum(result.errors.values()), "p50_ms": result.latency_ms["p50"]}  # fmt: skip


async def both(address: str, fast: list[str], best: list[str], concurrency: int) -> tuple[LoadResult, LoadResult]:
    return await asyncio.gather(
        run_load(address, fast, concurrency=concurrency, model="fast"),
        run_load(address, best, concurrency=concurrency, model="best"),
    )


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
    parser.add_argument("--sentences", type=int, default=320, help="sentences for `fast` in each run")
    parser.add_argument("--best-sentences", type=int, default=96, help="sentences for `best` in each run")
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

    offline_rates = {}
    for name, path in paths.items():
        ct2_dir = str(ctranslate2_model_dir(resolve_model(path, None, cache_dir, "translation"), args.compute_type,
                                            cache_dir))  # fmt: skip
        tokens = [list(t) for t in tokenizers[name].tokenize(sentences[name])]
        log(f"offline {name}: {len(tokens)} sentences, {SERVED_CONFIG}")
        offline_rates[name] = offline(ct2_dir, tokens, [SERVED_CONFIG], args, None)[0]
        log(f"  {offline_rates[name]['sentences_per_s']:.2f} sentences/s")

    alone = {}
    for name, path in paths.items():
        log(f"one-model server, {name}: {args.concurrency} clients")
        server = Server(path, cache_dir, args)
        try:
            asyncio.run(run_load(server.address, sentences[name][:16], concurrency=16))  # warm
            alone[name] = asyncio.run(run_load(server.address, sentences[name], concurrency=args.concurrency))
            alone[name + "_rss_mb"] = server.peak_rss_mb()
        finally:
            server.stop()
        log(f"  {alone[name].sentences_per_s:.2f} sentences/s")

    log("two-model server: each model loaded alone, then both at once")
    server = Server(f"fast={fast_model},best={best_model}", cache_dir, args)
    try:
        shared = {}
        for name in paths:
            asyncio.run(run_load(server.address, sentences[name][:16], concurrency=16, model=name))  # warm
            shared[name] = asyncio.run(
                run_load(server.address, sentences[name], concurrency=args.concurrency, model=name)
            )
            log(f"  {name} alone on the two-model server: {shared[name].sentences_per_s:.2f} sentences/s")
        # Both for about the same time: best's count scaled by the one-model rates.
        scale = alone["best"].sentences_per_s / alone["fast"].sentences_per_s
        best_share = [pool[i % len(pool)] for i in range(max(16, round(args.sentences * scale)))]
        together_fast, together_best = asyncio.run(
            both(server.address, sentences["fast"], best_share, args.concurrency)
        )
        log(f"  both at once: fast {together_fast.sentences_per_s:.2f}, best {together_best.sentences_per_s:.2f}")
        two_rss = server.peak_rss_mb()
    finally:
        server.stop()

    table = {}
    for name in paths:
        table[name] = {
            "offline": offline_rates[name],
            "one_model_server": rates(alone[name]),
            "one_model_server_rss_mb": alone[name + "_rss_mb"],
            "two_model_server_alone": rates(shared[name]),
            "served_over_offline": alone[name].sentences_per_s / offline_rates[name]["sentences_per_s"],
            "two_model_alone_over_one_model": shared[name].sentences_per_s / alone[name].sentences_per_s,
        }
    table["fast"]["both_loaded"] = rates(together_fast)
    table["best"]["both_loaded"] = rates(together_best)
    for name, result in (("fast", together_fast), ("best", together_best)):
        table[name]["both_loaded_over_one_model"] = result.sentences_per_s / alone[name].sentences_per_s
    cost = offline_rates["fast"]["sentences_per_s"] / offline_rates["best"]["sentences_per_s"]
    results.update({"by_model": table, "cost_best_over_fast": cost, "two_model_server_peak_rss_mb": two_rss})
    print(json.dumps(results, indent=2, default=lambda o: asdict(o)))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, default=lambda o: asdict(o)) + "\n")


if __name__ == "__main__":
    main()

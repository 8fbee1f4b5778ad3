"""Served throughput of this tree against an earlier git revision, alternating on the same machine.

    python -m bench.served_ab --baseline-ref f0ab80a --rounds 2 --out bench/results-served-ab.json

The load is bench.compare's "served" run: `tarjama serve` with default flags in its own process, the
opus-mt-ar-en-shaped random model (CTranslate2 int8, beam 4, 64 output tokens), 32 closed-loop clients,
one FLORES sentence per request, each long enough that the output cap binds. The two servers take turns
(this tree, the baseline, this tree, ...), so a machine that drifts moves both; the figure is the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

from bench.compare import ROOT, Server, log
from bench.data import flores_sentences
from bench.goodput import old_server_tree
from bench.loadgen import run_load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-ref", required=True, help="git revision whose server takes every other turn")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sentences", type=int, default=320)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-output-tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results-served-ab.json")
    args = parser.parse_args()
    server_args = argparse.Namespace(
        engine="ctranslate2", device="cpu", compute_type="int8", beam_size=4, max_output_tokens=args.max_output_tokens
    )
    sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
    from tarjama.server.engines.marian_tokenizer import MarianTokenizer
    from tarjama.server.text.segmentation import split_sentences

    from build_models import ensure_models

    model = str(ensure_models(opus_shape=True)["opus-shape"])
    cache_dir = str(ROOT / "tests" / ".cache" / "bench")
    tokenizer = MarianTokenizer(model)
    need = math.ceil((args.max_output_tokens - 10) / 2) + 1  # the cap binds (the server's proportional cap)
    pool = [s for s in flores_sentences() if len(split_sentences(s)) == 1]
    pool = [s for s, t in zip(pool, tokenizer.tokenize(pool), strict=True) if len(t) >= need][: args.sentences]
    runs: dict[str, list[dict[str, object]]] = {"this tree": [], f"baseline {args.baseline_ref}": []}
    with tempfile.TemporaryDirectory() as tmp:
        baseline_env = old_server_tree(args.baseline_ref, Path(tmp))
        for round_ in range(args.rounds):
            for name, env in (("this tree", None), (f"baseline {args.baseline_ref}", baseline_env)):
                log(f"round {round_ + 1}: {name}")
                server = Server(model, cache_dir, server_args, env=env)
                try:
                    asyncio.run(run_load(server.address, pool[:32], concurrency=args.concurrency))  # warm up
                    result = asyncio.run(run_load(server.address, pool, concurrency=args.concurrency))
                finally:
                    server.stop()
                run = {"sentences_per_s": round(result.sentences_per_s, 3), "p50_ms": result.latency_ms["p50"],
                       "p95_ms": result.latency_ms["p95"], "errors": result.errors}  # fmt: skip
                log(f"{name}: {run}")
                runs[name].append(run)
    medians = {name: statistics.median(float(r["sentences_per_s"]) for r in rs) for name, rs in runs.items()}  # type: ignore[arg-type]
    ours, theirs = medians.values()
    report = {
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
        "command": "python -m bench.served_ab " + " ".join(sys.argv[1:]),
        "load": f"{args.concurrency} closed-loop clients, {len(pool)} FLORES sentences, one per request",
        "runs": runs,
        "median_sentences_per_s": medians,
        "ratio": round(ours / theirs, 3),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

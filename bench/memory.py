"""Peak RSS of a two-model server, with the server's malloc setting and with glibc's defaults.

    python -m bench.memory --out bench/results-memory.json     # about 10 minutes on 2 cores

The same load as bench.models' two-model server (random models in each real shape; CTranslate2
int8, beam 4, 64 output tokens; 32 clients): `fast` alone, `best` alone, then both at once, and the
server's peak RSS (VmHWM) after the three. Run once as `tarjama serve` sets malloc
(server/engines/allocator.py), once with glibc's defaults, in turns `--rounds` times.
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
import time
from pathlib import Path

from tarjama.server.text.segmentation import split_sentences

from .compare import ROOT
from .data import flores_sentences
from .models import GLIBC_DEFAULTS, Watched, both, fixture_models


def log(message: str) -> None:
    print(f"[bench.memory {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="ctranslate2", choices=("ctranslate2",))
    parser.add_argument("--device", default="cpu", choices=("cpu",))
    parser.add_argument("--device-index", default="0")
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--beam-size", type=int, default=4)
    parser.add_argument("--max-output-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--sentences", type=int, default=320, help="sentences for `fast`; `best` gets half")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    fast_model, best_model = fixture_models()
    from tarjama.server.engines.marian_tokenizer import MarianTokenizer

    need = math.ceil((args.max_output_tokens - 10) / 2) + 1  # the 64-token cap binds, as in bench.models
    pool = [s for s in flores_sentences() if len(split_sentences(s)) == 1]
    for path in (fast_model, best_model):
        pool = [s for s, t in zip(pool, MarianTokenizer(path).tokenize(pool), strict=True) if len(t) >= need]
    fast = [pool[i % len(pool)] for i in range(args.sentences)]
    best = [pool[(i + 400) % len(pool)] for i in range(args.sentences // 2)]
    cache_dir = str(ROOT / "tests" / ".cache" / "bench")
    runs: dict[str, list[dict[str, float]]] = {"tarjama's malloc setting": [], "glibc defaults": []}
    for round_ in range(args.rounds):
        for label, env in (("tarjama's malloc setting", None), ("glibc defaults", GLIBC_DEFAULTS)):
            server = Watched(f"fast={fast_model},best={best_model}", cache_dir, args, env)
            try:
                idle = server.server.peak_rss_mb()
                fast_alone, _ = server.load(fast, args.concurrency, "fast")
                best_alone, _ = server.load(best, args.concurrency, "best")
                together = asyncio.run(both(server.address, fast, best, args.concurrency))
                run = {
                    "loaded_idle_rss_mb": idle,
                    "peak_rss_mb": server.server.peak_rss_mb(),
                    "fast_alone_sentences_per_s": fast_alone.sentences_per_s,
                    "best_alone_sentences_per_s": best_alone.sentences_per_s,
                    "fast_both_loaded_sentences_per_s": together[0].sentences_per_s,
                    "best_both_loaded_sentences_per_s": together[1].sentences_per_s,
                }
            finally:
                server.stop()
            runs[label].append(run)
            rates = ", ".join(f"{k.removesuffix('_sentences_per_s')} {v:.2f}" for k, v in run.items() if "per_s" in k)
            log(f"round {round_ + 1}, {label}: peak {run['peak_rss_mb']:.0f} MB; {rates}")
    results = {
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, {platform.processor()}".strip(", "),
        "command": " ".join(["python -m bench.memory", *sys.argv[1:]]),
        "runs": runs,
        "median_peak_rss_mb": {k: statistics.median(r["peak_rss_mb"] for r in v) for k, v in runs.items()},
    }
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

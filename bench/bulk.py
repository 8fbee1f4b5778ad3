"""Bulk throughput: `tarjama bulk` on a local Ray against the offline ceiling, in one run.

    python -m bench.bulk                    # opus-mt-ar-en-shaped random model, built locally
    python -m bench.bulk --model ./opus-mt-ar-en

1. ceiling (before): offline CTranslate2 over the same sentences (bench/ceiling.py, its own process),
   the best of the configurations that fit the cores;
2. bulk: `tarjama bulk` on an archive of articles made of those sentences (one per paragraph, so the
   two translate the same units), default flags but the decoding settings; the output directory is
   watched to time the records as they land;
3. ceiling (after), since this machine drifts over minutes.
Reported: sentences/s end to end, and after the start: the same run less the time of a run on a
one-article archive (Ray's start, the model load and one short article), so a large archive's rate.
Both as ratios of the mean ceiling.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tarjama.server.text.segmentation import split_sentences

from .compare import ROOT, config_of, label, log, offline
from .data import flores_sentences


def ceiling_configs(cores: int) -> list[dict]:  # type: ignore[type-arg]
    """The server's rule (one worker per core, batch 16) and batch 32: the winners of bench.compare's searches."""
    return [{"workers": cores, "threads": 1, "batch_size": b} for b in (16, 32)]


def run_bulk(archive: Path, output: Path, model: str, cache_dir: str, args: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    """`tarjama bulk`, timed from outside: (seconds, records) each time the output grew."""
    command = [
        sys.executable, "-m", "tarjama.client.cli", "bulk", str(archive), str(output),
        "--translation-model", model, "--cache-dir", cache_dir, "--summary-model", "none",
        "--compute-type", args.compute_type, "--beam-size", str(args.beam_size),
        "--max-output-tokens", str(args.max_output_tokens), "--batch-size", str(args.batch_size),
    ]  # fmt: skip
    started = time.monotonic()
    process = subprocess.Popen(
        command, cwd=ROOT, stderr=subprocess.PIPE, text=True, env={**os.environ, "RAY_ADDRESS": ""}
    )
    landed: list[tuple[float, int]] = []
    while process.poll() is None:
        count = sum(p.read_bytes().count(b"\n") for p in output.glob("part-*.jsonl"))
        if count and (not landed or count > landed[-1][1]):
            landed.append((time.monotonic() - started, count))
        time.sleep(0.05)
    end = time.monotonic() - started
    stderr = process.stderr.read() if process.stderr else ""
    if process.returncode != 0:
        raise RuntimeError(stderr[-3000:])
    count = sum(p.read_bytes().count(b"\n") for p in output.glob("part-*.jsonl"))
    if not landed or landed[-1][1] < count:
        landed.append((end, count))
    return {"landed": landed, "total_s": end, "log": stderr.strip().splitlines()[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="HF Marian checkpoint (default: an opus-mt-ar-en-shaped random model)")
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--beam-size", type=int, default=4)
    parser.add_argument("--max-output-tokens", type=int, default=64)
    parser.add_argument("--sentences", type=int, default=480)
    parser.add_argument("--per-article", type=int, default=8, help="sentences (paragraphs) per article")
    parser.add_argument("--batch-size", type=int, default=16, help="articles per actor call")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    model = args.model
    if model is None:
        sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
        from build_models import ensure_models

        model = str(ensure_models(opus_shape=True)["opus-shape"])
    cache_dir = str(ROOT / "tests" / ".cache" / "bench")

    from tarjama.server.engines.marian_tokenizer import MarianTokenizer
    from tarjama.server.models import ctranslate2_model_dir, resolve_model

    tokenizer = MarianTokenizer(model)
    need = math.ceil((args.max_output_tokens - 10) / 2) + 1  # the 64-token cap binds for every sentence
    pool = [s for s in flores_sentences() if len(split_sentences(s)) == 1]
    pool = [s for s, t in zip(pool, tokenizer.tokenize(pool), strict=True) if len(t) >= need]
    sentences = [pool[i % len(pool)] for i in range(args.sentences)]
    tokens = [list(t) for t in tokenizer.tokenize(sentences)]
    ct2_dir = str(
        ctranslate2_model_dir(resolve_model(model, None, cache_dir, "translation"), args.compute_type, cache_dir)
    )
    args.device, args.device_index = "cpu", "0"  # what bench.compare.offline reads

    log(f"ceiling before: {len(sentences)} sentences")
    before = offline(ct2_dir, tokens, ceiling_configs(cores), args, None)
    with tempfile.TemporaryDirectory() as scratch:
        archive, output = Path(scratch, "archive.jsonl"), Path(scratch, "out")
        with archive.open("w", encoding="utf-8") as out:
            for n, start in enumerate(range(0, len(sentences), args.per_article)):
                text = "\n\n".join(sentences[start : start + args.per_article])
                out.write(json.dumps({"id": n, "text": text}, ensure_ascii=False) + "\n")
        tiny = Path(scratch, "tiny.jsonl")
        tiny.write_text(json.dumps({"id": 0, "text": sentences[0]}, ensure_ascii=False) + "\n", encoding="utf-8")
        log("bulk, one article: the fixed cost of a run")
        start = run_bulk(tiny, Path(scratch, "tiny-out"), model, cache_dir, args)
        log(f"bulk: {math.ceil(len(sentences) / args.per_article)} articles, batches of {args.batch_size}")
        bulk = run_bulk(archive, output, model, cache_dir, args)
        translated = [json.loads(line) for p in output.glob("part-*.jsonl") for line in p.read_text().splitlines()]
    units = sum(r["info"]["sentences"] for r in translated)
    assert units == len(sentences), f"bulk translated {units} sentences, the ceiling {len(sentences)}"
    log("ceiling after")
    after = offline(ct2_dir, tokens, ceiling_configs(cores), args, None)

    articles = len(translated)
    first_s = bulk["landed"][0][0]
    steady = units / (bulk["total_s"] - start["total_s"])
    end_to_end = units / bulk["total_s"]
    best_before = max(before, key=lambda r: r["sentences_per_s"])
    best_after = max(after, key=lambda r: r["sentences_per_s"])
    ceiling = statistics.fmean([best_before["sentences_per_s"], best_after["sentences_per_s"]])
    results = {
        "machine": f"{platform.machine()}, {cores} cores",
        "command": " ".join(["python -m bench.bulk", *sys.argv[1:]]),
        "model": model,
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "sentences": len(sentences),
        "articles": articles,
        "ceiling_before": {"config": config_of(best_before), "sentences_per_s": best_before["sentences_per_s"]},
        "ceiling_after": {"config": config_of(best_after), "sentences_per_s": best_after["sentences_per_s"]},
        "all_ceilings": [{**config_of(r), "sentences_per_s": r["sentences_per_s"]} for r in before + after],
        "bulk_after_start_sentences_per_s": steady,
        "bulk_end_to_end_sentences_per_s": end_to_end,
        "bulk_total_s": bulk["total_s"],
        "bulk_first_records_s": first_s,
        "one_article_run_s": start["total_s"],
        "after_start_vs_ceiling": steady / ceiling,
        "end_to_end_vs_ceiling": end_to_end / ceiling,
        "bulk_log": bulk["log"],
    }
    print(
        f"ceiling: {best_before['sentences_per_s']:.2f} ({label(best_before)}) before, "
        f"{best_after['sentences_per_s']:.2f} ({label(best_after)}) after\n"
        f"bulk: {steady:.2f} sentences/s after the start = {steady / ceiling:.2f}x the mean ceiling "
        f"(a one-article run takes {start['total_s']:.0f}s); {end_to_end:.2f} end to end "
        f"({bulk['total_s']:.0f}s, first records at {first_s:.0f}s) = {end_to_end / ceiling:.2f}x\n{bulk['log']}"
    )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

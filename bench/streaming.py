"""Streaming: time to the first paragraph and to the whole of a long article, on an idle server.

    python -m bench.streaming                 # opus-mt-ar-en-shaped random model, built locally
    python -m bench.streaming --model ./opus-mt-ar-en

One `tarjama serve` (default flags) translates a 200-paragraph article (FLORES sentences, one per
paragraph, long enough that the 64-token cap binds) in turns: TranslateStream, timing its first
message and its last, and plain Translate, timing the whole. Target: the first paragraph within 10%
of the whole. The streamed whole against Translate's shows what taking the sentences in order (not
shortest first) costs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import grpc

from tarjama.server.text.segmentation import split_sentences
from tarjama.v1 import tarjama_pb2 as pb
from tarjama.v1 import tarjama_pb2_grpc as pb_grpc

from .compare import ROOT, Server, log
from .data import flores_sentences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="HF Marian checkpoint (default: an opus-mt-ar-en-shaped random model)")
    parser.add_argument("--paragraphs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--beam-size", type=int, default=4)
    parser.add_argument("--max-output-tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    args.engine, args.device = "ctranslate2", "cpu"  # what bench.compare.Server reads
    model = args.model
    if model is None:
        sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
        from build_models import ensure_models

        model = str(ensure_models(opus_shape=True)["opus-shape"])
    from tarjama.server.engines.marian_tokenizer import MarianTokenizer

    tokenizer = MarianTokenizer(model)
    need = math.ceil((args.max_output_tokens - 10) / 2) + 1
    pool = [s for s in flores_sentences() if len(split_sentences(s)) == 1]
    pool = [s for s, t in zip(pool, tokenizer.tokenize(pool), strict=True) if len(t) >= need]
    paragraphs = [pool[i % len(pool)] for i in range(args.paragraphs)]
    request = pb.TranslateRequest(paragraphs=paragraphs)

    server = Server(model, str(ROOT / "tests" / ".cache" / "bench"), args)
    runs = []
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.TranslatorStub(channel)
            stub.Translate(pb.TranslateRequest(paragraphs=paragraphs[:4]), timeout=600)  # warm
            for repeat in range(args.repeats):
                started = time.perf_counter()
                first = None
                received = 0
                for message in stub.TranslateStream(request, timeout=1200):
                    if message.paragraphs and first is None:
                        first = time.perf_counter() - started
                    received += len(message.paragraphs)
                streamed = time.perf_counter() - started
                assert received == len(paragraphs)
                started = time.perf_counter()
                stub.Translate(request, timeout=1200)
                whole = time.perf_counter() - started
                runs.append({"first_s": first, "streamed_s": streamed, "translate_s": whole})
                log(f"run {repeat + 1}: first {first:.2f}s, streamed {streamed:.1f}s, Translate {whole:.1f}s")
    finally:
        server.stop()
    first = statistics.median(r["first_s"] for r in runs)
    streamed = statistics.median(r["streamed_s"] for r in runs)
    whole = statistics.median(r["translate_s"] for r in runs)
    results = {
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
        "command": " ".join(["python -m bench.streaming", *sys.argv[1:]]),
        "model": model,
        "paragraphs": len(paragraphs),
        "runs": runs,
        "first_paragraph_s": first,
        "streamed_whole_s": streamed,
        "translate_whole_s": whole,
        "first_vs_whole": first / streamed,
        "streamed_vs_translate": streamed / whole,
    }
    print(
        f"{len(paragraphs)} paragraphs (medians of {len(runs)}): first paragraph {first:.2f}s = "
        f"{first / streamed:.1%} of the streamed whole ({streamed:.1f}s); Translate {whole:.1f}s "
        f"(streamed / Translate = {streamed / whole:.2f})"
    )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Time to summary against time to translation, per article, on this machine.

    python -m bench.summary_timing

Serves the opus-mt-ar-en-shaped model with each summariser in turn: extractive, and an abstractive
model in sshleifer/distilbart-cnn-12-6's exact shape (d_model 1024, 12+6 layers, 16 heads, FFN 4096,
vocab 50264, its generation settings) with random weights, built here: it costs what the real one
costs. Articles: FLORES-200 devtest articles (sentences joined by source URL, one paragraph each) and
one long article of 60 paragraphs. Each article is translated (a Translate request on the Arabic) and
summarised (a Summarize request on its FLORES English reference: a random translation model writes
English far longer in summary tokens than real English, which would inflate the summary's input).
Random weights rarely stop early, so both models write their full budgets (64 tokens a sentence,
the summary's token share per part): a worst case for both.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import grpc

from tarjama.v1 import tarjama_pb2 as pb
from tarjama.v1 import tarjama_pb2_grpc as pb_grpc

from .compare import ROOT, Server, log
from .data import flores_articles


def time_articles(address: str, articles: list[tuple[list[str], list[str]]]) -> list[dict[str, float]]:
    """Per (Arabic, English) article: time to translate the Arabic, time to summarise the English."""
    rows = []
    with grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 64 << 20)]) as channel:
        stub = pb_grpc.TranslatorStub(channel)
        for arabic, english in articles:
            started = time.perf_counter()
            stub.Translate(pb.TranslateRequest(paragraphs=arabic), timeout=3600)
            translated = time.perf_counter()
            summary = stub.Summarize(pb.SummarizeRequest(paragraphs=english), timeout=3600).summary
            rows.append(
                {
                    "paragraphs": len(arabic),
                    "translate_ms": (translated - started) * 1000,
                    "summarize_ms": (time.perf_counter() - translated) * 1000,
                    "summary_sentences": len(summary.sentences),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=8, help="FLORES articles (the longest ones)")
    parser.add_argument("--long-paragraphs", type=int, default=60)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
    from build_models import ensure_models

    cache = ROOT / "tests" / ".cache"
    log("building the opus-mt-ar-en- and distilbart-cnn-12-6-shaped random models (once)")
    models = ensure_models(opus_shape=True, distilbart_shape=True)
    translation, abstractive = str(models["opus-shape"]), str(models["distilbart-shape"])
    arabic_articles, english_articles = flores_articles(), flores_articles("eng")
    pairs = sorted(zip(arabic_articles, english_articles, strict=True), key=lambda p: -len(p[0]))
    articles = [(list(a), list(e)) for a, e in pairs[: args.articles]]
    flat_ar = [s for a in arabic_articles for s in a]
    flat_en = [s for a in english_articles for s in a]
    long_article = (flat_ar[: args.long_paragraphs], flat_en[: args.long_paragraphs])
    serve_args = argparse.Namespace(
        engine="ctranslate2", device="cpu", compute_type="int8", beam_size=4, max_output_tokens=64, threads=2
    )
    results: dict[str, object] = {"articles": [len(a) for a, _ in articles], "long_paragraphs": len(long_article[0])}
    for name, model in (("extractive", "extractive"), ("abstractive (distilbart shape)", abstractive)):
        log(f"serving with the {name} summariser")
        server = Server(translation, str(cache / "bench"), serve_args, 32, summary_model=model)
        try:
            rows = time_articles(server.address, articles)
            long_row = time_articles(server.address, [long_article])[0]
        finally:
            server.stop()
        results[name] = {
            "flores_translate_ms_mean": statistics.fmean(r["translate_ms"] for r in rows),
            "flores_summarize_ms_mean": statistics.fmean(r["summarize_ms"] for r in rows),
            "flores_ratio_mean": statistics.fmean(r["summarize_ms"] / r["translate_ms"] for r in rows),
            "long": long_row,
            "rows": rows,
        }
    print(render(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


def render(results: dict) -> str:  # type: ignore[type-arg]
    lines = [
        f"FLORES articles of {results['articles']} paragraphs; long article of {results['long_paragraphs']} paragraphs",
        "",
        "| summariser | FLORES article: translate (ms) | summary (ms) | summary / translation "
        "| long article: translate (ms) | summary (ms) | summary / translation |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("extractive", "abstractive (distilbart shape)"):
        r = results[name]
        long = r["long"]
        lines.append(
            f"| {name} | {r['flores_translate_ms_mean']:.0f} | {r['flores_summarize_ms_mean']:.0f} "
            f"| {r['flores_ratio_mean']:.2f} | {long['translate_ms']:.0f} | {long['summarize_ms']:.0f} "
            f"| {long['summarize_ms'] / long['translate_ms']:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()

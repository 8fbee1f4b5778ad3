"""Time to summary against time to translation, per article, on this machine.

    python -m bench.summary_timing

Serves the opus-mt-ar-en-shaped model with each summariser in turn: extractive, and an abstractive
model in sshleifer/distilbart-cnn-12-6's exact shape (d_model 1024, 12+6 layers, 16 heads, FFN 4096,
vocab 50264, its generation settings) with random weights, built here: it costs what the real one
costs. Articles: FLORES-200 devtest articles (sentences joined by source URL, one paragraph each) and
one long article of 60 paragraphs. Each article is one Translate request with summarize set; the
response's timings split translation from summary. Random weights rarely stop early, so both models
write their full budgets (64 tokens a sentence, 130 summary tokens): a worst case for both.
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


def build_distilbart_shape(out: Path) -> Path:
    """Random weights in distilbart-cnn-12-6's shape, with the fixture byte-level BPE padded to its vocab."""
    if (out / "config.json").is_file():
        return out
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import BartConfig, BartForConditionalGeneration, BartTokenizer, GenerationConfig

    vocab_size = 50264
    work = out.with_name(out.name + ".work")
    work.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train(
        files=[str(ROOT / "tests" / "fixtures" / "data" / "flores200-devtest.eng")],
        vocab_size=2000,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        show_progress=False,
    )
    bpe.save_model(str(work))
    vocab = json.loads((work / "vocab.json").read_text())
    vocab.update({f"<unused{i}>": i for i in range(len(vocab), vocab_size)})
    (work / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = BartTokenizer.from_pretrained(str(work))
    tokenizer.save_pretrained(str(out))
    torch.manual_seed(3)
    config = BartConfig(
        vocab_size=vocab_size,
        d_model=1024,
        encoder_layers=12,
        decoder_layers=6,
        encoder_attention_heads=16,
        decoder_attention_heads=16,
        encoder_ffn_dim=4096,
        decoder_ffn_dim=4096,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
        forced_bos_token_id=tokenizer.bos_token_id,
        forced_eos_token_id=tokenizer.eos_token_id,
    )
    BartForConditionalGeneration(config).save_pretrained(str(out))
    GenerationConfig(
        num_beams=4, length_penalty=2.0, no_repeat_ngram_size=3, min_length=56, max_length=142,
        decoder_start_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        forced_bos_token_id=tokenizer.bos_token_id, forced_eos_token_id=tokenizer.eos_token_id,
    ).save_pretrained(str(out))  # fmt: skip
    return out


def time_articles(address: str, articles: list[list[str]]) -> list[dict[str, float]]:
    rows = []
    with grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 64 << 20)]) as channel:
        stub = pb_grpc.TranslatorStub(channel)
        for paragraphs in articles:
            started = time.perf_counter()
            response = stub.Translate(pb.TranslateRequest(paragraphs=paragraphs, summarize=True), timeout=3600)
            rows.append(
                {
                    "paragraphs": len(paragraphs),
                    "translate_ms": response.info.timings.translate_ms,
                    "summarize_ms": response.info.timings.summarize_ms,
                    "total_ms": (time.perf_counter() - started) * 1000,
                    "summary_sentences": len(response.summary.sentences),
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
    translation = str(ensure_models(opus_shape=True)["opus-shape"])
    log("building the distilbart-cnn-12-6-shaped random model (once)")
    abstractive = str(build_distilbart_shape(cache / "bench" / "distilbart-shape"))
    articles = sorted(flores_articles(), key=len, reverse=True)[: args.articles]
    flat = [s for a in flores_articles() for s in a]
    long_article = flat[: args.long_paragraphs]
    serve_args = argparse.Namespace(
        engine="ctranslate2", device="cpu", compute_type="int8", beam_size=4, max_output_tokens=64, threads=2
    )
    results: dict[str, object] = {"articles": [len(a) for a in articles], "long_paragraphs": len(long_article)}
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

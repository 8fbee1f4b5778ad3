"""Goodput under deadlines: how much of the engine's work reaches a client before its deadline.

    python -m bench.goodput                          # 64 clients, 30 s deadlines, 120 s of load
    python -m bench.goodput --baseline-ref 2646ca4   # the same load on an older server, same run

Every client sends the seed article (examples/article-ar.txt) again and again, each call with the same
deadline, as a night desk's tools would. Reported, per server: goodput (sentences in completed
responses ÷ sentences the engine translated, from GetInfo), the engine's throughput and the delivered
throughput (sentences/s), the outcomes, and the latency of completed calls. The model is random in
opus-mt-ar-en's exact shape (int8, beam 4, outputs fixed at --max-output-tokens), which costs what
the real one does. With --baseline-ref, that git revision's server runs the same load on the same
machine right after, so the two can be compared as a ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import grpc

from tarjama.server.text.segmentation import split_paragraphs
from tarjama.v1 import tarjama_pb2 as pb
from tarjama.v1 import tarjama_pb2_grpc as pb_grpc

from .compare import Server, log
from .loadgen import latency_summary

ROOT = Path(__file__).resolve().parent.parent
SEED_ARTICLE = ROOT / "examples" / "article-ar.txt"


def old_server_tree(ref: str, into: Path) -> dict[str, str]:
    """The importable `tarjama` package of git revision `ref`, laid out under `into`; its PYTHONPATH.
    From the redesign on the package is src/tarjama; before it, proto/tarjama, server/ and client/."""
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "--name-only", ref], capture_output=True, check=True)
    if "src" in listed.stdout.decode().split():
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], capture_output=True, check=True)
        with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
            tar.extractall(into, filter="data")
        return {"PYTHONPATH": str(into / "src")}
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "proto/tarjama", "server", "client"], capture_output=True, check=True
    )
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(into / "src", filter="data")
    package = into / "tarjama"
    (into / "src" / "proto" / "tarjama").rename(package)
    (into / "src" / "server").rename(package / "server")
    (into / "src" / "client").rename(package / "client")
    return {"PYTHONPATH": str(into)}


async def load(address: str, paragraphs: list[str], clients: int, deadline_s: float, seconds: float) -> dict:
    outcomes: collections.Counter[str] = collections.Counter()
    latencies: list[float] = []
    completed_sentences = 0
    stop_at = time.monotonic() + seconds
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.TranslatorStub(channel)
        before = (await stub.GetInfo(pb.GetInfoRequest())).stats
        started = time.monotonic()

        async def client() -> None:
            nonlocal completed_sentences
            while time.monotonic() < stop_at:
                sent = time.monotonic()
                try:
                    response = await stub.Translate(pb.TranslateRequest(paragraphs=paragraphs), timeout=deadline_s)
                except grpc.aio.AioRpcError as exc:
                    outcomes[exc.code().name] += 1
                    if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                        await asyncio.sleep(0.5)  # refused at once: back off, as a client should
                    continue
                outcomes["OK"] += 1
                latencies.append((time.monotonic() - sent) * 1000)
                completed_sentences += sum(len(p.sentences) for p in response.paragraphs)

        await asyncio.gather(*(client() for _ in range(clients)))
        wall = time.monotonic() - started
        await asyncio.sleep(2)  # let shed and expired work leave the counters
        after = (await stub.GetInfo(pb.GetInfoRequest())).stats
    translated = after.batched_sentences - before.batched_sentences
    return {
        "wall_s": round(wall, 1),
        "outcomes": dict(outcomes),
        "engine_sentences": translated,
        "completed_sentences": completed_sentences,
        "goodput": round(completed_sentences / max(1, translated), 3),
        "engine_sentences_per_s": round(translated / wall, 2),
        "delivered_sentences_per_s": round(completed_sentences / wall, 2),
        "shed": after.shed - before.shed,
        "completed_latency_ms": {k: round(v) for k, v in latency_summary(latencies).items()} if latencies else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="HF Marian checkpoint (default: an opus-mt-ar-en-shaped random model)")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--deadline", type=float, default=30.0, help="seconds each call may take")
    parser.add_argument("--seconds", type=float, default=120.0, help="how long the load runs")
    parser.add_argument("--max-output-tokens", type=int, default=64)
    parser.add_argument("--baseline-ref", help="git revision whose server runs the same load after this one")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results-goodput.json")
    args = parser.parse_args()
    server_args = argparse.Namespace(
        engine="ctranslate2",
        device="cpu",
        compute_type="int8",
        beam_size=4,
        max_output_tokens=args.max_output_tokens,
        threads=len(os.sched_getaffinity(0)),
    )
    model = args.model
    if model is None:
        sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
        from build_models import ensure_models

        model = str(ensure_models(opus_shape=True)["opus-shape"])
    cache_dir = str(ROOT / "tests" / ".cache" / "bench")
    paragraphs = split_paragraphs(SEED_ARTICLE.read_text(encoding="utf-8"))
    results: dict[str, object] = {
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
        "command": " ".join(["python -m bench.goodput", *sys.argv[1:]]),
        "load": f"{args.clients} clients, the seed article ({len(paragraphs)} paragraphs) per call, "
        f"{args.deadline:g} s deadline, {args.seconds:g} s",
        "model": f"opus-mt-ar-en shape, random weights, int8, beam 4, {args.max_output_tokens} output tokens"
        if args.model is None
        else args.model,
    }
    runs = [("this server", {})]
    with tempfile.TemporaryDirectory() as scratch:
        if args.baseline_ref:
            runs.append((f"baseline {args.baseline_ref}", old_server_tree(args.baseline_ref, Path(scratch))))
        for name, env in runs:
            log(f"{name}: starting")
            server = Server(model, cache_dir, server_args, max_batch_size=32, env=env)
            try:
                results[name] = asyncio.run(load(server.address, paragraphs, args.clients, args.deadline, args.seconds))
                results[name]["peak_rss_mb"] = round(server.peak_rss_mb())  # type: ignore[index]
            finally:
                server.stop()
            log(f"{name}: {json.dumps(results[name])}")
    if args.baseline_ref:
        ours, base = results["this server"], results[f"baseline {args.baseline_ref}"]
        results["ratios"] = {
            "delivered_sentences_per_s": round(
                ours["delivered_sentences_per_s"] / max(0.01, base["delivered_sentences_per_s"]),
                1,  # type: ignore[index]
            ),
            "engine_sentences_per_s": round(
                ours["engine_sentences_per_s"] / max(0.01, base["engine_sentences_per_s"]),
                3,  # type: ignore[index]
            ),
        }
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()

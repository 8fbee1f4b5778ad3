"""Load generator: real Arabic sentences at a chosen concurrency against a running Tarjama server.

    python -m bench.loadgen --server localhost:50051 --concurrency 32 --requests 256

Each request carries one sentence (or, with --paragraphs-per-request N, N sentences as paragraphs).
Reports throughput (sentences/s, target tokens/s), latency p50/p95/p99, errors, and the batch sizes
the server formed meanwhile (from GetInfo's counters).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import grpc

from tarjama.server.text.segmentation import split_sentences
from tarjama.v1 import tarjama_pb2 as pb
from tarjama.v1 import tarjama_pb2_grpc as pb_grpc

from .data import flores_sentences, tico_sentences


@dataclass
class LoadResult:
    requests: int
    sentences: int
    concurrency: int
    wall_s: float
    sentences_per_s: float
    output_tokens_per_s: float
    latency_ms: dict[str, float]
    errors: dict[str, int]
    batch_sizes: dict[int, int] = field(default_factory=dict)
    padding_ratio: float = 0.0


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float]:
    return {
        "p50": percentile(latencies_ms, 50),
        "p95": percentile(latencies_ms, 95),
        "p99": percentile(latencies_ms, 99),
        "mean": statistics.fmean(latencies_ms) if latencies_ms else float("nan"),
    }


async def server_stats(stub: pb_grpc.TranslatorStub) -> pb.ServerStats:
    return (await stub.GetInfo(pb.GetInfoRequest(), timeout=30)).stats


async def run_load(
    server: str,
    sentences: Sequence[str],
    *,
    concurrency: int,
    paragraphs_per_request: int = 1,
    timeout: float = 600,
    model: str = "",
) -> LoadResult:
    """Send every sentence once, `concurrency` requests in flight at a time (closed loop), to the
    server's translation model `model` (empty: its default)."""
    requests = [
        list(sentences[i : i + paragraphs_per_request]) for i in range(0, len(sentences), paragraphs_per_request)
    ]
    latencies: list[float] = []
    errors: collections.Counter[str] = collections.Counter()
    output_tokens = 0
    next_request = iter(range(len(requests)))
    async with grpc.aio.insecure_channel(server) as channel:
        stub = pb_grpc.TranslatorStub(channel)
        before = await server_stats(stub)

        async def client() -> None:
            nonlocal output_tokens
            for i in next_request:
                started = time.perf_counter()
                try:
                    request = pb.TranslateRequest(paragraphs=requests[i], options=pb.TranslateOptions(model=model))
                    response = await stub.Translate(request, timeout=timeout)
                except grpc.aio.AioRpcError as exc:
                    errors[exc.code().name] += 1
                    continue
                latencies.append((time.perf_counter() - started) * 1000)
                output_tokens += response.info.output_tokens

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        wall = time.perf_counter() - started
        after = await server_stats(stub)
    sizes = {
        size: after.batch_sizes[size] - before.batch_sizes.get(size, 0)
        for size in sorted(after.batch_sizes)
        if after.batch_sizes[size] - before.batch_sizes.get(size, 0)
    }
    real = after.source_tokens - before.source_tokens
    padded = after.padded_source_tokens - before.padded_source_tokens
    done = sum(len(requests[i]) for i in range(len(requests))) - sum(errors.values()) * paragraphs_per_request
    return LoadResult(
        requests=len(requests),
        sentences=done,
        concurrency=concurrency,
        wall_s=wall,
        sentences_per_s=done / wall,
        output_tokens_per_s=output_tokens / wall,
        latency_ms=latency_summary(latencies),
        errors=dict(errors),
        batch_sizes=sizes,
        padding_ratio=padded / real if real else 0.0,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="localhost:50051")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=256, help="sentences to send")
    parser.add_argument("--source", choices=("flores", "tico"), default="flores")
    parser.add_argument("--min-chars", type=int, default=100, help="skip shorter sentences")
    parser.add_argument("--paragraphs-per-request", type=int, default=1)
    args = parser.parse_args(argv)
    texts = flores_sentences() if args.source == "flores" else tico_sentences()
    pool = [s for s in texts if len(s) >= args.min_chars and len(split_sentences(s)) == 1]
    sentences = [pool[i % len(pool)] for i in range(args.requests)]
    result = asyncio.run(
        run_load(
            args.server, sentences, concurrency=args.concurrency, paragraphs_per_request=args.paragraphs_per_request
        )
    )
    print(json.dumps(asdict(result), indent=2))


if __name__ == "__main__":
    main()

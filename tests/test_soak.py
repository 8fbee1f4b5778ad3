"""A bounded soak on loopback: dozens of clients sending real articles with random deadlines and
cancellations. Every completed response is complete and aligned; every failure is a deadline, a
cancellation the client made, or an explicit overload; the queue drains to zero; RSS stays flat;
and most of the engine's work reaches a client (goodput).

TARJAMA_SOAK_SECONDS (default 40) and TARJAMA_SOAK_CLIENTS (default 32) scale it.
"""

from __future__ import annotations

import collections
import math
import os
import random
import threading
import time
from collections import OrderedDict
from pathlib import Path

import grpc
import pytest

from tarjama.client import TarjamaClient
from tarjama.v1 import tarjama_pb2 as pb
from tarjama.v1 import tarjama_pb2_grpc as pb_grpc

from conftest import HealthMonitor, server_rss_mb

pytestmark = pytest.mark.slow

SOAK_S = float(os.environ.get("TARJAMA_SOAK_SECONDS", "40"))
CLIENTS = int(os.environ.get("TARJAMA_SOAK_CLIENTS", "32"))
DATA = Path(__file__).parent / "fixtures" / "data"
RSS_GROWTH_BOUND_MB = 64
# Measured here: 0.86 with deadlines from 50 ms to 30 s (bench/RESULTS.md has the 30 s figure at the
# opus-mt-ar-en shape); the bound leaves room for a noisy CI machine.
GOODPUT_BOUND = 0.75
# Under 32 clients the event loop is busy; a probe's 1 s timeout is far above this.
SOAK_HEALTH_BOUND_S = 0.5


def flores_articles() -> list[list[str]]:
    rows = (DATA / "flores200-devtest.metadata.tsv").read_text(encoding="utf-8").splitlines()[1:]
    sentences = (DATA / "flores200-devtest.ara").read_text(encoding="utf-8").splitlines()
    articles: OrderedDict[str, list[str]] = OrderedDict()
    for row, sentence in zip(rows, sentences, strict=True):
        articles.setdefault(row.split("\t")[0], []).append(sentence)
    return list(articles.values())


def check_complete(request: pb.TranslateRequest, response: pb.TranslateResponse) -> None:
    assert [p.source for p in response.paragraphs] == list(request.paragraphs)
    for paragraph in response.paragraphs:
        assert paragraph.sentences and paragraph.translation.strip()
        for sentence in paragraph.sentences:
            assert paragraph.source[sentence.source_start : sentence.source_end] == sentence.source
            assert sentence.translation.strip()


def test_soak_with_deadlines_and_cancellations(hardened_server) -> None:
    articles = flores_articles()
    stats_before = TarjamaClient(hardened_server.address).info().stats
    stop_at = time.monotonic() + SOAK_S
    outcomes: collections.Counter[str] = collections.Counter()
    problems: list[str] = []
    sentences_ok = 0
    lock = threading.Lock()
    rss: list[float] = []

    def client(k: int) -> None:
        nonlocal sentences_ok
        rng = random.Random(k)
        with grpc.insecure_channel(hardened_server.address) as channel:
            stub = pb_grpc.TranslatorStub(channel)
            while time.monotonic() < stop_at:
                article = rng.choice(articles)
                request = pb.TranslateRequest(id=f"c{k}", paragraphs=article)
                deadline = math.exp(rng.uniform(math.log(0.05), math.log(30)))  # 50 ms to 30 s
                cancel_after = rng.uniform(0, 2) if rng.random() < 0.1 else None
                call = stub.Translate.future(request, timeout=deadline)
                if cancel_after is not None and not call.done():
                    time.sleep(cancel_after)
                    call.cancel()
                try:
                    response = call.result()
                except grpc.FutureCancelledError:
                    with lock:
                        outcomes["CANCELLED"] += 1
                    continue
                except grpc.RpcError as exc:
                    code = exc.code().name
                    with lock:
                        outcomes[code] += 1
                        expected = {"DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"} | (
                            {"CANCELLED"} if cancel_after is not None else set()
                        )
                        if code not in expected:
                            problems.append(f"{code}: {exc.details()}")
                    if code == "RESOURCE_EXHAUSTED":
                        time.sleep(0.2)  # a client backs off when told the server is overloaded
                    continue
                try:
                    check_complete(request, response)
                except AssertionError as exc:
                    with lock:
                        problems.append(f"incomplete response: {exc}")
                with lock:
                    outcomes["OK"] += 1
                    sentences_ok += len(article)

    def sample_rss() -> None:
        while time.monotonic() < stop_at:
            rss.append(server_rss_mb(hardened_server.proc.pid))
            time.sleep(1)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    threads.append(threading.Thread(target=sample_rss))
    with HealthMonitor(hardened_server.address, bound_s=SOAK_HEALTH_BOUND_S) as health:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(SOAK_S + 120)

    assert not problems, problems[:5]
    assert outcomes["OK"] > 20, outcomes
    with TarjamaClient(hardened_server.address) as client_:
        deadline = time.monotonic() + 15
        while client_.info().stats.queued_tokens and time.monotonic() < deadline:
            time.sleep(0.2)
        stats = client_.info().stats
    assert stats.queued_tokens == 0, "the queue drains when the clients stop"
    translated = stats.batched_sentences - stats_before.batched_sentences
    delivered = stats.delivered_sentences - stats_before.delivered_sentences
    goodput = sentences_ok / max(1, translated)  # what reached clients, over what the engine did
    warm = rss[len(rss) // 4 :]
    growth = max(warm) - warm[0]
    print(
        f"\nsoak {SOAK_S:.0f}s, {CLIENTS} clients: {dict(outcomes)}; {sentences_ok} sentences in completed responses;"
        f" engine translated {translated} (server counts {delivered} delivered): goodput {goodput:.3f};"
        f" shed {stats.shed - stats_before.shed}; RSS {warm[0]:.0f} -> {max(warm):.0f} MB (+{growth:.0f});"
        f" health worst {health.worst_s * 1000:.0f} ms"
    )
    assert growth < RSS_GROWTH_BOUND_MB, f"RSS grew {growth:.0f} MB after warm-up"
    assert goodput >= GOODPUT_BOUND, f"goodput {goodput:.3f}"
    health.check("soak")

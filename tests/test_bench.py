"""The benchmark keeps working: the load generator and the comparison run on tiny models for seconds.

Not a timed test: it checks the reports are complete and consistent, never how fast anything is.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from bench.loadgen import run_load

ROOT = Path(__file__).resolve().parent.parent


def test_loadgen_reports_throughput_latency_and_batches(ct2_server, memorised_pairs):
    sentences = [a for a, _ in memorised_pairs[:12]]
    result = asyncio.run(run_load(ct2_server.address, sentences, concurrency=4))
    assert result.errors == {}
    assert result.sentences == 12 and result.sentences_per_s > 0 and result.output_tokens_per_s > 0
    assert result.latency_ms["p50"] <= result.latency_ms["p95"] <= result.latency_ms["p99"]
    assert sum(size * count for size, count in result.batch_sizes.items()) == 12


def test_compare_runs_end_to_end_on_a_tiny_model(fixture_models, tmp_path):
    out = tmp_path / "results.json"
    command = [
        sys.executable, "-m", "bench.compare", "--model", str(fixture_models["random"]),
        "--sentences", "8", "--search-sentences", "4", "--naive-sentences", "1", "--batch-sizes", "2,4",
        "--fairness-paragraphs", "6", "--latency-repeats", "1", "--concurrency", "4", "--core-counts", "1,2",
        "--out", str(out),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(report["ratios"]) >= {
        "served_vs_ceiling_best",
        "served_vs_single_batch_ceiling",
        "served_vs_naive",
        "idle_latency_vs_direct",
    }
    # The search tried every way to use the cores with every batch size; the best is the ceiling.
    searched = {(c["workers"], c["threads"], c["batch_size"]) for c in report["ceiling_search"]}
    assert searched == {(w, t, b) for w, t in ((2, 1), (1, 2)) for b in (2, 4)}
    best = max(report["ceiling_search"], key=lambda c: c["sentences_per_s"])
    assert (report["ceiling_before"][0]["workers"], report["ceiling_before"][0]["batch_size"]) == (
        best["workers"],
        best["batch_size"],
    )
    served = report["served"]
    assert served["load"]["errors"] == {} and served["peak_rss_mb"] > 0
    assert served["parallelism"]["workers"] == 2 and served["parallelism"]["chosen_by"].startswith("rule:")
    assert [row["cores"] for row in report["scaling"]] == [1, 2]
    assert all(row["served"] > 0 for row in report["scaling"])
    assert "served / best ceiling" in result.stdout and "| cores |" in result.stdout


def test_models_runs_end_to_end_on_tiny_models(fixture_models, tmp_path):
    out = tmp_path / "models.json"
    command = [
        sys.executable, "-m", "bench.models", "--fast", str(fixture_models["memorised"]),
        "--best", str(fixture_models["memorised-tcbig"]), "--sentences", "8", "--best-sentences", "8",
        "--concurrency", "4", "--rounds", "1", "--max-output-tokens", "16", "--out", str(out),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    for name in ("fast", "best"):
        model = report["by_model"][name]
        # The offline configuration ran just before and just after the served run: one ratio a round.
        assert len(model["offline_runs"]) == 2 and all(r["sentences_per_s"] > 0 for r in model["offline_runs"])
        assert len(model["served_over_offline_by_round"]) == 1 and model["served_over_offline"] > 0
        for kind in ("one_model_server", "two_model_server_alone", "both_loaded"):
            assert model[kind][0]["sentences_per_s"] > 0 and model[kind][0]["errors"] == 0, (name, kind)
        assert set(model["server_cost"]) == {"python_ms", "grpc_core_ms", "engine_ms", "engine_busy_share",
                                             "page_faults_per_sentence", "kernel_ms_per_sentence"}  # fmt: skip
        assert 0 < model["server_cost"]["engine_busy_share"] <= 1.05  # from /metrics: batch time / wall / workers
        assert model["glibc_defaults"]["one_model_server"]["sentences_per_s"] > 0
    assert report["cost_best_over_fast"] > 0 and report["two_model_server_peak_rss_mb"] > 0
    assert report["two_model_server_peak_rss_mb_glibc_defaults"] > 0

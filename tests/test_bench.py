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
        "--sentences", "8", "--naive-sentences", "1", "--batch-sizes", "4", "--fairness-paragraphs", "6",
        "--latency-repeats", "1", "--concurrency", "4", "--out", str(out),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(report["ratios"]) >= {"served_vs_ceiling_best", "served_vs_naive", "idle_latency_vs_direct"}
    served = report["served"]["4"]
    assert served["load"]["errors"] == {} and served["peak_rss_mb"] > 0
    assert "served / ceiling" in result.stdout

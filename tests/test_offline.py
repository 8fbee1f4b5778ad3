"""Models for offline and air-gapped newsrooms: `tarjama models download` fills the cache `tarjama serve`
reads, and `serve --offline` starts from it without the network, or names the model that is missing.

The hub is not reachable here, so a hub model is stood in for by the fixture model laid out in the
cache exactly as huggingface_hub stores a download (models--ORG--NAME/snapshots/REV, refs/main).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tarjama.client import TarjamaClient

from conftest import ServerProcess

HUB_ID = "tarjama-test/opus-mt-memorised"
REVISION = "0123456789abcdef0123456789abcdef01234567"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "tarjama.client.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def as_hub_download(model: Path, cache_dir: Path) -> None:
    """Put `model` in `cache_dir` where huggingface_hub would have downloaded HUB_ID."""
    repo = cache_dir / "hub" / ("models--" + HUB_ID.replace("/", "--"))
    shutil.copytree(model, repo / "snapshots" / REVISION)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(REVISION)


def test_download_from_a_local_directory_then_serve_offline(fixture_models, tmp_path, memorised_pairs) -> None:
    cache = tmp_path / "cache"
    done = cli(
        "models", "download", "--translation-model", str(fixture_models["memorised"]),
        "--summary-model", "none", "--cache-dir", str(cache),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "int8 conversion in" in done.stdout
    assert list((cache / "ctranslate2").glob("*--int8/model.bin")), "converted into the cache serve reads"
    server = ServerProcess(
        ["--offline", "--translation-model", str(fixture_models["memorised"]), "--summary-model", "extractive",
         "--cache-dir", str(cache)],
        env={"HF_HUB_OFFLINE": "0"},  # --offline must hold by itself
    )  # fmt: skip
    try:
        server.wait_serving()
        with TarjamaClient(server.address) as client:
            assert (
                client.translate(memorised_pairs[0][0], timeout=30).paragraphs[0].translation == memorised_pairs[0][1]
            )
        assert "using the cached CTranslate2 conversion" in server.log(), "started from the cache, no conversion"
    finally:
        server.stop()


def test_a_hub_model_in_the_cache_serves_offline_and_a_missing_one_is_named(fixture_models, tmp_path) -> None:
    cache = tmp_path / "cache"
    as_hub_download(fixture_models["memorised"], cache)
    done = cli("models", "download", "--offline", "--translation-model", HUB_ID, "--summary-model", "none",
               "--cache-dir", str(cache))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"translation model {HUB_ID} ({REVISION})" in done.stdout
    server = ServerProcess(["--offline", "--translation-model", HUB_ID, "--summary-model", "none",
                            "--cache-dir", str(cache)])  # fmt: skip
    try:
        server.wait_serving()
    finally:
        server.stop()
    missing = ServerProcess(["--offline", "--translation-model", "Helsinki-NLP/opus-mt-ar-en", "--summary-model",
                             "none", "--cache-dir", str(cache)])  # fmt: skip
    code = missing.proc.wait(120)
    missing.stop()
    log = missing.log()
    assert code == 1 and "Traceback" not in log
    assert "Helsinki-NLP/opus-mt-ar-en" in log and "is not in the cache" in log and "tarjama models download" in log


def test_download_fetches_and_converts_every_named_model(fixture_models, tmp_path, memorised_pairs) -> None:
    cache = tmp_path / "cache"
    as_hub_download(fixture_models["memorised"], cache)
    models = ["--translation-model", f"fast={HUB_ID}", "--translation-model", f"best={fixture_models['random']}"]
    done = cli("models", "download", "--offline", *models, "--summary-model", "none", "--cache-dir", str(cache))
    assert done.returncode == 0, done.stderr
    assert f"translation model fast: {HUB_ID} ({REVISION})" in done.stdout
    assert f"translation model best: {fixture_models['random']} (local-" in done.stdout
    assert len(list((cache / "ctranslate2").glob("*--int8/model.bin"))) == 2, "both converted"
    server = ServerProcess(["--offline", *models, "--summary-model", "none", "--cache-dir", str(cache)])
    try:
        server.wait_serving()
        with TarjamaClient(server.address) as client:
            fast = client.translate(memorised_pairs[0][0], timeout=30)
            best = client.translate(memorised_pairs[0][0], model="best", timeout=60)
        assert fast.paragraphs[0].translation == memorised_pairs[0][1] and fast.info.model.name == "fast"
        assert best.info.model.name == "best"
        assert server.log().count("using the cached CTranslate2 conversion") == 2, "no conversion at start"
    finally:
        server.stop()

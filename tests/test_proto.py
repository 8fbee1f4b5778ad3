"""The contract: generated code is current, and a client in another language can call the server."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import article, needs

ROOT = Path(__file__).resolve().parent.parent
INTEROP = ROOT / "tests" / "interop"


def test_generated_code_matches_the_proto():
    needs("grpc_tools", "test")
    result = subprocess.run(
        [sys.executable, str(ROOT / "proto" / "compile_protos.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_a_node_client_loads_the_proto_and_translates(ct2_server, memorised_pairs):
    if shutil.which("node") is None or not (INTEROP / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.skip("node and `npm ci --prefix tests/interop` are needed (CI installs them)")
    arabic, english = article(memorised_pairs, [2, 1])
    result = subprocess.run(
        ["node", str(INTEROP / "translate.js"), ct2_server.address],
        input="\n".join(arabic),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert response["id"] == "from-node"
    assert [p["translation"] for p in response["paragraphs"]] == english
    assert response["paragraphs"][0]["sentences"][1]["source_start"] > 0


def test_a_node_client_sees_invalid_argument(ct2_server):
    if shutil.which("node") is None or not (INTEROP / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.skip("node and `npm ci --prefix tests/interop` are needed (CI installs them)")
    result = subprocess.run(
        ["node", str(INTEROP / "translate.js"), ct2_server.address],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and result.stderr.startswith("INVALID_ARGUMENT")

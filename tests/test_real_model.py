"""With the real opus-mt-ar-en (TARJAMA_TEST_MODEL=/path/to/opus-mt-ar-en): sensible English on FLORES.

Skipped unless that variable points at a local copy; the published chrF of the model on FLORES-101
devtest is 61, so 20 sentences should clear 50 on either engine.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from tarjama.client import TarjamaClient

from conftest import InProcessServer, needs

MODEL = os.environ.get("TARJAMA_TEST_MODEL")
DATA = Path(__file__).resolve().parent / "fixtures" / "data"

pytestmark = [
    pytest.mark.real_model,
    pytest.mark.skipif(not MODEL, reason="set TARJAMA_TEST_MODEL=/path/to/opus-mt-ar-en to run"),
]


@pytest.mark.parametrize("engine", ["ctranslate2", "torch"])
def test_flores_sentences_reach_a_sensible_chrf(engine, base_settings):
    sacrebleu = needs("sacrebleu", "test")
    arabic = (DATA / "flores200-devtest.ara").read_text(encoding="utf-8").splitlines()[:20]
    english = (DATA / "flores200-devtest.eng").read_text(encoding="utf-8").splitlines()[:20]
    server = InProcessServer(replace(base_settings, translation_model=MODEL, engine=engine))
    server.wait_serving(600)
    try:
        with TarjamaClient(server.address) as client:
            response = client.translate(paragraphs=arabic, timeout=600)
    finally:
        server.stop()
    hypotheses = [p.translation for p in response.paragraphs]
    chrf = sacrebleu.corpus_chrf(hypotheses, [english]).score
    assert chrf >= 50, f"chrF {chrf:.1f} on 20 FLORES sentences"

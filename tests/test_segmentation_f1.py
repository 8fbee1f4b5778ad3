"""Sentence-boundary F1 on the FLORES-200 devtest construction (bench/segmentation_f1.py) stays >= 0.995."""

from __future__ import annotations

from pathlib import Path

from bench.segmentation_f1 import flores_paragraphs, regex_boundaries, score, tarjama_boundaries

DATA = Path(__file__).resolve().parent / "fixtures" / "data"


def test_boundary_f1_on_flores_articles() -> None:
    paragraphs = flores_paragraphs(DATA)
    ours = score(paragraphs, tarjama_boundaries)
    baseline = score(paragraphs, regex_boundaries)
    assert ours.gold > 600 and ours.paragraphs > 250
    assert ours.f1 >= 0.995, ours
    assert ours.precision >= baseline.precision and ours.f1 > baseline.f1

"""Real Arabic text for the benchmarks: FLORES-200 sentences and articles, TICO-19 sentences.

Read from ../shared/data when it is there (the full sets), else from the copy in tests/fixtures/data.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CANDIDATES = (ROOT.parent / "shared" / "data", ROOT / "tests" / "fixtures" / "data")


def data_dir() -> Path:
    for candidate in CANDIDATES:
        if (candidate / "flores200-devtest.ara").is_file():
            return candidate
    raise FileNotFoundError("no FLORES data in ../shared/data or tests/fixtures/data")


def _lines(name: str) -> list[str]:
    return (data_dir() / name).read_text(encoding="utf-8").splitlines()


def flores_sentences() -> list[str]:
    return _lines("flores200-devtest.ara")


def tico_sentences() -> list[str]:
    path = data_dir() / "tico19-test.ara"
    return _lines("tico19-test.ara") if path.is_file() else []


def flores_articles(side: str = "ara") -> list[list[str]]:
    """FLORES sentences grouped into their articles (consecutive rows with the same source URL)."""
    rows = _lines("flores200-devtest.metadata.tsv")[1:]
    sentences = _lines(f"flores200-devtest.{side}")
    articles: OrderedDict[str, list[str]] = OrderedDict()
    for row, sentence in zip(rows, sentences, strict=True):
        articles.setdefault(row.split("\t")[0], []).append(sentence)
    return list(articles.values())

"""Sentence-boundary precision, recall and F1 on FLORES-200 devtest articles.

The construction: join each article's sentences (consecutive metadata rows with the same URL) into
one paragraph, separated by a space; the gold boundaries are the joins (after each line's trailing
white space is removed). A gold line that itself holds two sentences would make a correct split look
wrong, so such lines are left out: those whose English reference holds two sentences, and those whose
Arabic has a sentence stop followed by a space after a word of three letters or more (a conservative
rule that leaves initials, titles, numbers and ellipses in, where segmenters go wrong). A predicted
boundary is the end offset of every sentence but the paragraph's last.

    python -m bench.segmentation_f1            # Tarjama's segmenter and the baselines
"""

from __future__ import annotations

import argparse
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from tarjama.server.text.segmentation import split_sentences

_EN_ABBREVIATIONS = re.compile(
    r"\b(?:Mr|Mrs|Ms|Dr|St|Mt|Jr|Sr|Gen|Lt|Col|Sgt|Capt|Gov|Sen|Rep|Prof|vs|No|Inc|Ltd|Co|Corp|Jan|Feb|Aug|Sept?|Oct|Nov|Dec"
    r"|U\.S|U\.K|U\.N|e\.g|i\.e|a\.m|p\.m|[A-Z])\.$"
)
_EN_BOUNDARY = re.compile(r"[.!?][\"')”’]?\s+(?=[A-Z\"“‘(])")
_AR_STOP = re.compile(r"(\S*?)[.!?؟][\"»”)]?\s+\S")


@dataclass(frozen=True)
class Score:
    precision: float
    recall: float
    f1: float
    gold: int
    predicted: int
    paragraphs: int


def english_has_two_sentences(line: str) -> bool:
    for match in _EN_BOUNDARY.finditer(line):
        if not _EN_ABBREVIATIONS.search(line[: match.start() + 1]):
            return True
    return False


def arabic_has_two_sentences(line: str) -> bool:
    """A stop, then white space and more text, after a word of three letters or more."""
    return any(sum(c.isalpha() for c in m.group(1)) >= 3 for m in _AR_STOP.finditer(line.rstrip()))


def flores_paragraphs(data_dir: Path) -> list[tuple[str, set[int]]]:
    """Each article as (paragraph, gold boundary offsets)."""
    arabic = (data_dir / "flores200-devtest.ara").read_text(encoding="utf-8").splitlines()
    english = (data_dir / "flores200-devtest.eng").read_text(encoding="utf-8").splitlines()
    urls = [row.split("\t")[0] for row in (data_dir / "flores200-devtest.metadata.tsv").read_text().splitlines()[1:]]
    articles: OrderedDict[str, list[int]] = OrderedDict()
    for i, url in enumerate(urls):
        articles.setdefault(url, []).append(i)
    out = []
    for rows in articles.values():
        lines = [
            arabic[i].strip()
            for i in rows
            if not english_has_two_sentences(english[i]) and not arabic_has_two_sentences(arabic[i])
        ]
        if not lines:
            continue
        gold, offset = set(), 0
        for line in lines[:-1]:
            offset += len(line)
            gold.add(offset)
            offset += 1
        out.append((" ".join(lines), gold))
    return out


def tarjama_boundaries(paragraph: str) -> set[int]:
    return {span.end for span in split_sentences(paragraph)[:-1]}


def regex_boundaries(paragraph: str) -> set[int]:
    """The usual baseline: a split after . ! ? ؟ (and a closing quote) followed by white space."""
    return {m.end(1) for m in re.finditer(r"([.!?؟][\"»”)]?)\s+(?=\S)", paragraph)}


def score(paragraphs: Iterable[tuple[str, set[int]]], boundaries: Callable[[str], set[int]]) -> Score:
    tp = fp = fn = n = 0
    for paragraph, gold in paragraphs:
        predicted = boundaries(paragraph)
        tp += len(predicted & gold)
        fp += len(predicted - gold)
        fn += len(gold - predicted)
        n += 1
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Score(precision, recall, f1, tp + fn, tp + fp, n)


def errors(paragraphs: Iterable[tuple[str, set[int]]], boundaries: Callable[[str], set[int]]) -> list[str]:
    """Context around every missed or spurious boundary, for reading the failures."""
    out = []
    for paragraph, gold in paragraphs:
        predicted = boundaries(paragraph)
        for kind, offsets in (("missed", gold - predicted), ("spurious", predicted - gold)):
            for k in sorted(offsets):
                out.append(f"{kind}: …{paragraph[max(0, k - 40) : k]}┃{paragraph[k : k + 40]}…")
    return out


def main() -> None:
    from .data import data_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--errors", action="store_true", help="print Tarjama's missed and spurious boundaries")
    args = parser.parse_args()
    paragraphs = flores_paragraphs(data_dir())
    for name, fn in (("tarjama", tarjama_boundaries), ("regex . ! ? ؟", regex_boundaries)):
        s = score(paragraphs, fn)
        print(
            f"{name:16s} P {s.precision:.4f}  R {s.recall:.4f}  F1 {s.f1:.4f}  ({s.gold} gold, {s.paragraphs} articles)"
        )
    if args.errors:
        print("\n".join(errors(paragraphs, tarjama_boundaries)))


if __name__ == "__main__":
    main()

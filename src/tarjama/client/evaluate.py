"""`tarjama eval`: the quality of a running server on reference sets, with its speed beside it.

So that a newsroom can check that a speed setting (workers, batch sizes, int8, a GPU) leaves the
English as it was: chrF and BLEU (sacrebleu) on parallel files, one sentence per line, e.g. FLORES-200
devtest and TICO-19 (`../shared/data/flores200-devtest.ara` and `.eng`), with sentences per second and
how many sentences the server flagged.
"""

from __future__ import annotations

import collections
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tarjama.v1 import tarjama_pb2 as pb

from .client import TarjamaClient


@dataclass
class SetScore:
    """One reference set's scores, speed and flags."""

    name: str
    sentences: int
    skipped_empty: int
    chrf: float
    bleu: float
    seconds: float
    sentences_per_s: float
    flags: dict[str, int] = field(default_factory=dict)
    model: str = ""  # the translation model that translated the set: its name (id), as the server said


def read_pair(source: Path, reference: Path) -> tuple[list[str], list[str], int]:
    """Aligned non-empty lines of a source file and its reference, and how many empty ones were left out."""
    sources = source.read_text(encoding="utf-8").splitlines()
    references = reference.read_text(encoding="utf-8").splitlines()
    if len(sources) != len(references):
        raise ValueError(f"{source} has {len(sources)} lines but {reference} has {len(references)}: not aligned")
    kept = [(s, r) for s, r in zip(sources, references, strict=True) if s.strip()]
    return [s for s, _ in kept], [r for _, r in kept], len(sources) - len(kept)


def evaluate(
    client: TarjamaClient,
    source: Path,
    reference: Path,
    *,
    per_request: int = 8,
    jobs: int = 8,
    limit: int | None = None,
    model: str = "",
) -> SetScore:
    """Translate `source` through the server (`per_request` lines as the paragraphs of one request,
    `jobs` requests at once, as a newsroom's tools would) with its translation model `model` (empty:
    its default) and score it against `reference`."""
    try:
        import sacrebleu
    except ImportError:
        raise SystemExit(
            "tarjama eval needs sacrebleu: pip install -c constraints.txt '.[eval]' in the repository"
        ) from None
    sources, references, skipped = read_pair(source, reference)
    if limit is not None:
        sources, references = sources[:limit], references[:limit]
    chunks = [sources[i : i + per_request] for i in range(0, len(sources), per_request)]

    def one(chunk: list[str]) -> pb.TranslateResponse:
        return client.translate(paragraphs=chunk, id=source.name, model=model)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        responses = list(pool.map(one, chunks))
    seconds = time.perf_counter() - started
    english = [p.translation for response in responses for p in response.paragraphs]
    if len(english) != len(sources):  # the server answers every paragraph, in order; say so if not
        raise RuntimeError(f"{len(sources)} paragraphs sent, {len(english)} translated")
    flags: collections.Counter[str] = collections.Counter(
        pb.Sentence.Flag.Name(flag)
        for response in responses
        for paragraph in response.paragraphs
        for sentence in paragraph.sentences
        for flag in sentence.flags
    )
    return SetScore(
        name=source.stem,
        sentences=len(sources),
        skipped_empty=skipped,
        chrf=sacrebleu.corpus_chrf(english, [references]).score,
        bleu=sacrebleu.corpus_bleu(english, [references]).score,
        seconds=seconds,
        sentences_per_s=len(sources) / seconds if seconds else 0.0,
        flags=dict(sorted(flags.items())),
        model=model_of(responses),
    )


def model_of(responses: list[pb.TranslateResponse]) -> str:
    """The model the server says translated the set, as "name (id)"; several if they differ."""
    seen = dict.fromkeys(f"{r.info.model.name} ({r.info.model.id})" for r in responses if r.info.model.id)
    return ", ".join(seen)


def describe_server(info: pb.GetInfoResponse) -> str:
    """The settings that can change the English or its speed, in one line."""
    models = ", ".join(f"{m.role} {m.id} ({m.engine}, {m.device}, {m.compute_type})" for m in info.models)
    p = info.parallelism
    return (
        f"{models}; beam {info.decoding.beam_size}; {p.workers} worker(s) x {p.threads_per_worker} thread(s), "
        f"max batch {p.max_batch_size}"
    )


def render_text(server: str, scores: list[SetScore]) -> str:
    lines = [
        f"server: {server}",
        "",
        "| set | model | sentences | chrF | BLEU | sentences/s | seconds | flags |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in scores:
        flags = ", ".join(f"{name} {count}" for name, count in s.flags.items()) or "none"
        lines.append(
            f"| {s.name} | {s.model} | {s.sentences} | {s.chrf:.1f} | {s.bleu:.1f} | {s.sentences_per_s:.2f} "
            f"| {s.seconds:.1f} | {flags} |"
        )
    return "\n".join(lines)

"""How the CLI prints a TranslateResponse: text, json, markdown, or the CAT exports (exports.py)."""

from __future__ import annotations

import json
from typing import TextIO

from tarjama.v1 import tarjama_pb2 as pb

from ..interchange.exports import render_tmx, render_xliff
from ..interchange.messages import to_dict

FORMATS = ("text", "json", "markdown", "xliff", "tmx")
EXTENSIONS = {"text": "txt", "json": "json", "markdown": "md", "xliff": "xlf", "tmx": "tmx"}
# One XML document per article: several articles need --output-dir.
DOCUMENT_FORMATS = ("xliff", "tmx")


def render(response: pb.TranslateResponse, fmt: str, *, compact: bool = False) -> str:
    if fmt == "json":
        return json.dumps(to_dict(response), ensure_ascii=False, indent=None if compact else 2) + "\n"
    if fmt == "xliff":
        return render_xliff(response)
    if fmt == "tmx":
        return render_tmx(response)
    summary = response.summary if response.HasField("summary") else None
    blocks = head_blocks(fmt, response.id) + [paragraph_block(fmt, p) for p in response.paragraphs]
    return "\n\n".join(blocks + tail_blocks(fmt, summary)) + "\n"


# text and markdown are blocks separated by blank lines: the head, one block per paragraph, then the
# summary. A stream prints the same blocks as the paragraphs arrive (BlockWriter), so the output is
# the same either way.


def head_blocks(fmt: str, id: str) -> list[str]:
    return [f"# {id}"] if fmt == "markdown" and id else []


def paragraph_block(fmt: str, p: pb.Paragraph) -> str:
    """text: the English paragraph. markdown: the Arabic source, then the English, for a side-by-side read."""
    if fmt != "markdown":
        return p.translation
    english = p.translation
    if any(s.flags for s in p.sentences):
        notes = "; ".join(
            f"sentence {i + 1}: {', '.join(pb.Sentence.Flag.Name(f).lower() for f in s.flags)}"
            for i, s in enumerate(p.sentences)
            if s.flags
        )
        english += f"\n\n> ⚠ {notes}"
    if p.sentences and all(pb.Sentence.PASSTHROUGH in s.flags for s in p.sentences):
        source = p.source  # no Arabic (an English quote, a byline): not marked up as right-to-left Arabic
    else:
        source = f'<div dir="rtl" lang="ar">\n\n{p.source}\n\n</div>'
    return f"## ¶{p.index + 1}\n\n{source}\n\n{english}"


def tail_blocks(fmt: str, summary: pb.Summary | None) -> list[str]:
    if summary is None:
        return []
    if fmt == "markdown":
        return [f"## Summary ({summary.method})\n\n{summary_lines(summary)}"]
    return [f"Summary:\n{summary_lines(summary)}"]


class BlockWriter:
    """Writes blocks to a stream as they come, separated as `render` separates them."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.first = True

    def write(self, blocks: list[str]) -> None:
        for block in blocks:
            self.out.write(block if self.first else "\n\n" + block)
            self.first = False
        self.out.flush()

    def end(self) -> None:
        self.out.write("\n")
        self.out.flush()


def references(sentence: pb.SummarySentence) -> str:
    """Where a summary sentence comes from, as paragraph numbers counted from 1: "[¶2, ¶5]"."""
    if sentence.unsupported or not sentence.paragraphs:
        return "[unsupported: check it against the source]"
    return "[" + ", ".join(f"¶{i + 1}" for i in sentence.paragraphs) + "]"


def summary_lines(summary: pb.Summary) -> str:
    """One line per summary sentence with its references; never silently nothing."""
    if not summary.sentences:
        return "- (no summary: the summariser returned nothing for this text)"
    fallback = summary.method == "extractive-fallback"
    head = "(the summary model returned nothing; these are the article's key sentences)\n" if fallback else ""
    return head + "\n".join(f"- {s.text} {references(s)}" for s in summary.sentences)

"""How the CLI prints a TranslateResponse: text, json or markdown."""

from __future__ import annotations

import json

from tarjama.v1 import tarjama_pb2 as pb

from .client import to_dict

FORMATS = ("text", "json", "markdown")
EXTENSIONS = {"text": "txt", "json": "json", "markdown": "md"}


def render(response: pb.TranslateResponse, fmt: str, *, compact: bool = False) -> str:
    if fmt == "json":
        return json.dumps(to_dict(response), ensure_ascii=False, indent=None if compact else 2) + "\n"
    if fmt == "markdown":
        return render_markdown(response)
    return render_text(response)


def render_text(response: pb.TranslateResponse) -> str:
    """The summary first (when one was asked for), then the English paragraphs, separated by blank lines."""
    head = f"Summary:\n{summary_lines(response.summary)}\n\n" if response.HasField("summary") else ""
    return head + "\n\n".join(p.translation for p in response.paragraphs) + "\n"


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


def render_markdown(response: pb.TranslateResponse) -> str:
    """Each paragraph as its Arabic source, then its English, for a quick side-by-side read."""
    blocks = []
    if response.id:
        blocks.append(f"# {response.id}")
    if response.HasField("summary"):
        blocks.append(f"## Summary ({response.summary.method})\n\n{summary_lines(response.summary)}")
    for p in response.paragraphs:
        flagged = [s for s in p.sentences if s.flags]
        english = p.translation
        if flagged:
            notes = "; ".join(
                f"sentence {i + 1}: {', '.join(pb.Sentence.Flag.Name(f).lower() for f in s.flags)}"
                for i, s in enumerate(p.sentences)
                if s.flags
            )
            english += f"\n\n> ⚠ {notes}"
        blocks.append(f'## ¶{p.index + 1}\n\n<div dir="rtl" lang="ar">\n\n{p.source}\n\n</div>\n\n{english}')
    return "\n\n".join(blocks) + "\n"

"""Glossary entries as files: TSV and CSV, as DeepL's glossary API and spreadsheets write them.

TSV: one `term<TAB>rendering` per line. CSV: `term,rendering` rows (RFC 4180 quoting), optionally
with DeepL's two language columns after them (`ar,en`). Blank lines are skipped; anything else that
is not one entry is an error naming its line, never a silently dropped row. The server's own checks
(sizes, duplicates, terms that can occur) come after, the same for every door.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

FORMATS = ("tsv", "csv")


class EntriesFileError(ValueError):
    """The text is not entries in the format; the message names the line."""


def parse_entries(text: str, entries_format: str, max_lines: int) -> list[tuple[str, str]]:
    """`text` as (term, rendering) pairs, in order. More than `max_lines` non-blank lines is an error
    before they are all read (the caller's limit on entries)."""
    if entries_format not in FORMATS:
        raise EntriesFileError(f"entries_format must be one of {', '.join(FORMATS)}, not {entries_format[:20]!r}")
    text = text.removeprefix("\ufeff")  # a spreadsheet's byte-order mark
    entries: list[tuple[str, str]] = []
    rows: Iterable[list[str]]
    if entries_format == "tsv":
        rows = (line.rstrip("\r").split("\t") for line in text.split("\n"))
    else:
        try:
            rows = iter(list(csv.reader(io.StringIO(text), strict=True)))
        except csv.Error as exc:
            raise EntriesFileError(f"the CSV cannot be read: {exc}") from None
    for number, row in enumerate(rows, start=1):
        if not any(cell.strip() for cell in row):
            continue
        if len(entries) >= max_lines:
            raise EntriesFileError(f"more than {max_lines} entries (this server's most in one glossary)")
        if entries_format == "csv" and len(row) == 4:
            source_lang, target_lang = row[2].strip().lower(), row[3].strip().lower()
            if source_lang != "ar" or target_lang.split("-")[0] != "en":
                raise EntriesFileError(f"line {number}: the languages must be ar,en, not {row[2][:10]},{row[3][:10]}")
            row = row[:2]
        if len(row) != 2:
            separator = "a tab" if entries_format == "tsv" else "a comma"
            raise EntriesFileError(f"line {number}: expected a term and its rendering separated by {separator}")
        entries.append((row[0], row[1]))
    return entries


def render_tsv(entries: list[tuple[str, str]]) -> str:
    """Entries as DeepL returns them: `term<TAB>rendering` lines (neither side holds a tab or a newline:
    the server's checks trim them, and a term is one line)."""
    return "".join(f"{source}\t{target}\n" for source, target in entries)

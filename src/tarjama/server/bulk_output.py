"""Where `tarjama bulk` writes: the output directory, the ids it already holds, and this run's parts.

Resuming is the output's job. A rerun reads the key (the article's id) of every record already in the
directory, and the job skips those articles; this run's records go to new part files, and a key is
never written twice. Earlier parts are never rewritten, except to cut a last line that an interrupted
run left half-written.

- JSONL: one part per run, appended and flushed to disk after every batch.
- Parquet: a part holds up to ROWS_PER_PART records; it is written whole under a temporary name and
  renamed, every FLUSH_EVERY_S seconds at the latest and when the run stops. Its columns: `key`, `id`
  (as text), `error`, `english` (the paragraphs' English, for quick queries) and `result` (the
  record itself, the same JSON object as in a JSONL part).
So an interrupted run loses at most the batches in flight (and, if killed outright, the Parquet rows
not yet flushed).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

FORMATS = ("jsonl", "parquet")
ROWS_PER_PART = 5_000
FLUSH_EVERY_S = 60.0
TEMPORARY_PREFIX = ".incomplete-"


def id_key(article_id: Any) -> str:
    """The key a record is known by: its id as JSON, so that the id 5 and the id "5" stay distinct."""
    return json.dumps(article_id, ensure_ascii=False)


def line_key(digest: str) -> str:
    """The key of an input line that has no usable id: its SHA-1, so a rerun does not report it again."""
    return f"line-sha1:{digest}"


def record_key(record: dict[str, Any]) -> str:
    return line_key(record["line_sha1"]) if "line_sha1" in record else id_key(record.get("id"))


class OutputError(Exception):
    """OUTPUT_DIR cannot be used as asked; the message is one line for the user."""


class OutputDir:
    """OUTPUT_DIR: what earlier runs wrote there, and a writer for this run."""

    def __init__(self, path: Path, output_format: str) -> None:
        if output_format not in FORMATS:
            raise OutputError(f"--output-format must be one of {', '.join(FORMATS)}")
        if path.exists() and not path.is_dir():
            raise OutputError(f"{path} is a file; OUTPUT_DIR must be a directory (it is created if missing)")
        self.path = path
        self.format = output_format
        other = FORMATS[1 - FORMATS.index(output_format)]
        if path.is_dir() and any(path.glob(f"part-*.{other}")):
            raise OutputError(
                f"{path} holds {other} parts from an earlier run: resume with --output-format {other}, "
                "or write to another directory"
            )

    def parts(self) -> list[Path]:
        return sorted(self.path.glob(f"part-*.{self.format}")) if self.path.is_dir() else []

    def done_keys(self) -> set[str]:
        """Every key already written. Mends what an interrupted run left: a half-written last JSONL
        line is cut off, and a Parquet part that was never renamed into place is removed."""
        keys: set[str] = set()
        if not self.path.is_dir():
            return keys
        for stale in self.path.glob(f"{TEMPORARY_PREFIX}*"):
            stale.unlink()
        for part in self.parts():
            if self.format == "jsonl":
                keys.update(_jsonl_keys(part))
            else:
                import pyarrow.parquet as pq

                keys.update(pq.read_table(part, columns=["key"]).column("key").to_pylist())
        return keys

    def writer(self) -> JsonlWriter | ParquetWriter:
        self.path.mkdir(parents=True, exist_ok=True)
        run = time.strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}"
        return JsonlWriter(self.path, run) if self.format == "jsonl" else ParquetWriter(self.path, run)


def _jsonl_keys(part: Path) -> list[str]:
    """The keys of a JSONL part; a last line without its newline (the run was killed mid-write) is cut."""
    with part.open("rb+") as file:
        data = file.read()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            file.truncate(end)
    return [record_key(json.loads(line)) for line in data[:end].splitlines() if line.strip()]


class JsonlWriter:
    """This run's JSONL part, created with the first record (a run with nothing new leaves no file)."""

    def __init__(self, directory: Path, run: str) -> None:
        self.path = directory / f"part-{run}.jsonl"
        self._file: Any = None

    def write(self, records: Iterable[str]) -> None:
        text = "".join(record + "\n" for record in records)
        if not text:
            return
        if self._file is None:
            self._file = self.path.open("x", encoding="utf-8")
        self._file.write(text)
        self._file.flush()
        os.fsync(self._file.fileno())  # a batch written is a batch a rerun skips, even after a crash

    def close(self) -> list[Path]:
        if self._file is None:
            return []
        self._file.close()
        return [self.path]


class ParquetWriter:
    """This run's Parquet parts, each written whole and renamed into place."""

    def __init__(self, directory: Path, run: str) -> None:
        self.directory, self.run = directory, run
        self._rows: list[dict[str, Any]] = []
        self._since = time.monotonic()
        self._written: list[Path] = []

    def write(self, records: Iterable[str]) -> None:
        for record in records:
            value = json.loads(record)
            self._rows.append(
                {
                    "key": record_key(value),
                    "id": None if value.get("id") is None else str(value["id"]),
                    "error": value.get("error"),
                    "english": "\n\n".join(p["translation"] for p in value.get("paragraphs", [])) or None,
                    "result": record,
                }
            )
        if len(self._rows) >= ROWS_PER_PART or time.monotonic() - self._since >= FLUSH_EVERY_S:
            self._flush()

    def _flush(self) -> None:
        self._since = time.monotonic()
        if not self._rows:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([(name, pa.string()) for name in ("key", "id", "error", "english", "result")])
        name = f"part-{self.run}-{len(self._written):05d}.parquet"
        temporary = self.directory / f"{TEMPORARY_PREFIX}{name}"
        pq.write_table(pa.Table.from_pylist(self._rows, schema=schema), temporary)
        os.replace(temporary, self.directory / name)
        self._written.append(self.directory / name)
        self._rows = []

    def close(self) -> list[Path]:
        self._flush()
        return self._written

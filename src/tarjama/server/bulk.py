"""`tarjama bulk INPUT OUTPUT_DIR`: translate an archive with Ray Data, resumably.

The driver reads INPUT as a Ray Dataset and turns each JSONL line or Parquet row into an article, or
into a problem to report (a line that is not JSON, an id or text missing). A pool of actors
(`map_batches` with a callable class) translates batches of articles: each actor loads the models
once and calls the same servicer code as the gRPC server, in-process, so the articles of a batch go
into its batcher together and share engine batches. The driver streams the results back and appends
them to OUTPUT_DIR (bulk_output.py), which is what makes a rerun resume.

Every input line or row gets exactly one record: the article's `tarjama translate --format json`
object with its id, or {"id": ..., "error": "..."}; a bad article never stops the job.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

from tarjama.v1 import tarjama_pb2 as pb

from .bulk_output import FORMATS, OutputDir, OutputError, id_key, line_key
from .dependencies import BULK_EXTRA, BULK_MODULES
from .settings import UNNAMED_MODEL, Settings
from .startup import prepare

log = logging.getLogger("tarjama.bulk")

INPUT_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
# The columns that flow from the reading stage to the actors (all text, so Arrow never has to unify
# an id that is a number in one line and a string in the next).
ARTICLE_COLUMNS = ("key", "id_json", "text", "problem", "skip")
# Within an actor nothing else shares its queue, so the server's admission limit would only turn
# long batches into errors: the actor bounds its own work by its batch size instead.
UNBOUNDED_QUEUE_TOKENS = 1 << 60


@dataclass(frozen=True)
class BulkJob:
    """What `tarjama bulk` was asked to do, checked."""

    inputs: list[str]
    input_format: str
    output: OutputDir
    id_column: str
    text_column: str
    actors: int
    cpus_per_actor: float
    gpus_per_actor: float
    batch_size: int
    summarize: bool
    summary_length: str
    address: str | None
    model: str  # the translation model's name; empty: the first --translation-model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The job's own flags; the models are chosen with the serve flags, added beside these."""
    parser.add_argument("input", metavar="INPUT", help="JSONL or Parquet file, or a directory of them")
    parser.add_argument("output_dir", metavar="OUTPUT_DIR", type=Path, help="where the records go (created)")
    parser.add_argument("--input-format", choices=("auto", "jsonl", "parquet"), default="auto")
    parser.add_argument("--id-column", default="id", help="the articles' id field or column (default id)")
    parser.add_argument("--text-column", default="text", help="the articles' Arabic text (default text)")
    parser.add_argument("--output-format", choices=FORMATS, default="jsonl", help="default jsonl")
    parser.add_argument("--actors", type=int, default=1, help="translating actors, each with the models (default 1)")
    parser.add_argument(
        "--cpus-per-actor",
        type=float,
        default=0,
        help="CPU cores each actor asks Ray for and runs its engine on (default: this machine's cores / --actors)",
    )
    parser.add_argument("--num-gpus", type=float, default=0, help="GPUs per actor (default 0: CPU)")
    parser.add_argument("--batch-size", type=int, default=256, help="articles per actor call (default 256)")
    parser.add_argument("--summarize", action="store_true", help="add each article's English summary")
    parser.add_argument("--summary-length", choices=("short", "medium", "long"), default="medium")
    parser.add_argument(
        "--model",
        default="",
        metavar="NAME",
        help="which named --translation-model translates (only it is loaded; default: the first)",
    )
    parser.add_argument(
        "--address",
        default=os.environ.get("RAY_ADDRESS"),
        help="Ray cluster to run on, e.g. ray://head:10001 [env RAY_ADDRESS; default: a local Ray in this process]",
    )


def job_from(args: argparse.Namespace) -> BulkJob:
    """Check the job's flags and find its input files; raises ValueError or OutputError with one line."""
    if args.actors < 1:
        raise ValueError("--actors must be at least 1")
    if args.batch_size < 1:
        raise ValueError("--batch-size must be at least 1")
    if args.cpus_per_actor < 0 or args.num_gpus < 0:
        raise ValueError("--cpus-per-actor and --num-gpus must not be negative")
    cpus = args.cpus_per_actor or max(1, (os.cpu_count() or 1) // args.actors)
    inputs, input_format = input_files(args.input, args.input_format)
    return BulkJob(
        inputs=inputs,
        input_format=input_format,
        output=OutputDir(args.output_dir, args.output_format),
        id_column=args.id_column,
        text_column=args.text_column,
        actors=args.actors,
        cpus_per_actor=cpus,
        gpus_per_actor=args.num_gpus,
        batch_size=args.batch_size,
        summarize=args.summarize,
        summary_length=args.summary_length.upper(),
        address=args.address or None,
        model=args.model,
    )


def only_model(settings: Settings, name: str) -> Settings:
    """The settings with only the translation model `--model` names (the first when it names none):
    an actor loads that one, under its own name, and no other."""
    models = settings.translation_models()
    chosen = next((m for m in models if m.name == name), None) if name else models[0]
    if chosen is None:
        names = ", ".join(m.name for m in models)
        raise ValueError(f"--model: no --translation-model is named {name!r}; they are {names}")
    return replace(
        settings,
        translation_model=chosen.ref if chosen.name == UNNAMED_MODEL else f"{chosen.name}={chosen.ref}",
        translation_revision=chosen.revision,
    )


def input_files(source: str, input_format: str) -> tuple[list[str], str]:
    """INPUT's files and their format; a URI (s3://, gs://, ...) is handed to Ray as it is."""
    if "://" in source:
        suffix_format = INPUT_SUFFIXES.get(Path(source.rstrip("/")).suffix)
        chosen = suffix_format if input_format == "auto" else input_format
        if chosen is None:
            raise ValueError(f"cannot tell the format of {source}: give --input-format jsonl or parquet")
        return [source], chosen
    path = Path(source)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in INPUT_SUFFIXES)
    else:
        raise ValueError(f"{source}: no such file or directory")
    formats = {INPUT_SUFFIXES.get(p.suffix) for p in files}
    if input_format == "auto":
        if len(formats) != 1 or None in formats:
            raise ValueError(
                f"{source}: cannot tell the input format from the file names "
                f"({', '.join(sorted(INPUT_SUFFIXES))}): give --input-format jsonl or parquet"
            )
        input_format = formats.pop()  # type: ignore[assignment]
    files = [p for p in files if path.is_file() or INPUT_SUFFIXES[p.suffix] == input_format]
    if not files:
        raise ValueError(f"{source}: no {input_format} files in it")
    return [str(p) for p in files], input_format


# -- reading: lines and rows become articles (runs in Ray tasks) ---------------------------------


def article(key: str, article_id: Any, text: str, problem: str, done: frozenset[str]) -> dict[str, Any]:
    return {"key": key, "id_json": json.dumps(article_id), "text": text, "problem": problem, "skip": key in done}


def unusable(raw: str, problem: str, done: frozenset[str]) -> dict[str, Any]:
    """A line or row without a usable id, known by its digest so that a rerun does not report it again."""
    digest = hashlib.sha1(raw.encode("utf-8", "surrogatepass")).hexdigest()
    return article(line_key(digest), None, "", problem, done)


def article_of(record: Any, raw: str, id_column: str, text_column: str, done: frozenset[str]) -> dict[str, Any]:
    """One input record (a parsed JSON line, or a Parquet row as a dict) as an article to translate."""
    if not isinstance(record, dict):
        return unusable(raw, f"the line is a JSON {type(record).__name__}, not an object: {raw[:60]!r}", done)
    article_id = record.get(id_column)
    if article_id is None or isinstance(article_id, bool) or not isinstance(article_id, (str, int)):
        what = "has no" if article_id is None else "has a non-text, non-integer"
        return unusable(raw, f"the record {what} '{id_column}': {raw[:60]!r}", done)
    text = record.get(text_column)
    if text is None:
        problem = f"the record has no '{text_column}' (missing or null): there is nothing to translate"
        return article(id_key(article_id), article_id, "", problem, done)
    if not isinstance(text, str):
        problem = f"'{text_column}' is a {type(text).__name__}, not text"
        return article(id_key(article_id), article_id, "", problem, done)
    return article(id_key(article_id), article_id, text, "", done)


def articles_from_lines(batch: Any, *, id_column: str, text_column: str, done: Any) -> dict[str, list[Any]]:
    """JSONL lines (Ray's read_text rows) as articles."""
    done = _resolved(done)
    rows = []
    for line in batch.column("text").to_pylist():
        try:
            record = json.loads(line)
        except ValueError as exc:
            rows.append(unusable(line, f"the line is not JSON ({exc}): {line[:60]!r}", done))
            continue
        rows.append(article_of(record, line, id_column, text_column, done))
    return _columns(rows)


def articles_from_rows(batch: Any, *, id_column: str, text_column: str, done: Any) -> dict[str, list[Any]]:
    """Parquet rows as articles."""
    done = _resolved(done)
    rows = [article_of(row, repr(row), id_column, text_column, done) for row in batch.to_pylist()]
    return _columns(rows)


_done_cache: dict[str, frozenset[str]] = {}


def _resolved(done: frozenset[str] | Any) -> frozenset[str]:
    """The done keys (or a ray.ObjectRef of them), fetched from Ray's object store once per worker process."""
    import ray

    if not isinstance(done, ray.ObjectRef):
        return cast(frozenset[str], done)
    key = done.hex()
    if key not in _done_cache:
        _done_cache.clear()
        _done_cache[key] = ray.get(done)
    return _done_cache[key]


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {name: [row[name] for row in rows] for name in ARTICLE_COLUMNS}


# -- translating: the actors ---------------------------------------------------------------------


class ArticleTranslator:
    """A Ray actor's work: the models loaded once, then batches of articles translated in-process."""

    def __init__(self, settings: Settings, summarize: bool, summary_length: str) -> None:
        from .dependencies import check_server_dependencies

        logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr)
        check_server_dependencies()
        from .app import load_models
        from .doors.grpc_api import TranslatorServicer
        from .runtime import Runtime

        self._servicer = TranslatorServicer(Runtime(settings, models=load_models(settings)))
        self._summarize = summarize
        # Value() gives the number; protoc's stubs type the field as the enum (an int at run time).
        length = cast("pb.SummaryLength", pb.SummaryLength.Value(summary_length))
        self._options = pb.TranslateOptions(summary_length=length)
        # One event loop of the actor's own, as in the server: Ray may call from any of its threads,
        # and batches that overlap share the batcher (the next fills the engine while one finishes).
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name="bulk-loop", daemon=True).start()

    def __call__(self, batch: Any) -> dict[str, list[Any]]:
        rows = batch.to_pylist()
        outcomes = asyncio.run_coroutine_threadsafe(self._all(rows), self._loop).result()
        return {
            "key": [row["key"] for row in rows],
            "outcome": [outcome for outcome, _ in outcomes],
            "record": [record for _, record in outcomes],
        }

    async def _all(self, rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return await asyncio.gather(*(self._one(row) for row in rows))

    async def _one(self, row: dict[str, Any]) -> tuple[str, str]:
        """("done" | "error" | "skipped", the record as one line of JSON)."""
        from tarjama.interchange.messages import to_dict

        from .errors import private_traceback, status_for

        if row["skip"]:
            return "skipped", ""
        article_id = json.loads(row["id_json"])
        if row["problem"]:
            record = {"id": article_id, "error": f"INVALID_ARGUMENT: {row['problem']}"}
            if article_id is None:
                record["line_sha1"] = row["key"].removeprefix("line-sha1:")
            return "error", json.dumps(record, ensure_ascii=False)
        request = pb.TranslateRequest(
            id=str(article_id), text=row["text"], summarize=self._summarize, options=self._options
        )
        try:
            response = await self._servicer.translate(request, None)
        except Exception as exc:  # a bad article is a record, never the end of the job
            code, message = status_for(exc)
            if code.name == "INTERNAL":
                log.error("article %s failed: %s", row["key"], private_traceback(exc))
            return "error", json.dumps({"id": article_id, "error": f"{code.name}: {message}"}, ensure_ascii=False)
        return "done", json.dumps({**to_dict(response), "id": article_id}, ensure_ascii=False)


# -- the driver ----------------------------------------------------------------------------------


@dataclass
class Counts:
    done: int = 0
    errors: int = 0
    skipped: int = 0  # already in OUTPUT_DIR from an earlier run
    duplicates: int = 0  # an id seen earlier in this run's input: its first record stands

    def line(self) -> str:
        extra = f", {self.duplicates} duplicate ids not written again" if self.duplicates else ""
        return f"{self.done} translated, {self.errors} errors, {self.skipped} skipped (already written){extra}"


def run(args: argparse.Namespace) -> int:
    """`tarjama bulk`; returns the exit code (0 done, 1 failed, 2 bad flags, 130 interrupted)."""
    prepared = prepare("bulk", args, modules=BULK_MODULES, install=BULK_EXTRA)
    if isinstance(prepared, int):
        return prepared
    try:
        job = job_from(args)
        done = job.output.done_keys()
    except (ValueError, OutputError) as exc:
        print(f"tarjama bulk: error: {exc}", file=sys.stderr)
        return 2
    try:
        chosen = only_model(prepared, job.model)
    except ValueError as exc:
        print(f"tarjama bulk: error: {exc}", file=sys.stderr)
        return 2
    settings = replace(
        chosen,
        summary_model=prepared.summary_model if job.summarize else "none",
        threads=int(job.cpus_per_actor) if not job.gpus_per_actor else prepared.threads,
        max_queue_tokens=UNBOUNDED_QUEUE_TOKENS,
    )
    import ray

    start_ray(job)
    writer = job.output.writer()
    counts = Counts()
    interrupted = False
    started = time.monotonic()
    # Ctrl-C and SIGTERM (a pod being stopped) end the run between batches: what was written stays.
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        total, results = plan(job, settings, ray.put(frozenset(done)))
        seen = set(done)
        with progress_bar(total) as bar:
            for batch in results.iter_batches(batch_size=None, batch_format="pyarrow"):
                records = []
                columns = (batch.column(name).to_pylist() for name in ("key", "outcome", "record"))
                for key, outcome, record in zip(*columns, strict=True):
                    if outcome == "skipped":
                        counts.skipped += 1
                    elif key in seen:
                        counts.duplicates += 1
                    else:
                        seen.add(key)
                        records.append(record)
                        counts.done += outcome == "done"
                        counts.errors += outcome == "error"
                writer.write(records)
                bar.update(batch.num_rows)
    except KeyboardInterrupt:
        interrupted = True
    except Exception as exc:  # Ray gave up (an actor that cannot start, a lost cluster): say so, keep what was written
        print(f"tarjama bulk: error: the job failed: {type(exc).__name__}: {str(exc)[:2000]}", file=sys.stderr)
        return _finish(writer, counts, started, code=1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return _finish(writer, counts, started, code=130 if interrupted else 0)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _finish(writer: Any, counts: Counts, started: float, code: int) -> int:
    import ray

    parts = writer.close()
    elapsed = time.monotonic() - started
    rate = (counts.done + counts.errors) / elapsed if elapsed > 0 else 0.0
    where = ", ".join(str(p) for p in parts) or "nothing new written"
    print(f"tarjama bulk: {counts.line()} in {elapsed:.1f}s ({rate:.2f} articles/s); {where}", file=sys.stderr)
    if code == 130:
        print("tarjama bulk: interrupted; rerun the same command to go on where it stopped", file=sys.stderr)
    ray.shutdown()
    return code


def start_ray(job: BulkJob) -> None:
    """Join the cluster at --address / RAY_ADDRESS, or start a local Ray inside this process."""
    import ray
    from ray.data import DataContext

    quiet = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": True}
    if job.address:
        ray.init(address=job.address, **quiet)
    else:
        # One logical CPU beyond the cores, for the reading tasks: the actors ask for all the cores
        # they compute on, and the readers, which need little, would otherwise never be scheduled.
        ray.init(num_cpus=(os.cpu_count() or 1) + 1, **quiet)
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    context = DataContext.get_current()
    context.enable_progress_bars = False  # ours counts articles, not blocks
    context.enable_operator_progress_bars = False
    context.print_on_execution_start = False


def plan(job: BulkJob, settings: Settings, done: Any) -> tuple[int, Any]:
    """The input's size, and the dataset of results: read → articles → actors."""
    import ray.data

    columns = {"id_column": job.id_column, "text_column": job.text_column, "done": done}
    if job.input_format == "jsonl":
        lines = ray.data.read_text(job.inputs, drop_empty_lines=True)
        articles = lines.map_batches(articles_from_lines, fn_kwargs=columns, batch_format="pyarrow")
    else:
        rows = ray.data.read_parquet(job.inputs)
        missing = {job.id_column, job.text_column} - set(rows.schema().names)
        if missing:
            named = ", ".join(sorted(missing))
            raise ValueError(f"the Parquet input has no column {named} (see --id-column and --text-column)")
        rows = rows.select_columns([job.id_column, job.text_column])
        articles = rows.map_batches(articles_from_rows, fn_kwargs=columns, batch_format="pyarrow")
    # Counting reads the input once more (Parquet answers from its metadata): cheap beside translating
    # it, and it gives the progress bar its end.
    total = (lines if job.input_format == "jsonl" else rows).count()
    results = articles.map_batches(
        ArticleTranslator,
        fn_constructor_kwargs={"settings": settings, "summarize": job.summarize, "summary_length": job.summary_length},
        batch_size=job.batch_size,
        batch_format="pyarrow",
        # Two calls at once per actor, on its one event loop: the next batch's sentences are queued
        # while the last ones of a batch finish, so the engine never idles between batches.
        compute=ray.data.ActorPoolStrategy(
            size=job.actors, max_concurrent_calls_per_actor=2, enable_true_multi_threading=True
        ),
        num_cpus=job.cpus_per_actor,
        num_gpus=job.gpus_per_actor or None,
    )
    return total, results


def progress_bar(total: int) -> Any:
    """tqdm on stderr when it is a terminal (a one-line total is printed at the end either way)."""
    from tqdm import tqdm

    return tqdm(total=total, unit="article", file=sys.stderr, disable=None, dynamic_ncols=True)

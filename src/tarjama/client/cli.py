"""The `tarjama` command line: translate, health, info, eval (the client) and serve (the server)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tarjama import __version__
from tarjama.interchange.glossary_files import EntriesFileError, parse_entries, render_tsv
from tarjama.v1 import tarjama_pb2 as pb

from .client import DEFAULT_SERVER, TarjamaClient, TarjamaError, TranslateArgs, Unavailable, to_dict
from .formats import (
    DOCUMENT_FORMATS,
    EXTENSIONS,
    FORMATS,
    BlockWriter,
    head_blocks,
    paragraph_block,
    render,
    summary_lines,
    tail_blocks,
)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except TarjamaError as exc:
        if nobody_answers(exc):
            server = getattr(args, "server", None) or DEFAULT_SERVER
            print(f"tarjama: error: no Tarjama server answers at {server} (is `tarjama serve` running? "
                  "--server or TARJAMA_SERVER name another)", file=sys.stderr)  # fmt: skip
            return 1
        print(f"tarjama: error: {exc.code.name}: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as the Python docs advise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


# What grpc says when nothing listens at the address (or the name does not resolve).
UNREACHABLE = ("failed to connect", "connections to all backends failing", "connection refused", "dns resolution")


def nobody_answers(exc: TarjamaError) -> bool:
    return isinstance(exc, Unavailable) and any(m in exc.message.lower() for m in UNREACHABLE)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tarjama", description="Arabic news in English, aligned by paragraph.")
    parser.add_argument("--version", action="version", version=f"tarjama {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    translate = commands.add_parser("translate", help="translate Arabic files (or stdin) with a running server")
    translate.add_argument("files", nargs="*", metavar="FILE", help="Arabic text files; none or - reads stdin")
    _server_option(translate)
    translate.add_argument("--format", choices=FORMATS, default="text", help="output format (default text)")
    translate.add_argument("--output-dir", type=Path, help="write one output file per input file here")
    translate.add_argument("--timeout", type=float, default=None, help="seconds to wait for each file")
    translate.add_argument("--jobs", type=int, default=4, help="files translated at once (default 4)")
    translate.add_argument(
        "--no-summary", action="store_true", help="skip the summary (asked for by default when the server has one)"
    )
    translate.add_argument("--summary-length", "--length", dest="summary_length", choices=("short", "medium", "long"),
                           default="medium", help="summary length (default medium)")  # fmt: skip
    translate.add_argument(
        "--input-format",
        choices=("auto", "text", "html"),
        default="auto",
        help="auto: .html and .htm files are HTML (translated as markup, written back as HTML), others text",
    )
    _model_option(translate)
    translate.add_argument(
        "--glossary",
        default="",
        metavar="NAME",
        help="apply the server's stored glossary of this name or id (`tarjama glossary list`)",
    )
    translate.add_argument(
        "--extract",
        action="store_true",
        help="the files are pages saved from news sites: the server translates their article (headline, "
        "byline, date, body), and what was dropped is said on stderr",
    )
    translate.set_defaults(run=run_translate)

    health = commands.add_parser("health", help="print the server's grpc.health.v1 status")
    _server_option(health)
    health.add_argument("--wait", type=float, default=0, metavar="SECONDS", help="wait up to this long for SERVING")
    health.set_defaults(run=run_health)

    segment = commands.add_parser(
        "segment", help="split Arabic text into paragraphs and sentences with offsets (locally, no server)"
    )
    segment.add_argument("file", nargs="?", default="-", metavar="FILE", help="text file; none or - reads stdin")
    segment.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    segment.add_argument(
        "--server", default=None, help="HOST:PORT: ask the server's Segment RPC instead (adds token counts)"
    )
    _connection_options(segment)
    segment.set_defaults(run=run_segment)

    summarize = commands.add_parser("summarize", help="summarise English text with a running server")
    summarize.add_argument(
        "file", nargs="?", default="-", metavar="FILE", help="English text file; none or - reads stdin"
    )
    _server_option(summarize)
    summarize.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    summarize.add_argument("--length", "--summary-length", dest="length", choices=("short", "medium", "long"),
                           default="medium", help="summary length (default medium)")  # fmt: skip
    summarize.set_defaults(run=run_summarize)

    glossary = commands.add_parser("glossary", help="the newsroom's stored glossaries on the server")
    glossary_commands = glossary.add_subparsers(dest="glossary_command", required=True, metavar="ACTION")
    create = glossary_commands.add_parser(
        "create", help="store a glossary from a file of term<TAB>rendering lines (or CSV); prints its id"
    )
    create.add_argument("name", help="the glossary's name (what --glossary takes)")
    create.add_argument(
        "file", metavar="FILE", help="TSV or CSV file of Arabic term and English rendering; - reads stdin"
    )
    create.add_argument("--entries-format", choices=("auto", "tsv", "csv"), default="auto",
                        help="auto: .csv files are CSV, others TSV")  # fmt: skip
    _server_option(create)
    create.set_defaults(run=run_glossary_create)
    listing = glossary_commands.add_parser("list", help="list the stored glossaries, newest first")
    listing.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    _server_option(listing)
    listing.set_defaults(run=run_glossary_list)
    show = glossary_commands.add_parser("show", help="print a glossary's entries (TSV) by its name or id")
    show.add_argument("glossary", metavar="NAME", help="its name or id")
    show.add_argument("--format", choices=("tsv", "json"), default="tsv", help="output format (default tsv)")
    _server_option(show)
    show.set_defaults(run=run_glossary_show)
    delete = glossary_commands.add_parser("delete", help="delete a stored glossary by its name or id")
    delete.add_argument("glossary", metavar="NAME", help="its name or id")
    _server_option(delete)
    delete.set_defaults(run=run_glossary_delete)

    info = commands.add_parser("info", help="print the server's version, models, decoding settings and limits")
    _server_option(info)
    info.set_defaults(run=run_info)

    evaluate = commands.add_parser(
        "eval",
        help="score a running server on reference sets (chrF, BLEU), with its speed and flags",
        description="Translate SOURCE files (one sentence per line) with a running server and score them against "
        "their REFERENCE files with sacrebleu, e.g. tests/fixtures/data/flores200-devtest.ara "
        "tests/fixtures/data/flores200-devtest.eng tests/fixtures/data/tico19-test.ara "
        "tests/fixtures/data/tico19-test.eng (in a clone of the repository)",
    )
    evaluate.add_argument("pairs", nargs="+", metavar="SOURCE REFERENCE", help="pairs of aligned files")
    _server_option(evaluate)
    evaluate.add_argument("--jobs", type=int, default=8, help="requests in flight at once (default 8)")
    evaluate.add_argument("--per-request", type=int, default=8, help="sentences per request (default 8)")
    evaluate.add_argument("--limit", type=int, help="score only the first N sentences of each set")
    evaluate.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    _model_option(evaluate)
    evaluate.set_defaults(run=run_eval)

    from tarjama.server.settings import build_parser as build_serve_parser  # light: no torch

    models = commands.add_parser("models", help="fetch and prepare models into the cache (needs tarjama[server])")
    model_commands = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    download = model_commands.add_parser(
        "download",
        help="fetch the models `tarjama serve` with the same flags would use, and convert them for its engine",
        description="Fetch (and for CTranslate2, convert) the translation and summary models into --cache-dir, "
        "exactly where `tarjama serve` with the same flags reads them; then `tarjama serve --offline` starts "
        "from the cache without touching the network. Takes the same flags as serve.",
    )
    build_serve_parser(download)
    download.set_defaults(run=run_models_download)

    bulk = commands.add_parser(
        "bulk",
        help="translate an archive (JSONL or Parquet) with Ray Data, resumably (needs tarjama[server,bulk])",
        description="Translate every article of INPUT (JSONL or Parquet with id and text) into OUTPUT_DIR, one record "
        "per article: its `translate --format json` object, or {id, error}. Runs on a local Ray by default, on a "
        "cluster with --address. Rerun the same command to resume: ids already in OUTPUT_DIR are skipped. "
        "The models are chosen with the serve flags.",
    )
    from tarjama.server.bulk import add_arguments as add_bulk_arguments  # light: no torch, no ray

    add_bulk_arguments(bulk)
    build_serve_parser(bulk)
    bulk.set_defaults(run=run_bulk)

    serve = commands.add_parser("serve", help="run the translation server (needs tarjama[server])")
    build_serve_parser(serve)
    serve.set_defaults(run=run_serve)
    return parser


def _model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default="",
        metavar="NAME",
        help="which of the server's translation models translates (`tarjama info` lists them; default: its first)",
    )


def _server_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        default=os.environ.get("TARJAMA_SERVER", DEFAULT_SERVER),
        help=f"HOST:PORT of the server [env TARJAMA_SERVER; default {DEFAULT_SERVER}]",
    )
    _connection_options(parser)


def _connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--token", default=os.environ.get("TARJAMA_TOKEN"), help="bearer token for the server [env TARJAMA_TOKEN]"
    )
    parser.add_argument("--tls", action="store_true", help="connect with TLS, trusting the system's roots")
    parser.add_argument("--tls-ca", metavar="PEM", help="connect with TLS, trusting this CA certificate")
    parser.add_argument("--tls-cert", metavar="PEM", help="client certificate, for a server that requires one")
    parser.add_argument("--tls-key", metavar="PEM", help="the client certificate's private key")


def connect(args: argparse.Namespace, **options: object) -> TarjamaClient:
    """A client for the command's --server, with its token and TLS settings."""
    return TarjamaClient(
        args.server,
        token=args.token,
        tls=args.tls,
        tls_ca=args.tls_ca,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        **options,  # type: ignore[arg-type]
    )


# One article to the terminal in these formats is streamed: paragraphs print as they are translated.
STREAMED_FORMATS = ("text", "markdown")


def run_translate(args: argparse.Namespace) -> int:
    sources = args.files or ["-"]
    if args.output_dir:
        args.output_dir.mkdir(parents=True, exist_ok=True)
    several = len(sources) > 1
    if several and args.format in DOCUMENT_FORMATS and not args.output_dir:
        print(f"tarjama: error: --format {args.format} writes one document per article: give --output-dir",
              file=sys.stderr)  # fmt: skip
        return 2
    if "-" in sources and sys.stdin.isatty():  # not a silent wait for input nobody knows is expected
        print("tarjama: reading the Arabic article from the terminal; end it with Ctrl-D "
              "(or give a file: tarjama translate article.txt)", file=sys.stderr)  # fmt: skip
    inputs = {Path(source).resolve() for source in sources if source != "-"}
    progress = Progress(len(sources)) if several and sys.stderr.isatty() else None
    failures = 0
    with connect(args, timeout=args.timeout) as client:
        summarize = not args.no_summary and client.has_summarizer()
        glossary_id = client.find_glossary(args.glossary).glossary_id if args.glossary else ""
        length = pb.SummaryLength.Value(args.summary_length.upper())
        markup = [is_html(source, args.input_format) and not args.extract for source in sources]
        if not several and not args.output_dir and args.format in STREAMED_FORMATS and not markup[0]:
            return stream_one(client, sources[0], args.format, summarize, length, args.extract, args.model, glossary_id)

        def one(source: str) -> pb.TranslateResponse | Exception:
            try:
                text = read_article(source)
                name = "" if source == "-" else Path(source).name
                options: TranslateArgs = {"id": name, "summarize": summarize, "summary_length": length}
                options["model"] = args.model
                options["glossary_id"] = glossary_id
                if args.extract:  # a saved page: the server keeps its article
                    options.update({"html": text, "extract_article": True})
                    response = client.translate(**options)
                    report_extraction(source, response.extraction)
                    return response
                if is_html(source, args.input_format):  # translated as markup
                    options["html"] = text
                    return client.translate(**options)
                return client.translate(text, **options)
            except (OSError, UnicodeDecodeError, TarjamaError) as exc:
                return exc

        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            # map keeps the input order, while the server batches the files' sentences together.
            for source, result in zip(sources, pool.map(one, sources), strict=True):
                if progress:
                    progress.step(source)
                if isinstance(result, Exception):
                    failures += 1
                    detail = f"{result.code.name}: {result.message}" if isinstance(result, TarjamaError) else result
                    print(f"tarjama: error: {source}: {detail}", file=sys.stderr)
                    continue
                # HTML in, HTML out for the default format; markdown, json and the exports are made from
                # the paragraphs, as for text (the format asked for is the format written).
                html_out = bool(result.html) and args.format == "text"
                if html_out:
                    output = result.html
                else:
                    output = render(result, args.format, compact=several and not args.output_dir)
                if args.output_dir:
                    target = output_path(args.output_dir, source, "html" if html_out else EXTENSIONS[args.format])
                    if target.resolve() in inputs:  # never write over an article being translated
                        failures += 1
                        print(f"tarjama: error: {source}: the output {target} would replace an input; "
                              "choose another --output-dir", file=sys.stderr)  # fmt: skip
                        continue
                    target.write_text(output, encoding="utf-8")
                elif several and args.format != "json":
                    sys.stdout.write(f"==> {source} <==\n{output}\n")
                else:
                    sys.stdout.write(output)
                sys.stdout.flush()
    if progress:
        progress.done()
    return 1 if failures else 0


HTML_SUFFIXES = (".html", ".htm")


def output_path(directory: Path, source: str, extension: str) -> Path:
    """Where --output-dir writes a file's English: `story.txt` -> `story.en.txt` (`stdin.en.txt` for stdin),
    so that it never takes the Arabic file's name, even with --output-dir beside the inputs."""
    name = "stdin" if source == "-" else Path(source).stem
    return directory / f"{name}.en.{extension}"


def is_html(source: str, input_format: str) -> bool:
    return input_format == "html" or (input_format == "auto" and source.lower().endswith(HTML_SUFFIXES))


def read_article(source: str) -> str:
    return sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")


def report_extraction(source: str, extraction: pb.Extraction) -> None:
    """What the server kept of a saved page and what it dropped, on stderr."""
    parts = (("headline", extraction.title), ("byline", extraction.author), ("date", extraction.date))
    kept = ", ".join(name for name, value in parts if value)
    dropped = "; ".join(repr(block[:60]) for block in extraction.dropped[:12])
    more = f" and {len(extraction.dropped) - 12} more" if len(extraction.dropped) > 12 else ""
    print(
        f"tarjama: {source}: kept the article{' (' + kept + ')' if kept else ''}; dropped "
        f"{len(extraction.dropped)} blocks of page furniture{': ' + dropped + more if dropped else ''}",
        file=sys.stderr,
    )


def stream_one(
    client: TarjamaClient,
    source: str,
    fmt: str,
    summarize: bool,
    length: int,
    extract: bool,
    model: str,
    glossary_id: str,
) -> int:
    """One article to the terminal: each paragraph printed as soon as the server has it."""
    try:
        text = read_article(source)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"tarjama: error: {source}: {exc}", file=sys.stderr)
        return 1
    name = "" if source == "-" else Path(source).name
    out = BlockWriter(sys.stdout)
    out.write(head_blocks(fmt, name))
    options: TranslateArgs = {
        "id": name,
        "summarize": summarize,
        "summary_length": length,
        "model": model,
        "glossary_id": glossary_id,
    }
    if extract:  # a saved page: the server keeps its article
        options.update({"html": text, "extract_article": True})
    for message in client.translate_stream(None if extract else text, **options):
        out.write([paragraph_block(fmt, p) for p in message.paragraphs])
        if message.HasField("extraction"):
            report_extraction(source, message.extraction)
        if message.done:
            out.write(tail_blocks(fmt, message.summary if message.HasField("summary") else None))
    out.end()
    return 0


# `health --wait` gives up early on a server that is not coming: one that answered and then went
# silent this long has exited; with nothing ever listening this long, none is starting.
GONE_AFTER_S = 5.0
NEVER_UP_AFTER_S = 60.0


def run_health(args: argparse.Namespace) -> int:
    started = time.monotonic()
    deadline = started + args.wait
    answered = False  # the server has answered at least once
    silent_since: float | None = None  # when it last stopped answering (UNAVAILABLE)
    with connect(args) as client:
        while True:
            now = time.monotonic()
            try:
                status = client.health(timeout=5)
                answered, silent_since = True, None
            except TarjamaError as exc:
                status, error = None, exc
                if not isinstance(exc, Unavailable):
                    silent_since = None
                elif silent_since is None:
                    silent_since = now
                elif answered and now - silent_since >= GONE_AFTER_S:
                    print(
                        f"tarjama: error: the server at {args.server} answered, then stopped answering "
                        f"({now - silent_since:.0f}s): it has exited; see its log",
                        file=sys.stderr,
                    )
                    return 1
                elif not answered and now - started >= NEVER_UP_AFTER_S:
                    print(
                        f"tarjama: error: nothing has answered at {args.server} for {now - started:.0f}s: "
                        "is the server running? (it prints why it stopped)",
                        file=sys.stderr,
                    )
                    return 1
            if status == "SERVING" or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
    if status is None:
        raise error
    print(status)
    return 0 if status == "SERVING" else 1


def run_segment(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    if args.server:
        with connect(args) as client:
            response = client.segment(text, id="" if args.file == "-" else Path(args.file).name)
    else:
        response = segment_locally(text, "" if args.file == "-" else Path(args.file).name)
    if args.format == "json":
        print(json.dumps(without_translations(to_dict(response)), ensure_ascii=False, indent=2))
    else:
        print("\n\n".join("\n".join(s.source for s in p.sentences) for p in response.paragraphs))
    return 0


def without_translations(response: dict) -> dict:
    """Translate's JSON shape minus the fields that only a translation fills."""
    for paragraph in response.get("paragraphs", []):
        paragraph.pop("translation", None)
        for sentence in paragraph.get("sentences", []):
            sentence.pop("translation", None)
            sentence.pop("confidence", None)
    return response


def segment_locally(text: str, id: str) -> pb.SegmentResponse:
    """What the server's Segment RPC returns, without token counts: pure Python, no model."""
    from tarjama.server.text.flags import plan_flags
    from tarjama.server.text.segmentation import has_arabic, split_paragraphs, split_sentences

    paragraphs = []
    for index, paragraph in enumerate(split_paragraphs(text)):
        flags = [f.value for f in plan_flags(has_arabic(paragraph), 1)]  # the proto takes enum names too
        sentences = [
            pb.Sentence(source=s.text, source_start=s.start, source_end=s.end, flags=flags)
            for s in split_sentences(paragraph)
        ]
        paragraphs.append(pb.Paragraph(index=index, source=paragraph, sentences=sentences))
    return pb.SegmentResponse(id=id, paragraphs=paragraphs)


def run_summarize(args: argparse.Namespace) -> int:
    if args.file == "-" and sys.stdin.isatty():
        print("tarjama: reading the English text from the terminal; end it with Ctrl-D", file=sys.stderr)
    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    if not text.strip():
        print("tarjama: error: there is nothing to summarise: the input is empty", file=sys.stderr)
        return 1
    if arabic_share(text) > 0.3:  # summarize takes English; an Arabic text is summarised as it is
        print("tarjama: warning: this text is mostly Arabic; `tarjama summarize` summarises English text as it "
              "is. For an English summary of an Arabic article: tarjama translate --format text FILE "
              "(the summary comes after the paragraphs)", file=sys.stderr)  # fmt: skip
    with connect(args) as client:
        response = client.summarize(text, length=pb.SummaryLength.Value(args.length.upper()))
    if args.format == "json":
        print(json.dumps(to_dict(response), ensure_ascii=False, indent=2))
    else:
        print(summary_lines(response.summary))
    return 0


def arabic_share(text: str) -> float:
    """The share of the text's letters that are Arabic script."""
    letters = [c for c in text if c.isalpha()]
    return sum("\u0600" <= c <= "\u06ff" or "\u0750" <= c <= "\u077f" for c in letters) / max(1, len(letters))


def run_glossary_create(args: argparse.Namespace) -> int:
    fmt = args.entries_format
    if fmt == "auto":
        fmt = "csv" if args.file.lower().endswith(".csv") else "tsv"
    try:
        text = read_article(args.file)
        entries = parse_entries(text, fmt, MAX_ENTRY_LINES)
    except (OSError, UnicodeDecodeError, EntriesFileError) as exc:
        print(f"tarjama: error: {args.file}: {exc}", file=sys.stderr)
        return 1
    with connect(args, timeout=60) as client:
        created = client.create_glossary(args.name, entries)
    print(f"{created.glossary_id}\t{created.name}\t{entries_count(created.entry_count)}")
    return 0


def entries_count(count: int) -> str:
    return f"{count} entry" if count == 1 else f"{count} entries"


def run_glossary_list(args: argparse.Namespace) -> int:
    with connect(args, timeout=30) as client:
        glossaries = client.list_glossaries()
    if args.format == "json":
        print(json.dumps([to_dict(g) for g in glossaries], ensure_ascii=False, indent=2))
        return 0
    for g in glossaries:
        by = f"  by {g.created_by}" if g.created_by else ""
        print(f"{g.glossary_id}  {g.name}  ({entries_count(g.entry_count)}, {g.creation_time}{by})")
    if not glossaries:
        print("no stored glossaries (tarjama glossary create NAME FILE stores one)", file=sys.stderr)
    return 0


def run_glossary_show(args: argparse.Namespace) -> int:
    with connect(args, timeout=60) as client:
        glossary = client.get_glossary(client.find_glossary(args.glossary).glossary_id)
    if args.format == "json":
        print(json.dumps(to_dict(glossary), ensure_ascii=False, indent=2))
    else:
        sys.stdout.write(render_tsv([(e.source, e.target) for e in glossary.entries]))
    return 0


def run_glossary_delete(args: argparse.Namespace) -> int:
    with connect(args, timeout=30) as client:
        glossary = client.find_glossary(args.glossary)
        client.delete_glossary(glossary.glossary_id)
    print(f"deleted {glossary.glossary_id} ({glossary.name})", file=sys.stderr)
    return 0


# A file of more lines than any server takes is refused while it is read (the server's own default
# limit, --max-glossary-terms, is 10,000; it answers for a lower one).
MAX_ENTRY_LINES = 1_000_000


def run_info(args: argparse.Namespace) -> int:
    with connect(args) as client:
        print(json.dumps(to_dict(client.info(timeout=10)), ensure_ascii=False, indent=2))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from .evaluate import describe_server, evaluate, render_text

    if len(args.pairs) % 2:
        print("tarjama eval: error: give files in pairs: SOURCE REFERENCE [SOURCE REFERENCE ...]", file=sys.stderr)
        return 2
    pairs = [(Path(args.pairs[i]), Path(args.pairs[i + 1])) for i in range(0, len(args.pairs), 2)]
    with connect(args) as client:
        server = describe_server(client.info(timeout=10))
        try:
            scores = [
                evaluate(
                    client, src, ref, per_request=args.per_request, jobs=args.jobs, limit=args.limit, model=args.model
                )  # fmt: skip
                for src, ref in pairs
            ]
        except (OSError, ValueError) as exc:
            print(f"tarjama eval: error: {exc}", file=sys.stderr)
            return 2
    if args.format == "json":
        print(json.dumps({"server": server, "sets": [asdict(s) for s in scores]}, ensure_ascii=False, indent=2))
    else:
        print(render_text(server, scores))
    return 0


def run_models_download(args: argparse.Namespace) -> int:
    from tarjama.server.errors import StartupError
    from tarjama.server.startup import prepare

    settings = prepare("models download", args)
    if isinstance(settings, int):
        return settings
    try:
        from tarjama.server.engines import download_models

        for line in download_models(settings):
            print(line, flush=True)
    except StartupError as exc:
        print(f"tarjama models download: error: {exc}", file=sys.stderr)
        return 1
    return 0


def run_bulk(args: argparse.Namespace) -> int:
    from tarjama.server.bulk import run  # light: it checks for ray and the rest before importing them

    return run(args)


def run_serve(args: argparse.Namespace) -> int:
    from tarjama.server.startup import prepare

    settings = prepare("serve", args)  # before the server's modules import what may be missing
    if isinstance(settings, int):
        return settings
    from tarjama.server.app import run_with

    return run_with(args, settings)


class Progress:
    """A one-line progress bar on stderr, for several files on a terminal."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.count = 0

    def step(self, name: str) -> None:
        self.count += 1
        width = 30
        filled = width * self.count // self.total
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.count}/{self.total} {name[:40]:<40}")
        sys.stderr.flush()

    def done(self) -> None:
        sys.stderr.write("\n")


if __name__ == "__main__":
    sys.exit(main())

"""The server's settings: one object built from flags and TARJAMA_* variables, validated once.

Each flag `--some-flag` can also be set as `TARJAMA_SOME_FLAG`; a flag on the command line wins.
Nothing here reads the environment at import time.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

DEFAULT_TRANSLATION_MODEL = "Helsinki-NLP/opus-mt-ar-en"
DEFAULT_SUMMARY_MODEL = "sshleifer/distilbart-cnn-12-6"
# The --engine choices; engines/registry.py maps each to its module (a test holds the two equal).
ENGINES = ("ctranslate2", "torch")
DEVICES = ("auto", "cpu", "cuda")
LOG_FORMATS = ("text", "json")
COMPUTE_TYPES = ("auto", "int8", "int8_float32", "int8_float16", "int8_bfloat16", "float16", "bfloat16", "float32")


# A translation model's name, as requests choose it (options.model) and metrics label it.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
UNNAMED_MODEL = "default"  # the name of a server's one model when it was started without one
MAX_MODELS = 8  # each is a pipeline, with its engine's workers and memory


@dataclass(frozen=True)
class NamedModel:
    """One translation model the server serves: the name requests choose it by, and its checkpoint."""

    name: str
    ref: str  # a hub id or a local directory
    revision: str | None


def _named(raw: str, flag: str) -> list[tuple[str | None, str]]:
    """`NAME=VALUE,NAME=VALUE` or one unnamed `VALUE` (`--translation-model` given several times is
    joined with commas first): hub ids hold no `=` or `,`, and a name never holds `/`."""
    if any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise ValueError(f"{flag}: {raw!r} holds a control character")
    parts = [part.strip() for part in raw.split(",")]
    if any(not part for part in parts):
        raise ValueError(f"{flag}: {raw!r} has an empty entry (a path may not hold ',')")
    if len(parts) > MAX_MODELS:
        raise ValueError(f"{flag}: {len(parts)} entries; a server takes at most {MAX_MODELS} translation models")
    out: list[tuple[str | None, str]] = []
    for part in parts:
        name, sep, value = (piece.strip() for piece in part.partition("="))
        if sep and "/" not in name and not name.startswith((".", "~")):
            if not name:
                raise ValueError(f"{flag}: {part!r} has no name before '='")
            if not MODEL_NAME.fullmatch(name):
                raise ValueError(f"{flag}: model name {name!r} must be letters, digits, '.', '_' or '-' (at most 64)")
            if not value:
                raise ValueError(f"{flag}: {name}= names no model")
            out.append((name, value))
        else:
            out.append((None, part))
    return out


@functools.cache  # read by every request that names a model
def _translation_models(translation_model: str, translation_revision: str | None) -> tuple[NamedModel, ...]:
    """`Settings.translation_models`, parsed once per value."""
    entries = _named(translation_model, "--translation-model")
    if len(entries) > 1 and any(name is None for name, _ in entries):
        raise ValueError("--translation-model: with several models, name each one: NAME=MODEL (e.g. fast=...)")
    names = [name or UNNAMED_MODEL for name, _ in entries]
    folded = [name.casefold() for name in names]  # "Fast" beside "fast" is a typo waiting to happen
    for i, name in enumerate(names):
        if folded.index(folded[i]) != i:
            raise ValueError(f"--translation-model: the name {name!r} is given twice (names ignore case)")
    revisions: dict[str, str] = {}  # by the model's name ("default" for one unnamed model)
    if translation_revision:
        for given, revision in _named(translation_revision, "--translation-revision"):
            if given is None and len(entries) > 1:
                raise ValueError("--translation-revision: with several models, give NAME=REVISION")
            label = names[0] if given is None else given
            if label not in names:
                raise ValueError(f"--translation-revision: no translation model is named {given!r}")
            if label in revisions:
                raise ValueError(f"--translation-revision: {label!r} is given two revisions")
            revisions[label] = revision
    return tuple(NamedModel(label, ref, revisions.get(label)) for label, (_, ref) in zip(names, entries, strict=True))


DATABASE_SCHEMES = ("postgresql://", "postgres://")


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "tarjama")


@dataclass(frozen=True)
class Settings:
    """Everything `tarjama serve` can be told; the defaults are the documented ones."""

    # One checkpoint (hub id or local directory), or several named ones, comma-separated, the first the
    # default: "fast=Helsinki-NLP/opus-mt-ar-en,best=Helsinki-NLP/opus-mt-tc-big-ar-en". The flag may
    # be repeated instead. `translation_models()` reads it.
    translation_model: str = DEFAULT_TRANSLATION_MODEL
    # A revision for the one model, or NAME=REVISION for named ones (comma-separated).
    translation_revision: str | None = None
    # A seq2seq checkpoint (hub id or local directory), "extractive" (no model) or "none".
    summary_model: str = DEFAULT_SUMMARY_MODEL
    summary_revision: str | None = None
    engine: str = "ctranslate2"
    device: str = "auto"
    compute_type: str = "auto"
    beam_size: int = 4
    max_output_tokens: int = 256
    # Each sentence's output is capped at ratio x its source tokens + offset (and max_output_tokens).
    max_output_ratio: float = 2.0
    max_output_offset: int = 10
    # Sentences longer than this many source tokens are translated in parts cut at clause boundaries.
    max_segment_tokens: int = 200
    host: str = "127.0.0.1"
    port: int = 50051
    cache_dir: str = ""
    offline: bool = False  # never touch the network: models come from --cache-dir or local directories
    reflection: bool = False
    max_characters: int = 200_000
    max_paragraphs: int = 2_000
    max_message_bytes: int = 4 * 1024 * 1024
    max_glossary_terms: int = 10_000
    max_term_characters: int = 200
    max_id_characters: int = 256
    # The longest deadline a call may ask for: a gRPC deadline past it is clamped to it, an HTTP
    # ?timeout= past it is refused (nothing may wait on a timer the platform cannot represent).
    max_deadline_s: float = 3600.0
    max_batch_tokens: int = 8192
    max_batch_size: int = 0  # 0: by the rule in parallelism.py (16 with several workers, 32 with one)
    max_batch_delay_ms: float = 50.0
    max_queue_tokens: int = 400_000
    cache_size: int = 0  # sentences kept in the translation cache; 0 turns it off
    threads: int = 0  # 0: all the cores this process may use
    # Batches in flight at once (per GPU on CUDA) and CPU threads each; 0: by the rule in parallelism.py.
    engine_workers: int = 0
    threads_per_worker: int = 0
    device_index: str = "0"  # CUDA devices to use, e.g. "0,1"
    grace_period_s: float = 30.0
    # A batch still on the engine after this long means the engine is stuck (nothing can interrupt it):
    # health turns NOT_SERVING and the process exits non-zero, to be restarted. 0 turns the watchdog off.
    engine_watchdog_s: float = 300.0
    log_level: str = "info"
    log_format: str = "text"
    # Who may call, and encryption (see auth.py and app.py).
    auth_tokens_file: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    metrics_port: int = 0  # 0: no metrics endpoint
    # The exporter's own address (loopback unless chosen: its labels name callers) and scrape token.
    metrics_host: str = "127.0.0.1"
    metrics_token_file: str = ""
    http_port: int = 0  # 0: no HTTP API and reading page
    # Connections: closed after this age (with a grace for calls in flight), so balancers rebalance.
    max_connection_age_s: float = 300.0
    max_connection_age_grace_s: float = 30.0
    max_concurrent_streams: int = 1000  # per connection
    # The HTTP door: connections open at once (503 past it), and how long a client may take to send
    # its request headers, then its body (slow clients must not hold the file descriptors).
    max_http_connections: int = 256
    http_header_timeout_s: float = 10.0
    http_body_timeout_s: float = 30.0
    # Without tokens, the Host names the HTTP door answers to besides localhost and IP addresses
    # (comma-separated; "*" for any): a browser page elsewhere must not reach it by DNS rebinding.
    http_allowed_hosts: str = ""
    # Stored glossaries: SQLite in the state directory unless a PostgreSQL URL is given (replicas that
    # share glossaries share one PostgreSQL). The URL may hold a password: it is never logged or shown.
    state_dir: str = ""  # "": $XDG_STATE_HOME/tarjama, else ~/.local/state/tarjama
    database_url: str = ""
    max_glossaries: int = 1000

    def resolved_state_dir(self) -> Path:
        if self.state_dir:
            return Path(self.state_dir).expanduser()
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(base) / "tarjama"

    def resolved_threads(self) -> int:
        if self.threads > 0:
            return self.threads
        try:
            return len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            return os.cpu_count() or 1

    def translation_models(self) -> tuple[NamedModel, ...]:
        """The translation models to serve, the default first (ValueError names what is wrong)."""
        return _translation_models(self.translation_model, self.translation_revision)

    def device_indices(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.device_index.split(","))

    def validate(self) -> Settings:
        problems = []
        if self.engine not in ENGINES:
            problems.append(f"--engine must be one of {', '.join(ENGINES)}")
        if self.device not in DEVICES:
            problems.append(f"--device must be one of {', '.join(DEVICES)}")
        if self.compute_type not in COMPUTE_TYPES:
            problems.append(f"--compute-type must be one of {', '.join(COMPUTE_TYPES)}")
        for name in (
            "beam_size",
            "max_output_tokens",
            "max_characters",
            "max_paragraphs",
            "max_batch_tokens",
            "max_queue_tokens",
            "max_message_bytes",
            "max_segment_tokens",
            "max_glossary_terms",
            "max_term_characters",
            "max_id_characters",
            "max_http_connections",
        ):
            if getattr(self, name) < 1:
                problems.append(f"--{name.replace('_', '-')} must be at least 1")
        for name in ("max_batch_size", "engine_workers", "threads_per_worker", "threads"):
            if getattr(self, name) < 0:
                problems.append(f"--{name.replace('_', '-')} must be 0 (automatic) or more")
        try:
            indices = self.device_indices()
            if not indices or min(indices) < 0 or len(set(indices)) != len(indices):
                raise ValueError
        except ValueError:
            problems.append("--device-index must be distinct GPU numbers separated by commas, e.g. 0,1")
        if self.max_segment_tokens > 500:
            problems.append("--max-segment-tokens must be at most 500 (opus-mt reads 512 positions)")
        if not 0 <= self.port <= 65535:
            problems.append("--port must be between 0 and 65535")
        if not 0 <= self.metrics_port <= 65535 or (self.metrics_port and self.metrics_port == self.port):
            problems.append("--metrics-port must be between 1 and 65535 and not --port (0 turns metrics off)")
        if not 0 <= self.http_port <= 65535 or (self.http_port and self.http_port in (self.port, self.metrics_port)):
            problems.append("--http-port must be between 1 and 65535 and not --port or --metrics-port (0: off)")
        if self.metrics_token_file and not self.metrics_port:
            problems.append("--metrics-token-file needs --metrics-port")
        if self.log_format not in LOG_FORMATS:
            problems.append(f"--log-format must be one of {', '.join(LOG_FORMATS)}")
        if bool(self.tls_cert) != bool(self.tls_key):
            problems.append("--tls-cert and --tls-key go together")
        if self.tls_client_ca and not self.tls_cert:
            problems.append("--tls-client-ca needs --tls-cert and --tls-key (mTLS is TLS with client certificates)")
        if self.max_connection_age_s <= 0 or self.max_connection_age_grace_s < 0:
            problems.append("--max-connection-age-s must be positive and --max-connection-age-grace-s not negative")
        for name in ("max_deadline_s", "http_header_timeout_s", "http_body_timeout_s"):
            value = getattr(self, name)
            if not 0 < value <= 86_400:  # also refuses nan and inf
                problems.append(f"--{name.replace('_', '-')} must be more than 0 and at most 86400 seconds")
        if not 0 <= self.engine_watchdog_s <= 86_400:  # also refuses nan and inf
            problems.append("--engine-watchdog-s must be between 0 (off) and 86400 seconds")
        if self.max_concurrent_streams < 1:
            problems.append("--max-concurrent-streams must be at least 1")
        if self.database_url and not self.database_url.startswith(DATABASE_SCHEMES):
            # Never quote the URL: it may hold a password.
            problems.append("--database-url must be a PostgreSQL URL (postgresql://USER:PASSWORD@HOST:PORT/DB)")
        if not 1 <= self.max_glossaries <= 1_000_000:
            problems.append("--max-glossaries must be between 1 and 1000000")
        try:
            self.translation_models()
        except ValueError as exc:
            problems.append(str(exc))
        if problems:
            raise ValueError("; ".join(problems))
        return self


_HELP = {
    "translation_model": "hub id or local directory of a Marian (opus-mt) checkpoint in HF format; NAME=MODEL, "
    "repeated (or comma-separated), serves several, the first the default, chosen per request by options.model",
    "translation_revision": "hub revision (branch, tag or commit) of the translation model; NAME=REVISION "
    "for named ones",
    "summary_model": "summariser: a BART/PEGASUS-style checkpoint (hub id or directory), extractive, or none",
    "summary_revision": "hub revision of the summary model",
    "engine": "inference engine (for both models)",
    "device": "where to run the models; auto picks cuda when a GPU is visible",
    "compute_type": "auto: int8 on CPU and float16 on CUDA (ctranslate2); float32 / float16 (torch)",
    "beam_size": "beam size for translation",
    "max_output_tokens": "absolute cap on output tokens per sentence",
    "max_output_ratio": "per-sentence output cap: ratio x source tokens + offset",
    "max_output_offset": "per-sentence output cap: ratio x source tokens + offset",
    "max_segment_tokens": "longer sentences are translated in parts cut at clause boundaries",
    "host": "address to listen on",
    "port": "port to listen on (0 picks a free one, logged at start)",
    "cache_dir": "where downloaded and converted models are kept (default ~/.cache/tarjama)",
    "reflection": "enable gRPC server reflection",
    "offline": "never touch the network: hub models must already be in --cache-dir (tarjama models download)",
    "max_characters": "largest article accepted, in characters",
    "max_paragraphs": "most paragraphs accepted in one request",
    "max_message_bytes": "largest request message accepted, in bytes",
    "max_glossary_terms": "most entries in a request's glossary (options.terms)",
    "max_term_characters": "longest glossary term or target, in characters",
    "max_id_characters": "longest document id accepted, in characters",
    "max_deadline_s": "longest deadline a call may ask for: gRPC deadlines past it are clamped, HTTP ?timeout= refused",
    "max_batch_tokens": "token budget of one engine batch (batch size x longest sentence)",
    "max_batch_size": "most sentences in one engine batch (0: 16 with several workers, 32 with one; 64 on GPU)",
    "max_batch_delay_ms": "longest wait for more requests before a partial batch (also at most 10%% of a batch's time)",
    "max_queue_tokens": "source tokens that may wait in the queue; beyond it requests are refused",
    "cache_size": "sentence translations kept in an LRU cache (0: no cache)",
    "threads": "CPU cores the engine may use in all (0: all available cores)",
    "engine_workers": "batches in flight at once, per GPU on CUDA (0: one per core on CPU, 2 per GPU)",
    "threads_per_worker": "CPU threads each batch runs on (0: 1)",
    "device_index": "CUDA devices to run on, comma-separated (e.g. 0,1)",
    "grace_period_s": "on SIGTERM, how long in-flight requests may take to finish",
    "engine_watchdog_s": "a batch on the engine longer than this means it is stuck: NOT_SERVING, exit 3 (0: off)",
    "log_level": "debug, info, warning or error",
    "log_format": "text, or json (one object per line); never holds article text at info or above",
    "state_dir": "where the server keeps its state: the SQLite database of stored glossaries (without --database-url)",
    "database_url": "PostgreSQL URL for the stored glossaries, shared by every replica given it "
    "(postgresql://USER:PASSWORD@HOST:PORT/DB; needs the [postgres] extra); without it, SQLite in --state-dir",
    "max_glossaries": "most stored glossaries kept at once (CreateGlossary past it is refused)",
    "auth_tokens_file": "file of name:token lines; callers send 'authorization: Bearer <token>' (SIGHUP re-reads it)",
    "tls_cert": "PEM certificate chain: serve TLS (with --tls-key)",
    "tls_key": "PEM private key of --tls-cert",
    "tls_client_ca": "PEM CA: require client certificates it signed (mTLS)",
    "metrics_port": "serve Prometheus metrics on http://METRICS_HOST:PORT/metrics (https with --tls-cert; 0: off)",
    "metrics_host": "address the metrics exporter listens on (independent of --host)",
    "metrics_token_file": "file of one token scrapers must send as 'Authorization: Bearer' (SIGHUP re-reads it)",
    "http_port": "also serve the API as HTTP/JSON and the reading page on http://HOST:PORT/ (0: off)",
    "max_connection_age_s": "close connections after this many seconds, so clients re-resolve and rebalance",
    "max_connection_age_grace_s": "how long calls in flight may finish on a connection being closed for age",
    "max_concurrent_streams": "most calls in flight on one connection; beyond it RESOURCE_EXHAUSTED",
    "max_http_connections": "most HTTP connections open at once; beyond it 503",
    "http_header_timeout_s": "how long an HTTP client may take to send its request headers",
    "http_body_timeout_s": "how long an HTTP client may take to send its request body",
    "http_allowed_hosts": "without tokens: host names the HTTP API answers to besides localhost and IP addresses "
    "(comma-separated, * for any)",
}


# Flags that may be given several times; their values are joined with commas, as the variable takes them.
REPEATABLE = ("translation_model", "translation_revision")


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="tarjama serve")
    for f in fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        env = "TARJAMA_" + f.name.upper()
        help_text = f"{_HELP.get(f.name, '')} [env {env}; default {f.default!r}]"
        metavar = f.name.split("_")[-1].upper()
        if f.type in ("bool", bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif f.name in REPEATABLE:
            parser.add_argument(flag, action="append", default=None, help=help_text, metavar=metavar)
        else:
            parser.add_argument(flag, default=None, help=help_text, metavar=metavar)
    return parser


def settings_from(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """Flags first, then TARJAMA_* variables, then defaults; values converted and validated."""
    values: dict[str, object] = {}
    for f in fields(Settings):
        raw = getattr(args, f.name, None)
        if isinstance(raw, list):  # a REPEATABLE flag, given more than once
            raw = ",".join(raw)
        if raw is None:
            raw = environ.get("TARJAMA_" + f.name.upper())
        if raw is None or raw == "":
            continue
        values[f.name] = _convert(f.name, str(f.type), raw)
    settings = Settings(**values)  # type: ignore[arg-type]
    if not settings.cache_dir:
        settings = Settings(**{**settings.__dict__, "cache_dir": default_cache_dir()})
    return settings.validate()


def parse_settings(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    args = build_parser().parse_args(argv)
    return settings_from(args, os.environ if environ is None else environ)


def _convert(name: str, type_name: str, raw: object) -> object:
    if isinstance(raw, bool):
        return raw
    text = str(raw)
    try:
        if type_name == "bool":
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if type_name == "int":
            return int(text)
        if type_name == "float":
            return float(text)
    except ValueError:
        raise ValueError(f"--{name.replace('_', '-')}: {text!r} is not a valid {type_name}") from None
    return text

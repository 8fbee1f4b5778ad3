"""One access line per RPC, and the RPC counters: an interceptor around every handler.

A line holds the time, method, status, document id, the caller's token name, paragraphs,
characters, tokens in and out, and the queue and total milliseconds. **Never the article text or the
translation**, at any level: a test sends a distinctive word and looks for it in the log. Health
checks are logged at debug level (probes call every few seconds); everything else at info.
`--log-format json` writes each log record, access lines included, as one JSON object.

What a client sends (the document id) cannot forge or flood a line: every field is capped at
FIELD_CHARACTERS (its start, "…" and its true length), and characters that are not printable (line
breaks, other controls, bidi and format characters) are escaped, in both formats. In text, a value
with a space, `"`, `=` or a backslash is quoted, so that no value can pass for another field.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from . import auth
from .interception import (
    OPEN_SERVICES,
    Behavior,
    Context,
    Handler,
    HandlerInterceptor,
    is_streaming,
    replace_behavior,
    responses,
)
from .stats import Observer

log = logging.getLogger("tarjama.access")

# What the doors tell the access line about the current call (ids and sizes, never text).
_record: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("tarjama_access", default=None)
# grpc-core ends a call at its deadline by its own clock, which reads up to some milliseconds ahead of
# the time_remaining() the gRPC door sees; a call stopped this close to its deadline ran out of time.
DEADLINE_SLACK_S = 0.1
FIELDS = ("document_id", "paragraphs", "characters", "model", "tokens_in", "tokens_out", "queue_ms")
# The longest string one access-line field holds; past it, its start, "…" and its length. As long as
# the default --max-id-characters, so that an id the server accepts is logged whole.
FIELD_CHARACTERS = 256
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\", '"': '\\"'}
_BARE = re.compile(r'[^ "=\\]+')  # a text value written without quotes (once known to be printable)


def note(**fields: Any) -> None:
    """Add sizes and ids to the current call's access line (a no-op outside a call)."""
    record = _record.get()
    if record is not None:
        record.update(fields)


def new_record() -> dict[str, Any]:
    """Start the current call's access record (what `note` adds to)."""
    record: dict[str, Any] = {}
    _record.set(record)
    return record


def log_call(observer: Observer, method: str, code: str, record: dict[str, Any], seconds: float) -> None:
    """One finished call (gRPC or HTTP): told to the observer, and one access line."""
    name = auth.caller.get()
    observer.request(method, code, name, seconds)
    level = logging.DEBUG if method.startswith(OPEN_SERVICES) else logging.INFO
    if log.isEnabledFor(level):
        line = {"method": method, "status": code, "caller": name, **record, "total_ms": round(seconds * 1000, 1)}
        log.log(level, "%s %s", method, code, extra={"access": line})


def call_status(context: Context, error: BaseException | None) -> str:
    """The status a finished call ends with, as its client sees it.

    grpc sets no code for a call that ends early: a client that cancels (or whose deadline passes) stops
    the handler with CancelledError, or, when a stream's writes are blocked because its client stopped
    reading, leaves the stream's generator to be closed later (GeneratorExit). Such calls were logged as
    UNKNOWN (issue 17, item 11).
    """
    if isinstance(error, (asyncio.CancelledError, GeneratorExit)):
        remaining = context.time_remaining()
        expired = remaining is not None and remaining < DEADLINE_SLACK_S
        return "DEADLINE_EXCEEDED" if expired else "CANCELLED"
    status = context.code()
    if isinstance(status, grpc.StatusCode):
        return status.name
    return "UNKNOWN" if error else "OK"


class AccessLog(HandlerInterceptor):
    """Times each RPC, takes its status, logs one line and tells the observer."""

    def __init__(self, observer: Observer) -> None:
        self.observer = observer

    def wrap(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        method = details.method
        observer = self.observer

        def finish(record: dict[str, Any], context: Context, started: float, error: BaseException | None) -> None:
            log_call(observer, method, call_status(context, error), record, time.perf_counter() - started)

        def wrap(behavior: Behavior) -> Behavior:
            if is_streaming(handler):

                async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
                    record = new_record()
                    started, error = time.perf_counter(), None
                    try:
                        async for response in responses(behavior(request, context)):
                            yield response
                    except BaseException as exc:
                        error = exc
                        raise
                    finally:
                        finish(record, context, started, error)

                return stream

            async def unary(request: Any, context: Context) -> Any:
                record = new_record()
                started, error = time.perf_counter(), None
                try:
                    return await behavior(request, context)
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    finish(record, context, started, error)

            return unary

        return replace_behavior(handler, wrap)


class JsonFormatter(logging.Formatter):
    """Each record as one JSON object: time (UTC), level, logger, message, and an access line's fields."""

    converter = staticmethod(time.gmtime)  # as a plain attribute, a type checker takes it for a method

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        access = getattr(record, "access", None)
        if access:
            out.update({k: bounded(v) if isinstance(v, str) else v for k, v in access.items()})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        line = json.dumps(out, ensure_ascii=False)
        # json.dumps escapes the C0 controls; what else is not printable (U+2028, bidi controls, a lone
        # surrogate from a JSON body) is escaped too, as JSON reads it back: the same value, one plain line.
        return line if line.isprintable() else "".join(c if c.isprintable() else _json_escape(c) for c in line)


class TextFormatter(logging.Formatter):
    """The usual line; an access line's fields follow as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        access = getattr(record, "access", None)
        if access:
            fields = " ".join(f"{k}={text_value(v)}" for k, v in access.items() if k not in ("method", "status"))
            line = f"{escaped(line)} {fields}"
        return line


def bounded(value: str, limit: int = FIELD_CHARACTERS) -> str:
    """`value`, or its first `limit` characters, "…" and how long it was."""
    return value if len(value) <= limit else f"{value[:limit]}…({len(value)} characters)"


def _escape(c: str) -> str:
    code = ord(c)
    if c in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[c]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _json_escape(c: str) -> str:
    code = ord(c)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"  # a surrogate pair, as JSON spells it


def escaped(text: str) -> str:
    """`text` with each character that is not printable written as a Python-style escape (`\\n`,
    `\\x1b`, `\\u2028`): whatever it holds, it stays on one line and cannot reorder the line's display."""
    return text if text.isprintable() else "".join(c if c.isprintable() else _escape(c) for c in text)


def text_value(value: Any) -> str:
    """A field's value in a text access line: capped; bare when it is printable and holds no space,
    quote, `=` or backslash; otherwise quoted, with backslash escapes (logfmt)."""
    text = bounded(value if isinstance(value, str) else str(value))
    if _BARE.fullmatch(text) and text.isprintable():
        return text
    return '"' + "".join(_escape(c) if c in _SHORT_ESCAPES or not c.isprintable() else c for c in text) + '"'

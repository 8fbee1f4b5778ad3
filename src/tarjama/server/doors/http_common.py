"""What every HTTP door shares (the Tarjama API in http_api.py and the compatible APIs beside it): the
body within --max-message-bytes, `?timeout=`, the access line of a failed call, and cancellation when the
client leaves. Its own module, below the doors that use it, so that http_api can list their routes
without an import cycle.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from starlette.requests import ClientDisconnect, Request

from ..edges.access_log import log_call
from ..edges.http_guard import READ_TIMED_OUT
from ..errors import (
    Cancelled,
    DeadlineExceeded,
    InvalidRequest,
    PayloadTooLarge,
    TarjamaError,
    http_status_for,
    private_traceback,
)
from ..runtime import Runtime
from ..settings import Settings

log = logging.getLogger("tarjama.http")
T = TypeVar("T")

# An oversized body is read (and dropped) up to this much, so that a client still sending gets its 413
# rather than a reset connection; past it the connection is closed.
DRAIN_BYTES = 64 * 1024 * 1024


async def read_body(request: Request, settings: Settings) -> bytes:
    """The body, within --max-message-bytes (PayloadTooLarge past it; DeadlineExceeded or Cancelled when
    the client stops sending)."""
    limit = settings.max_message_bytes
    body = bytearray()
    seen = 0
    try:
        async for chunk in request.stream():
            seen += len(chunk)
            if seen <= limit:
                body += chunk
            elif seen > DRAIN_BYTES:
                break  # stop reading: the connection closes without the rest
    except ClientDisconnect:
        timed_out = request.scope.get(READ_TIMED_OUT)
        if timed_out:  # the protocol answered 408 and closed (http_guard)
            raise DeadlineExceeded(timed_out) from None
        raise Cancelled("the client disconnected before sending the whole body") from None
    if seen > limit:
        size = f"{seen}" if seen <= DRAIN_BYTES else f"more than {DRAIN_BYTES}"
        raise PayloadTooLarge(f"the body has {size} bytes; this server accepts at most {limit}")
    return bytes(body)


def query_deadline(request: Request, settings: Settings) -> float | None:
    """`?timeout=SECONDS` as a time.monotonic() deadline: positive, and at most --max-deadline-s (a
    timeout of 10¹⁰ s once killed the engine workers: no timer may be set that far)."""
    raw = request.query_params.get("timeout")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidRequest(f"timeout must be a positive number of seconds, not {raw[:40]!r}")
    limit = settings.max_deadline_s
    if seconds > limit:
        raise InvalidRequest(
            f"timeout must be at most {limit:g} seconds (this server's --max-deadline-s, "
            f"GetInfo limits.max_deadline_s), not {raw[:40]!r}"
        )
    return time.monotonic() + seconds


def failed_call(
    runtime: Runtime, method: str, exc: Exception, record: dict[str, Any], started: float
) -> tuple[int, grpc.StatusCode, str]:
    """A call that failed: its access line, the traceback of a bug (never its message), and the HTTP
    status, the gRPC code and the message a door answers in its own shape."""
    status, code, message = http_status_for(exc)
    if not isinstance(exc, TarjamaError):
        log.error("request failed: %s", private_traceback(exc))
    log_call(runtime.observer, method, code.name, record, time.perf_counter() - started)
    return status, code, message


async def while_connected(request: Request, work: Awaitable[T]) -> T:
    """`work`, cancelled if the client disconnects first (then Cancelled). Starlette cancels nothing
    for a handler that does not stream, and a translation nobody waits for would hold the engine: its
    cancellation drops its queued sentences from the batcher, as a gRPC cancellation does."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait((task, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not task.done():  # the client left, or this handler itself is being cancelled
            task.cancel()
            await asyncio.wait((task,))
    if task.cancelled():
        raise Cancelled("the client disconnected")
    return task.result()


async def _disconnect(request: Request) -> None:
    """Returns when the client has gone (the body is read: receive() has nothing else to say)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def check_unicode(document: Any) -> None:
    """InvalidRequest unless every string of a parsed JSON document is valid Unicode: json.loads takes
    the escape of a lone surrogate ("\\ud800"), which nothing downstream can encode (it was a 500 on
    the compatible doors; protobuf's parser refuses it for /v1/)."""
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidRequest("the body holds a lone surrogate (\\ud800-\\udfff): not valid Unicode") from None
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, dict):
            pending.extend(value)
            pending.extend(value.values())


def body_key(body: bytes, query: str, name: str) -> str | None:
    """The key a client put in the query string or the body as `name` (LibreTranslate's api_key, old
    DeepL clients' auth_key), found without parsing the body: a server with tokens refuses a caller
    without a valid one before spending a full parse (up to --max-message-bytes of form fields) on
    it. Form, JSON and multipart spellings; the parsed body is checked again after, as the door reads it."""
    from urllib.parse import unquote_plus

    field = re.escape(name.encode())
    spellings: list[tuple[bytes, Callable[[bytes], str]]] = [
        (rb"(?:^|&)" + field + rb"=([^&]*)", lambda raw: unquote_plus(raw.decode("utf-8"))),  # urlencoded
        (rb'"' + field + rb'"\s*:\s*"((?:[^"\\]|\\.)*)"', lambda raw: str(json.loads(b'"' + raw + b'"'))),  # JSON
        (rb'name="' + field + rb'"\r\n(?:[^\r\n]+\r\n)*\r\n([^\r\n]*)', lambda raw: raw.decode("utf-8")),  # multipart
    ]
    for pattern, decode in spellings:
        for source in (query.encode(), body):
            found = re.search(pattern, source)
            if found:
                try:
                    return decode(found.group(1))
                except (UnicodeDecodeError, ValueError):
                    return None
    return None
    return None

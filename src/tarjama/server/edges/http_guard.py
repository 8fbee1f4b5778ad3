"""What stands in front of the HTTP API: the connection cap, the header and body read timeouts, and,
when the server has no tokens, the browser checks (Host, Origin, Content-Type).

uvicorn has a keep-alive timeout but no header or body timeout, and its `limit_concurrency` only
answers once a request's headers have arrived, so a client that sends them slowly (or never) holds
a file descriptor for as long as it likes. `guarded_protocol` is uvicorn's h11 protocol with:

- a cap on open connections: past `max_connections`, a new connection is answered 503 at once and
  closed, before anything is read, so that slow clients can never take every descriptor (gRPC,
  model files and the log need some too);
- a header timeout, from the connection (or a kept-alive connection's next first byte) to the end of
  the request's headers, and a body timeout, from there to the end of its body: past either, 408
  and the connection is closed; a handler waiting for the body sees its client gone;
- a write timeout (the body timeout's length): a client that does not take its answers (asyncio's
  write buffer stays above its high-water mark, or a closing connection's answer is not flushed) is
  cut off (transport.abort()) once it has not drained for that long. Without it, a client that
  pipelines requests and never reads holds its connection, and its handler, forever, and 256 of
  them keep every route at 503. (Pipelining itself is bounded by uvicorn: one request at a time,
  reading paused behind it, and each answer waits for the buffer to drain before it starts.)

`BrowserGuard` is for a server without tokens, where only the network stands between the API and
any web page an editor has open: it refuses Host names that are not this server's (DNS rebinding),
an `Origin` that is not this server's own, and API POSTs that are not `application/json` (the kinds a
page on another site can send without asking first).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import h11
from starlette.datastructures import Headers
from starlette.responses import Response
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("tarjama.http")

# Set in a request's scope when its body did not arrive in time: the handler logs DEADLINE_EXCEEDED.
READ_TIMED_OUT = "tarjama.read_timed_out"
# Connections accepted per event-loop turn (also the listen backlog). asyncio's accept loop, on
# EMFILE, logs and schedules a retry once per *remaining* iteration (CPython's selector_events), so
# a large backlog (uvicorn's is 2048) turns one exhausted descriptor table into a log and CPU storm.
# A small one also bounds the descriptors of refused connections in flight (a refusal takes a few
# turns from accept to close): about cap + 4 x ACCEPT_BATCH descriptors at most, under any flood.
ACCEPT_BATCH = 64
# The kernel's send buffer per HTTP connection. Linux grows it up to tcp_wmem's maximum (4 MB), all
# of it filled by a client that pipelines requests and never reads: 50 such clients had 2.8 MB each
# (3,000 answers of /openapi.json) written in one burst that held the event loop, and gRPC health
# with it, for 0.5 s (checks took 60-160 ms), and 256 of them would pin 1 GB of kernel memory. A fixed
# buffer (Linux doubles it, so 256 KB) leaves a connection's further answers in asyncio's buffer,
# under uvicorn's flow control and the write timeout: the same 50 clients held health for 40-60 ms.
# It still carries 2.5 MB/s per connection over a 100 ms round trip.
SEND_BUFFER_BYTES = 128 * 1024
REFUSAL_WARNING_EVERY_S = 10.0


def json_error(status: int, code: str, message: str) -> bytes:
    """The API's error body: {"error": {"code": 503, "status": "UNAVAILABLE", "message": "..."}}."""
    return json.dumps({"error": {"code": status, "status": code, "message": message}}).encode()


def raw_response(status: int, reason: str, code: str, message: str, extra: str = "") -> bytes:
    """A whole HTTP/1.1 error answer that closes the connection (written before, or instead of, h11)."""
    body = json_error(status, code, message)
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        f"cache-control: no-store\r\nx-content-type-options: nosniff\r\nconnection: close\r\n{extra}\r\n"
    )
    return head.encode("ascii") + body


@dataclass(frozen=True)
class HttpLimits:
    max_connections: int
    header_timeout_s: float
    body_timeout_s: float


class _Refusals:
    """Connections refused for the cap since the last warning (one line per interval, not per refusal)."""

    def __init__(self) -> None:
        self.count = 0
        self.warned_at = -REFUSAL_WARNING_EVERY_S

    def add(self, open_connections: int, limit: int) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.warned_at >= REFUSAL_WARNING_EVERY_S:
            log.warning(
                "HTTP connection limit reached (%d open, --max-http-connections %d): %d connections refused with 503",
                open_connections - 1,
                limit,
                self.count,
            )
            self.count, self.warned_at = 0, now


class _Stalls:
    """Connections cut off for not reading their answers since the last warning (one line per interval)."""

    def __init__(self) -> None:
        self.count = 0
        self.warned_at = -REFUSAL_WARNING_EVERY_S

    def add(self, seconds: float) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.warned_at >= REFUSAL_WARNING_EVERY_S:
            log.warning(
                "HTTP clients that did not read their answers for %g s (--http-body-timeout-s): %d connections cut off",
                seconds,
                self.count,
            )
            self.count, self.warned_at = 0, now


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a connection cap, header and body read timeouts and a write timeout."""

    limits: ClassVar[HttpLimits]
    refusals: ClassVar[_Refusals]
    stalls: ClassVar[_Stalls]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timer: asyncio.TimerHandle | None = None
        self._phase: str | None = None  # "headers" or "body" while a read timeout runs
        self._write_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        limit = self.limits.max_connections
        if len(self.connections) > limit:
            self.refusals.add(len(self.connections), limit)
            message = f"this server has {limit} HTTP connections open, its limit; try again shortly"
            transport.write(raw_response(503, "Service Unavailable", "UNAVAILABLE", message, "retry-after: 1\r\n"))
            transport.close()
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        self._watch(waiting=True)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch(waiting=True)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # The connection now waits for a next request: the keep-alive timeout runs until its first byte.
        self._watch(waiting=False)
        self._flush_in_time()

    def connection_lost(self, exc: Exception | None) -> None:
        self._set_timer(None)
        self._stop_write_timer()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        self._start_write_timer()

    def resume_writing(self) -> None:
        super().resume_writing()
        # A closing connection keeps its timer: what is left (under the low-water mark) must still go.
        if not self.transport.is_closing():
            self._stop_write_timer()
        self._flush_in_time()

    def timeout_keep_alive_handler(self) -> None:
        super().timeout_keep_alive_handler()
        self._flush_in_time()

    def _flush_in_time(self) -> None:
        """A closed transport waits for its buffer to go out, for ever if the client never reads: not here."""
        if self.transport.is_closing() and self.transport.get_write_buffer_size() > 0:
            self._start_write_timer()

    def _start_write_timer(self) -> None:
        if self._write_timer is None:
            seconds = self.limits.body_timeout_s
            self._write_timer = self.loop.call_later(seconds, self._write_timed_out, seconds)

    def _stop_write_timer(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _write_timed_out(self, seconds: float) -> None:
        self._write_timer = None
        self.stalls.add(seconds)
        # abort(), not close(): close() would wait for the buffer the client is not reading.
        # connection_lost follows, which tells a handler still sending that its client is gone.
        self.transport.abort()

    def _watch(self, waiting: bool) -> None:
        """Start the read timeout of the phase the request is in, or stop it once the request is in."""
        state = self.conn.their_state
        if state is h11.IDLE:
            phase = "headers" if waiting else None
        elif state is h11.SEND_BODY:
            phase = "body"
        else:
            phase = None
        if phase != self._phase:
            self._set_timer(phase)

    def _set_timer(self, phase: str | None) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None
        self._phase = phase
        if phase is not None:
            seconds = self.limits.header_timeout_s if phase == "headers" else self.limits.body_timeout_s
            self._read_timer = self.loop.call_later(seconds, self._timed_out, phase, seconds)

    def _timed_out(self, phase: str, seconds: float) -> None:
        self._read_timer, self._phase = None, None
        if self.transport.is_closing():
            return
        message = f"the request {phase} did not arrive within {seconds:g} s"
        cycle = self.cycle
        started = False
        if phase == "body" and cycle is not None:
            self.scope[READ_TIMED_OUT] = message  # type: ignore[literal-required]
            started = cycle.response_started
            # The handler waiting for the body now sees the client gone, and sends nothing more.
            cycle.disconnected = True
            cycle.message_event.set()
        if not started:
            self.transport.write(raw_response(408, "Request Timeout", "DEADLINE_EXCEEDED", message))
        self.transport.close()
        self._flush_in_time()


def guarded_protocol(limits: HttpLimits) -> type[GuardedH11Protocol]:
    """The protocol class for uvicorn's Config(http=...), bound to `limits`."""
    bound = {"limits": limits, "refusals": _Refusals(), "stalls": _Stalls()}
    return type("GuardedH11Protocol", (GuardedH11Protocol,), bound)


def host_name(host: str) -> str:
    """The name in a Host header or an origin's authority, without port, brackets or final dot."""
    if host.startswith("["):
        return host[1 : host.find("]")].lower() if "]" in host else host.lower()
    return host.rsplit(":", 1)[0].rstrip(".").lower() if host.count(":") == 1 else host.rstrip(".").lower()


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _origin(scheme: str, host: str) -> str:
    """scheme://host[:port] as a browser writes an Origin: lower case, default port left out."""
    host = host.lower()
    default = {"http": ":80", "https": ":443"}.get(scheme)
    if default and host.endswith(default):
        host = host[: -len(default)]
    return f"{scheme}://{host}"


class BrowserGuard:
    """With no tokens: refuse foreign Host names, foreign origins, and API POSTs that are not JSON."""

    def __init__(self, app: Any, allowed_hosts: Iterable[str] = ()) -> None:
        self.app = app
        names = {name.strip().rstrip(".").lower() for name in allowed_hosts if name.strip()}
        self.any_host = "*" in names
        # An IP address in Host cannot be a rebinding (that needs a name the attacker controls).
        self.names = names | {"localhost"}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        if refusal is not None:
            status, code, message = refusal
            return await Response(json_error(status, code, message), status, media_type="application/json")(
                scope, receive, send
            )
        await self.app(scope, receive, send)

    def refusal(self, scope: Any) -> tuple[int, str, str] | None:
        headers = Headers(scope=scope)
        host = headers.get("host")
        if host is not None:
            name = host_name(host)
            if not (self.any_host or name in self.names or _is_address(name)):
                return 421, "PERMISSION_DENIED", (
                    f"this server does not answer to the name {name[:100]!r}; "
                    "list it in --http-allowed-hosts (or give the server tokens)"
                )  # fmt: skip
        origin = headers.get("origin")
        if origin is not None and (host is None or origin.lower() != _origin(scope["scheme"], host)):
            return 403, "PERMISSION_DENIED", (
                "requests from another site's pages are refused: this server has no tokens (--auth-tokens-file)"
            )  # fmt: skip
        if scope["method"] == "POST" and scope["path"].startswith("/v1/"):
            media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if media != "application/json":
                return 415, "INVALID_ARGUMENT", (
                    "send the body as JSON with 'Content-Type: application/json' "
                    "(without tokens, this server refuses what another site's page could send)"
                )  # fmt: skip
        return None

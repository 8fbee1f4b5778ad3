"""How clients connect: TLS from the flags' PEM files, a warning for an open port without tokens,
and a limit on the calls in flight on one connection, answered explicitly.

HTTP/2's own stream limit (`grpc.max_concurrent_streams`) makes grpc refuse the excess streams, and
clients see a bare UNAVAILABLE they would retry at once; a flood of 4,000 calls on one channel lost
two thirds that way. Counting calls per connection (the peer address names it) instead answers the
excess with RESOURCE_EXHAUSTED and a message, as the queue limit does. Health checks are not counted.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import grpc

from ..errors import StartupError
from ..settings import Settings
from .interception import OPEN_SERVICES, Behavior, Context, Handler, HandlerInterceptor, replace_behavior


class StreamLimit(HandlerInterceptor):
    """Refuses a connection's calls beyond `limit` in flight with RESOURCE_EXHAUSTED."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._in_flight: collections.Counter[str] = collections.Counter()

    def wrap(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        if details.method.startswith(OPEN_SERVICES):
            return handler
        counts, limit = self._in_flight, self.limit

        def wrap(behavior: Behavior) -> Behavior:
            async def unary(request: Any, context: Context) -> Any:
                peer = context.peer()
                if counts[peer] >= limit:
                    await context.abort(
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"{limit} calls are already in flight on this connection (--max-concurrent-streams); "
                        "wait for some to finish or open another connection",
                    )
                counts[peer] += 1
                try:
                    return await behavior(request, context)
                finally:
                    counts[peer] -= 1
                    if not counts[peer]:
                        del counts[peer]

            return unary

        if not handler.unary_unary:  # streaming calls (reflection) are few; they pass uncounted
            return handler
        return replace_behavior(handler, wrap)


def tls_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS (and mTLS with --tls-client-ca) from PEM files; None for plaintext."""
    if not settings.tls_cert:
        return None

    def read(flag: str, path: str) -> bytes:
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise StartupError(f"cannot read {flag} {path}: {exc.strerror or exc}") from None

    pair = (read("--tls-key", settings.tls_key), read("--tls-cert", settings.tls_cert))
    client_ca = read("--tls-client-ca", settings.tls_client_ca) if settings.tls_client_ca else None
    return grpc.ssl_server_credentials([pair], root_certificates=client_ca, require_client_auth=client_ca is not None)


LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def exposure_warning(host: str, *, auth: bool) -> str | None:
    """What to say when the port is reachable from other machines and nothing checks who calls."""
    if auth or host in LOOPBACK or host.startswith("127."):
        return None
    return (
        f"listening on {host} without --auth-tokens-file: anyone who can reach this port can use the server "
        "and read what it translates; give it tokens, or listen on 127.0.0.1"
    )

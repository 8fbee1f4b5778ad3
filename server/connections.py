"""A limit on the calls in flight on one connection, answered explicitly.

HTTP/2's own stream limit (`grpc.max_concurrent_streams`) makes grpc refuse the excess streams, and
clients see a bare UNAVAILABLE they would retry at once; a flood of 4,000 calls on one channel lost
two thirds that way. Counting calls per connection (the peer address names it) instead answers the
excess with RESOURCE_EXHAUSTED and a message, as the queue limit does. Health checks are not counted.
"""

from __future__ import annotations

import collections
from collections.abc import Callable

import grpc

from .interception import OPEN_SERVICES, HandlerInterceptor, replace_behavior


class StreamLimit(HandlerInterceptor):
    """Refuses a connection's calls beyond `limit` in flight with RESOURCE_EXHAUSTED."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._in_flight: collections.Counter[str] = collections.Counter()

    def wrap(self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        if details.method.startswith(OPEN_SERVICES):
            return handler
        counts, limit = self._in_flight, self.limit

        def wrap(behavior: Callable) -> Callable:  # type: ignore[type-arg]
            async def unary(request, context):  # noqa: ANN001, ANN202
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

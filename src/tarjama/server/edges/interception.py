"""What the server's interceptors (auth, access log, tracing, the connection limit) share: a handler's
behaviour wrapped without changing its kind or serializers, whatever that kind is."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

# Health checks need no token and are not counted against a connection's calls (probes use them).
OPEN_SERVICES = ("/grpc.health.v1.Health/",)


def is_streaming(handler: grpc.RpcMethodHandler) -> bool:
    """Whether the handler sends a stream back (its behaviour is then an async generator to wrap)."""
    return bool(handler.unary_stream or handler.stream_stream)


def replace_behavior(handler: grpc.RpcMethodHandler, wrap: Callable) -> grpc.RpcMethodHandler:  # type: ignore[type-arg]
    """The same handler (kind, serializers) with its behaviour wrapped."""
    if handler.unary_unary:
        make, behavior = grpc.unary_unary_rpc_method_handler, handler.unary_unary
    elif handler.unary_stream:
        make, behavior = grpc.unary_stream_rpc_method_handler, handler.unary_stream
    elif handler.stream_unary:
        make, behavior = grpc.stream_unary_rpc_method_handler, handler.stream_unary
    else:
        make, behavior = grpc.stream_stream_rpc_method_handler, handler.stream_stream
    return make(wrap(behavior), handler.request_deserializer, handler.response_serializer)


async def responses(result: Any) -> AsyncIterator[Any]:
    """A streaming handler's responses, whether it yields them or writes them with `context.write()`
    and returns (grpc's own health Watch does)."""
    if hasattr(result, "__aiter__"):
        async for response in result:
            yield response
    else:
        await result


class HandlerInterceptor(grpc.aio.ServerInterceptor):
    """Hands every handler the server found to `wrap`; a subclass says how it wraps it."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        return None if handler is None else self.wrap(handler, details)

    def wrap(self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        raise NotImplementedError

"""What the server's interceptors (auth, access log, tracing, the connection limit) share: a handler's
behaviour wrapped without changing its kind or serializers, whatever that kind is."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias, TypeVar, cast

import grpc

# Health checks need no token and are not counted against a connection's calls (probes use them).
OPEN_SERVICES = ("/grpc.health.v1.Health/",)

# The interceptors wrap every service's handlers alike, so requests and responses are Any here.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"  # a string: the class is not generic at run time
# A handler's behaviour: (request or its iterator, grpc.aio context) -> a response awaitable or an async
# iterator (grpc's stubs type the handler for the synchronous server, hence the ellipsis).
Behavior: TypeAlias = Callable[..., Any]
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
_Request = TypeVar("_Request")
_Response = TypeVar("_Response")


def is_streaming(handler: Handler) -> bool:
    """Whether the handler sends a stream back (its behaviour is then an async generator to wrap)."""
    return bool(handler.unary_stream or handler.stream_stream)


def replace_behavior(handler: Handler, wrap: Callable[[Behavior], Behavior]) -> Handler:
    """The same handler (kind, serializers) with its behaviour wrapped."""
    deserialize, serialize = handler.request_deserializer, handler.response_serializer
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(wrap(handler.unary_unary), deserialize, serialize)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(wrap(handler.unary_stream), deserialize, serialize)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(wrap(handler.stream_unary), deserialize, serialize)
    # A handler is one of the four kinds: this one is stream-stream.
    return grpc.stream_stream_rpc_method_handler(wrap(cast(Behavior, handler.stream_stream)), deserialize, serialize)


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
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[_Request, _Response] | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[_Request, _Response] | None:
        handler = await continuation(details)
        return None if handler is None else self.wrap(handler, details)

    def wrap(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        raise NotImplementedError

"""gRPC's bytes → request message, never raising: the door's first step.

A request that cannot be parsed (truncated, invalid UTF-8 in a string, a length prefix past the end)
is the client's mistake: it gets INVALID_ARGUMENT with one line naming the field, and the server logs
no traceback (gRPC's own deserializer would answer UNKNOWN and log one).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from tarjama.v1 import tarjama_pb2 as pb

from ..errors import InvalidRequest

log = logging.getLogger(__name__)

SERVICE = pb.DESCRIPTOR.services_by_name["Translator"]


@dataclass(frozen=True)
class Malformed:
    """What the deserializer hands the servicer for bytes that are not a valid request message."""

    message: str


def lenient_parser(message_class: Any) -> Callable[[bytes], Any]:
    """A request deserializer that never raises: gRPC would answer UNKNOWN and log a traceback."""

    def parse(data: bytes) -> Any:
        try:
            return message_class.FromString(data)
        except Exception:  # DecodeError, and anything else the parser may raise on hostile bytes
            name = message_class.DESCRIPTOR.full_name
            problem = wire_problem(message_class.DESCRIPTOR, data)
            log.debug("unparseable %s (%d bytes): %s", name, len(data), problem)
            return Malformed(f"the request is not a valid {name}: {problem}")

    return parse


def add_translator_service(servicer: Any, server: grpc.aio.Server) -> None:
    """Register tarjama.v1.Translator as the generated code would, but with lenient deserializers."""
    handlers = {}
    for method in SERVICE.methods:
        request_class = getattr(pb, method.input_type.name)
        response_class = getattr(pb, method.output_type.name)
        kind = grpc.unary_stream_rpc_method_handler if method.server_streaming else grpc.unary_unary_rpc_method_handler
        handlers[method.name] = kind(
            getattr(servicer, method.name),
            request_deserializer=lenient_parser(request_class),
            response_serializer=response_class.SerializeToString,
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),))
    server.add_registered_method_handlers(SERVICE.full_name, handlers)


def parsed(request: Any) -> Any:
    """The request, or InvalidRequest if its bytes could not be parsed."""
    if isinstance(request, Malformed):
        raise InvalidRequest(request.message)
    return request


# -- where a message's bytes go wrong -----------------------------------------------------------------


class _Truncated(Exception):
    pass


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data):
            raise _Truncated
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7
        if shift >= 70:
            raise _Truncated


def wire_problem(descriptor: Descriptor, data: bytes, prefix: str = "", depth: int = 0) -> str:
    """The first problem in `data` read as `descriptor`'s wire format, naming the field; linear in `data`."""
    i = 0
    name = prefix.rstrip(".") or "the message"
    try:
        while i < len(data):
            start = i
            key, i = _varint(data, i)
            number, wire_type = key >> 3, key & 7
            field = descriptor.fields_by_number.get(number)
            name = prefix + (field.name if field else f"field {number}")
            if number == 0:
                return f"byte {start}: field number 0 is not allowed"
            if wire_type == 0:
                _, i = _varint(data, i)
            elif wire_type in (1, 5):
                i += 8 if wire_type == 1 else 4
            elif wire_type == 2:
                length, i = _varint(data, i)
                if i + length > len(data):
                    return f"{name}: its length ({length} bytes) runs past the end of the message"
                chunk = data[i : i + length]
                i += length
                problem = _value_problem(field, chunk, name, depth)
                if problem:
                    return problem
            elif wire_type in (3, 4):
                return f"{name}: groups (wire type {wire_type}) are not used by this API"
            else:
                return f"byte {start}: wire type {wire_type} does not exist"
            if i > len(data):
                raise _Truncated
    except _Truncated:
        return f"{name}: the message ends in the middle of a field (truncated?)"
    return "it cannot be parsed"


def _value_problem(field: FieldDescriptor | None, chunk: bytes, name: str, depth: int) -> str:
    if field is None:
        return ""
    if field.type == FieldDescriptor.TYPE_STRING:
        try:
            chunk.decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"{name}: not valid UTF-8 (byte {exc.start} of the string)"
    if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None and depth < 8:
        problem = wire_problem(field.message_type, chunk, name + ".", depth + 1)
        return "" if problem == "it cannot be parsed" else problem
    return ""

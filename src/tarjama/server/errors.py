"""The server's errors, and the one table that maps them to a gRPC status code and an HTTP status.

Domain code raises these; the doors answer with `status_for` (gRPC) and `http_status_for` (HTTP), so
the two can never disagree. Anything else that escapes a handler is a bug: it is logged with its
traceback and the client gets INTERNAL (500) without internals.
"""

from __future__ import annotations

import traceback

import grpc


class TarjamaError(Exception):
    """Base of the errors a client may see; the message is safe to send."""

    code = grpc.StatusCode.INTERNAL


class Unauthenticated(TarjamaError):
    """No token, or one the tokens file does not hold."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(TarjamaError):
    """A known token without the right the call needs (writing glossaries needs `glossaries`)."""

    code = grpc.StatusCode.PERMISSION_DENIED


class NotFound(TarjamaError):
    """What the request names (a stored glossary) does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class StoreUnavailable(TarjamaError):
    """The glossary database cannot be reached or failed; translation without glossaries goes on."""

    code = grpc.StatusCode.UNAVAILABLE


class InvalidRequest(TarjamaError):
    """The request itself is wrong; the message names the field."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class PayloadTooLarge(InvalidRequest):
    """A body over --max-message-bytes: 413 over HTTP, where gRPC itself answers RESOURCE_EXHAUSTED."""


class Overloaded(TarjamaError):
    """The queue is full; the client should retry later."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class QuotaExceeded(TarjamaError):
    """A stored resource is at its limit (--max-glossaries): retrying will not help until one is deleted."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class NotReady(TarjamaError):
    """Models are still loading."""

    code = grpc.StatusCode.UNAVAILABLE


class ShuttingDown(TarjamaError):
    code = grpc.StatusCode.UNAVAILABLE


class FeatureUnavailable(TarjamaError):
    """The request asks for something this server was started without (e.g. summaries)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class DeadlineExceeded(TarjamaError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Cancelled(TarjamaError):
    code = grpc.StatusCode.CANCELLED


class EngineFailure(TarjamaError):
    """The model failed on a batch; the details are in the server log, not in the reply."""

    code = grpc.StatusCode.INTERNAL

    def __str__(self) -> str:
        return "translation failed on the server; the error is in its log"


class EngineUnavailable(TarjamaError):
    """The engine cannot run (a batch hung past the watchdog, or its workers keep failing): the server is
    about to exit so that it is restarted; the client should retry elsewhere."""

    code = grpc.StatusCode.UNAVAILABLE

    def __init__(self, reason: str) -> None:
        super().__init__(f"the engine cannot run ({reason}); this server is restarting: retry on another instance")


class StartupError(Exception):
    """The server cannot start as configured (a port, a certificate); the message is one line for the user."""


class ModelUnavailable(StartupError):
    """A model cannot be found, fetched or loaded at startup. The message is one line for the user."""


# The HTTP status of each gRPC code a door answers with (Google's mapping, with 499 for a client that left).
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.UNIMPLEMENTED: 405,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and message a client gets for `exc`."""
    if isinstance(exc, TarjamaError):
        return exc.code, str(exc)
    return grpc.StatusCode.INTERNAL, "internal error; see the server log"


def http_status_for(exc: BaseException) -> tuple[int, grpc.StatusCode, str]:
    """The HTTP status, the gRPC code (named in the error body) and the message for `exc`."""
    code, message = status_for(exc)
    return (413 if isinstance(exc, PayloadTooLarge) else HTTP_STATUS.get(code, 500)), code, message


def private_traceback(exc: BaseException) -> str:
    """An exception's type and where it was raised, without its message: a message can quote the
    article (a KeyError on a word, a ValueError on a sentence), and logs must never hold it."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = "".join(f"\n  {frame.filename}:{frame.lineno} in {frame.name}" for frame in frames)
    return f"{type(exc).__module__}.{type(exc).__qualname__}{where}"

"""The Tarjama client: `TarjamaClient` for Python tools, and the `tarjama` command line."""

from tarjama.interchange.messages import to_dict

from .client import (
    DEFAULT_SERVER,
    Cancelled,
    DeadlineExceeded,
    FeatureUnavailable,
    Internal,
    InvalidArgument,
    NotFound,
    Overloaded,
    PermissionDenied,
    TarjamaClient,
    TarjamaError,
    TranslateArgs,
    Unauthenticated,
    Unavailable,
)

__all__ = [
    "DEFAULT_SERVER",
    "Cancelled",
    "DeadlineExceeded",
    "FeatureUnavailable",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "Overloaded",
    "PermissionDenied",
    "TarjamaClient",
    "TarjamaError",
    "TranslateArgs",
    "Unauthenticated",
    "Unavailable",
    "to_dict",
]

"""The Tarjama client: `TarjamaClient` for Python tools, and the `tarjama` command line."""

from .client import DEFAULT_SERVER, TarjamaClient, TarjamaError, to_dict

__all__ = ["DEFAULT_SERVER", "TarjamaClient", "TarjamaError", "to_dict"]

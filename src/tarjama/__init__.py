"""Tarjama: Arabic news in English over gRPC. `tarjama.v1` is the generated API."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tarjama")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

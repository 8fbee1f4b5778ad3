"""What `tarjama serve` (and `models download`, `bulk`) needs installed, checked before anything imports it.

The base install is the client alone. A server started without its extra, or with a package of it that
is installed but does not import (a dependency a pip did not resolve, a wheel for another Python), must
say so in one line naming the module and why, not a traceback and not, much later, a feature that
answers "needs X" although X is installed. This module imports nothing of the server's own.
"""

from __future__ import annotations

import importlib
import importlib.util

from .errors import ModelUnavailable

SERVER_EXTRA = "pip install -c constraints.txt '.[server]' in the repository"
# The server extra's modules (import names). Each is imported at start, except the heavy ones, which
# the model load imports anyway: those are only looked for here, so the port opens without waiting.
SERVER_MODULES = (
    "grpc_reflection",
    "ahocorasick_rs",
    "sacremoses",
    "prometheus_client",
    "starlette",
    "uvicorn",
    "lxml.html",
    "lxml_html_clean",
    "trafilatura",
)
HEAVY_MODULES = ("torch", "transformers", "sentencepiece", "ctranslate2", "huggingface_hub")
# `tarjama bulk` needs the bulk extra as well.
BULK_EXTRA = "pip install -c constraints.txt '.[server,bulk]' in the repository"
BULK_MODULES = (*SERVER_MODULES, "ray", "pyarrow", "tqdm")


def _findable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a parent package that is missing or broken
        return False


def check_server_dependencies(modules: tuple[str, ...] = SERVER_MODULES, heavy: tuple[str, ...] = HEAVY_MODULES,
                              install: str = SERVER_EXTRA) -> None:  # fmt: skip
    """Raise ModelUnavailable (one line) when a module of the server extra is missing or does not import."""
    missing = [name for name in (*heavy, *modules) if not _findable(name)]
    if missing:
        raise ModelUnavailable(f"the server needs {', '.join(missing)}: {install}")
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # ImportError, or whatever a broken package raises on import
            detail = " ".join(str(exc).split())[:300]
            raise ModelUnavailable(
                f"{name} is installed but does not import ({type(exc).__name__}: {detail}); "
                f"reinstall with {install}"
            ) from None

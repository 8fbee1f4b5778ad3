"""The first steps of every server-side command (`serve`, `bulk`, `models download`), in one place.

Settings from flags and TARJAMA_* variables (a bad value: exit 2), `--offline` switched on before
huggingface_hub or transformers is imported, then the server's dependencies checked (one missing or
broken: exit 1), each refusal one line `tarjama <command>: error: ...`; then glibc's malloc is set for
the engines. Light: it imports nothing that the dependency check is there to find missing, so the CLI
calls it before importing the server.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping

from .dependencies import SERVER_EXTRA, SERVER_MODULES, check_server_dependencies
from .engines import tune_allocator
from .errors import StartupError
from .models import stay_offline
from .settings import Settings, settings_from


def prepare(
    command: str,
    args: argparse.Namespace,
    *,
    modules: tuple[str, ...] = SERVER_MODULES,
    install: str = SERVER_EXTRA,
    environ: Mapping[str, str] | None = None,
) -> Settings | int:
    """The command's validated settings, or the exit code once the refusal is printed (2: bad flags or
    variables; 1: a dependency missing). `modules` and `install` are what the dependency check asks for."""
    try:
        settings = settings_from(args, os.environ if environ is None else environ)
    except ValueError as exc:
        print(f"tarjama {command}: error: {exc}", file=sys.stderr)
        return 2
    if settings.offline:
        stay_offline()
    try:
        check_server_dependencies(modules, install=install)
    except StartupError as exc:
        print(f"tarjama {command}: error: {exc}", file=sys.stderr)
        return 1
    # Now, while this is the only thread: glibc gives a thread its arena when it first allocates, and
    # arenas made before the limit stay (engines/allocator.py says why the limit).
    tune_allocator(settings)
    return settings

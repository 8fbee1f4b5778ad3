"""glibc's malloc, set for how the engines allocate: fewer page faults, less memory kept per thread.

Why: CTranslate2 (and torch) on CPU allocate and free buffers of up to tens of MB at every decoding
step (beam states, key/value caches, logits). With glibc's defaults:
- the mmap and trim thresholds adapt as blocks are freed, and a freed block above the trim
  threshold goes back to the kernel, so the next step faults it in again: about 6,000 page faults
  a sentence and 6-8% of the CPU in the kernel (opus-mt-ar-en's shape, int8, beam 4, 2 cores);
- every thread that allocates may get an arena of its own (up to 8 per core), each keeping what its
  thread freed: a two-model server's four engine threads kept four batches' worth, 1.9 GB at peak.
So, before an engine's threads start: a fixed mmap threshold of 32 MB (the most glibc allows it),
a trim threshold of 64 MB (freed memory up to that stays for the next step), and one arena per batch
that can run at once (one per core on CPU, as the workers; at least 2). In the same run (bench/RESULTS.md):
1.4 GB instead of 1.9 GB for the two-model server and a fifth of the page faults.

An operator who sets any of glibc's malloc variables (MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_, ...,
or glibc.malloc tunables in GLIBC_TUNABLES) or preloads another allocator keeps their choice: nothing
is changed then. Elsewhere than glibc (musl, macOS) nothing is changed either.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
import threading
from collections.abc import Mapping

log = logging.getLogger(__name__)

# mallopt(3) parameters, from <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # glibc's own ceiling for it (DEFAULT_MMAP_THRESHOLD_MAX)
TRIM_THRESHOLD_BYTES = 64 * 1024 * 1024
MIN_ARENAS = 2  # the interpreter's threads beside one engine worker

OPERATOR_VARIABLES = ("MALLOC_ARENA_MAX", "MALLOC_ARENA_TEST", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_",
                      "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")  # fmt: skip
OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")

_lock = threading.Lock()
_applied: dict[str, int] | None = None


def operator_choice(environ: Mapping[str, str]) -> str | None:
    """What in the environment already chooses the allocator's settings, or None."""
    for name in OPERATOR_VARIABLES:
        if name in environ:
            return name
    if "glibc.malloc." in environ.get("GLIBC_TUNABLES", ""):
        return "GLIBC_TUNABLES"
    preload = environ.get("LD_PRELOAD", "")
    if any(name in preload for name in OTHER_ALLOCATORS):
        return "LD_PRELOAD"
    return None


def settings_for(batches_at_once: int) -> dict[str, int]:
    """The mallopt settings for an engine that runs `batches_at_once` batches side by side."""
    return {
        "arena_max": max(MIN_ARENAS, batches_at_once),
        "mmap_threshold": MMAP_THRESHOLD_BYTES,
        "trim_threshold": TRIM_THRESHOLD_BYTES,
    }


def tune(batches_at_once: int, environ: Mapping[str, str] | None = None) -> dict[str, int] | None:
    """Set glibc's malloc for the engines (once per process; later calls only raise the arena count).
    Returns what is now set, or None where nothing was changed (not glibc, or the operator chose)."""
    global _applied
    environ = os.environ if environ is None else environ
    with _lock:
        if platform.libc_ver()[0] != "glibc":
            return None
        chosen = operator_choice(environ)
        if chosen is not None:
            if _applied is None:
                log.info("malloc: left as %s sets it", chosen)
            return None
        wanted = settings_for(batches_at_once)
        if _applied is not None:
            wanted["arena_max"] = max(wanted["arena_max"], _applied["arena_max"])
            if wanted == _applied:
                return _applied
        libc = ctypes.CDLL(None)
        refused = [name for name, parameter in (("arena_max", M_ARENA_MAX), ("mmap_threshold", M_MMAP_THRESHOLD))
                   if libc.mallopt(parameter, wanted[name]) != 1]  # fmt: skip
        # A trim threshold alone would pin the mmap threshold at its 128 KB start: every buffer a fresh
        # mapping, many times the page faults. So only with the mmap threshold set.
        if "mmap_threshold" in refused or libc.mallopt(M_TRIM_THRESHOLD, wanted["trim_threshold"]) != 1:
            refused.append("trim_threshold")
        if refused:  # an older or patched glibc: say so; the engines run either way
            log.warning("malloc: glibc refused %s; memory use and speed may differ from bench/RESULTS.md",
                        ", ".join(refused))  # fmt: skip
        _applied = wanted
        log.info("malloc: %d arenas, mmap threshold %d MB, trim threshold %d MB", wanted["arena_max"],
                 wanted["mmap_threshold"] >> 20, wanted["trim_threshold"] >> 20)  # fmt: skip
        return _applied

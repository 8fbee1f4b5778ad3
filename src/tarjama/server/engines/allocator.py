"""glibc's malloc, set for how the engines allocate: fewer page faults, less memory kept per thread.

Why: CTranslate2 (and torch) on CPU allocate and free buffers of up to tens of MB at every decoding
step (beam states, key/value caches, logits). With glibc's defaults:
- the mmap and trim thresholds adapt as blocks are freed, and a freed block above the trim
  threshold goes back to the kernel, so the next step faults it in again: 5,600 page faults a
  sentence offline (opus-mt-ar-en's shape, int8, beam 4, 2 cores), 3,100 with the setting below;
- every thread that allocates may get an arena of its own (up to 8 per core), each keeping what its
  thread freed: a two-model server peaked at 1736 MB, 1450 MB with the setting (bench/RESULTS.md).
So, once, while the process has one thread (`startup.prepare`): a fixed mmap threshold of 32 MB (the
most glibc allows it), a trim threshold of 64 MB (freed memory up to that stays for the next step),
and one arena per batch that can run at once (at least 2). glibc fixes its arena limit when a thread
first needs a new arena, so the first call decides; later calls change nothing.

An operator keeps what they set: `MALLOC_ARENA_MAX`/`MALLOC_ARENA_TEST` (or `glibc.malloc.arena_*`
in GLIBC_TUNABLES) leave the arenas alone; any threshold variable leaves both thresholds alone (they
only work together); a preloaded jemalloc, tcmalloc or mimalloc leaves everything. Elsewhere than
glibc (musl, macOS) nothing is changed either.
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

ARENA_VARIABLES = ("MALLOC_ARENA_MAX", "MALLOC_ARENA_TEST")
THRESHOLD_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")
OPERATOR_VARIABLES = ARENA_VARIABLES + THRESHOLD_VARIABLES
ARENA_TUNABLES = ("glibc.malloc.arena_max", "glibc.malloc.arena_test")
THRESHOLD_TUNABLES = ("glibc.malloc.mmap_threshold", "glibc.malloc.trim_threshold", "glibc.malloc.top_pad",
                      "glibc.malloc.mmap_max")  # fmt: skip
OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")

_lock = threading.Lock()
_decided = False
_state = "not set yet"  # what was done, for the start-up log
_applied: dict[str, int] | None = None


def operator_choices(environ: Mapping[str, str]) -> dict[str, str]:
    """Which of the two groups ("arenas", "thresholds", or "all") the environment already chooses, and by what."""
    preload = environ.get("LD_PRELOAD", "")
    if any(name in preload for name in OTHER_ALLOCATORS):
        return {"all": "LD_PRELOAD"}
    tunables = environ.get("GLIBC_TUNABLES", "")
    chosen = {}
    for group, variables, names in (("arenas", ARENA_VARIABLES, ARENA_TUNABLES),
                                    ("thresholds", THRESHOLD_VARIABLES, THRESHOLD_TUNABLES)):  # fmt: skip
        by = next((v for v in variables if environ.get(v, "").strip()), None)
        by = by or next(("GLIBC_TUNABLES" for n in names if f"{n}=" in tunables), None)
        if by:
            chosen[group] = by
    return chosen


def settings_for(batches_at_once: int) -> dict[str, int]:
    """The mallopt settings for an engine that runs `batches_at_once` batches side by side."""
    return {
        "arena_max": max(MIN_ARENAS, batches_at_once),
        "mmap_threshold": MMAP_THRESHOLD_BYTES,
        "trim_threshold": TRIM_THRESHOLD_BYTES,
    }


def tune(batches_at_once: int, environ: Mapping[str, str] | None = None) -> dict[str, int] | None:
    """Set glibc's malloc for the engines, the first time only (see the module's note). Returns what
    glibc accepted, or None where nothing was changed (not glibc, or the operator chose everything)."""
    global _decided, _state, _applied
    environ = os.environ if environ is None else environ
    with _lock:
        if _decided:
            return _applied
        _decided = True
        if platform.libc_ver()[0] != "glibc":
            _state = "left as it is (not glibc)"
            return None
        chosen = operator_choices(environ)
        if "all" in chosen or len(chosen) == 2:
            _state = f"left as {', '.join(sorted(set(chosen.values())))} sets it"
            return None
        wanted = settings_for(batches_at_once)
        libc = ctypes.CDLL(None)
        applied: dict[str, int] = {}
        if "arenas" not in chosen and libc.mallopt(M_ARENA_MAX, wanted["arena_max"]) == 1:
            applied["arena_max"] = wanted["arena_max"]
        # A trim threshold alone would pin the mmap threshold at its 128 KB start: every buffer a fresh
        # mapping, many times the page faults. So the trim threshold only once the mmap one took.
        if "thresholds" not in chosen and libc.mallopt(M_MMAP_THRESHOLD, wanted["mmap_threshold"]) == 1:
            applied["mmap_threshold"] = wanted["mmap_threshold"]
            if libc.mallopt(M_TRIM_THRESHOLD, wanted["trim_threshold"]) == 1:
                applied["trim_threshold"] = wanted["trim_threshold"]
        _applied = applied
        parts = []
        if "arena_max" in applied:
            parts.append(f"{applied['arena_max']} arenas")
        if "trim_threshold" in applied:
            parts.append(f"mmap threshold {MMAP_THRESHOLD_BYTES >> 20} MB, trim {TRIM_THRESHOLD_BYTES >> 20} MB")
        parts += [f"{group} left as {by} sets them" for group, by in chosen.items()]
        refused = [] if "arenas" in chosen or "arena_max" in applied else ["arena_max"]
        if "thresholds" not in chosen:
            refused += [name for name in ("mmap_threshold", "trim_threshold") if name not in applied]
        if refused:  # an older or patched glibc: the engines run either way
            parts.append(f"glibc refused {', '.join(refused)}: memory use and speed may differ from bench/RESULTS.md")
        _state = "; ".join(parts)
        return applied


def describe() -> str:
    """What `tune` did, for the start-up log (it runs before logging is set up)."""
    return f"malloc: {_state}"

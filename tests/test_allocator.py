"""glibc's malloc as the engines get it (server/engines/allocator.py): set once, before their threads,
unless the operator chose; and it does what it is there for, kept memory instead of page faults."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import textwrap

import pytest

from tarjama.server.engines import allocator

from conftest import ServerProcess

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")


def test_an_operators_malloc_settings_are_left_alone() -> None:
    assert allocator.operator_choices({}) == {}
    assert allocator.operator_choices({"MALLOC_ARENA_MAX": "4"}) == {"arenas": "MALLOC_ARENA_MAX"}
    assert allocator.operator_choices({"MALLOC_ARENA_MAX": ""}) == {}  # empty: not a choice
    assert allocator.operator_choices({"MALLOC_TRIM_THRESHOLD_": "0"}) == {"thresholds": "MALLOC_TRIM_THRESHOLD_"}
    assert allocator.operator_choices({"GLIBC_TUNABLES": "glibc.malloc.arena_max=1"}) == {"arenas": "GLIBC_TUNABLES"}
    assert allocator.operator_choices({"GLIBC_TUNABLES": "glibc.malloc.tcache_count=0:glibc.rtld.nns=2"}) == {}
    assert allocator.operator_choices({"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}) == {"all": "LD_PRELOAD"}
    both = {"MALLOC_ARENA_MAX": "4", "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=1048576"}
    assert allocator.operator_choices(both) == {"arenas": "MALLOC_ARENA_MAX", "thresholds": "GLIBC_TUNABLES"}


def test_one_arena_per_batch_at_once_and_never_fewer_than_two() -> None:
    assert allocator.settings_for(1)["arena_max"] == 2
    assert allocator.settings_for(16)["arena_max"] == 16
    assert allocator.settings_for(2)["mmap_threshold"] == 32 << 20
    assert allocator.settings_for(2)["trim_threshold"] == 64 << 20


# One "decoding step" as the engines allocate: four 12 MB buffers written and freed, forty times.
# Under glibc's defaults the freed 48 MB at the top of the heap is over the trim threshold the first
# free sets (24 MB) and goes back to the kernel, so every step faults it in again.
STEPS = textwrap.dedent(
    """
    import ctypes, json, resource, sys
    from tarjama.server.engines import allocator
    applied = allocator.tune(2) if sys.argv[1] == "tuned" else None
    again = allocator.tune(16) if sys.argv[1] == "tuned" else None  # the first call decides
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    size = 12 << 20
    def step():
        buffers = [libc.malloc(size) for _ in range(4)]
        for b in buffers:
            ctypes.memset(b, 1, size)
        for b in buffers:
            libc.free(b)
    step(); step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(40):
        step()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    print(json.dumps({"applied": applied, "again": again, "faults_per_step": faults / 40,
                      "log": allocator.describe()}))
    """
)
STEP_PAGES = 4 * (12 << 20) // 4096


def run_steps(mode: str, **env: str) -> dict[str, object]:
    clean = {k: v for k, v in os.environ.items() if k not in allocator.OPERATOR_VARIABLES and k != "GLIBC_TUNABLES"}
    done = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True,
                          env={**clean, **env}, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@glibc
def test_freed_buffers_are_kept_for_the_next_step_instead_of_faulted_in_again() -> None:
    default = run_steps("default")
    tuned = run_steps("tuned")
    assert tuned["applied"] == allocator.settings_for(2)  # what glibc accepted, all of it
    assert tuned["again"] == tuned["applied"]
    assert tuned["log"] == "malloc: 2 arenas; mmap threshold 32 MB, trim 64 MB"
    assert default["faults_per_step"] > STEP_PAGES / 2  # glibc's defaults: the step's memory faulted in again
    assert tuned["faults_per_step"] < STEP_PAGES / 20, tuned  # tuned: kept


@glibc
def test_an_operators_own_setting_wins_for_what_it_sets() -> None:
    arenas = run_steps("tuned", MALLOC_ARENA_MAX="8")  # the arenas are theirs; the thresholds still ours
    assert arenas["applied"] == {k: v for k, v in allocator.settings_for(2).items() if k != "arena_max"}
    assert arenas["faults_per_step"] < STEP_PAGES / 20
    assert "arenas left as MALLOC_ARENA_MAX sets them" in str(arenas["log"])
    thresholds = run_steps("tuned", MALLOC_TRIM_THRESHOLD_="131072")  # theirs: glibc's faults again
    assert thresholds["applied"] == {"arena_max": 2}
    assert thresholds["faults_per_step"] > STEP_PAGES / 2
    everything = run_steps("tuned", LD_PRELOAD="libjemalloc.so.2-not-here")
    assert everything["applied"] is None
    assert everything["log"] == "malloc: left as LD_PRELOAD sets it"


def test_the_server_sets_malloc_at_start_up_and_says_so(hardened_server: ServerProcess) -> None:
    # `tarjama serve`: set in startup.prepare while the process has one thread, logged once logging is up.
    assert re.search(r"malloc: \d+ arenas; mmap threshold 32 MB, trim 64 MB", hardened_server.log())

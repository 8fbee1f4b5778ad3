"""glibc's malloc as the engines get it (server/engines/allocator.py): set once, before their threads,
unless the operator chose; and it does what it is there for, kept memory instead of page faults."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import textwrap

import pytest

from tarjama.server.engines import allocator

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")


def test_an_operators_malloc_settings_are_left_alone() -> None:
    assert allocator.operator_choice({}) is None
    assert allocator.operator_choice({"MALLOC_ARENA_MAX": "4"}) == "MALLOC_ARENA_MAX"
    assert allocator.operator_choice({"MALLOC_TRIM_THRESHOLD_": "0"}) == "MALLOC_TRIM_THRESHOLD_"
    assert allocator.operator_choice({"GLIBC_TUNABLES": "glibc.malloc.arena_max=1"}) == "GLIBC_TUNABLES"
    assert allocator.operator_choice({"GLIBC_TUNABLES": "glibc.rtld.nns=2"}) is None
    assert allocator.operator_choice({"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}) == "LD_PRELOAD"
    assert allocator.tune(2, {"MALLOC_ARENA_MAX": "4"}) is None


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
    print(json.dumps({"applied": applied, "faults_per_step": faults / 40}))
    """
)


def run_steps(mode: str, env: dict[str, str] | None = None) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@glibc
def test_freed_buffers_are_kept_for_the_next_step_instead_of_faulted_in_again(tmp_path: object) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if k not in allocator.OPERATOR_VARIABLES and k != "GLIBC_TUNABLES"}
    default = run_steps("default", env)
    tuned = run_steps("tuned", env)
    assert tuned["applied"] == allocator.settings_for(2)
    step_pages = 4 * (12 << 20) // 4096
    assert default["faults_per_step"] > step_pages / 2  # glibc's defaults: the step's memory faulted in again
    assert tuned["faults_per_step"] < step_pages / 20, tuned  # tuned: kept
    # An operator's own setting wins: nothing is changed, so the faults are glibc's again.
    chosen = run_steps("tuned", {**env, "MALLOC_ARENA_MAX": "8"})
    assert chosen["applied"] is None
    assert chosen["faults_per_step"] > step_pages / 2

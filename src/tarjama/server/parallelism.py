"""How many batches run at once, on how many threads, and how big they are: one rule, one place.

Beam search has serial work at every step that intra-op threads cannot share, so on CPU several
batches in flight on one thread each do more work than one batch on all threads (2 cores, opus-mt
shape, int8, beam 4: 1.5-1.7x, bench/RESULTS.md). The rule, unless flags say otherwise:
- CPU: one worker per core (`--threads`, default all the cores this process may use), one thread
  each; batches of 16 once there are several workers (smaller batches fill them sooner), 32 for one.
- CUDA: two workers per GPU (one batch decodes while the next is prepared), on every device in
  `--device-index`; batches of 64.
`GetInfo` and the start-up log report what was chosen and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from .settings import Settings

CPU_BATCH_ONE_WORKER = 32
CPU_BATCH_SEVERAL_WORKERS = 16
GPU_WORKERS_PER_DEVICE = 2
GPU_BATCH = 64


@dataclass(frozen=True)
class Parallelism:
    """What the engine and the batcher were given."""

    device: str
    device_indices: tuple[int, ...]
    workers_per_device: int
    threads_per_worker: int
    max_batch_size: int
    chosen_by: str  # how: "flags", or the rule that filled in what the flags left open

    @property
    def workers(self) -> int:
        """Batches in flight at once, over all devices."""
        return self.workers_per_device * len(self.device_indices)


def plan(settings: Settings, device: str) -> Parallelism:
    """Fill in what `--engine-workers`, `--threads-per-worker` and `--max-batch-size` leave at 0."""
    defaulted = []
    if device == "cpu":
        indices: tuple[int, ...] = (0,)
        cores = settings.resolved_threads()
        threads = settings.threads_per_worker or 1
        workers = settings.engine_workers or max(1, cores // threads)
        if not settings.threads_per_worker:
            defaulted.append("one thread per worker")
        if not settings.engine_workers:
            defaulted.append(f"{cores} cores / {threads} threads per worker")
        several = CPU_BATCH_SEVERAL_WORKERS if workers > 1 else CPU_BATCH_ONE_WORKER
    else:
        indices = settings.device_indices()
        threads = settings.threads_per_worker or 1
        workers = settings.engine_workers or GPU_WORKERS_PER_DEVICE
        if not settings.engine_workers:
            defaulted.append(f"{GPU_WORKERS_PER_DEVICE} workers per GPU")
        several = GPU_BATCH
    batch = settings.max_batch_size or several
    if not settings.max_batch_size:
        defaulted.append(f"batches of {batch} for {workers} worker{'s' if workers > 1 else ''}")
    chosen_by = "flags" if not defaulted else "rule: " + ", ".join(defaulted)
    return Parallelism(device, indices, workers, threads, batch, chosen_by)


def for_summaries(settings: Settings, device: str) -> Parallelism:
    """Summaries are few and long, and wait for their article: one batch at a time on all the cores."""
    threads = settings.resolved_threads() if device == "cpu" else 1
    return Parallelism(device, settings.device_indices()[:1], 1, threads, 8, "summary: one batch at a time")


def describe(p: Parallelism) -> str:
    """One line for the start-up log."""
    where = p.device if p.device == "cpu" else f"{p.device}:{','.join(map(str, p.device_indices))}"
    return (
        f"{p.workers} batch{'es' if p.workers > 1 else ''} in flight on {where} "
        f"({p.workers_per_device} worker(s) per device x {p.threads_per_worker} thread(s)), "
        f"max batch {p.max_batch_size} ({p.chosen_by})"
    )

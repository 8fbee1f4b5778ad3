"""Cross-request dynamic batching: one queue, N worker threads, batches formed by a token budget.

The batcher knows no gRPC and no model. Callers submit a request's items (each with a cost in
tokens); each worker, when free, forms a batch from the pending requests, runs it through `run_batch`
(which must accept calls from several threads at once) and scatters the results back in each
request's order. With N workers, N batches are in flight: the next forms while the others run.

Which items ride in the next batch, which requests are shed as hopeless and how long a free worker
waits for company is decided by a `scheduling.Scheduler` (for goodput: deadlines first, short requests
ahead of documents), a pure class this module drives under its lock. Cancelled or expired requests are
dropped before their items reach the model; the queue is bounded in tokens and refuses new work when full.

The workers are supervised. An engine error fails only its batch's requests; anything else escaping a
worker's loop (a bug in the scheduling, in handing results on) fails the requests of the batch it held
and a new worker thread takes its place. With `supervise`, a batch on the engine for longer than the
watchdog, or workers failing over and over, mean the engine cannot run: queued and new work get
EngineUnavailable and `on_failed` is told once, so that the server can say so and exit.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .edges.stats import Observer
from .errors import (
    Cancelled,
    DeadlineExceeded,
    EngineFailure,
    EngineUnavailable,
    Overloaded,
    ShuttingDown,
    private_traceback,
)
from .scheduling import BatchLimits, Request, Scheduler

__all__ = ["BatchLimits", "BatchStats", "Batcher", "ComputeGate", "Ticket"]

log = logging.getLogger(__name__)

# A worker never waits on the condition longer than this: Condition.wait raises OverflowError past
# threading.TIMEOUT_MAX (a deadline 300 years away killed every worker), and waking early only re-checks.
MAX_WAIT_S = 60.0
# What a request shed before a batch is told (one refused at submission is told the figures).
HOPELESS = "the server cannot finish this before its deadline with the work scheduled ahead of it"
# A worker whose loop raises is replaced; this many replacements within RESTARTS_WINDOW_S say the fault
# is not one batch's but the batcher's, and the engine counts as unable to run.
MAX_RESTARTS = 5
RESTARTS_WINDOW_S = 60.0

P = TypeVar("P")  # what the engine takes per item
R = TypeVar("R")  # what it gives back per item


@dataclass
class BatchStats:
    """Counters the benchmark and GetInfo read; updated by the workers under the batcher's lock."""

    batches: int = 0
    items: int = 0
    padded_tokens: int = 0
    real_tokens: int = 0
    overloaded: int = 0
    shed: int = 0  # requests refused or dropped: they could not finish before their deadline
    delivered: int = 0  # items of completed requests (the rest of `items` was work thrown away)
    worker_restarts: int = 0  # workers replaced after their loop raised
    size_histogram: collections.Counter[int] = field(default_factory=collections.Counter)


@dataclass(eq=False, kw_only=True)
class _Job(Request, Generic[P, R]):
    """One submitted request as the scheduler sees it (`Request`), with its items, the results as they
    arrive, and its future."""

    payloads: Sequence[P]
    future: Future[list[R]]
    results: list[R | None]
    done_items: int = 0
    cancelled: bool = False
    first_batch_at: float | None = None  # when its first item went to the engine
    tag: object = None  # the caller's, handed to the observer with each batch (a trace context)
    # Streaming: told each time more of the request's leading items are done, with their results
    # (called on a worker thread, under the batcher's lock: it must only hand them on).
    on_progress: Callable[[list[R]], None] | None = None
    reported: int = 0  # leading items already handed to on_progress


class ComputeGate:
    """The machine's batch slots, shared by the batchers of several models: first come, first served.

    A server with two models has a batcher (and engine workers) for each, but the cores are one
    machine's: a batch runs only while it holds a slot, and there are as many slots as one model's plan
    has workers. A model alone with work gets every slot (the whole machine); when both have work, the
    free slot goes to the worker that has waited longest, so their batches take turns and neither
    starves the other.
    """

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("a gate needs at least one slot")
        self.slots = slots
        self._free = slots
        self._waiting: collections.deque[object] = collections.deque()
        self._cond = threading.Condition()

    def acquire(self, give_up: Callable[[], bool], poll_s: float = 0.5) -> bool:
        """Wait for a slot, in arrival order; False (and no slot) once `give_up()` says so (stopping)."""
        me = object()
        with self._cond:
            self._waiting.append(me)
            while self._waiting[0] is not me or self._free == 0:
                self._cond.wait(poll_s)
                if give_up():
                    self._waiting.remove(me)
                    self._cond.notify_all()  # whoever was behind may be first now
                    return False
            self._waiting.popleft()
            self._free -= 1
            self._cond.notify_all()  # the next in line may find a slot free too
            return True

    def release(self) -> None:
        with self._cond:
            self._free += 1
            self._cond.notify_all()


class Ticket(Generic[R]):
    """A handle on a submitted request: its future, and a way to cancel it."""

    def __init__(self, batcher: Batcher[P, R], job: _Job[P, R]) -> None:
        self._batcher = batcher
        self._job = job
        self.future: Future[list[R]] = job.future

    def cancel(self) -> None:
        """Drop the request: its unsent items never reach the engine, and its future raises Cancelled."""
        self._batcher._cancel(self._job)

    @property
    def queue_s(self) -> float:
        """How long the request waited before its first item went to the engine."""
        started = self._job.first_batch_at
        return 0.0 if started is None else max(0.0, started - self._job.enqueued)


class Batcher(Generic[P, R]):
    """Forms batches from the items of all in-flight requests and runs up to `workers` of them at once.

    The threads, the lock and the futures are here; every choice of what runs next is its `Scheduler`'s.
    Read by the server: `limits`, `workers`, `stats`, `queued_tokens`, `failed` (why the engine cannot
    run, or None); `observer` may be replaced before work arrives (metrics, tracing).
    """

    def __init__(
        self,
        run_batch: Callable[[list[P]], list[R]],
        limits: BatchLimits,
        name: str = "batcher",
        split_on: Callable[[Exception], bool] = lambda exc: False,
        workers: int = 1,
        gate: ComputeGate | None = None,
    ) -> None:
        self._scheduler: Scheduler[_Job[P, R]] = Scheduler(limits, workers)  # raises if workers < 1
        self._run_batch = run_batch
        self.workers = workers
        self._gate = gate  # shared with other models' batchers; None: this one has the machine
        self.role = name.removesuffix("-batcher")
        self.observer: Observer = Observer()  # metrics: batch sizes and times, queue waits
        self._split_on = split_on
        self.limits = limits
        self.name = name
        self.stats = BatchStats()
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopping = False
        # Supervision: why the engine cannot run (None while it can), who to tell, recent replacements.
        self.failed: str | None = None
        self._on_failed: Callable[[str], None] | None = None
        self._restarts: collections.deque[float] = collections.deque()
        self._watchdog_stop = threading.Event()
        self._thread_names = (f"{name}-{i}" for i in itertools.count())
        self._threads: list[threading.Thread] = []
        for _ in range(workers):
            self._start_worker()

    @property
    def live_workers(self) -> int:
        """Worker threads running now (a failed one is replaced; see `supervise`)."""
        with self._cond:
            return sum(thread.is_alive() for thread in self._threads)

    @property
    def queued_tokens(self) -> int:
        """Tokens of the queued items not yet sent to the engine."""
        return self._scheduler.queued_tokens

    def submit(
        self,
        payloads: Sequence[P],
        costs: Sequence[int],
        deadline: float | None = None,
        tag: object = None,
        on_progress: Callable[[list[R]], None] | None = None,
    ) -> Ticket[R]:
        """Queue one request's items; `deadline` is a time.monotonic() value or None.

        With `on_progress` (streaming) the items are taken about in their own order (`scheduling.streamed_order`)
        rather than shortest first, and `on_progress` gets the results of the leading items as they
        complete, in order.

        Raises Overloaded when the queue is full, ShuttingDown after `stop`, and DeadlineExceeded when
        the work scheduled ahead of this request already makes its deadline impossible.
        """
        if len(payloads) != len(costs):
            raise ValueError("payloads and costs differ in length")
        future: Future[list[R]] = Future()
        total = sum(costs)
        with self._cond:
            if self.failed is not None:
                raise EngineUnavailable(self.failed)
            if self._stopping:
                raise ShuttingDown("the server is shutting down; retry on another instance")
            if self._scheduler.overloaded(total):
                self.stats.overloaded += 1
                raise Overloaded(
                    f"the server is overloaded: {self._scheduler.queued_tokens} tokens are queued "
                    f"(limit {self.limits.max_queue_tokens}); retry later"
                )
            now = time.monotonic()
            streamed = on_progress is not None
            job: _Job[P, R] = _Job(
                seq=next(self._seq),
                payloads=payloads,
                costs=costs,
                deadline=deadline,
                future=future,
                results=[None] * len(payloads),
                enqueued=now,
                order=self._scheduler.item_order(costs, streamed),
                streamed=streamed,
                tag=tag,
                on_progress=on_progress,
            )
            if not payloads:
                future.set_result([])
                return Ticket(self, job)
            finish = self._scheduler.cannot_finish(job, now)
            if finish is not None and deadline is not None:
                self.stats.shed += 1
                raise DeadlineExceeded(
                    f"the server cannot finish this before its deadline: with the work queued ahead it "
                    f"needs about {finish - now:.1f}s, and the deadline is in {max(0.0, deadline - now):.1f}s"
                )
            self._scheduler.add(job)
            self._cond.notify()
        return Ticket(self, job)

    def stop(self, timeout: float | None = None) -> bool:
        """Refuse new work, fail what is queued (ShuttingDown), end the workers after their current batch.

        Waits up to `timeout` seconds in all for the workers; returns whether they have all ended (a
        batch cannot be interrupted on the engine, so the caller decides whether to wait for it).
        """
        with self._cond:
            self._stopping = True
            for job in self._scheduler.live:
                self._drop(job, ShuttingDown("the server is shutting down; retry on another instance"))
            self._cond.notify_all()
            threads = list(self._threads)  # no worker is replaced once stopping
        self._watchdog_stop.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in threads)

    # -- supervision ------------------------------------------------------------------------------

    def supervise(self, watchdog_s: float, on_failed: Callable[[str], None]) -> None:
        """Watch the engine: a batch still on it after `watchdog_s` seconds (a hung engine, which no
        thread can interrupt), or workers failing again and again, mean it cannot run; `on_failed` is
        then called once with the reason, on a batcher thread. `watchdog_s` 0 watches failures only."""
        self._on_failed = on_failed
        if watchdog_s > 0:
            period = max(0.05, min(1.0, watchdog_s / 10))
            threading.Thread(
                target=self._watch, args=(watchdog_s, period), name=f"{self.name}-watchdog", daemon=True
            ).start()

    def _watch(self, watchdog_s: float, period: float) -> None:
        # Its own event, not the condition: a notify meant for a worker must never wake the watchdog.
        while not self._watchdog_stop.wait(period):
            with self._cond:
                started = self._scheduler.running_since
            if started is not None and time.monotonic() - started > watchdog_s:
                self._engine_failed(
                    f"a {self.role} batch has been on the engine for over {watchdog_s:g}s (the watchdog limit)"
                )
                return

    def _engine_failed(self, reason: str) -> None:
        """The engine cannot run: refuse new work, tell the supervisor, fail all queued and running work,
        end the free workers. The supervisor hears first, so that health already says NOT_SERVING when
        the first client hears UNAVAILABLE."""
        with self._cond:
            if self.failed is not None:
                return
            self.failed = reason
            self._stopping = True
        self._watchdog_stop.set()
        if self._on_failed is not None:
            self._on_failed(reason)
        else:  # unsupervised, this is the only word of it (a supervisor says it, with what it does about it)
            log.error("%s: the engine cannot run: %s", self.name, reason)
        with self._cond:
            error = EngineUnavailable(reason)
            for job in self._scheduler.live:
                self._drop(job, error)
            self._cond.notify_all()

    def _start_worker(self) -> None:
        thread = threading.Thread(target=self._work, name=next(self._thread_names), daemon=True)
        self._threads.append(thread)
        thread.start()

    def _worker_failed(self, batch_id: int | None, held: list[tuple[_Job[P, R], int]], exc: Exception) -> None:
        """A worker's loop raised: fail the requests of the batch it held and start another worker."""
        log.error("%s: a worker failed; replacing it: %s", self.name, private_traceback(exc))
        with self._cond:
            if batch_id is not None:
                self._finished(batch_id)
            for job in {id(j): j for j, _ in held}.values():
                self._drop(job, EngineFailure(str(exc)))
            self.stats.worker_restarts += 1
            now = time.monotonic()
            self._restarts.append(now)
            while self._restarts and self._restarts[0] < now - RESTARTS_WINDOW_S:
                self._restarts.popleft()
            self._threads.remove(threading.current_thread())
            storm = len(self._restarts) > MAX_RESTARTS
            if not self._stopping and not storm:
                self._start_worker()
        if storm:  # the same fault again and again: replacing workers would spin
            self._engine_failed(f"{self.role} workers failed {len(self._restarts)} times in {RESTARTS_WINDOW_S:g}s")

    # -- worker ---------------------------------------------------------------------------------

    def _cancel(self, job: _Job[P, R]) -> None:
        with self._cond:
            if job in self._scheduler:
                job.cancelled = True
                self._drop(job, Cancelled("the request was cancelled"))

    def _drop(self, job: _Job[P, R], error: Exception) -> None:
        """Remove a job and its unsent items from the queue (lock held)."""
        self._scheduler.remove(job)
        if not job.future.done():
            job.future.set_exception(error)

    def _expire(self, now: float) -> None:
        for job in self._scheduler.expired(now):
            self._drop(job, DeadlineExceeded("the deadline passed before the translation finished"))

    def _wait(self, timeout: float | None) -> None:
        """Wait on the condition (lock held) for at most `timeout` seconds, and never past MAX_WAIT_S:
        whatever a caller submitted (a deadline centuries away, inf, nan), the wait stays representable."""
        self._cond.wait(MAX_WAIT_S if timeout is None or not timeout < MAX_WAIT_S else max(0.0, timeout))

    def _form_batch(self, now: float, picked: list[tuple[_Job[P, R], int]]) -> int:
        """Take the next batch into `picked` (the caller's, so that if this raises, the caller knows what
        it took), drop the requests the scheduler found hopeless, and note the batch as started: its id."""
        for job in self._scheduler.form_batch(now, picked):
            self.stats.shed += 1
            self._drop(job, DeadlineExceeded(HOPELESS))
        started = time.monotonic()
        for job, _ in picked:
            if job.first_batch_at is None:
                job.first_batch_at = started
        if picked:
            self.observer.queued(self.role, [started - job.enqueued for job, _ in picked])
        return self._scheduler.start(picked, started)

    def _work(self) -> None:
        while True:
            # Filled as items are taken, so that a failure anywhere below knows whose requests it held.
            batch: list[tuple[_Job[P, R], int]] = []
            batch_id = None
            try:
                with self._cond:
                    while True:
                        now = time.monotonic()
                        self._expire(now)
                        if self._stopping:
                            return
                        if not self._scheduler.waiting:
                            next_deadline = self._scheduler.next_deadline
                            self._wait(None if next_deadline is None else next_deadline - now)
                            continue
                        delay = self._scheduler.wait_s(now)
                        if delay <= 0:
                            break
                        self._wait(delay)
                    if self._gate is None:
                        batch_id = self._form_batch(now, batch)
                        if self._scheduler.waiting:
                            self._cond.notify()  # work is left: a free worker may take it while this one runs
                if self._gate is not None:
                    if not self._gate.acquire(lambda: self._stopping):
                        return
                    try:
                        batch_id = self._form_gated(batch)
                        if batch_id is not None and batch:
                            self._run(batch_id, batch)
                    finally:
                        self._gate.release()
                elif batch_id is not None and batch:
                    self._run(batch_id, batch)
            except Exception as exc:  # not the engine's error (`_run` fails its batch for those): a bug
                self._worker_failed(batch_id, batch, exc)
                return

    def _form_gated(self, batch: list[tuple[_Job[P, R], int]]) -> int | None:
        """With a slot of the shared gate held, the batch formed now (it may have grown while this
        worker waited for the slot); None if the work is gone meanwhile (another worker, a cancel)."""
        with self._cond:
            now = time.monotonic()
            self._expire(now)
            if self._stopping or not self._scheduler.waiting:
                return None
            batch_id = self._form_batch(now, batch)
            if self._scheduler.waiting:
                self._cond.notify()
            return batch_id

    def _run_split(self, payloads: list[P]) -> list[R]:
        """Run a batch; on an error `split_on` accepts (out of GPU memory), run its halves instead."""
        try:
            results = self._run_batch(payloads)
        except Exception as exc:
            if len(payloads) < 2 or not self._split_on(exc):
                raise
            half = len(payloads) // 2
            log.warning(
                "%s: a batch of %d failed (%s); retrying it in halves", self.name, len(payloads), type(exc).__name__
            )
            return self._run_split(payloads[:half]) + self._run_split(payloads[half:])
        if len(results) != len(payloads):
            raise RuntimeError(f"engine returned {len(results)} results for {len(payloads)} items")
        return results

    def _finished(self, batch_id: int) -> None:
        """A batch left the engine (lock held): its worker is free, and so may be the next batch's."""
        self._scheduler.finished(batch_id, time.monotonic())
        self._cond.notify_all()  # a waiting worker may now see the requests it was expecting

    def _run(self, batch_id: int, batch: list[tuple[_Job[P, R], int]]) -> None:
        payloads = [job.payloads[i] for job, i in batch]
        costs = [job.costs[i] for job, i in batch]
        started = time.monotonic()
        try:
            results = self._run_split(payloads)
        except Exception as exc:  # a failing batch fails its own requests, not the server
            log.error("%s: a batch of %d items failed: %s", self.name, len(payloads), private_traceback(exc))
            with self._cond:
                self._finished(batch_id)
                for job in {id(j): j for j, _ in batch}.values():
                    self._drop(job, EngineFailure(str(exc)))
            return
        finished = time.monotonic()
        self.observer.batch(self.role, len(batch), finished - started, [job.tag for job, _ in batch])
        with self._cond:
            self._scheduler.measured(len(batch), sum(costs), finished - started)
            self.stats.batches += 1
            self.stats.items += len(batch)
            self.stats.real_tokens += sum(costs)
            self.stats.padded_tokens += max(costs) * len(costs)
            self.stats.size_histogram[len(batch)] += 1
            self._finished(batch_id)
            for (job, i), result in zip(batch, results, strict=True):
                if job.future.done():
                    continue  # cancelled or expired while its batch ran
                job.results[i] = result
                job.done_items += 1
            for job in {id(j): j for j, _ in batch}.values():
                if job.future.done():
                    continue
                if job.on_progress is not None:
                    self._report(job)
                if job.done_items == len(job.payloads):
                    self._scheduler.remove(job)
                    self.stats.delivered += len(job.payloads)
                    job.future.set_result(list(job.results))  # type: ignore[arg-type]

    def _report(self, job: _Job[P, R]) -> None:
        """Hand a streaming request the results of its leading items that have newly completed."""
        end = job.reported
        while end < len(job.results) and job.results[end] is not None:
            end += 1
        if end > job.reported:
            done, job.reported = job.results[job.reported : end], end
            job.on_progress(done)  # type: ignore[misc, arg-type]

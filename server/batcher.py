"""Cross-request dynamic batching: one queue, one worker thread, batches formed by a token budget.

The batcher knows no gRPC and no model. Callers submit a request's items (each with a cost in
tokens); the worker forms batches from all pending requests in turn (round-robin, so a long
document never holds a short request behind it), runs them through `run_batch` and scatters the
results back in each request's order. Cancelled or expired requests are dropped before their items
reach the model; the queue is bounded in tokens and refuses new work when full.
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

from .errors import Cancelled, DeadlineExceeded, EngineFailure, Overloaded, ShuttingDown

log = logging.getLogger(__name__)

# The engine counts as idle once it has had nothing to do for this long; the next request may be the
# first of a burst (a tool submitting a pile of articles), worth a moment's wait to batch together.
IDLE_AFTER_S = 0.05

P = TypeVar("P")  # what the engine takes per item
R = TypeVar("R")  # what it gives back per item


@dataclass(frozen=True)
class BatchLimits:
    """How big a batch may be and how long the worker may wait to fill one."""

    max_batch_tokens: int = 8192  # padded tokens: batch size x longest item
    max_batch_size: int = 32
    max_batch_delay_s: float = 0.05
    # On an idle engine, how long a first request waits for others arriving with it.
    idle_delay_s: float = 0.003
    max_queue_tokens: int = 400_000


@dataclass
class BatchStats:
    """Counters the benchmark and GetInfo read; updated only by the worker."""

    batches: int = 0
    items: int = 0
    padded_tokens: int = 0
    real_tokens: int = 0
    overloaded: int = 0
    size_histogram: collections.Counter[int] = field(default_factory=collections.Counter)


@dataclass(eq=False)
class _Job(Generic[P, R]):
    """One submitted request: its items, the results as they arrive, and its future."""

    seq: int
    payloads: Sequence[P]
    costs: Sequence[int]
    deadline: float | None
    future: Future[list[R]]
    results: list[R | None]
    # Items are taken shortest first, so a long document's batches hold sentences of similar
    # length (less padding); results still go back to their own positions.
    order: list[int] = field(default_factory=list)
    next_item: int = 0
    done_items: int = 0
    queued_tokens: int = 0
    cancelled: bool = False

    @property
    def waiting(self) -> bool:
        return self.next_item < len(self.payloads)

    @property
    def remaining(self) -> int:
        return len(self.payloads) - self.next_item

    def unsent_tokens(self) -> int:
        return sum(self.costs[i] for i in self.order[self.next_item :])


class Ticket(Generic[R]):
    """A handle on a submitted request: its future, and a way to cancel it."""

    def __init__(self, batcher: Batcher[P, R], job: _Job[P, R]) -> None:
        self._batcher = batcher
        self._job = job
        self.future: Future[list[R]] = job.future

    def cancel(self) -> None:
        self._batcher._cancel(self._job)


class Batcher(Generic[P, R]):
    """Forms batches from the items of all in-flight requests and runs them on one worker thread."""

    def __init__(
        self,
        run_batch: Callable[[list[P]], list[R]],
        limits: BatchLimits,
        name: str = "batcher",
        split_on: Callable[[Exception], bool] = lambda exc: False,
    ) -> None:
        self._run_batch = run_batch
        self._split_on = split_on
        self.limits = limits
        self.name = name
        self.stats = BatchStats()
        self._jobs: collections.OrderedDict[int, _Job[P, R]] = collections.OrderedDict()
        self._rr_after = -1  # round-robin position: seq of the job served last
        self._queued_tokens = 0
        self._oldest_enqueue: float | None = None
        # How many requests to expect back soon: the most that were live at once since the last batch
        # was formed (clients answered together come back together). Waiting for fewer than that
        # cannot fill a batch, so it is not worth it.
        self._expected_requests = 0
        self._peak_live = 0
        self._last_batch_s = 0.0
        self._free_since = 0.0  # when the last batch finished
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    @property
    def queued_tokens(self) -> int:
        return self._queued_tokens

    def submit(self, payloads: Sequence[P], costs: Sequence[int], deadline: float | None = None) -> Ticket[R]:
        """Queue one request's items; `deadline` is a time.monotonic() value or None."""
        if len(payloads) != len(costs):
            raise ValueError("payloads and costs differ in length")
        future: Future[list[R]] = Future()
        total = sum(costs)
        with self._cond:
            if self._stopping:
                raise ShuttingDown("the server is shutting down")
            # A request bigger than the whole queue still runs when the queue is empty.
            if self._queued_tokens and self._queued_tokens + total > self.limits.max_queue_tokens:
                self.stats.overloaded += 1
                raise Overloaded(
                    f"the server is overloaded: {self._queued_tokens} tokens are queued "
                    f"(limit {self.limits.max_queue_tokens}); retry later"
                )
            job: _Job[P, R] = _Job(
                seq=next(self._seq),
                payloads=payloads,
                costs=costs,
                deadline=deadline,
                future=future,
                results=[None] * len(payloads),
                order=sorted(range(len(payloads)), key=costs.__getitem__),
                queued_tokens=total,
            )
            if not payloads:
                future.set_result([])
                return Ticket(self, job)
            self._jobs[job.seq] = job
            self._peak_live = max(self._peak_live, len(self._jobs))
            self._queued_tokens += total
            if self._oldest_enqueue is None:
                self._oldest_enqueue = time.monotonic()
            self._cond.notify()
        return Ticket(self, job)

    def stop(self, timeout: float | None = None) -> None:
        """Finish the work already queued, then end the worker."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout)

    # -- worker ---------------------------------------------------------------------------------

    def _cancel(self, job: _Job[P, R]) -> None:
        with self._cond:
            if job.seq in self._jobs:
                job.cancelled = True
                self._drop(job, Cancelled("the request was cancelled"))

    def _drop(self, job: _Job[P, R], error: Exception) -> None:
        """Remove a job and its unsent items from the queue (lock held)."""
        self._jobs.pop(job.seq, None)
        self._release(job)
        if not job.future.done():
            job.future.set_exception(error)

    def _release(self, job: _Job[P, R]) -> None:
        unsent = job.unsent_tokens()
        job.next_item = len(job.payloads)
        self._queued_tokens -= unsent
        job.queued_tokens -= unsent
        if not any(j.waiting for j in self._jobs.values()):
            self._oldest_enqueue = None

    def _expire(self, now: float) -> None:
        for job in list(self._jobs.values()):
            if job.deadline is not None and now >= job.deadline:
                self._drop(job, DeadlineExceeded("the deadline passed before the translation finished"))

    def _waiting_tokens(self) -> int:
        return sum(j.unsent_tokens() for j in self._jobs.values() if j.waiting)

    def _should_wait(self, now: float) -> float:
        """Seconds worth waiting for more work before running a partial batch (0 = run now)."""
        if self._stopping or self._oldest_enqueue is None:
            return 0.0
        waiting = [j for j in self._jobs.values() if j.waiting]
        items = sum(len(j.payloads) - j.next_item for j in waiting)
        if items >= self.limits.max_batch_size or self._waiting_tokens() >= self.limits.max_batch_tokens:
            return 0.0
        if now - self._free_since > IDLE_AFTER_S:
            # Idle for a while: a burst may be arriving (many clients starting at once), so give it
            # a moment to gather: a few milliseconds, or a twentieth of what a batch takes, so that
            # a lone request pays at most 5% more than it would alone.
            limit = min(self.limits.max_batch_delay_s, max(self.limits.idle_delay_s, 0.05 * self._last_batch_s))
            return max(0.0, self._oldest_enqueue + limit - now)
        if len(waiting) >= self._expected_requests:
            return 0.0  # everyone the last batch served is back: nobody else is expected
        # Waiting costs every queued request; never more than a tenth of what a batch takes to run.
        # Counted from when the engine fell free: what queued during the last batch is fresh company.
        limit = min(self.limits.max_batch_delay_s, 0.1 * self._last_batch_s)
        return max(0.0, max(self._oldest_enqueue, self._free_since) + limit - now)

    def _batch_size_for(self, waiting: list[_Job[P, R]]) -> int:
        """The batch size to use now: full, unless short requests wait beside a long document.

        A short request rides in the next batch either way; a half-size batch runs in about half the
        time, so the short request is answered sooner while the document loses little throughput.
        """
        full = self.limits.max_batch_size
        short_items = sum(j.remaining for j in waiting if j.remaining <= 2)
        if short_items and any(j.remaining > full // 2 for j in waiting):
            return max(short_items, full // 2)
        return full

    def _form_batch(self) -> list[tuple[_Job[P, R], int]]:
        """Take items round-robin across waiting jobs until the size or token budget is reached."""
        picked: list[tuple[_Job[P, R], int]] = []
        longest = 0
        waiting = [j for j in self._jobs.values() if j.waiting]
        # Start after the job served first last time, so every request gets its turn at the front.
        start = next((k for k, j in enumerate(waiting) if j.seq > self._rr_after), 0)
        order = waiting[start:] + waiting[:start]
        if order:
            self._rr_after = order[0].seq
        size = self._batch_size_for(waiting)
        while order and len(picked) < size:
            progressed = False
            for job in order:
                if not job.waiting or len(picked) >= size:
                    continue
                item = job.order[job.next_item]
                cost = job.costs[item]
                padded = max(longest, cost) * (len(picked) + 1)
                if picked and padded > self.limits.max_batch_tokens:
                    continue
                picked.append((job, item))
                longest = max(longest, cost)
                job.next_item += 1
                job.queued_tokens -= cost
                self._queued_tokens -= cost
                progressed = True
            if not progressed:
                break
            order = [j for j in order if j.waiting]
        if not any(j.waiting for j in self._jobs.values()):
            self._oldest_enqueue = None
        elif picked:
            self._oldest_enqueue = time.monotonic()
        self._expected_requests = max(self._peak_live, len({job.seq for job, _ in picked}))
        self._peak_live = len(self._jobs)
        return picked

    def _work(self) -> None:
        while True:
            with self._cond:
                while True:
                    now = time.monotonic()
                    self._expire(now)
                    if not any(j.waiting for j in self._jobs.values()):
                        if self._stopping:
                            return
                        self._cond.wait()
                        continue
                    delay = self._should_wait(now)
                    if delay <= 0:
                        break
                    self._cond.wait(delay)
                batch = self._form_batch()
            if batch:
                self._run(batch)

    def _run_split(self, payloads: list[P]) -> list[R]:
        """Run a batch; on an error `split_on` accepts (out of GPU memory), run its halves instead."""
        try:
            results = self._run_batch(payloads)
        except Exception as exc:
            if len(payloads) < 2 or not self._split_on(exc):
                raise
            half = len(payloads) // 2
            log.warning("%s: a batch of %d failed (%s); retrying it in halves", self.name, len(payloads), exc)
            return self._run_split(payloads[:half]) + self._run_split(payloads[half:])
        if len(results) != len(payloads):
            raise RuntimeError(f"engine returned {len(results)} results for {len(payloads)} items")
        return results

    def _run(self, batch: list[tuple[_Job[P, R], int]]) -> None:
        payloads = [job.payloads[i] for job, i in batch]
        started = time.monotonic()
        try:
            results = self._run_split(payloads)
            self._last_batch_s = time.monotonic() - started
        except Exception as exc:  # a failing batch fails its own requests, not the server
            log.exception("%s: a batch of %d items failed", self.name, len(payloads))
            with self._cond:
                self._free_since = time.monotonic()
                for job in {id(j): j for j, _ in batch}.values():
                    self._drop(job, EngineFailure(str(exc)))
            return
        costs = [job.costs[i] for job, i in batch]
        self.stats.batches += 1
        self.stats.items += len(batch)
        self.stats.real_tokens += sum(costs)
        self.stats.padded_tokens += max(costs) * len(costs)
        self.stats.size_histogram[len(batch)] += 1
        with self._cond:
            self._free_since = time.monotonic()
            for (job, i), result in zip(batch, results, strict=True):
                if job.future.done():
                    continue  # cancelled or expired while its batch ran
                job.results[i] = result
                job.done_items += 1
                if job.done_items == len(job.payloads):
                    self._jobs.pop(job.seq, None)
                    job.future.set_result(list(job.results))  # type: ignore[arg-type]

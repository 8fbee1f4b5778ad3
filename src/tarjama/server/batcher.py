"""Cross-request dynamic batching: one queue, N worker threads, batches formed by a token budget.

The batcher knows no gRPC and no model. Callers submit a request's items (each with a cost in
tokens); each worker, when free, forms a batch from the pending requests, runs it through `run_batch`
(which must accept calls from several threads at once) and scatters the results back in each
request's order. With N workers, N batches are in flight: the next forms while the others run.

Which items ride in the next batch is scheduled for goodput, the share of engine work that reaches a
client before its deadline:
- a short request (a sentence or two left) rides in the next batch, whatever is queued beside it;
- then requests in order of deadline, earliest first, and among equal deadlines the one with the
  least work left. A request without a deadline counts as due a while after it arrived, later the
  more work it holds, so it is never starved and small articles pass big ones;
- so a few documents are in progress at once and each finishes, instead of every document advancing
  a little and none finishing in time;
- a request that cannot finish before its deadline, given the work scheduled ahead of it and the
  engine's measured throughput (one batch's rate times the workers), is refused at submission, or
  dropped as soon as that becomes clear, before the engine spends (more) time on it;
- when several workers are free, the queued items are shared between them, so a lone document's
  sentences run side by side instead of in one big batch after another.
Cancelled or expired requests are dropped before their items reach the model; the queue is bounded
in tokens and refuses new work when full.

The workers are supervised. An engine error fails only its batch's requests; anything else escaping a
worker's loop (a bug in the scheduling, in handing results on) fails the requests of the batch it held
and a new worker thread takes its place. With `supervise`, a batch on the engine for longer than the
watchdog, or workers failing over and over, mean the engine cannot run: queued and new work get
EngineUnavailable and `on_failed` is told once, so that the server can say so and exit.
"""

from __future__ import annotations

import bisect
import collections
import heapq
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

log = logging.getLogger(__name__)

# The engine counts as idle once it has had nothing to do for this long; the next request may be the
# first of a burst (a tool submitting a pile of articles), worth a moment's wait to batch together.
IDLE_AFTER_S = 0.05
# ... and then waits for company at most this share of a lone request's own time.
IDLE_SHARE = 0.02
# A request with this many items left or fewer rides in the next batch ahead of any document.
SHORT_ITEMS = 2
# A request without a deadline is scheduled as if due this long after it arrived, plus a multiple of
# its own expected engine time (so big articles yield to small ones, but only for so long).
NO_DEADLINE_DUE_S = 30.0
NO_DEADLINE_WORK_FACTOR = 4.0
# A request is shed when its estimated finish plus this margin passes its deadline: the answer still
# has to be assembled and sent, and a job finished just after its client gave up is pure waste.
SHED_MARGIN_S = 0.05
SHED_MARGIN_RATIO = 0.1
# Before the engine has been measured, a token is assumed to take this long (only orders requests
# without deadlines; nothing is shed on a guess).
ASSUMED_SECONDS_PER_TOKEN = 0.005
# A worker never waits on the condition longer than this: Condition.wait raises OverflowError past
# threading.TIMEOUT_MAX (a deadline 300 years away killed every worker), and waking early only re-checks.
MAX_WAIT_S = 60.0
# A worker whose loop raises is replaced; this many replacements within RESTARTS_WINDOW_S say the fault
# is not one batch's but the batcher's, and the engine counts as unable to run.
MAX_RESTARTS = 5
RESTARTS_WINDOW_S = 60.0

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


@dataclass(eq=False)
class _Job(Generic[P, R]):
    """One submitted request: its items, the results as they arrive, and its future."""

    seq: int
    payloads: Sequence[P]
    costs: Sequence[int]
    deadline: float | None
    future: Future[list[R]]
    results: list[R | None]
    enqueued: float = 0.0
    total_tokens: int = 0
    # Items are taken shortest first, so a long document's batches hold sentences of similar
    # length (less padding); results still go back to their own positions.
    order: list[int] = field(default_factory=list)
    next_item: int = 0
    done_items: int = 0
    queued_tokens: int = 0  # of the items not yet sent to the engine
    cancelled: bool = False
    first_batch_at: float | None = None  # when its first item went to the engine
    tag: object = None  # the caller's, handed to the observer with each batch (a trace context)
    # Streaming: told each time more of the request's leading items are done, with their results
    # (called on a worker thread, under the batcher's lock: it must only hand them on).
    on_progress: Callable[[list[R]], None] | None = None
    reported: int = 0  # leading items already handed to on_progress

    @property
    def waiting(self) -> bool:
        return self.next_item < len(self.payloads)

    @property
    def remaining(self) -> int:
        return len(self.payloads) - self.next_item

    def due(self, seconds_per_token: float) -> float:
        """When the request is due: its deadline, or for one without, a time that grows with its work."""
        if self.deadline is not None:
            return self.deadline
        return self.enqueued + NO_DEADLINE_DUE_S + NO_DEADLINE_WORK_FACTOR * self.total_tokens * seconds_per_token


def streamed_order(costs: Sequence[int], window: int) -> list[int]:
    """The order a streamed request's items are taken in: the first `window` as they come (its first
    paragraphs come back first), then window by window, shortest first within each window: less padding
    than strict order, while a paragraph still waits for at most its own window."""
    n = len(costs)
    order = list(range(min(window, n)))
    for start in range(window, n, window):
        order += sorted(range(start, min(start + window, n)), key=costs.__getitem__)
    return order


def _too_late(finish: float, deadline: float, now: float) -> bool:
    """Whether an estimated finish, with its margin of error, misses the deadline."""
    return finish + max(SHED_MARGIN_S, SHED_MARGIN_RATIO * (finish - now)) > deadline


class Ticket(Generic[R]):
    """A handle on a submitted request: its future, and a way to cancel it."""

    def __init__(self, batcher: Batcher[P, R], job: _Job[P, R]) -> None:
        self._batcher = batcher
        self._job = job
        self.future: Future[list[R]] = job.future

    def cancel(self) -> None:
        self._batcher._cancel(self._job)

    @property
    def queue_s(self) -> float:
        """How long the request waited before its first item went to the engine."""
        started = self._job.first_batch_at
        return 0.0 if started is None else max(0.0, started - self._job.enqueued)


class Batcher(Generic[P, R]):
    """Forms batches from the items of all in-flight requests and runs up to `workers` of them at once."""

    def __init__(
        self,
        run_batch: Callable[[list[P]], list[R]],
        limits: BatchLimits,
        name: str = "batcher",
        split_on: Callable[[Exception], bool] = lambda exc: False,
        workers: int = 1,
    ) -> None:
        if workers < 1:
            raise ValueError("a batcher needs at least one worker")
        self._run_batch = run_batch
        self.workers = workers
        self.role = name.removesuffix("-batcher")
        self.observer: Observer = Observer()  # metrics: batch sizes and times, queue waits
        self._split_on = split_on
        self.limits = limits
        self.name = name
        self.stats = BatchStats()
        self._jobs: collections.OrderedDict[int, _Job[P, R]] = collections.OrderedDict()
        # Kept up to date as items are queued, sent and dropped, so that nothing the worker or a
        # submission does costs time in proportion to the queue (a flood of 20,000 calls made
        # every per-call scan quadratic and starved the event loop).
        self._waiting: dict[int, _Job[P, R]] = {}  # jobs with items not yet sent
        self._queued_items = 0
        self._deadlines: list[tuple[float, int]] = []  # heap of (deadline, seq)
        # The schedule as of the last batch: priority keys and the tokens queued before each, for
        # estimating a new request's wait in O(log n).
        self._snapshot_keys: list[tuple[int, float, int, int]] = []
        self._snapshot_ahead: list[int] = [0]
        self._queued_tokens = 0
        self._oldest_enqueue: float | None = None
        # How many requests to expect back soon: the most that were live at once since the last batch
        # was formed (clients answered together come back together). Waiting for fewer than that
        # cannot fill a batch, so it is not worth it.
        self._expected_requests = 0
        self._peak_live = 0
        self._last_batch_s = 0.0
        # How long a batch of a short request alone takes (moving average), for the idle wait.
        self._lone_batch_s: float | None = None
        self._free_since = 0.0  # when a batch last finished
        # The batches on the engine now: when each started and the requests it serves.
        self._running: dict[int, tuple[float, frozenset[int]]] = {}
        self._batch_ids = itertools.count()
        # Throughput of one batch (one worker) in source tokens per second, measured on batches at
        # least half full (a lone sentence says little about a full queue); None until there is such
        # a batch. Measured while the other workers run too, so it already counts their contention.
        self._tokens_per_s: float | None = None
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
    def queued_tokens(self) -> int:
        return self._queued_tokens

    def submit(
        self,
        payloads: Sequence[P],
        costs: Sequence[int],
        deadline: float | None = None,
        tag: object = None,
        on_progress: Callable[[list[R]], None] | None = None,
    ) -> Ticket[R]:
        """Queue one request's items; `deadline` is a time.monotonic() value or None.

        With `on_progress` (streaming) the items are taken about in their own order (`streamed_order`)
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
            # A request bigger than the whole queue still runs when the queue is empty.
            if self._queued_tokens and self._queued_tokens + total > self.limits.max_queue_tokens:
                self.stats.overloaded += 1
                raise Overloaded(
                    f"the server is overloaded: {self._queued_tokens} tokens are queued "
                    f"(limit {self.limits.max_queue_tokens}); retry later"
                )
            now = time.monotonic()
            in_order = range(len(payloads))
            job: _Job[P, R] = _Job(
                seq=next(self._seq),
                payloads=payloads,
                costs=costs,
                deadline=deadline,
                future=future,
                results=[None] * len(payloads),
                enqueued=now,
                order=streamed_order(costs, 2 * self.limits.max_batch_size)
                if on_progress
                else sorted(in_order, key=costs.__getitem__),
                queued_tokens=total,
                total_tokens=total,
                tag=tag,
                on_progress=on_progress,
            )
            if not payloads:
                future.set_result([])
                return Ticket(self, job)
            if deadline is not None:
                finish = self._estimated_finish(job, now)
                if finish is not None and _too_late(finish, deadline, now):
                    self.stats.shed += 1
                    raise DeadlineExceeded(
                        f"the server cannot finish this before its deadline: with the work queued ahead it "
                        f"needs about {finish - now:.1f}s, and the deadline is in {max(0.0, deadline - now):.1f}s"
                    )
            self._jobs[job.seq] = job
            self._waiting[job.seq] = job
            self._queued_items += len(payloads)
            if deadline is not None:
                heapq.heappush(self._deadlines, (deadline, job.seq))
            self._peak_live = max(self._peak_live, len(self._jobs))
            self._queued_tokens += total
            if self._oldest_enqueue is None:
                self._oldest_enqueue = now
            self._cond.notify()
        return Ticket(self, job)

    def stop(self, timeout: float | None = None) -> bool:
        """Refuse new work, fail what is queued (ShuttingDown), end the workers after their current batch.

        Waits up to `timeout` seconds in all for the workers; returns whether they have all ended (a
        batch cannot be interrupted on the engine, so the caller decides whether to wait for it).
        """
        with self._cond:
            self._stopping = True
            for job in list(self._jobs.values()):
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
                started = min((s for s, _ in self._running.values()), default=None)
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
            for job in list(self._jobs.values()):
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

    # -- scheduling -------------------------------------------------------------------------------

    def _capacity(self) -> float | None:
        """Tokens per second of all the workers together, once measured."""
        return self._tokens_per_s * self.workers if self._tokens_per_s else None

    def _seconds_per_token(self) -> float:
        capacity = self._capacity()
        return 1.0 / capacity if capacity else ASSUMED_SECONDS_PER_TOKEN

    def _priority(self, job: _Job[P, R]) -> tuple[int, float, int, int]:
        short = 0 if job.remaining <= SHORT_ITEMS else 1
        return (short, job.due(self._seconds_per_token()), job.queued_tokens, job.seq)

    def _scheduled(self) -> list[_Job[P, R]]:
        """The requests with items still to send, in the order the engine will serve them."""
        return sorted(self._waiting.values(), key=self._priority)

    def _engine_free_in(self, now: float) -> float:
        """Seconds until a worker is free: 0 if one is now, else when the first running batch should end."""
        if len(self._running) < self.workers:
            return 0.0
        return max(0.0, min(started for started, _ in self._running.values()) + self._last_batch_s - now)

    def _estimated_finish(self, job: _Job[P, R], now: float) -> float | None:
        """When `job` would be done if submitted now, behind the work scheduled before it (lock held).

        Read off the schedule of the last batch; requests that arrived since are not counted, so the
        estimate errs towards admitting, and the check before each batch catches what it let through.
        """
        capacity = self._capacity()
        if capacity is None:
            return None
        ahead = self._snapshot_ahead[bisect.bisect_left(self._snapshot_keys, self._priority(job))]
        return now + self._engine_free_in(now) + (ahead + job.queued_tokens) / capacity

    def _snapshot(self, scheduled: list[_Job[P, R]]) -> None:
        self._snapshot_keys = [self._priority(j) for j in scheduled]
        self._snapshot_ahead = list(itertools.accumulate((j.queued_tokens for j in scheduled), initial=0))

    def _shed_hopeless(self, scheduled: list[_Job[P, R]], now: float) -> list[_Job[P, R]]:
        """Drop the requests that cannot make their deadline in this order; the rest, still in order."""
        capacity = self._capacity()
        if capacity is None:
            return scheduled
        kept = []
        finish = now + self._engine_free_in(now)
        for job in scheduled:
            done_at = finish + job.queued_tokens / capacity
            if job.deadline is not None and _too_late(done_at, job.deadline, now):
                self.stats.shed += 1
                self._drop(
                    job,
                    DeadlineExceeded(
                        "the server cannot finish this before its deadline with the work scheduled ahead of it"
                    ),
                )
                continue  # its time is not spent, so those after it move up
            finish = done_at
            kept.append(job)
        return kept

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
        self._queued_tokens -= job.queued_tokens
        self._queued_items -= job.remaining
        job.queued_tokens = 0
        job.next_item = len(job.payloads)
        self._waiting.pop(job.seq, None)
        if not self._waiting:
            self._oldest_enqueue = None

    def _expire(self, now: float) -> None:
        while self._deadlines and self._deadlines[0][0] <= now:
            _, seq = heapq.heappop(self._deadlines)
            job = self._jobs.get(seq)
            if job is not None:
                self._drop(job, DeadlineExceeded("the deadline passed before the translation finished"))

    def _wait(self, timeout: float | None) -> None:
        """Wait on the condition (lock held) for at most `timeout` seconds, and never past MAX_WAIT_S:
        whatever a caller submitted (a deadline centuries away, inf, nan), the wait stays representable."""
        self._cond.wait(MAX_WAIT_S if timeout is None or not timeout < MAX_WAIT_S else max(0.0, timeout))

    def _should_wait(self, now: float) -> float:
        """Seconds worth waiting for more work before running a partial batch (0 = run now)."""
        if self._stopping or self._oldest_enqueue is None:
            return 0.0
        if self._queued_items >= self.limits.max_batch_size or self._queued_tokens >= self.limits.max_batch_tokens:
            return 0.0
        if not self._running and now - self._free_since > IDLE_AFTER_S:
            # Idle for a while: a burst may be arriving (many clients starting at once), so give it
            # a moment to gather: a few milliseconds, or a fiftieth of what a short request takes
            # alone (not a full batch: that is many times longer), so a lone request pays at most 2%.
            alone = self._lone_batch_s if self._lone_batch_s is not None else self._last_batch_s
            limit = min(self.limits.max_batch_delay_s, max(self.limits.idle_delay_s, IDLE_SHARE * alone))
            return max(0.0, self._oldest_enqueue + limit - now)
        # Requests still on the engine in other workers' batches will not be back before those end.
        on_engine = set().union(*(seqs for _, seqs in self._running.values())) - self._waiting.keys()
        if len(self._waiting) + len(on_engine) >= self._expected_requests:
            return 0.0  # everyone the last batch served is back: nobody else is expected
        # Waiting costs every queued request; never more than a tenth of what a batch takes to run.
        # Counted from when the engine fell free: what queued during the last batch is fresh company.
        limit = min(self.limits.max_batch_delay_s, 0.1 * self._last_batch_s)
        return max(0.0, max(self._oldest_enqueue, self._free_since) + limit - now)

    def _batch_size_for(self, waiting: list[_Job[P, R]]) -> int:
        """The batch size to use now: full, unless short requests wait beside a long document, or
        other workers are free to take a share of what is queued.

        A short request rides in the next batch either way; a half-size batch runs in about half the
        time, so the short request is answered sooner while the document loses little throughput.
        """
        full = self.limits.max_batch_size
        free_workers = self.workers - len(self._running)
        if free_workers > 1:  # this worker and the other free ones split the queue evenly
            full = max(1, min(full, -(-self._queued_items // free_workers)))
        short_items = sum(j.remaining for j in waiting if j.remaining <= SHORT_ITEMS)
        if short_items and any(j.remaining > full // 2 for j in waiting):
            return min(full, max(short_items, full // 2))  # never past the limit the engine was sized for
        return full

    def _form_batch(self, now: float, picked: list[tuple[_Job[P, R], int]]) -> int:
        """Take items in schedule order into `picked` until the size or padded-token budget is reached;
        the batch's id. `picked` is the caller's, so that if this raises, the caller knows what it took."""
        longest = 0
        scheduled = self._shed_hopeless(self._scheduled(), now)
        size = self._batch_size_for(scheduled)
        for job in scheduled:
            # A streamed request starts small and doubles (1, 1, 2, 4, ... of its items per batch), so its
            # first paragraph comes back from a short batch instead of waiting for a full one.
            cap = max(1, job.next_item) if job.on_progress is not None else size
            taken = 0
            while job.waiting and len(picked) < size and taken < cap:
                taken += 1
                item = job.order[job.next_item]
                cost = job.costs[item]
                if picked and max(longest, cost) * (len(picked) + 1) > self.limits.max_batch_tokens:
                    break  # this one's next item does not fit; a later request's may
                picked.append((job, item))
                longest = max(longest, cost)
                job.next_item += 1
                job.queued_tokens -= cost
                self._queued_tokens -= cost
                self._queued_items -= 1
            if not job.waiting:
                self._waiting.pop(job.seq, None)
            if len(picked) >= size:
                break
        self._snapshot([j for j in scheduled if j.waiting])
        if not self._waiting:
            self._oldest_enqueue = None
        elif picked:
            self._oldest_enqueue = time.monotonic()
        started = time.monotonic()
        for job, _ in picked:
            if job.first_batch_at is None:
                job.first_batch_at = started
        if picked:
            self.observer.queued(self.role, [started - job.enqueued for job, _ in picked])
        served = frozenset(job.seq for job, _ in picked)
        self._expected_requests = max(self._peak_live, len(served))
        self._peak_live = len(self._jobs)
        batch_id = next(self._batch_ids)
        if picked:
            self._running[batch_id] = (time.monotonic(), served)
        return batch_id

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
                        if not self._waiting:
                            self._wait(self._deadlines[0][0] - now if self._deadlines else None)
                            continue
                        delay = self._should_wait(now)
                        if delay <= 0:
                            break
                        self._wait(delay)
                    batch_id = self._form_batch(now, batch)
                    if self._waiting:
                        self._cond.notify()  # work is left: a free worker may take it while this one runs
                if batch:
                    self._run(batch_id, batch)
            except Exception as exc:  # not the engine's error (`_run` fails its batch for those): a bug
                self._worker_failed(batch_id, batch, exc)
                return

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

    def _measure(self, batch_size: int, tokens: int, seconds: float) -> None:
        """Update the throughput estimate from a batch at least half full (moving average)."""
        self._last_batch_s = seconds
        if batch_size <= SHORT_ITEMS:
            lone = self._lone_batch_s
            self._lone_batch_s = seconds if lone is None else 0.8 * lone + 0.2 * seconds
        if seconds <= 0 or 2 * batch_size < self.limits.max_batch_size and 2 * tokens < self.limits.max_batch_tokens:
            return
        rate = tokens / seconds
        self._tokens_per_s = rate if self._tokens_per_s is None else 0.8 * self._tokens_per_s + 0.2 * rate

    def _finished(self, batch_id: int) -> None:
        """A batch left the engine (lock held): its worker is free, and so may be the next batch's."""
        self._running.pop(batch_id, None)
        self._free_since = time.monotonic()
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
            self._measure(len(batch), sum(costs), finished - started)
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
                    self._jobs.pop(job.seq, None)
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

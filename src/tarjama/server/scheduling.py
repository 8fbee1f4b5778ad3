"""The batcher's scheduling policy: which requests to shed, when to wait for company, what the next batch is.

Pure: a `Scheduler` holds no threads and no locks and reads no clock. Every decision takes the time as
`now` (time.monotonic() seconds in the server; whatever number a test chooses in the tests), and it is
told what happened: a request arrived or left, a batch started or finished, how long the engine took.
The `Batcher` calls it under its lock and does the rest (threads, futures, supervision).

The next batch is chosen for goodput, the share of engine work that reaches a client before its
deadline:
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
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

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


@dataclass(frozen=True)
class BatchLimits:
    """How big a batch may be and how long the worker may wait to fill one."""

    max_batch_tokens: int = 8192  # padded tokens: batch size x longest item
    max_batch_size: int = 32
    max_batch_delay_s: float = 0.05
    # On an idle engine, how long a first request waits for others arriving with it.
    idle_delay_s: float = 0.003
    max_queue_tokens: int = 400_000


@dataclass(eq=False, kw_only=True)
class Request:
    """What the scheduler knows of one submitted request: its items' costs in tokens, its deadline (a
    `now`-clock value or None), when it arrived, and how far its items have been sent to the engine."""

    seq: int  # submission order; breaks ties
    costs: Sequence[int]
    deadline: float | None
    enqueued: float
    # The order its items are taken in (`Scheduler.item_order`); results still go back to their positions.
    order: list[int]
    streamed: bool = False  # its results are handed on as they come (it starts with small batches)
    next_item: int = 0  # how many of `order` have been sent to the engine
    total_tokens: int = field(init=False)
    queued_tokens: int = field(init=False)  # of the items not yet sent to the engine

    def __post_init__(self) -> None:
        self.total_tokens = self.queued_tokens = sum(self.costs)

    @property
    def waiting(self) -> bool:
        """Whether some of its items are still to be sent to the engine."""
        return self.next_item < len(self.costs)

    @property
    def remaining(self) -> int:
        """How many of its items are still to be sent to the engine."""
        return len(self.costs) - self.next_item

    def due(self, seconds_per_token: float) -> float:
        """When the request is due: its deadline, or for one without, a time that grows with its work."""
        if self.deadline is not None:
            return self.deadline
        return self.enqueued + NO_DEADLINE_DUE_S + NO_DEADLINE_WORK_FACTOR * self.total_tokens * seconds_per_token


J = TypeVar("J", bound=Request)


def streamed_order(costs: Sequence[int], window: int) -> list[int]:
    """The order a streamed request's items are taken in: the first `window` as they come (its first
    paragraphs come back first), then window by window, shortest first within each window: less padding
    than strict order, while a paragraph still waits for at most its own window."""
    n = len(costs)
    order = list(range(min(window, n)))
    for start in range(window, n, window):
        order += sorted(range(start, min(start + window, n)), key=costs.__getitem__)
    return order


def too_late(finish: float, deadline: float, now: float) -> bool:
    """Whether an estimated finish, with its margin of error, misses the deadline."""
    return finish + max(SHED_MARGIN_S, SHED_MARGIN_RATIO * (finish - now)) > deadline


class Scheduler(Generic[J]):
    """The queue of live requests and the goodput policy over it, for an engine run by `workers` at once.

    A request is live from `add` until `remove` (done, cancelled, expired or shed). Each worker, when
    free, asks `wait_s` whether to wait for company, then `form_batch` for its items and `start`s it;
    `finished` and `measured` tell the scheduler how the batch went, which it learns the engine's speed
    from. Nothing costs time in proportion to the queue except forming a batch (one sort), so a flood
    of small requests does not make each submission slower.
    """

    def __init__(self, limits: BatchLimits, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError("a batcher needs at least one worker")
        self.limits = limits
        self.workers = workers
        self._live: dict[int, J] = {}  # in submission order
        # Kept up to date as items are queued, sent and dropped, so that nothing a worker or a
        # submission does costs time in proportion to the queue (a flood of 20,000 calls made
        # every per-call scan quadratic and starved the event loop).
        self._waiting: dict[int, J] = {}  # requests with items not yet sent
        self._queued_items = 0
        self._queued_tokens = 0
        self._deadlines: list[tuple[float, int]] = []  # heap of (deadline, seq)
        # The schedule as of the last batch: priority keys and the tokens queued before each, for
        # estimating a new request's wait in O(log n).
        self._snapshot_keys: list[tuple[int, float, int, int]] = []
        self._snapshot_ahead: list[int] = [0]
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

    # -- the queue --------------------------------------------------------------------------------

    @property
    def queued_tokens(self) -> int:
        """Tokens of the items not yet sent to the engine."""
        return self._queued_tokens

    @property
    def waiting(self) -> bool:
        """Whether any request has items still to send."""
        return bool(self._waiting)

    @property
    def live(self) -> list[J]:
        """The live requests, in submission order (a copy: the caller may remove them as it goes)."""
        return list(self._live.values())

    def __contains__(self, request: Request) -> bool:
        return request.seq in self._live

    @property
    def next_deadline(self) -> float | None:
        """The earliest deadline among the requests added (some may have left since), or None."""
        return self._deadlines[0][0] if self._deadlines else None

    @property
    def running_since(self) -> float | None:
        """When the longest-running batch on the engine started, or None when none is."""
        return min((started for started, _ in self._running.values()), default=None)

    def item_order(self, costs: Sequence[int], streamed: bool) -> list[int]:
        """The order a request's items are taken in: shortest first, so a long document's batches hold
        sentences of similar length (less padding); a streamed one's about in its own order."""
        if streamed:
            return streamed_order(costs, 2 * self.limits.max_batch_size)
        return sorted(range(len(costs)), key=costs.__getitem__)

    def overloaded(self, tokens: int) -> bool:
        """Whether `tokens` more would overfill the queue; a request bigger than the whole queue still
        runs when the queue is empty."""
        return bool(self._queued_tokens) and self._queued_tokens + tokens > self.limits.max_queue_tokens

    def cannot_finish(self, request: J, now: float) -> float | None:
        """When `request` would be done if added now, if that misses its deadline; None if it can make it
        (or has no deadline, or the engine is not measured yet: nothing is refused on a guess)."""
        if request.deadline is None:
            return None
        finish = self._estimated_finish(request, now)
        return finish if finish is not None and too_late(finish, request.deadline, now) else None

    def add(self, request: J) -> None:
        """Queue a request with items (it arrived at `request.enqueued`)."""
        self._live[request.seq] = request
        self._waiting[request.seq] = request
        self._queued_items += request.remaining
        if request.deadline is not None:
            heapq.heappush(self._deadlines, (request.deadline, request.seq))
        self._peak_live = max(self._peak_live, len(self._live))
        self._queued_tokens += request.queued_tokens
        if self._oldest_enqueue is None:
            self._oldest_enqueue = request.enqueued

    def remove(self, request: J) -> None:
        """A request left (done, cancelled, expired, shed): forget it and drop its unsent items."""
        self._live.pop(request.seq, None)
        self._queued_tokens -= request.queued_tokens
        self._queued_items -= request.remaining
        request.queued_tokens = 0
        request.next_item = len(request.costs)
        self._waiting.pop(request.seq, None)
        if not self._waiting:
            self._oldest_enqueue = None

    def expired(self, now: float) -> list[J]:
        """The live requests whose deadline has passed at `now`, for the caller to `remove` (each once)."""
        late = []
        while self._deadlines and self._deadlines[0][0] <= now:
            _, seq = heapq.heappop(self._deadlines)
            request = self._live.get(seq)
            if request is not None:
                late.append(request)
        return late

    # -- decisions --------------------------------------------------------------------------------

    def wait_s(self, now: float) -> float:
        """Seconds worth waiting for more work before running a partial batch (0 = run now)."""
        if self._oldest_enqueue is None:
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

    def form_batch(self, now: float, picked: list[tuple[J, int]]) -> list[J]:
        """Take items in schedule order into `picked` (request, item index) until the size or padded-token
        budget is reached; return the requests found hopeless, which the caller must `remove` (they are
        passed over, not yet removed). `picked` is the caller's, so that if this raises, it knows what
        was taken."""
        scheduled, hopeless = self._shed_hopeless(self._scheduled(), now)
        size = self._batch_size(scheduled, self._queued_items - sum(r.remaining for r in hopeless))
        longest = 0
        for request in scheduled:
            # A streamed request starts small and doubles (1, 1, 2, 4, ... of its items per batch), so its
            # first paragraph comes back from a short batch instead of waiting for a full one.
            cap = max(1, request.next_item) if request.streamed else size
            taken = 0
            while request.waiting and len(picked) < size and taken < cap:
                taken += 1
                item = request.order[request.next_item]
                cost = request.costs[item]
                if picked and max(longest, cost) * (len(picked) + 1) > self.limits.max_batch_tokens:
                    break  # this one's next item does not fit; a later request's may
                picked.append((request, item))
                longest = max(longest, cost)
                request.next_item += 1
                request.queued_tokens -= cost
                self._queued_tokens -= cost
                self._queued_items -= 1
            if not request.waiting:
                self._waiting.pop(request.seq, None)
            if len(picked) >= size:
                break
        self._snapshot([r for r in scheduled if r.waiting])
        if len(self._waiting) == len(hopeless):  # nothing else waits (the hopeless leave next)
            self._oldest_enqueue = None
        served = {request.seq for request, _ in picked}
        self._expected_requests = max(self._peak_live, len(served))
        self._peak_live = len(self._live) - len(hopeless)
        return hopeless

    def start(self, batch: Sequence[tuple[J, int]], now: float) -> int:
        """A batch formed by `form_batch` went to the engine at `now`: its id, for `finished`."""
        batch_id = next(self._batch_ids)
        if batch:
            if self._waiting:  # what is left counts as queued from now: the next batch's fresh company
                self._oldest_enqueue = now
            self._running[batch_id] = (now, frozenset(request.seq for request, _ in batch))
        return batch_id

    def finished(self, batch_id: int, now: float) -> None:
        """The batch left the engine at `now` (done or failed): its worker is free."""
        self._running.pop(batch_id, None)
        self._free_since = now

    def measured(self, batch_size: int, tokens: int, seconds: float) -> None:
        """A batch of `batch_size` items and `tokens` source tokens took `seconds` on the engine: update
        the throughput estimate from a batch at least half full (moving average)."""
        self._last_batch_s = seconds
        if batch_size <= SHORT_ITEMS:
            lone = self._lone_batch_s
            self._lone_batch_s = seconds if lone is None else 0.8 * lone + 0.2 * seconds
        if seconds <= 0 or 2 * batch_size < self.limits.max_batch_size and 2 * tokens < self.limits.max_batch_tokens:
            return
        rate = tokens / seconds
        self._tokens_per_s = rate if self._tokens_per_s is None else 0.8 * self._tokens_per_s + 0.2 * rate

    # -- estimates --------------------------------------------------------------------------------

    def _capacity(self) -> float | None:
        """Tokens per second of all the workers together, once measured."""
        return self._tokens_per_s * self.workers if self._tokens_per_s else None

    def _seconds_per_token(self) -> float:
        capacity = self._capacity()
        return 1.0 / capacity if capacity else ASSUMED_SECONDS_PER_TOKEN

    @staticmethod
    def _priority(request: Request, seconds_per_token: float) -> tuple[int, float, int, int]:
        short = 0 if request.remaining <= SHORT_ITEMS else 1
        return (short, request.due(seconds_per_token), request.queued_tokens, request.seq)

    def _scheduled(self) -> list[J]:
        """The requests with items still to send, in the order the engine will serve them."""
        seconds_per_token = self._seconds_per_token()
        return sorted(self._waiting.values(), key=lambda r: self._priority(r, seconds_per_token))

    def _engine_free_in(self, now: float) -> float:
        """Seconds until a worker is free: 0 if one is now, else when the first running batch should end."""
        if len(self._running) < self.workers:
            return 0.0
        return max(0.0, min(started for started, _ in self._running.values()) + self._last_batch_s - now)

    def _estimated_finish(self, request: J, now: float) -> float | None:
        """When `request` would be done if added now, behind the work scheduled before it.

        Read off the schedule of the last batch; requests that arrived since are not counted, so the
        estimate errs towards admitting, and the check before each batch catches what it let through.
        """
        capacity = self._capacity()
        if capacity is None:
            return None
        key = self._priority(request, self._seconds_per_token())
        ahead = self._snapshot_ahead[bisect.bisect_left(self._snapshot_keys, key)]
        return now + self._engine_free_in(now) + (ahead + request.queued_tokens) / capacity

    def _snapshot(self, scheduled: list[J]) -> None:
        seconds_per_token = self._seconds_per_token()
        self._snapshot_keys = [self._priority(r, seconds_per_token) for r in scheduled]
        self._snapshot_ahead = list(itertools.accumulate((r.queued_tokens for r in scheduled), initial=0))

    def _shed_hopeless(self, scheduled: list[J], now: float) -> tuple[list[J], list[J]]:
        """Split the schedule into the requests that can make their deadline in this order (still in
        order) and those that cannot."""
        capacity = self._capacity()
        if capacity is None:
            return scheduled, []
        kept, hopeless = [], []
        finish = now + self._engine_free_in(now)
        for request in scheduled:
            done_at = finish + request.queued_tokens / capacity
            if request.deadline is not None and too_late(done_at, request.deadline, now):
                hopeless.append(request)
                continue  # its time is not spent, so those after it move up
            finish = done_at
            kept.append(request)
        return kept, hopeless

    def _batch_size(self, waiting: list[J], queued_items: int) -> int:
        """The batch size to use now, for the `waiting` requests' `queued_items`: full, unless short
        requests wait beside a long document, or other workers are free to take a share of what is queued.

        A short request rides in the next batch either way; a half-size batch runs in about half the
        time, so the short request is answered sooner while the document loses little throughput.
        """
        full = self.limits.max_batch_size
        free_workers = self.workers - len(self._running)
        if free_workers > 1:  # this worker and the other free ones split the queue evenly
            full = max(1, min(full, -(-queued_items // free_workers)))
        short_items = sum(r.remaining for r in waiting if r.remaining <= SHORT_ITEMS)
        if short_items and any(r.remaining > full // 2 for r in waiting):
            return min(full, max(short_items, full // 2))  # never past the limit the engine was sized for
        return full

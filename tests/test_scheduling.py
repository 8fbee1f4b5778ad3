"""The batcher's scheduling policy on a fake clock: the timing decisions of tests/test_batcher.py (who rides
in the next batch, how long a free worker waits for company, which requests are shed), deterministic.

`Simulation` drives a `Scheduler` as the Batcher's workers do (expire, wait_s, form_batch, start, then
measured and finished when the batch leaves the engine), with an engine that takes a fixed time per
batch on a clock that only moves when the simulation says so: no thread, no sleep, no load dependence.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field

import pytest

from tarjama.server.scheduling import BatchLimits, Request, Scheduler

START = 1000.0  # a monotonic clock is far from 0: an engine that never ran has been idle for long


@dataclass(eq=False, kw_only=True)
class Job(Request):
    """A request with names for its items, so that batches read as in the thread tests."""

    items: list[str]


@dataclass
class Simulation:
    """A scheduler, `workers` simulated workers and an engine taking `batch_s` per batch, on a fake clock."""

    limits: BatchLimits
    workers: int = 1
    batch_s: float = 0.05
    now: float = START
    batches: list[list[str]] = field(default_factory=list)  # every batch, in the order they started
    started_at: list[float] = field(default_factory=list)  # when each of `batches` started
    done: dict[str, float] = field(default_factory=dict)  # request name -> when its last result came back
    failed: dict[str, str] = field(default_factory=dict)  # request name -> "refused", "shed" or "expired"
    shed: int = 0  # as BatchStats.shed: refused at submission or dropped before a batch
    items: int = 0  # items run on the engine
    delivered: int = 0  # items of requests that completed
    most_at_once: int = 0

    def __post_init__(self) -> None:
        self.scheduler: Scheduler[Job] = Scheduler(self.limits, self.workers)
        self._seq = itertools.count()
        self._names: dict[int, str] = {}
        self._left: dict[int, int] = {}  # items of each request still to come back
        self._running: list[tuple[float, int, int, list[tuple[Job, int]]]] = []  # heap: (end, order, id, batch)
        self._order = itertools.count()
        self._wake: float | None = None  # when a worker waiting for company looks again

    def submit(self, name: str, items: list[str], deadline: float | None = None, streamed: bool = False) -> bool:
        """Submit a request now, costs the items' lengths (as tests/test_batcher.py does); whether admitted."""
        costs = [len(i) for i in items]
        job = Job(
            seq=next(self._seq),
            costs=costs,
            deadline=None if deadline is None else self.now + deadline,
            enqueued=self.now,
            order=self.scheduler.item_order(costs, streamed),
            streamed=streamed,
            items=items,
        )
        if self.scheduler.cannot_finish(job, self.now) is not None:
            self.shed += 1
            self.failed[name] = "refused"
            return False
        self._names[job.seq] = name
        self._left[job.seq] = len(items)
        self.scheduler.add(job)
        self._serve()
        return True

    def _drop(self, job: Job, why: str) -> None:
        self.scheduler.remove(job)
        self.failed.setdefault(self._names[job.seq], why)

    def _serve(self) -> None:
        """What the free workers do at `now`: the loop of Batcher._work, one pass per free worker (a busy
        worker expires nothing: it is running its batch)."""
        self._wake = None
        if len(self._running) == self.workers:
            return
        for job in self.scheduler.expired(self.now):
            self._drop(job, "expired")
        while len(self._running) < self.workers and self.scheduler.waiting:
            delay = self.scheduler.wait_s(self.now)
            if delay > 0:
                self._wake = self.now + delay
                return
            picked: list[tuple[Job, int]] = []
            for job in self.scheduler.form_batch(self.now, picked):
                self.shed += 1
                self._drop(job, "shed")
            if not picked:
                continue
            batch_id = self.scheduler.start(picked, self.now)
            heapq.heappush(self._running, (self.now + self.batch_s, next(self._order), batch_id, picked))
            self.batches.append([job.items[i] for job, i in picked])
            self.started_at.append(self.now)
            self.most_at_once = max(self.most_at_once, len(self._running))

    def _finish(self) -> None:
        """The batch that ends first leaves the engine (Batcher._run: measured, finished, results)."""
        end, _, batch_id, batch = heapq.heappop(self._running)
        self.now = end
        self.scheduler.measured(len(batch), sum(job.costs[i] for job, i in batch), self.batch_s)
        self.scheduler.finished(batch_id, self.now)
        self.items += len(batch)
        for job, _ in batch:
            if job not in self.scheduler:
                continue  # expired while its batch ran
            self._left[job.seq] -= 1
            if self._left[job.seq] == 0:
                self.scheduler.remove(job)
                self.done[self._names[job.seq]] = self.now
                self.delivered += len(job.costs)

    def run(self, until: float | None = None) -> None:
        """Advance the clock, event by event, by `until` seconds (or until nothing is left to happen): a
        batch leaves the engine, a worker waiting for company looks again, a free worker sees a deadline."""
        stop = math.inf if until is None else self.now + until
        while True:
            events = [self._running[0][0]] if self._running else []
            if self._wake is not None:
                events.append(self._wake)
            deadline = self.scheduler.next_deadline
            if deadline is not None and self.scheduler.live and len(self._running) < self.workers:
                events.append(deadline)
            at = min(events, default=math.inf)
            if at == math.inf or at > stop:
                break
            if self._running and self._running[0][0] == at:
                self._finish()
            else:
                self.now = max(self.now, at)
            self._serve()
        if until is not None:
            self.now = stop
            self._serve()


def sim(workers: int = 1, batch_s: float = 0.05, **limits: float) -> Simulation:
    return Simulation(BatchLimits(**{"max_batch_delay_s": 0.002, **limits}), workers, batch_s)  # type: ignore[arg-type]


# -- moved from tests/test_batcher.py: the same assertions on a fake clock ------------------------------


def test_a_short_request_does_not_wait_for_a_long_document() -> None:
    s = sim(batch_s=0.01, max_batch_size=4)
    s.submit("long", [f"doc{i}" for i in range(400)])  # 100 batches, about 1 s
    s.run(0.05)
    started, before = s.now, len(s.batches)
    s.submit("short", ["short"])
    s.run(0.2)
    assert "short" in s.done
    assert s.done["short"] - started < 0.2, "the short request rides in the next batch or the one after"
    assert any("short" in b for b in s.batches[before : before + 2])
    assert "long" not in s.done
    s.run()
    assert "long" in s.done


def test_an_idle_batcher_does_not_wait_for_company() -> None:
    s = sim(batch_s=0.0, max_batch_delay_s=0.5)
    job = Job(seq=0, costs=[5], deadline=None, enqueued=s.now, order=[0], items=["alone"])
    s.scheduler.add(job)
    wait = s.scheduler.wait_s(s.now)
    assert 0 < wait <= s.limits.idle_delay_s + 1e-9, "a moment for a burst, not the batch delay"
    s.scheduler.remove(job)
    started = s.now
    s.submit("alone", ["alone"])
    s.run()
    assert s.done["alone"] - started < 0.2, "one client on an idle server is answered without the batch delay"


def test_after_a_busy_batch_it_waits_briefly_to_fill_the_next() -> None:
    s = sim(batch_s=0.2, max_batch_delay_s=0.3, max_batch_size=8)  # the wait is bounded by a tenth of a batch
    s.submit("a0", ["a0"])
    s.run(0.01)  # its batch is on the engine
    for i in range(8):  # 8 requests share the next batch
        s.submit(f"b{i}", [f"b{i}"])
    s.run()
    assert s.batches == [["a0"], [f"b{i}" for i in range(8)]]
    # Clients answered together come back together: the next wave trickles in and is batched whole.
    first = s.now
    for i in range(8):
        s.submit(f"c{i}", [f"c{i}"])
        s.run(0.001)
    s.run()
    assert s.batches[-1] == [f"c{i}" for i in range(8)]
    assert s.started_at[-1] - first <= 0.2 / 10 + 1e-9, "it waits at most a tenth of a batch's time"


def test_under_deadlines_requests_finish_one_after_another_instead_of_all_missing() -> None:
    # 20 requests of 8 sentences, all due in 1.3 s; the engine needs 2 s for all of them. Advancing
    # every request a little (round-robin) finishes none in time and throws all the work away; the
    # scheduler finishes what it can and sheds the rest before spending engine time on it.
    s = sim(batch_s=0.05, max_batch_size=4)
    for r in range(20):
        s.submit(f"r{r:02d}", [f"r{r:02d}s{i}" for i in range(8)], deadline=1.3)
    s.run()
    assert len(s.done) >= 10, f"only {len(s.done)} of 20 finished"
    assert len(s.done) + len(s.failed) == 20 and set(s.failed.values()) <= {"shed", "expired"}
    assert all(t <= START + 1.3 for t in s.done.values()), "what finished, finished in time"
    goodput = s.delivered / s.items
    assert goodput >= 0.8, f"goodput {goodput:.2f}: engine work thrown away"
    assert s.shed > 0 and s.scheduler.queued_tokens == 0


def test_a_request_that_cannot_meet_its_deadline_is_refused_before_the_engine() -> None:
    s = sim(batch_s=0.05, max_batch_size=4)
    s.submit("warm", [f"warm{i}" for i in range(8)])
    s.run()  # the engine's speed is measured
    s.submit("backlog", [f"b{i:03d}" for i in range(80)])  # a second of work ahead
    started = s.now
    assert not s.submit("late", [f"late{i}" for i in range(8)], deadline=0.1)
    assert s.failed == {"late": "refused"} and s.now == started, "refused at once, not when the deadline passes"
    s.run()
    assert "backlog" in s.done
    assert not any(i.startswith("late") for b in s.batches for i in b)
    assert s.shed == 1


def test_without_deadlines_a_small_article_passes_a_big_one_which_still_finishes() -> None:
    s = sim(batch_s=0.01, max_batch_size=4)
    s.submit("warm", [f"warm{i}" for i in range(8)])
    s.run()
    s.submit("big", [f"big{i:03d}" for i in range(200)])
    s.run(0.03)
    s.submit("small", [f"small{i}" for i in range(8)])
    while "small" not in s.done:
        s.run(0.01)
    assert "big" not in s.done, "the eight-sentence article did not wait for the 200-sentence one"
    s.run()
    assert "big" in s.done and sum(i.startswith("big") for b in s.batches for i in b) == 200


def test_free_workers_share_a_lone_document_evenly() -> None:
    s = sim(workers=2, batch_s=0.05, max_batch_size=32)
    s.submit("doc", [f"s{i:02d}" for i in range(20)])
    s.run()
    assert "doc" in s.done
    assert sorted(len(b) for b in s.batches) == [10, 10], "two batches side by side, not one of 20"
    assert s.most_at_once == 2


def test_with_every_worker_busy_a_short_request_takes_the_first_free_one() -> None:
    s = sim(workers=2, batch_s=0.02, max_batch_size=4)
    s.submit("long", [f"doc{i:03d}" for i in range(400)])  # 100 batches over 2 workers, about 1 s
    s.run(0.05)
    started = s.now
    s.submit("short", ["short"])
    while "short" not in s.done:
        s.run(0.01)
    assert s.done["short"] - started < 0.2
    assert "long" not in s.done
    s.run()
    assert "long" in s.done and sum(len(b) for b in s.batches) == 401
    assert s.most_at_once == 2


# -- the policy's own rules ----------------------------------------------------------------------------


def test_a_short_request_rides_ahead_of_a_document_due_sooner() -> None:
    s = sim(batch_s=0.05, max_batch_size=4)
    s.submit("doc", [f"doc{i:02d}" for i in range(40)], deadline=10)
    s.run(0.01)  # its first batch is on the engine
    s.submit("short", ["short"], deadline=60)
    s.run(0.05)
    assert len(s.batches) == 2 and "short" in s.batches[1], "the next batch, though the document is due first"
    assert len(s.batches[1]) == 2, "a half-size batch, so that the short request is answered sooner"


def test_nothing_is_shed_before_the_engine_has_been_measured() -> None:
    s = sim(batch_s=0.05, max_batch_size=4)
    assert s.submit("first", [f"s{i}" for i in range(40)], deadline=0.01), "no refusal on a guess"


@pytest.mark.parametrize("far", [1e10, float("inf")])
def test_a_far_deadline_is_never_hopeless_and_waits_stay_finite(far: float) -> None:
    s = sim(batch_s=0.05, max_batch_size=4)
    s.submit("warm", [f"warm{i}" for i in range(8)])
    s.run()
    assert s.submit("far", ["a"], deadline=far)
    assert 0 <= s.scheduler.wait_s(s.now) <= s.limits.max_batch_delay_s
    s.run()
    assert "far" in s.done

"""The batcher with a fake engine: budgets, order, cancellation, deadlines, failures, backpressure, several
workers, streaming. Its scheduling decisions on a fake clock (who waits, who is shed, who rides next) are
tests/test_scheduling.py's."""

from __future__ import annotations

import threading
import time
from concurrent.futures import wait

import pytest

from tarjama.server.batcher import Batcher, BatchLimits
from tarjama.server.errors import Cancelled, DeadlineExceeded, EngineFailure, Overloaded, ShuttingDown


class FakeEngine:
    """Upper-cases its items; records every batch; can be held on a gate or told to fail."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.delay = delay
        self.fail_on: str | None = None

    def __call__(self, items: list[str]) -> list[str]:
        self.entered.set()
        self.gate.wait(10)
        self.batches.append(list(items))
        if self.delay:
            time.sleep(self.delay)
        if self.fail_on is not None and self.fail_on in items:
            raise RuntimeError("boom")
        return [item.upper() for item in items]

    def seen(self) -> list[str]:
        return [item for batch in self.batches for item in batch]


def make(engine: FakeEngine, workers: int = 1, **limits: float) -> Batcher[str, str]:
    return Batcher(engine, BatchLimits(**{"max_batch_delay_s": 0.002, **limits}), workers=workers)  # type: ignore[arg-type]


def submit(batcher: Batcher[str, str], items: list[str], deadline: float | None = None):  # noqa: ANN201
    return batcher.submit(items, [len(i) for i in items], deadline)


def test_results_come_back_in_each_requests_order() -> None:
    engine = FakeEngine()
    batcher = make(engine, max_batch_size=3)
    tickets = [submit(batcher, [f"r{r}-s{s}" for s in range(7)]) for r in range(5)]
    for r, ticket in enumerate(tickets):
        assert ticket.future.result(10) == [f"R{r}-S{s}" for s in range(7)]
    batcher.stop()


def test_batches_respect_the_size_and_padded_token_budget() -> None:
    engine = FakeEngine()
    engine.gate.clear()
    batcher = make(engine, max_batch_size=4, max_batch_tokens=20)
    first = submit(batcher, ["x"])  # occupies the worker while the rest queue up
    engine.entered.wait(5)
    items = ["a" * n for n in (2, 9, 3, 5, 1, 7, 4, 4, 6, 2)]
    ticket = submit(batcher, items)
    engine.gate.set()
    assert ticket.future.result(10) == [i.upper() for i in items]
    first.future.result(10)
    for batch in engine.batches:
        assert len(batch) <= 4
        assert max(len(i) for i in batch) * len(batch) <= 20 or len(batch) == 1
    batcher.stop()


def test_items_from_concurrent_requests_share_batches() -> None:
    engine = FakeEngine()
    engine.gate.clear()
    batcher = make(engine, max_batch_size=32)
    blocker = submit(batcher, ["x"])
    engine.entered.wait(5)
    tickets = [submit(batcher, [f"req{r}"]) for r in range(16)]
    engine.gate.set()
    wait([t.future for t in tickets], 10)
    blocker.future.result(10)
    assert len(engine.batches) == 2, "16 one-sentence requests queued together run as one batch"
    batcher.stop()


def test_cancelled_request_never_reaches_the_engine() -> None:
    engine = FakeEngine()
    engine.gate.clear()
    batcher = make(engine)
    blocker = submit(batcher, ["x"])
    engine.entered.wait(5)
    doomed = submit(batcher, ["doomed-1", "doomed-2"])
    kept = submit(batcher, ["kept"])
    doomed.cancel()
    engine.gate.set()
    assert kept.future.result(10) == ["KEPT"]
    blocker.future.result(10)
    with pytest.raises(Cancelled):
        doomed.future.result(1)
    assert not any(i.startswith("doomed") for i in engine.seen())
    assert batcher.queued_tokens == 0, "a cancelled request's queued tokens are released"
    batcher.stop()


def test_expired_request_is_dropped_before_the_engine() -> None:
    engine = FakeEngine()
    engine.gate.clear()
    batcher = make(engine)
    blocker = submit(batcher, ["x"])
    engine.entered.wait(5)
    late = submit(batcher, ["late"], deadline=time.monotonic() + 0.05)
    time.sleep(0.1)
    engine.gate.set()
    with pytest.raises(DeadlineExceeded):
        late.future.result(5)
    blocker.future.result(5)
    assert "late" not in engine.seen()
    batcher.stop()


def test_a_failing_batch_fails_only_its_requests_and_the_batcher_keeps_serving() -> None:
    engine = FakeEngine()
    engine.fail_on = "poison"
    batcher = make(engine, max_batch_size=1)
    bad = submit(batcher, ["poison"])
    with pytest.raises(EngineFailure):
        bad.future.result(5)
    engine.fail_on = None
    assert submit(batcher, ["fine"]).future.result(5) == ["FINE"]
    batcher.stop()


def test_a_full_queue_refuses_at_once() -> None:
    engine = FakeEngine()
    engine.gate.clear()
    batcher = make(engine, max_queue_tokens=10)
    submit(batcher, ["x"])
    engine.entered.wait(5)
    submit(batcher, ["12345678"])
    started = time.monotonic()
    with pytest.raises(Overloaded, match="overloaded"):
        submit(batcher, ["12345"])
    assert time.monotonic() - started < 0.1
    engine.gate.set()
    batcher.stop()


def test_an_empty_request_completes_at_once() -> None:
    batcher = make(FakeEngine())
    assert batcher.submit([], []).future.result(1) == []
    batcher.stop()


def test_an_out_of_memory_batch_is_split_and_retried_in_halves() -> None:
    calls: list[int] = []

    def engine(items: list[str]) -> list[str]:
        calls.append(len(items))
        if len(items) > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [i.upper() for i in items]

    batcher: Batcher[str, str] = Batcher(
        engine, BatchLimits(max_batch_delay_s=0.0), split_on=lambda exc: "out of memory" in str(exc)
    )
    items = [f"s{i}" for i in range(8)]
    assert submit(batcher, items).future.result(5) == [i.upper() for i in items]
    assert calls[0] == 8 and max(calls[1:]) <= 4 and sum(c for c in calls if c <= 2) == 8
    batcher.stop()


def test_other_errors_are_not_retried() -> None:
    calls: list[int] = []

    def engine(items: list[str]) -> list[str]:
        calls.append(len(items))
        raise ValueError("bad input")

    batcher: Batcher[str, str] = Batcher(engine, BatchLimits(), split_on=lambda exc: "out of memory" in str(exc))
    with pytest.raises(EngineFailure):
        submit(batcher, ["a", "b", "c"]).future.result(5)
    assert calls == [3]
    batcher.stop()


def test_a_request_that_cannot_meet_its_deadline_is_refused_by_submit() -> None:
    # The batcher's side of shedding; when a request is hopeless is tests/test_scheduling.py's (on a fake clock).
    engine = FakeEngine(delay=0.01)
    batcher = make(engine, max_batch_size=4)
    submit(batcher, [f"warm{i}" for i in range(8)]).future.result(5)  # the engine's speed is measured
    with pytest.raises(DeadlineExceeded, match="cannot finish"):  # due before any engine could do it
        submit(batcher, [f"late{i}" for i in range(8)], deadline=time.monotonic() + 0.001)
    assert batcher.stats.shed == 1 and batcher.queued_tokens == 0
    assert submit(batcher, ["after"]).future.result(5) == ["AFTER"]
    assert not any(i.startswith("late") for i in engine.seen())
    batcher.stop()


# -- several batches in flight ---------------------------------------------------------------------


class ConcurrentEngine(FakeEngine):
    """Counts how many batches it is running at once, and the most there ever were."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(delay)
        self._lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0
        self.two_running = threading.Event()

    def __call__(self, items: list[str]) -> list[str]:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            if self.running >= 2:
                self.two_running.set()
        try:
            return super().__call__(items)
        finally:
            with self._lock:
                self.running -= 1


def test_several_workers_keep_several_batches_in_flight() -> None:
    engine = ConcurrentEngine()
    engine.gate.clear()  # hold every batch on the engine until both workers have one
    batcher = make(engine, workers=2, max_batch_size=2)
    tickets = [submit(batcher, [f"a{i}", f"b{i}"]) for i in range(4)]
    assert engine.two_running.wait(5), "a second batch started while the first was still running"
    engine.gate.set()
    for i, ticket in enumerate(tickets):
        assert ticket.future.result(5) == [f"A{i}", f"B{i}"]
    assert engine.most_at_once == 2
    assert batcher.stop(5)


def test_with_several_workers_a_failing_batch_fails_only_its_own_requests() -> None:
    engine = ConcurrentEngine(delay=0.05)
    engine.fail_on = "poison"
    batcher = make(engine, workers=2, max_batch_size=1)
    good = [submit(batcher, [f"fine{i}"]) for i in range(3)]
    bad = submit(batcher, ["poison"])
    with pytest.raises(EngineFailure):
        bad.future.result(5)
    assert [t.future.result(5) for t in good] == [[f"FINE{i}"] for i in range(3)]
    assert submit(batcher, ["after"]).future.result(5) == ["AFTER"]
    batcher.stop()


def test_cancelling_with_several_workers_drops_only_the_unsent_items() -> None:
    engine = ConcurrentEngine()
    engine.gate.clear()
    batcher = make(engine, workers=2, max_batch_size=2)
    first = submit(batcher, ["a", "b", "c", "d", "e", "f"])
    assert engine.two_running.wait(5)  # two batches of the request on the engine, two items still queued
    first.cancel()
    engine.gate.set()
    with pytest.raises(Cancelled):
        first.future.result(5)
    assert submit(batcher, ["next"]).future.result(5) == ["NEXT"]
    assert batcher.stop(5)  # every batch has left the engine
    assert len(engine.seen()) == 5, "the two running batches finish; the queued pair never reaches the engine"


def test_stop_waits_for_every_worker_and_says_whether_they_ended() -> None:
    engine = ConcurrentEngine()
    engine.gate.clear()
    batcher = make(engine, workers=3, max_batch_size=1)
    tickets = [submit(batcher, [f"x{i}"]) for i in range(5)]
    assert engine.two_running.wait(5)
    assert not batcher.stop(0.2), "batches are still on the engine"
    engine.gate.set()
    assert batcher.stop(5)
    # Stopping comes after the grace period: everything unanswered, on the engine or not, fails at once.
    assert all(isinstance(t.future.exception(5), ShuttingDown) for t in tickets)


def test_a_streamed_request_is_taken_in_order_and_handed_on_as_its_leading_items_complete() -> None:
    engine = FakeEngine()
    batcher = make(engine, max_batch_size=2)
    progress: list[list[str]] = []
    # Longest first: a request that is not streamed would run these shortest first.
    items = ["a" * n for n in range(8, 0, -1)]
    ticket = batcher.submit(items, [len(i) for i in items], None, on_progress=progress.append)
    assert ticket.future.result(10) == [i.upper() for i in items]
    # Starting small and doubling (so the first paragraph is out early) up to the batch size; the first
    # window (2 batches' worth) in order, then each window shortest first.
    assert engine.batches == [items[0:1], items[1:2], items[2:4], [items[7], items[6]], [items[5], items[4]]]
    upper = [i.upper() for i in items]
    assert progress == [upper[0:1], upper[1:2], upper[2:4], upper[4:8]], "the leading results, in order"
    unordered = submit(batcher, items)
    unordered.future.result(10)
    assert engine.batches[5] == sorted(items, key=len)[:2], "not streamed: shortest first, as before"
    batcher.stop()

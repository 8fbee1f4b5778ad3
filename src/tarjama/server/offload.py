"""Where CPU-bound text work runs: off the event loop, on a small pool of its own.

Planning, checking and building the answer of a large request is pure Python, so under the GIL only
one such thread runs at a time whatever the number of cores. More threads than two only made the
event loop queue for the GIL behind all of them: under a fuzzing load, health checks waited 200 ms
and more with asyncio's default pool (cores + 4 threads). Two keep one large article from holding up
every other one, and keep the loop answering. Work that holds the GIL in long C calls, or that a few
requests could use to fill the pool (saved-page extraction), runs in a ProcessLane instead.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from .errors import DeadlineExceeded, Overloaded, TarjamaError

log = logging.getLogger(__name__)
T = TypeVar("T")
TEXT_THREADS = 2
_pool = ThreadPoolExecutor(max_workers=TEXT_THREADS, thread_name_prefix="text-work")


async def off_loop(function: Callable[..., T], /, *args: object) -> T:
    """`function(*args)` on the text-work pool, awaited from the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_pool, functools.partial(function, *args))


class InlineBudget:
    """How much of the event loop's time small text work may take in place: `share` of the wall
    clock, in bursts of at most `burst_s`. Each small request's work is cheap, but 500 streams arriving
    at once queued 500 of them on the loop, and health waited behind them all (217 ms); past the
    budget, small work goes to the pool too, where the loop takes the GIL back every switch interval."""

    def __init__(self, share: float = 0.25, burst_s: float = 0.01) -> None:
        self.share, self.burst_s = share, burst_s
        self._left, self._at = burst_s, time.perf_counter()

    def allows(self) -> bool:
        now = time.perf_counter()
        self._left = min(self.burst_s, self._left + (now - self._at) * self.share)
        self._at = now
        return self._left > 0

    def spend(self, seconds: float) -> None:
        self._left -= seconds


_inline = InlineBudget()  # the event loop's; text_work is only called on it


async def text_work(small: bool, function: Callable[..., T], /, *args: object) -> T:
    """`function(*args)` in place for a small request (cheaper than the hop) while the loop's inline
    budget lasts, else on the pool."""
    if small and _inline.allows():
        started = time.perf_counter()
        try:
            return function(*args)
        finally:
            _inline.spend(time.perf_counter() - started)
    return await off_loop(function, *args)


class ProcessLane:
    """One kind of heavy work (saved-page extraction) in processes of its own: at most `workers` run
    at a time, `waiting` more wait their turn, and past that a request is refused (Overloaded).

    Why a process and not the text-work pool: trafilatura's date search runs regular expressions over
    the whole page, each a C call that holds the GIL (up to 360 ms on a 3.9 MB page of script), and a
    thread holding the GIL stops the event loop, so health, for that long. Why a lane of its own: two
    large pages on the two text-work threads held up every other request's text work (a 3,000-character
    Translate took 58 s). Work already running in a process is not stopped when its caller leaves; it
    keeps its slot until it ends, so the lane never holds more than `workers + waiting` pages.
    """

    def __init__(self, what: str, workers: int, waiting: int) -> None:
        self.what = what
        self.workers = workers
        self.waiting = waiting
        self._pool: ProcessPoolExecutor | None = None
        self._taken = 0  # slots held, by the event loop only

    def start(self, warm: Callable[[], object] | None = None) -> None:
        """Start the processes now (and run `warm` in each: its imports), not on the first request."""
        pool = self._executor()
        if warm is not None:
            for done in [pool.submit(warm) for _ in range(self.workers)]:
                done.result()

    async def run(self, deadline: float | None, function: Callable[..., T], /, *args: object) -> T:
        """`function(*args)` in the lane's process, awaited; `deadline` is a time.monotonic() value."""
        if self._taken >= self.workers + self.waiting:
            raise Overloaded(
                f"the server is busy with {self._taken} {self.what}s (at most {self.workers} at a time and "
                f"{self.waiting} waiting); retry later"
            )
        loop = asyncio.get_running_loop()
        try:
            submitted = self._executor().submit(function, *args)
        except BrokenProcessPool:
            submitted = self._replace().submit(function, *args)
        self._taken += 1
        # Released when the work ends (or is cancelled before it starts), not when the caller stops waiting.
        submitted.add_done_callback(lambda _: loop.call_soon_threadsafe(self._release))
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            return await asyncio.wait_for(asyncio.wrap_future(submitted), timeout)
        except asyncio.TimeoutError:  # TimeoutError from 3.11 on
            raise DeadlineExceeded(f"the deadline passed during {self.what}") from None
        except BrokenProcessPool:  # the process died (killed, out of memory): a new one for the next request
            log.error("the %s process died; starting another", self.what)
            self._replace()
            raise TarjamaError(f"{self.what} failed on the server; the error is in its log") from None

    def _release(self) -> None:
        self._taken -= 1

    def close(self) -> None:
        """Stop the lane's processes now, whatever they are doing. At exit: the server ends with os._exit,
        and the semaphores of the pool's queues would be left for the resource tracker, which then
        prints a warning about leaked semaphores after the server's last line."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # ProcessPoolExecutor has no public way to stop a worker mid-task before Python 3.14.
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        # The resource tracker multiprocessing started for the pool's semaphores: stopped and waited for
        # (as interpreter exit would do), not left behind as a child nobody reaps.
        from multiprocessing import resource_tracker

        stop = getattr(resource_tracker._resource_tracker, "_stop", None)  # no public way to stop it
        if stop is not None:
            stop()

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: the server has gRPC's threads, which a forked child must not inherit.
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_end_with_parent)
        return self._pool

    def _replace(self) -> ProcessPoolExecutor:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = None
        return self._executor()


def _end_with_parent() -> None:
    """In a lane's process: exit when the server does. The server ends with os._exit (app.exit_now), so
    no executor shutdown tells its processes, and a process left waiting for work would live on."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="end-with-parent", daemon=True).start()

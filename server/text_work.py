"""Where CPU-bound text work runs: off the event loop, on a small pool of its own.

Planning, checking and building the answer of a large request is pure Python, so under the GIL only
one such thread runs at a time whatever the number of cores. More threads than two only made the
event loop queue for the GIL behind all of them: under a fuzzing load, health checks waited 200 ms
and more with asyncio's default pool (cores + 4 threads). Two keep one large article from holding up
every other one, and keep the loop answering.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
TEXT_THREADS = 2
_pool = ThreadPoolExecutor(max_workers=TEXT_THREADS, thread_name_prefix="text-work")


async def off_loop(function: Callable[..., T], /, *args: object) -> T:
    """`function(*args)` on the text-work pool, awaited from the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_pool, functools.partial(function, *args))


async def text_work(small: bool, function: Callable[..., T], /, *args: object) -> T:
    """`function(*args)` in place for a small request (cheaper than the hop), else on the pool."""
    return function(*args) if small else await off_loop(function, *args)

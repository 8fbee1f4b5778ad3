"""Repeated warnings and errors rate-limited: a failure that repeats (a descriptor table full, a flood
of malformed requests) must not fill the disk with the same line. asyncio alone wrote 408 MB of
`socket.accept() out of system resource` in a minute."""

from __future__ import annotations

import logging
import threading
import time

WINDOW_S = 10.0
PER_WINDOW = 5
MAX_KEYS = 1000  # distinct (logger, message) pairs remembered; messages built with f-strings are many


class RepeatFilter(logging.Filter):
    """Lets a (logger, level, message template) at WARNING or above through `per_window` times per
    `window_s`; the first one let through after that says how many were suppressed. Lines below
    WARNING (access lines, start and stop) always pass."""

    def __init__(self, window_s: float = WINDOW_S, per_window: int = PER_WINDOW) -> None:
        super().__init__()
        self.window_s = window_s
        self.per_window = per_window
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, int, str], list[float | int]] = {}  # key -> [window start, passed, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, str(record.msg)[:200])
        now = time.monotonic()
        with self._lock:
            entry = self._seen.get(key)
            if entry is None or now - entry[0] >= self.window_s:
                if len(self._seen) >= MAX_KEYS:
                    self._forget(now)
                dropped = int(entry[2]) if entry is not None else 0
                self._seen[key] = [now, 1, 0]
                if dropped:
                    record.msg = f"{record.msg} [{dropped} more like this suppressed in {self.window_s:g} s]"
                return True
            if entry[1] < self.per_window:
                entry[1] += 1
                return True
            entry[2] += 1
            return False

    def _forget(self, now: float) -> None:
        self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.window_s}
        if len(self._seen) >= MAX_KEYS:
            self._seen.clear()

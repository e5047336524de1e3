"""Per-partner rate limits: a token bucket per key, refilled continuously at ``rate`` per minute,
holding at most ``rate`` tokens (a partner may burst up to one minute's allowance).

``RateLimiter`` is the interface; ``MemoryLimiter`` keeps the buckets in this process (one
worker). A shared store (Redis: one hash per key with ``tokens`` and ``at``, updated by a Lua
script) implements the same ``take`` for several workers.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Protocol


class RateLimiter(Protocol):
    def take(self, key: str, rate_per_minute: int) -> float:
        """Take one token for ``key``: 0.0 when allowed, else the seconds until one is available."""


class MemoryLimiter:
    """In-process token buckets; thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000):
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str, rate_per_minute: int) -> float:
        if rate_per_minute <= 0:
            return math.inf
        now = self._clock()
        per_second = rate_per_minute / 60.0
        with self._lock:
            tokens, at = self._buckets.get(key, (float(rate_per_minute), now))
            tokens = min(float(rate_per_minute), tokens + (now - at) * per_second)
            if tokens >= 1.0:
                self._store(key, (tokens - 1.0, now))
                return 0.0
            self._store(key, (tokens, now))
            return (1.0 - tokens) / per_second

    def _store(self, key: str, value: tuple[float, float]) -> None:
        if key not in self._buckets and len(self._buckets) >= self._max_keys:
            self._buckets.clear()  # a full reset is safe: every bucket restarts full
        self._buckets[key] = value


def retry_after(seconds: float) -> str:
    """The Retry-After header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))

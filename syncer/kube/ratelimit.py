"""Client-side token bucket: the host API server is shared, so we pace ourselves.

client-go has one (QPS/burst per client); kubernetes_asyncio has none. Without
it a syncer that starts with 10,000 objects to reconcile would hit the host
with 10,000 concurrent writes and collect 429s instead of progress.

Invariant: over any window of T seconds at most ``burst + qps * T`` tokens are
granted. Waiters are served in FIFO order (one lock), so no caller starves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Reservations:
    """The token arithmetic of both buckets (this client's and the work queue's overall
    limiter): ``qps`` tokens a second, at most ``burst`` saved up.

    Like Go's ``rate.Limiter.Reserve``, each reservation takes a token even when
    none is left; the count goes negative and the answer is how long until the
    reserved token exists. ``clock`` is read on every call (tests pass their own).
    """

    __slots__ = ("_burst", "_clock", "_last", "_qps", "_tokens")

    def __init__(self, qps: float, burst: int, clock: Callable[[], float]) -> None:
        self._qps = qps
        self._burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def reserve(self) -> float:
        """Take one token; the seconds until it exists (0 when one was saved up)."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._qps)
        self._last = now
        self._tokens -= 1.0
        return max(0.0, -self._tokens / self._qps)


class TokenBucket:
    """``qps`` tokens per second, at most ``burst`` saved up; ``qps <= 0`` = unlimited."""

    def __init__(self, qps: float, burst: int) -> None:
        self.qps = qps
        self.burst = max(1, burst)
        self._reservations = Reservations(qps, self.burst, lambda: time.monotonic())
        self._lock = asyncio.Lock()

    async def acquire(self) -> float:
        """Take one token, sleeping until one is available; return the seconds waited."""
        if self.qps <= 0:
            return 0.0
        async with self._lock:
            wait = self._reservations.reserve()
            if wait > 0:
                await asyncio.sleep(wait)
            return wait

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


class TokenBucket:
    """``qps`` tokens per second, at most ``burst`` saved up; ``qps <= 0`` = unlimited."""

    def __init__(self, qps: float, burst: int) -> None:
        self.qps = qps
        self.burst = max(1, burst)
        self._tokens = float(self.burst)
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.qps)
        self._stamp = now

    async def acquire(self) -> float:
        """Take one token, sleeping until one is available; return the seconds waited."""
        if self.qps <= 0:
            return 0.0
        async with self._lock:
            now = time.monotonic()
            self._refill(now)
            self._tokens -= 1
            if self._tokens >= 0:
                return 0.0
            wait = -self._tokens / self.qps
            await asyncio.sleep(wait)
            return wait

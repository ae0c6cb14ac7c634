"""A sharded, deduplicating, rate-limited asyncio work queue (client-go semantics).

Why a work queue at all: watch events arrive in bursts, many of them for the
same object. Controllers reconcile *keys* ("namespace/name"), not events, so
N events for one key that arrive before a worker gets to it must cost one
reconcile, and one key must never be reconciled by two workers at once (they
would race on the same host object).

Why shards: one deque and one set of workers serialise every key behind a
single slow reconcile. A key is mapped to a shard by a *stable* hash
(CRC-32 of its UTF-8 bytes, never the per-process salted ``hash()``), so the
mapping is the same in every process and every run, and each shard has its
own workers.

Invariants, per shard (a key only ever lives in the shard of its hash):

* ``queue`` holds no duplicates, and every key in ``queue`` is in ``dirty``.
* No key in ``queue`` is in ``processing``: a worker takes a key off
  ``queue`` into ``processing``, so no key is handed to two workers at once.
* A key in ``dirty`` but not in ``queue`` is being processed. It was added
  again while being processed; when that processing finishes it goes back on
  ``queue``, so such an add is never lost and causes exactly one more run.
* At most one timer per key is pending in the queue (``add_after``); a new
  request only replaces it when its deadline is earlier.

The queue is not thread-safe: call it from its event loop only (use
``loop.call_soon_threadsafe`` from other threads). Adds never create tasks;
the only tasks are the ``shards * workers_per_shard`` workers.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from syncer.kube.ratelimit import Reservations
from syncer.metrics import QueueMetrics, WorkqueueMetrics, default_workqueue_metrics

Handler = Callable[[str], Awaitable[float | None]]
"""Processes one key. Returning a float re-queues the key after that many
seconds (periodic resync); returning None means done. Raising re-queues the key
with rate-limited backoff."""

_log = logging.getLogger(__name__)

# 2.0**1023 is the largest finite power of two; clamping the exponent there
# keeps a key that failed thousands of times from raising OverflowError.
_MAX_EXPONENT = 1023

# client-go refreshes its unfinished-work gauges every 500 ms.
_GAUGE_REFRESH_INTERVAL = 0.5


class RateLimiter(Protocol):
    """Decides how long a key waits before its next retry (client-go ``RateLimiter``)."""

    def when(self, key: str) -> float:
        """Count one more retry of *key* and return the delay in seconds before it."""
        ...

    def forget(self, key: str) -> None:
        """Stop tracking *key* (it succeeded), so its next backoff starts from scratch."""
        ...

    def num_requeues(self, key: str) -> int:
        """How often :meth:`when` was called for *key* since it was last forgotten."""
        ...


class ItemExponentialFailureRateLimiter:
    """Per-key exponential backoff: ``base_delay * 2**failures``, capped at ``max_delay``.

    Why per key: one persistently broken object must back off on its own
    without slowing down the retries of healthy ones.
    """

    __slots__ = ("_base_delay", "_failures", "_max_delay")

    def __init__(self, base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._failures: dict[str, int] = {}

    def when(self, key: str) -> float:
        exponent = self._failures.get(key, 0)
        self._failures[key] = exponent + 1
        # A huge product overflows to inf (no exception), which min() caps.
        return min(self._base_delay * 2.0 ** min(exponent, _MAX_EXPONENT), self._max_delay)

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: str) -> int:
        return self._failures.get(key, 0)


class BucketRateLimiter:
    """An overall token bucket: ``qps`` tokens per second, at most ``burst`` saved up.

    Why: per-key backoff alone lets a mass failure (say the host API server is
    down and every key fails) retry thousands of keys at once. Each call reserves
    a token (:class:`syncer.kube.ratelimit.Reservations`, the client's bucket's
    arithmetic) and waits until it exists. It tracks no keys.
    """

    __slots__ = ("_reservations",)

    def __init__(
        self, qps: float = 10.0, burst: int = 100, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._reservations = Reservations(qps, burst, clock)

    def when(self, key: str) -> float:
        return self._reservations.reserve()

    def forget(self, key: str) -> None:
        """Nothing to forget: the bucket is shared by all keys."""

    def num_requeues(self, key: str) -> int:
        return 0


class MaxOfRateLimiter:
    """Combine limiters: a key waits for the longest delay any of them asks for."""

    __slots__ = ("_limiters",)

    def __init__(self, *limiters: RateLimiter) -> None:
        self._limiters = limiters

    def when(self, key: str) -> float:
        # Every limiter must see every retry (each keeps its own count), so no
        # short-circuiting generator tricks here.
        return max([limiter.when(key) for limiter in self._limiters], default=0.0)

    def forget(self, key: str) -> None:
        for limiter in self._limiters:
            limiter.forget(key)

    def num_requeues(self, key: str) -> int:
        return max((limiter.num_requeues(key) for limiter in self._limiters), default=0)


def default_rate_limiter(
    qps: float = 10.0, burst: int = 100, base_delay: float = 0.005, max_delay: float = 1000.0
) -> MaxOfRateLimiter:
    """client-go's ``DefaultControllerRateLimiter``: per-key backoff, max'd with a bucket."""
    return MaxOfRateLimiter(
        ItemExponentialFailureRateLimiter(base_delay, max_delay), BucketRateLimiter(qps, burst)
    )


@dataclass(frozen=True, slots=True)
class QueueStatistics:
    """A snapshot of a :class:`ShardedQueue`, taken by :meth:`ShardedQueue.statistics`.

    ``depth`` counts keys waiting for a (next) run: queued keys plus keys added
    again while being processed (client-go's ``workqueue_depth``).
    ``processing`` counts handler calls in flight, ``delayed`` pending
    ``add_after`` timers. The ``*_total`` fields count since construction:
    ``adds_total`` adds that were not deduplicated, ``retries_total`` accepted
    ``add_rate_limited`` calls, ``processed_total`` handler calls that returned
    or raised, ``failures_total`` those that raised.
    """

    depth: int
    processing: int
    delayed: int
    adds_total: int
    retries_total: int
    processed_total: int
    failures_total: int
    shards: int
    workers_per_shard: int
    shard_depths: tuple[int, ...]


class _Shard:
    """One shard's queue state and its idle workers; see the module invariants."""

    __slots__ = ("_idle", "dirty", "processing", "queue")

    def __init__(self) -> None:
        self.queue: deque[str] = deque()
        # key -> monotonic time of the add that made it dirty (queue latency).
        self.dirty: dict[str, float] = {}
        # key -> monotonic time its current processing started.
        self.processing: dict[str, float] = {}
        # One future per idle worker; resolving it wakes exactly that worker.
        self._idle: deque[asyncio.Future[None]] = deque()

    def push(self, key: str) -> None:
        """Append *key* (already in ``dirty``, not processing) and wake one idle worker."""
        self.queue.append(key)
        self._wake_one()

    def wake_all(self) -> None:
        """Wake every idle worker so it re-checks the queue and the closing flag."""
        while self._idle:
            self._wake_one()

    async def wait_for_work(self) -> None:
        """Sleep until :meth:`push` or :meth:`wake_all`; callers re-check the queue after."""
        waiter = asyncio.get_running_loop().create_future()
        self._idle.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            # Cancelled after being chosen: hand the wake-up on, or a pushed
            # key could sit in the queue with its shard's other workers asleep.
            if waiter.done() and not waiter.cancelled():
                self._wake_one()
            raise

    def _wake_one(self) -> None:
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


class ShardedQueue:
    """A deduplicating, rate-limited work queue whose keys are spread over shards.

    Lifecycle: construct (adds are accepted and held from then on), then
    :meth:`start` with a handler inside the event loop, then
    :meth:`shutdown`. After shutdown starts, every add is silently ignored:
    the controller is going away and whatever it would retry is resynced by
    its successor.

    A handler that returns normally makes the queue :meth:`forget` the key's
    failures (and re-queue it after the returned delay, if any); a handler
    that raises ``Exception`` is logged and the key re-queued with
    :meth:`add_rate_limited`. Exceptions of the ``expected`` types are answers
    the handler's world gives in normal operation (for the controllers: API
    errors such as a create racing the cache): one log line, no traceback.
    """

    def __init__(
        self,
        name: str,
        *,
        shards: int = 4,
        workers_per_shard: int = 1,
        rate_limiter: RateLimiter | None = None,
        metrics: WorkqueueMetrics | None = None,
        expected: tuple[type[Exception], ...] = (),
    ) -> None:
        if shards < 1 or workers_per_shard < 1:
            raise ValueError("shards and workers_per_shard must be at least 1")
        self.name = name
        self._expected = expected
        self._shards = tuple(_Shard() for _ in range(shards))
        self._workers_per_shard = workers_per_shard
        self._rate_limiter = rate_limiter if rate_limiter is not None else default_rate_limiter()
        self._metrics: QueueMetrics = (metrics or default_workqueue_metrics()).for_queue(name)
        self._workers: list[asyncio.Task[None]] = []
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._gauge_refresh: asyncio.TimerHandle | None = None
        self._closing = False
        self._adds_total = 0
        self._retries_total = 0
        self._processed_total = 0
        self._failures_total = 0

    # -- producer side -------------------------------------------------------

    def shard_of(self, key: str) -> int:
        """The shard *key* always lands in: CRC-32 of its UTF-8 bytes modulo the shard count."""
        return zlib.crc32(key.encode()) % len(self._shards)

    def add(self, key: str) -> None:
        """Queue *key* unless already waiting; if it is being processed, run it again after."""
        if self._closing:
            return
        shard = self._shards[self.shard_of(key)]
        if key in shard.dirty:
            return
        shard.dirty[key] = time.monotonic()
        self._adds_total += 1
        self._metrics.adds.inc()
        self._metrics.depth.inc()
        if key not in shard.processing:
            shard.push(key)

    def add_after(self, key: str, delay: float) -> None:
        """Add *key* after *delay* seconds; of two pending requests the earlier deadline wins.

        Must be called from the running loop (it schedules a ``call_at`` timer).
        """
        if self._closing:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        pending = self._timers.get(key)
        if pending is not None:
            if pending.when() <= deadline:
                return
            pending.cancel()
        self._timers[key] = loop.call_at(deadline, self._fire, key)

    def add_rate_limited(self, key: str, at_least: float = 0.0) -> None:
        """Add *key* after the delay the rate limiter assigns to its next retry, and not
        sooner than *at_least* seconds (what a server asked for with Retry-After)."""
        if self._closing:
            return
        self._retries_total += 1
        self._metrics.retries.inc()
        self.add_after(key, max(self._rate_limiter.when(key), at_least))

    def forget(self, key: str) -> None:
        """Reset *key*'s failure count so its next retry backs off from the base delay."""
        self._rate_limiter.forget(key)

    def num_requeues(self, key: str) -> int:
        """How many rate-limited retries *key* has had since it was last forgotten."""
        return self._rate_limiter.num_requeues(key)

    def _fire(self, key: str) -> None:
        # Replaced timers are cancelled, so the pending one is always this one.
        del self._timers[key]
        self.add(key)

    # -- lifecycle -----------------------------------------------------------

    def start(self, handler: Handler) -> None:
        """Spawn ``workers_per_shard`` workers per shard that call *handler* on keys."""
        if self._workers or self._closing:
            raise RuntimeError(f"workqueue {self.name!r} was already started or shut down")
        self._metrics.reconcile.max_concurrent.set(len(self._shards) * self._workers_per_shard)
        self._workers = [
            asyncio.create_task(
                self._work(shard, handler), name=f"workqueue-{self.name}-{index}.{worker}"
            )
            for index, shard in enumerate(self._shards)
            for worker in range(self._workers_per_shard)
        ]
        self._refresh_gauges_periodically()

    async def shutdown(self, drain: bool = True, timeout: float | None = None) -> bool:
        """Stop accepting adds and stop the workers; return whether they stopped in time.

        With ``drain`` the workers first process everything queued (including
        keys re-added while processing); without it queued keys are dropped
        and only handler calls already running may finish. Pending
        ``add_after`` timers are always dropped. Workers still running after
        *timeout* seconds are cancelled, and so are they if this call is
        cancelled. Calling it again is harmless; ``drain=False`` escalates an
        earlier draining shutdown.
        """
        self._close(drain)
        if not self._workers:
            return True
        try:
            await asyncio.wait(self._workers, timeout=timeout)
        finally:
            late = [worker for worker in self._workers if not worker.done()]
            for worker in late:
                worker.cancel()
        if late:
            await asyncio.wait(late)
        self._refresh_gauges()
        return not late

    def _close(self, drain: bool) -> None:
        self._closing = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._gauge_refresh is not None:
            self._gauge_refresh.cancel()
        for shard in self._shards:
            if not drain:
                self._metrics.depth.dec(len(shard.dirty))
                shard.queue.clear()
                shard.dirty.clear()
            shard.wake_all()

    # -- workers -------------------------------------------------------------

    async def _work(self, shard: _Shard, handler: Handler) -> None:
        while (key := await self._next_key(shard)) is not None:
            try:
                await self._run(key, handler)
            finally:
                self._done(shard, key)

    async def _next_key(self, shard: _Shard) -> str | None:
        """Move the oldest queued key into ``processing``; None once closed and empty."""
        while not shard.queue:
            if self._closing:
                return None
            await shard.wait_for_work()
        key = shard.queue.popleft()
        now = time.monotonic()
        self._metrics.queue_duration.observe(now - shard.dirty.pop(key))
        self._metrics.depth.dec()
        shard.processing[key] = now
        return key

    async def _run(self, key: str, handler: Handler) -> None:
        """Call the handler on ``key``, accounted as controller-runtime accounts a reconcile:
        result ``success``, ``requeue_after`` (a delay returned) or ``error`` (raised; an
        unexpected exception also counts as a panic, which it is in Go)."""
        reconcile = self._metrics.reconcile
        reconcile.active_workers.inc()
        start = time.monotonic()
        try:
            requeue_after = await handler(key)
        except asyncio.CancelledError:
            if _current_task_is_cancelling():
                raise
            # The handler awaited something that was cancelled, but this worker
            # was not: a handler bug, not a shutdown. Letting it propagate
            # would silently kill the worker.
            reconcile.panics.inc()
            reconcile.done("error", time.monotonic() - start)
            self._fail(key, None)
            return
        except Exception as exc:
            if not isinstance(exc, self._expected):
                reconcile.panics.inc()
            reconcile.done("error", time.monotonic() - start)
            self._fail(key, exc)
            return
        finally:
            reconcile.active_workers.dec()
        reconcile.done("success" if requeue_after is None else "requeue_after",
                       time.monotonic() - start)
        self._processed_total += 1
        self.forget(key)
        if requeue_after is not None:
            self.add_after(key, requeue_after)

    def _fail(self, key: str, exc: Exception | None) -> None:
        """Account for a raising handler call; only valid inside its ``except`` block."""
        self._processed_total += 1
        self._failures_total += 1
        if isinstance(exc, self._expected):
            _log.warning("workqueue %s: %r failed (%s: %s); retrying with backoff",
                         self.name, key, type(exc).__name__, exc)
        else:
            _log.exception("workqueue %s: handler failed for %r; retrying with backoff",
                           self.name, key)
        # An error that says how long to wait (a 429's Retry-After) is not retried sooner.
        self.add_rate_limited(key, float(getattr(exc, "retry_after", 0.0) or 0.0))

    def _done(self, shard: _Shard, key: str) -> None:
        """End *key*'s processing; if it was added meanwhile, queue it again now."""
        self._metrics.work_duration.observe(time.monotonic() - shard.processing.pop(key))
        if key in shard.dirty:
            shard.push(key)

    # -- observation ---------------------------------------------------------

    def statistics(self) -> QueueStatistics:
        """Snapshot the queue's counters (and refresh the lazily updated gauges)."""
        self._refresh_gauges()
        shard_depths = tuple(len(shard.dirty) for shard in self._shards)
        return QueueStatistics(
            depth=sum(shard_depths),
            processing=sum(len(shard.processing) for shard in self._shards),
            delayed=len(self._timers),
            adds_total=self._adds_total,
            retries_total=self._retries_total,
            processed_total=self._processed_total,
            failures_total=self._failures_total,
            shards=len(self._shards),
            workers_per_shard=self._workers_per_shard,
            shard_depths=shard_depths,
        )

    def _refresh_gauges(self) -> None:
        """Set the unfinished-work gauges, which only change with time, not with events."""
        now = time.monotonic()
        running = [now - start for shard in self._shards for start in shard.processing.values()]
        self._metrics.unfinished_work.set(sum(running))
        self._metrics.longest_running.set(max(running, default=0.0))

    def _refresh_gauges_periodically(self) -> None:
        self._refresh_gauges()
        self._gauge_refresh = asyncio.get_running_loop().call_later(
            _GAUGE_REFRESH_INTERVAL, self._refresh_gauges_periodically
        )


def _current_task_is_cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0

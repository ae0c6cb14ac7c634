"""Unit tests of :mod:`syncer.workqueue` (and its metrics in :mod:`syncer.metrics`).

Waiting discipline: no test sleeps in place of a condition. The recording
handler wakes :meth:`Recorder.until` on every state change, which re-checks a
predicate under an ``asyncio.wait_for`` bound and fails naming what it awaited.
Long backoff delays are tested on the rate limiters directly with a fake clock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from prometheus_client import CollectorRegistry

from syncer.metrics import WorkqueueMetrics, default_workqueue_metrics
from syncer.workqueue import (
    BucketRateLimiter,
    Handler,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    QueueStatistics,
    RateLimiter,
    ShardedQueue,
    default_rate_limiter,
)

WAIT = 2.0
"""Seconds allowed for a condition that should hold within milliseconds."""

Outcome = float | BaseException | None


class Recorder:
    """A handler that records its calls, flags overlapping runs of a key, and obeys a script.

    ``gates[key]`` holds runs of ``key`` until set; ``outcomes[key]`` lists what
    successive runs return (or raise); ``on_start`` runs at the start of a call.
    """

    def __init__(self) -> None:
        self.started: list[str] = []
        self.completed: list[str] = []
        self.cancelled: list[str] = []
        self.overlaps: list[str] = []
        self.active: set[str] = set()
        self.gates: dict[str, asyncio.Event] = {}
        self.outcomes: dict[str, list[Outcome]] = {}
        self.on_start: Callable[[str], None] | None = None
        self._waiters: list[asyncio.Future[None]] = []

    async def __call__(self, key: str) -> float | None:
        if key in self.active:
            self.overlaps.append(key)
        self.active.add(key)
        self.started.append(key)
        self._changed()
        if self.on_start is not None:
            self.on_start(key)
        try:
            return await self._outcome(key)
        except asyncio.CancelledError:
            self.cancelled.append(key)
            raise
        finally:
            self.active.discard(key)
            self.completed.append(key)
            self._changed()

    async def _outcome(self, key: str) -> float | None:
        gate = self.gates.get(key)
        if gate is not None:
            await gate.wait()
        script = self.outcomes.get(key)
        outcome = script.pop(0) if script else None
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _changed(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def until(self, predicate: Callable[[], bool], what: str) -> None:
        """Return once ``predicate()`` holds after some handler event; fail after WAIT."""

        async def wait() -> None:
            while not predicate():
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                await waiter

        try:
            await asyncio.wait_for(wait(), WAIT)
        except TimeoutError:
            pytest.fail(f"timed out after {WAIT}s waiting for {what}; started={self.started}")


class FakeClock:
    """A monotonic clock the test advances by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_queue(
    name: str = "test",
    *,
    registry: CollectorRegistry | None = None,
    rate_limiter: RateLimiter | None = None,
    shards: int = 1,
    workers_per_shard: int = 1,
    expected: tuple[type[Exception], ...] = (),
) -> ShardedQueue:
    """A queue on a private registry, so tests never touch the global one."""
    return ShardedQueue(
        name,
        shards=shards,
        workers_per_shard=workers_per_shard,
        rate_limiter=rate_limiter,
        metrics=WorkqueueMetrics(registry or CollectorRegistry()),
        expected=expected,
    )


@asynccontextmanager
async def running(queue: ShardedQueue, handler: Handler) -> AsyncIterator[ShardedQueue]:
    """Start ``queue``; on exit stop it at once, cancelling whatever a failed test left."""
    queue.start(handler)
    try:
        yield queue
    finally:
        await queue.shutdown(drain=False, timeout=0)


async def drain(queue: ShardedQueue) -> None:
    assert await queue.shutdown(drain=True, timeout=WAIT), f"drain did not finish in {WAIT}s"


# -- deduplication and exclusive processing -----------------------------------


async def test_a_key_added_twice_before_processing_is_queued_once() -> None:
    queue = make_queue(shards=2)
    for key in ("a", "a", "b", "a"):
        queue.add(key)

    stats = queue.statistics()
    assert (stats.depth, stats.adds_total) == (2, 2)

    recorder = Recorder()
    queue.start(recorder)
    await drain(queue)
    assert sorted(recorder.started) == ["a", "b"]


async def test_a_key_added_while_processing_runs_once_more_afterwards_never_concurrently() -> None:
    queue = make_queue(workers_per_shard=4)
    recorder = Recorder()
    gate = recorder.gates["a"] = asyncio.Event()
    async with running(queue, recorder):
        queue.add("a")
        await recorder.until(lambda: recorder.started == ["a"], "the first run of 'a'")
        queue.add("a")
        queue.add("a")
        queue.add("b")
        # 'b' goes through an idle worker while 'a' stays parked, though 3 workers are free.
        await recorder.until(lambda: "b" in recorder.completed, "'b' on another worker")
        stats = queue.statistics()
        assert recorder.started.count("a") == 1
        assert (stats.processing, stats.depth) == (1, 1)

        gate.set()
        await recorder.until(lambda: recorder.completed.count("a") == 2, "the second run of 'a'")
        await drain(queue)

    assert recorder.started.count("a") == 2
    assert recorder.overlaps == []


# -- rate limiting -------------------------------------------------------------


def test_per_key_backoff_doubles_from_5ms_and_caps_at_1000s() -> None:
    limiter = ItemExponentialFailureRateLimiter()
    delays = [limiter.when("k") for _ in range(20)]

    assert delays[:4] == pytest.approx([0.005, 0.01, 0.02, 0.04])
    assert delays[17] == pytest.approx(655.36)
    assert delays[18:] == [1000.0, 1000.0]
    assert limiter.num_requeues("k") == 20
    assert limiter.when("other") == pytest.approx(0.005), "keys back off independently"
    for _ in range(3000):
        limiter.when("k")
    assert limiter.when("k") == 1000.0, "thousands of failures must not overflow"


def test_forget_resets_the_backoff() -> None:
    limiter = ItemExponentialFailureRateLimiter()
    for _ in range(3):
        limiter.when("k")

    limiter.forget("k")

    assert limiter.num_requeues("k") == 0
    assert limiter.when("k") == pytest.approx(0.005)


def test_token_bucket_grants_a_burst_then_spaces_reservations_by_1_over_qps() -> None:
    clock = FakeClock()
    bucket = BucketRateLimiter(qps=10, burst=3, clock=clock)

    assert [bucket.when("k") for _ in range(5)] == pytest.approx([0, 0, 0, 0.1, 0.2])
    clock.now += 0.25  # 2.5 tokens refill the debt of 2: half a token is left
    assert bucket.when("k") == pytest.approx(0.05)
    clock.now += 1000  # refill stops at the burst
    assert [bucket.when("k") for _ in range(4)] == pytest.approx([0, 0, 0, 0.1])
    assert bucket.num_requeues("k") == 0


def test_combined_limiter_takes_the_longer_delay_and_forgets_per_key_state() -> None:
    clock = FakeClock()
    limiter = MaxOfRateLimiter(
        ItemExponentialFailureRateLimiter(), BucketRateLimiter(qps=1, burst=1, clock=clock)
    )

    assert limiter.when("k") == pytest.approx(0.005), "backoff wins while the bucket has tokens"
    assert limiter.when("k") == pytest.approx(1.0), "the empty bucket wins over 10 ms backoff"
    assert limiter.num_requeues("k") == 2
    limiter.forget("k")
    assert limiter.num_requeues("k") == 0


def test_default_limiter_allows_100_immediate_retries_then_10_per_second() -> None:
    limiter = default_rate_limiter()
    delays = [limiter.when(f"key-{index}") for index in range(101)]

    assert delays[:100] == pytest.approx([0.005] * 100)
    assert delays[100] == pytest.approx(0.1, abs=0.01)


async def test_queue_forget_and_num_requeues_use_its_rate_limiter() -> None:
    queue = make_queue()
    queue.add_rate_limited("k")
    queue.add_rate_limited("k")
    assert queue.num_requeues("k") == 2
    assert queue.statistics().delayed == 1, "one timer per key"

    queue.forget("k")

    assert queue.num_requeues("k") == 0
    await queue.shutdown()


async def test_a_raising_handler_is_logged_and_retried_with_backoff_until_it_succeeds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue = make_queue(rate_limiter=ItemExponentialFailureRateLimiter(base_delay=0.001))
    recorder = Recorder()
    recorder.outcomes["k"] = [RuntimeError("boom"), RuntimeError("boom")]
    with caplog.at_level(logging.ERROR, logger="syncer.workqueue"):
        async with running(queue, recorder):
            queue.add("k")
            await recorder.until(lambda: len(recorder.completed) == 3, "two failures and a success")

    stats = queue.statistics()
    assert (stats.failures_total, stats.retries_total, stats.processed_total) == (2, 2, 3)
    assert queue.num_requeues("k") == 0, "success forgets the failures"
    assert sum("handler failed for 'k'" in record.getMessage() for record in caplog.records) == 2


async def test_an_expected_failure_is_one_line_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue = make_queue(rate_limiter=ItemExponentialFailureRateLimiter(base_delay=0.001),
                       expected=(LookupError,))
    recorder = Recorder()
    recorder.outcomes["k"] = [KeyError("raced"), RuntimeError("bug")]
    with caplog.at_level(logging.WARNING, logger="syncer.workqueue"):
        async with running(queue, recorder):
            queue.add("k")
            await recorder.until(lambda: len(recorder.completed) == 3, "two failures and a success")

    expected, unexpected = caplog.records[0], caplog.records[1]
    assert (expected.levelno, expected.exc_info) == (logging.WARNING, None)
    assert "KeyError: 'raced'" in expected.getMessage()
    assert unexpected.levelno == logging.ERROR
    assert unexpected.exc_info is not None
    assert queue.statistics().failures_total == 2


class _Throttled(Exception):
    """Like ``TooManyRequests``: an error that says how long to wait."""

    retry_after = 0.3


async def test_a_failure_with_a_retry_after_is_not_retried_sooner() -> None:
    """A 429 goes back to the controller (so the next try is planned afresh), which must
    still honour the server's Retry-After, however small the per-key backoff is."""
    queue = make_queue(rate_limiter=ItemExponentialFailureRateLimiter(base_delay=0.001))
    recorder = Recorder()
    recorder.outcomes["k"] = [_Throttled()]
    times: list[float] = []
    recorder.on_start = lambda key: times.append(asyncio.get_running_loop().time())
    async with running(queue, recorder):
        queue.add("k")
        await recorder.until(lambda: len(recorder.completed) == 2, "the failure and the retry")
    assert times[1] - times[0] >= _Throttled.retry_after, times


async def test_a_stray_cancelled_error_from_the_handler_is_a_failure_not_a_dead_worker() -> None:
    queue = make_queue(rate_limiter=ItemExponentialFailureRateLimiter(base_delay=0.001))
    recorder = Recorder()
    recorder.outcomes["k"] = [asyncio.CancelledError()]
    async with running(queue, recorder):
        queue.add("k")
        await recorder.until(lambda: recorder.completed == ["k", "k"], "the retry of 'k'")
        queue.add("other")
        await recorder.until(lambda: "other" in recorder.completed, "the worker to live on")

    assert queue.statistics().failures_total == 1


async def test_a_returned_delay_requeues_the_key_after_it() -> None:
    queue = make_queue()
    recorder = Recorder()
    recorder.outcomes["k"] = [0.01]
    async with running(queue, recorder):
        queue.add("k")
        await recorder.until(lambda: recorder.completed == ["k", "k"], "the re-queued run of 'k'")
        assert queue.statistics().delayed == 0


# -- delayed adds --------------------------------------------------------------


async def test_delayed_keys_are_processed_in_deadline_order() -> None:
    queue = make_queue()
    recorder = Recorder()
    async with running(queue, recorder):
        queue.add_after("late", 0.06)
        queue.add_after("early", 0.02)
        queue.add_after("middle", 0.04)
        stats = queue.statistics()
        assert (stats.delayed, stats.depth) == (3, 0)

        await recorder.until(lambda: len(recorder.completed) == 3, "all three delayed keys")

    assert recorder.started == ["early", "middle", "late"]


async def test_of_two_delays_for_one_key_the_earlier_deadline_wins() -> None:
    queue = make_queue()
    recorder = Recorder()
    async with running(queue, recorder):
        queue.add_after("sooner-second", 60)
        queue.add_after("sooner-second", 0.01)
        queue.add_after("sooner-first", 0.01)
        queue.add_after("sooner-first", 60)
        assert queue.statistics().delayed == 2, "one timer per key"

        await recorder.until(lambda: len(recorder.completed) == 2, "both keys after ~10 ms")
        assert queue.statistics().delayed == 0, "the 60 s requests were replaced or ignored"


async def test_a_non_positive_delay_adds_at_once() -> None:
    queue = make_queue()
    queue.add_after("k", 0)
    queue.add_after("j", -1)

    stats = queue.statistics()
    assert (stats.depth, stats.delayed) == (2, 0)


# -- sharding ------------------------------------------------------------------


def test_sharding_is_a_stable_crc32_of_the_key() -> None:
    """Pinned values: Python's hash() is salted per process, so it would fail this."""
    queue, other = make_queue(shards=8), make_queue(shards=8)
    expected = {"team/app-cfg": 6, "kube-system/coredns": 2, "default/nginx": 4, "a": 3}

    assert {key: queue.shard_of(key) for key in expected} == expected
    assert {key: other.shard_of(key) for key in expected} == expected


def test_keys_are_counted_in_the_shard_they_hash_to() -> None:
    queue = make_queue(shards=4)
    keys = [f"ns-{index % 7}/obj-{index}" for index in range(200)]
    for key in keys:
        queue.add(key)

    depths = queue.statistics().shard_depths
    assert depths == tuple(sum(queue.shard_of(k) == s for k in keys) for s in range(4))
    assert min(depths) > 0, f"CRC-32 should spread 200 keys over 4 shards: {depths}"


# -- shutdown ------------------------------------------------------------------


async def test_draining_shutdown_finishes_in_flight_and_queued_work_and_ignores_new_adds() -> None:
    queue = make_queue()
    recorder = Recorder()
    gate = recorder.gates["a"] = asyncio.Event()
    recorder.outcomes["b"] = [0.0]  # asks for an immediate re-run: an add, ignored
    async with running(queue, recorder):
        for key in ("a", "b", "c"):
            queue.add(key)
        await recorder.until(lambda: recorder.started == ["a"], "'a' to be in flight")
        recorder.on_start = lambda key: queue.add("added-during-drain")
        # Runs only once this task blocks inside shutdown(), i.e. after adds are closed.
        asyncio.get_running_loop().call_soon(gate.set)

        await drain(queue)
        queue.add("added-after-shutdown")

    assert recorder.started == ["a", "b", "c"]
    assert recorder.cancelled == []
    stats = queue.statistics()
    assert (stats.adds_total, stats.depth, stats.processing) == (3, 0, 0)


async def test_non_draining_shutdown_drops_queued_keys_but_lets_in_flight_work_finish() -> None:
    queue = make_queue()
    recorder = Recorder()
    gate = recorder.gates["a"] = asyncio.Event()
    async with running(queue, recorder):
        for key in ("a", "b", "c"):
            queue.add(key)
        await recorder.until(lambda: recorder.started == ["a"], "'a' to be in flight")
        asyncio.get_running_loop().call_soon(gate.set)

        assert await queue.shutdown(drain=False, timeout=WAIT), "in-flight 'a' did not finish"

    assert (recorder.started, recorder.cancelled) == (["a"], [])
    assert queue.statistics().depth == 0


async def test_shutdown_cancels_workers_still_busy_when_the_timeout_expires() -> None:
    queue = make_queue()
    recorder = Recorder()
    recorder.gates["stuck"] = asyncio.Event()
    async with running(queue, recorder):
        queue.add("stuck")
        await recorder.until(lambda: recorder.started == ["stuck"], "'stuck' to be in flight")

        assert not await queue.shutdown(timeout=0.01), "shutdown should report the timeout"

    assert recorder.cancelled == ["stuck"]
    assert queue.statistics().processing == 0


async def test_shutdown_drops_delayed_keys_and_ignores_later_delayed_and_rate_limited_adds() -> (
    None
):
    queue = make_queue()
    recorder = Recorder()
    async with running(queue, recorder):
        queue.add_after("later", 60)
        assert queue.statistics().delayed == 1
        await drain(queue)
        queue.add_after("after", 0.01)
        queue.add_rate_limited("after")

    stats = queue.statistics()
    assert (stats.delayed, stats.retries_total, queue.num_requeues("after")) == (0, 0, 0)
    assert recorder.started == []


async def test_a_queue_starts_once() -> None:
    queue = make_queue()
    async with running(queue, Recorder()):
        with pytest.raises(RuntimeError, match="already started"):
            queue.start(Recorder())
    with pytest.raises(ValueError, match="at least 1"):
        make_queue(shards=0)


# -- statistics and metrics ----------------------------------------------------


async def test_statistics_snapshot_counts_queued_and_delayed_keys_per_shard() -> None:
    queue = make_queue(shards=4, workers_per_shard=3)
    keys = [f"default/cm-{index}" for index in range(10)]
    for key in [*keys, keys[0]]:
        queue.add(key)
    queue.add_after("default/later", 60)

    stats = queue.statistics()

    assert stats == QueueStatistics(
        depth=10,
        processing=0,
        delayed=1,
        adds_total=10,
        retries_total=0,
        processed_total=0,
        failures_total=0,
        shards=4,
        workers_per_shard=3,
        shard_depths=tuple(sum(queue.shard_of(k) == s for k in keys) for s in range(4)),
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.depth = 0  # type: ignore[misc]
    await queue.shutdown()


async def test_metrics_follow_adds_retries_waits_and_running_work() -> None:
    registry = CollectorRegistry()
    queue = make_queue(
        "metrics",
        registry=registry,
        rate_limiter=ItemExponentialFailureRateLimiter(0.001),
        workers_per_shard=2,  # one stays parked on 'slow'
    )
    recorder = Recorder()
    gate = recorder.gates["slow"] = asyncio.Event()
    recorder.outcomes["flaky"] = [RuntimeError("once")]

    def sample(name: str) -> float:
        value = registry.get_sample_value(name, {"name": "metrics"})
        assert value is not None, f"{name} is not exported"
        return value

    async with running(queue, recorder):
        for key in ("a", "a", "flaky", "slow"):
            queue.add(key)
        await recorder.until(
            lambda: recorder.completed.count("flaky") == 2 and "a" in recorder.completed,
            "'a' and both runs of 'flaky'",
        )
        queue.statistics()  # refreshes the time-based gauges

        assert sample("workqueue_adds_total") == 4, "a, flaky, slow and flaky's retry"
        assert sample("workqueue_retries_total") == 1
        assert sample("workqueue_depth") == 0
        assert sample("workqueue_queue_duration_seconds_count") == 4
        assert sample("workqueue_work_duration_seconds_count") == 3
        assert sample("workqueue_longest_running_processor_seconds") > 0, "'slow' is running"
        assert sample("workqueue_unfinished_work_seconds") > 0

        gate.set()
        await drain(queue)

    assert sample("workqueue_work_duration_seconds_count") == 4
    assert sample("workqueue_longest_running_processor_seconds") == 0
    assert sample("workqueue_unfinished_work_seconds") == 0


def test_default_metrics_are_created_once_on_the_global_registry() -> None:
    assert default_workqueue_metrics() is default_workqueue_metrics()


# -- randomized ----------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_concurrent_adds_never_overlap_a_key_and_lose_none(seed: int) -> None:
    """Producers race adds against workers; every key's last add is followed by a run."""
    rng = random.Random(seed)
    queue = make_queue(shards=3, workers_per_shard=4)
    keys = [f"ns-{index % 3}/obj-{index}" for index in range(40)]
    clock = 0
    last_add: dict[str, int] = {}
    last_start: dict[str, int] = {}
    overlaps: list[str] = []
    active: set[str] = set()

    async def handler(key: str) -> float | None:
        nonlocal clock
        clock += 1
        last_start[key] = clock
        if key in active:
            overlaps.append(key)
        active.add(key)
        for _ in range(rng.randrange(4)):
            await asyncio.sleep(0)  # simulated work that yields to producers and workers
        active.discard(key)
        return 0.0 if rng.random() < 0.1 else None  # sometimes re-queue while processing

    async def produce() -> None:
        nonlocal clock
        for _ in range(200):
            key = rng.choice(keys)
            clock += 1
            last_add[key] = clock
            queue.add(key)
            if rng.random() < 0.3:
                await asyncio.sleep(0)

    async with running(queue, handler):
        await asyncio.wait_for(asyncio.gather(*(produce() for _ in range(5))), WAIT)
        await drain(queue)

    assert overlaps == [], "a key was processed by two workers at once"
    lost = [key for key, added in last_add.items() if last_start.get(key, 0) < added]
    assert lost == [], "keys not processed after their last add"
    assert queue.statistics().processed_total >= len(last_add)

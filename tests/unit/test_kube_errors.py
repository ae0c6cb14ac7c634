"""Unit tests of the API layer's pure parts: error mapping, Resource paths, TokenBucket.

The token bucket is driven by a fake clock (its module's ``time`` and
``asyncio.sleep`` are replaced): waits are asserted on the seconds it
returns and on the fake time that passed, never on the wall clock.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import types

import orjson
import pytest

from contract.resources import CONFIGMAPS, LEASES, NAMESPACES, NODES, PODS, Resource
from syncer.kube import ratelimit
from syncer.kube.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    Conflict,
    ConnectionLost,
    Forbidden,
    Gone,
    Invalid,
    KubeError,
    NotFound,
    ServerError,
    TooManyRequests,
    Unauthorized,
    error_for,
    parse_retry_after,
)
from syncer.kube.ratelimit import TokenBucket


def status_body(reason: str = "", message: str = "", code: int = 0) -> bytes:
    return orjson.dumps(
        {"kind": "Status", "apiVersion": "v1", "status": "Failure",
         "reason": reason, "message": message, "code": code}
    )


# --- error_for ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason", "cls"),
    [
        (400, "BadRequest", BadRequest),
        (401, "Unauthorized", Unauthorized),
        (403, "Forbidden", Forbidden),
        (404, "NotFound", NotFound),
        (409, "Conflict", Conflict),
        (409, "AlreadyExists", AlreadyExists),
        (410, "Expired", Gone),
        (422, "Invalid", Invalid),
        (429, "TooManyRequests", TooManyRequests),
        (500, "InternalError", ServerError),
        (501, "", ServerError),
        (503, "ServiceUnavailable", ServerError),
        (504, "Timeout", ServerError),
        (418, "Teapot", ApiError),
        (405, "MethodNotAllowed", ApiError),
        (302, "", ApiError),
    ],
)
def test_error_for_maps_status_to_class(status: int, reason: str, cls: type[ApiError]) -> None:
    err = error_for(status, status_body(reason, "the message", status), "GET", "/api/v1/x")
    assert type(err) is cls
    assert isinstance(err, ApiError)
    assert isinstance(err, KubeError)
    assert err.status == status
    assert err.reason == reason
    assert err.message == "the message"
    assert err.body["code"] == status
    assert str(err).startswith(f"GET /api/v1/x: {status}")
    assert "the message" in str(err)


def test_conflict_is_not_already_exists() -> None:
    conflict = error_for(409, status_body("Conflict", "the object has been modified"), "PUT", "/p")
    exists = error_for(409, status_body("AlreadyExists", "already exists"), "POST", "/p")
    no_reason = error_for(409, b"", "PUT", "/p")
    assert type(conflict) is Conflict
    assert type(exists) is AlreadyExists
    assert isinstance(exists, Conflict)  # callers that re-queue Conflicts also catch these
    assert type(no_reason) is Conflict
    assert not isinstance(conflict, AlreadyExists)


def test_already_exists_needs_a_409() -> None:
    assert type(error_for(400, status_body("AlreadyExists"), "POST", "/p")) is BadRequest


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), ("0", 0.0), ("1.5", 1.5), (None, 1.0), ("", 1.0), ("soon", 1.0)],
)
def test_429_carries_retry_after(header: str | None, seconds: float) -> None:
    err = error_for(429, status_body("TooManyRequests"), "GET", "/p", retry_after=header)
    assert isinstance(err, TooManyRequests)
    assert err.retry_after == seconds
    assert err.status == 429


def test_retry_after_is_ignored_for_other_statuses() -> None:
    err = error_for(503, b"", "GET", "/p", retry_after="30")
    assert type(err) is ServerError
    assert not hasattr(err, "retry_after")


def test_non_json_body_becomes_the_message() -> None:
    err = error_for(502, b"<html>Bad Gateway</html>", "GET", "/api")
    assert type(err) is ServerError
    assert err.message == "<html>Bad Gateway</html>"
    assert err.reason == ""
    assert "Bad Gateway" in str(err)


def test_long_or_binary_non_json_bodies_are_cut_and_decoded() -> None:
    err = error_for(500, b"\xff\xfe" + b"x" * 500, "GET", "/api")
    assert len(err.message) <= 200
    assert err.message.startswith("\ufffd")


@pytest.mark.parametrize("payload", [b"", b"[1, 2]", b'"just a string"', b"null", b"42"])
def test_non_object_bodies_give_an_empty_body(payload: bytes) -> None:
    err = error_for(404, payload, "DELETE", "/api/v1/pods/x")
    assert type(err) is NotFound
    assert err.body == {}
    assert err.reason == ""
    assert err.message == ""
    assert str(err) == "DELETE /api/v1/pods/x: 404"


def test_error_body_is_a_copy() -> None:
    err = error_for(422, status_body("Invalid", "bad"), "POST", "/p")
    err.body["reason"] = "changed"
    assert err.reason == "Invalid"


def test_connection_lost_is_not_an_api_error() -> None:
    assert issubclass(ConnectionLost, KubeError)
    assert not issubclass(ConnectionLost, ApiError)


# --- parse_retry_after ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", 1.0),
        ("120", 120.0),
        ("0", 0.0),
        (" 3 ", 3.0),
        ("2.5", 2.5),
        ("-5", 0.0),  # never negative
        ("-0.1", 0.0),
        (None, 1.0),
        ("", 1.0),
        ("abc", 1.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 1.0),  # HTTP-date form: not used by Kubernetes
    ],
)
def test_parse_retry_after(value: str | None, expected: float) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_default() -> None:
    assert parse_retry_after(None, default=4.0) == 4.0
    assert parse_retry_after("garbage", default=0.5) == 0.5
    assert parse_retry_after("2", default=9.0) == 2.0


@pytest.mark.parametrize("value", ["inf", "Infinity", "1e999", "nan", "-inf"])
def test_parse_retry_after_is_always_a_finite_wait(value: str) -> None:
    """Retry-After is ``1*DIGIT``; a non-finite value must not become an endless sleep."""
    seconds = parse_retry_after(value)
    assert math.isfinite(seconds)
    assert seconds >= 0


# --- Resource.path ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "args", "path"),
    [
        (PODS, {}, "/api/v1/pods"),
        (PODS, {"namespace": "ns"}, "/api/v1/namespaces/ns/pods"),
        (PODS, {"namespace": "ns", "name": "p"}, "/api/v1/namespaces/ns/pods/p"),
        (PODS, {"namespace": "ns", "name": "p", "subresource": "status"},
         "/api/v1/namespaces/ns/pods/p/status"),
        (PODS, {"namespace": "ns", "name": "p", "subresource": "binding"},
         "/api/v1/namespaces/ns/pods/p/binding"),
        (PODS, {"namespace": "ns", "subresource": "status"}, "/api/v1/namespaces/ns/pods"),
        (CONFIGMAPS, {"namespace": "", "name": "c"}, "/api/v1/configmaps/c"),
        (NODES, {}, "/api/v1/nodes"),
        (NODES, {"name": "n1", "subresource": "status"}, "/api/v1/nodes/n1/status"),
        (NODES, {"namespace": "ignored", "name": "n1"}, "/api/v1/nodes/n1"),
        (NAMESPACES, {"name": "team", "subresource": "finalize"},
         "/api/v1/namespaces/team/finalize"),
        (LEASES, {}, "/apis/coordination.k8s.io/v1/leases"),
        (LEASES, {"namespace": "kube-system", "name": "l"},
         "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/l"),
        (Resource("example.com", "v1alpha1", "widgets", "Widget"),
         {"namespace": "a", "name": "w", "subresource": "scale"},
         "/apis/example.com/v1alpha1/namespaces/a/widgets/w/scale"),
        (Resource("example.com", "v1", "clusterwidgets", "ClusterWidget", namespaced=False),
         {"namespace": "a", "name": "w"}, "/apis/example.com/v1/clusterwidgets/w"),
    ],
)
def test_resource_path(resource: Resource, args: dict[str, str], path: str) -> None:
    assert resource.path(**args) == path


def test_api_version() -> None:
    assert PODS.api_version == "v1"
    assert LEASES.api_version == "coordination.k8s.io/v1"


# --- TokenBucket ------------------------------------------------------------------------------


class FakeClock:
    """Stands in for the module's ``time`` and ``asyncio``: sleeping advances ``now``."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)  # a real suspension point, so other waiters can queue up


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(ratelimit, "time", fake)
    monkeypatch.setattr(
        ratelimit, "asyncio", types.SimpleNamespace(Lock=asyncio.Lock, sleep=fake.sleep)
    )
    return fake


async def test_burst_is_available_immediately() -> None:
    """Real clock: the first ``burst`` tokens never wait, however slow the refill."""
    bucket = TokenBucket(qps=0.001, burst=5)
    async with asyncio.timeout(2):  # a regression fails here instead of sleeping 1000 s
        waits = [await bucket.acquire() for _ in range(5)]
    assert waits == [0.0] * 5


@pytest.mark.parametrize("qps", [0.0, -1.0])
async def test_non_positive_qps_is_unlimited(qps: float) -> None:
    bucket = TokenBucket(qps=qps, burst=1)
    waits = [await bucket.acquire() for _ in range(1000)]
    assert waits == [0.0] * 1000


async def test_unlimited_never_sleeps(clock: FakeClock) -> None:
    bucket = TokenBucket(qps=0, burst=1)
    for _ in range(50):
        assert await bucket.acquire() == 0.0
    assert clock.sleeps == []
    assert clock.now == 1000.0


async def test_after_the_burst_tokens_come_at_qps(clock: FakeClock) -> None:
    bucket = TokenBucket(qps=10, burst=3)
    assert [await bucket.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert clock.sleeps == []

    waits = [await bucket.acquire() for _ in range(4)]

    assert waits == pytest.approx([0.1] * 4)
    assert clock.sleeps == pytest.approx([0.1] * 4)
    assert clock.now == pytest.approx(1000.4)


async def test_idle_time_refills_up_to_burst_only(clock: FakeClock) -> None:
    bucket = TokenBucket(qps=2, burst=2)
    await bucket.acquire()
    await bucket.acquire()
    clock.now += 3600  # an hour idle saves up at most ``burst`` tokens
    assert [await bucket.acquire() for _ in range(2)] == [0.0, 0.0]
    assert await bucket.acquire() == pytest.approx(0.5)


async def test_partial_refill_shortens_the_wait(clock: FakeClock) -> None:
    bucket = TokenBucket(qps=4, burst=1)
    await bucket.acquire()
    clock.now += 0.1  # 0.4 of a token back
    assert await bucket.acquire() == pytest.approx(0.15)


async def test_burst_below_one_still_grants_one(clock: FakeClock) -> None:
    bucket = TokenBucket(qps=1, burst=0)
    assert bucket.burst == 1
    assert await bucket.acquire() == 0.0
    assert await bucket.acquire() == pytest.approx(1.0)


async def test_concurrent_waiters_are_spaced_by_the_rate(clock: FakeClock) -> None:
    bucket = TokenBucket(qps=5, burst=1)
    waits = await asyncio.gather(*(bucket.acquire() for _ in range(4)))
    assert sorted(waits) == pytest.approx([0.0, 0.2, 0.2, 0.2])
    assert clock.now == pytest.approx(1000.6)


@pytest.mark.parametrize("seed", range(20))
async def test_never_more_than_burst_plus_qps_times_window(clock: FakeClock, seed: int) -> None:
    """The documented invariant, over random arrival patterns."""
    rng = random.Random(seed)
    qps, burst = rng.choice([1.0, 2.5, 10.0]), rng.randint(1, 4)
    bucket = TokenBucket(qps=qps, burst=burst)
    granted: list[float] = []
    for _ in range(40):
        clock.now += rng.choice([0.0, 0.0, 0.0, rng.uniform(0, 2 / qps)])
        arrival = clock.now
        wait = await bucket.acquire()
        assert clock.now == pytest.approx(arrival + wait)
        granted.append(clock.now)
    for i, j in itertools.combinations(range(len(granted)), 2):
        window = granted[j] - granted[i]
        assert j - i + 1 <= burst + qps * window + 1e-6, (i, j, window)

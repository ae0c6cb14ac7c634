"""Unit tests of :mod:`syncer.leader`: record building, settings, and expiry on a fake clock.

The clock is a number the test moves by hand, and the API is an in-memory
Lease with resourceVersion checks, so "expired after lease_duration of OUR
time, whatever the remote timestamps say" is checked to the millisecond.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import cast

import pytest

from contract.resources import Obj
from syncer.kube.client import KubeClient
from syncer.kube.errors import AlreadyExists, Conflict, ConnectionLost, NotFound
from syncer.leader import (
    JITTER_FACTOR,
    LeaderElector,
    _jittered,
    _micro_time,
    _next_spec,
    _released_spec,
)

NOW = "2026-01-02T03:04:05.123456Z"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeLeaseApi:
    """Just enough of ``KubeClient.request`` for one Lease: GET, POST, PUT with preconditions."""

    def __init__(self, spec: Obj | None = None) -> None:
        self.down = False
        self._version = 0
        self.lease: Obj | None = None
        if spec is not None:
            self._store({"metadata": {"name": "l", "namespace": "ns"}, "spec": spec})

    def _store(self, body: Obj) -> Obj:
        self._version += 1
        self.lease = copy.deepcopy(body)
        self.lease["metadata"]["resourceVersion"] = str(self._version)
        return copy.deepcopy(self.lease)

    async def request(
        self, method: str, path: str, *, body: Obj | None = None, retry: bool = True
    ) -> Obj:
        if self.down:
            raise ConnectionLost(f"{method} {path}: refused")
        if method == "GET":
            if self.lease is None:
                raise NotFound(404, {}, method, path)
            return copy.deepcopy(self.lease)
        assert body is not None
        if method == "POST" and self.lease is not None:
            raise AlreadyExists(409, {"reason": "AlreadyExists"}, method, path)
        if method == "PUT" and self._stale(body):
            raise Conflict(409, {"reason": "Conflict"}, method, path)
        return self._store(body)

    def _stale(self, body: Obj) -> bool:
        assert self.lease is not None
        return bool(
            body["metadata"]["resourceVersion"] != self.lease["metadata"]["resourceVersion"]
        )

    def renew_as(self, holder: str, renew_time: str) -> None:
        assert self.lease is not None
        self._store(
            {
                **self.lease,
                "spec": {**self.lease["spec"], "holderIdentity": holder, "renewTime": renew_time},
            }
        )


def _elector(api: FakeLeaseApi, clock: FakeClock, identity: str = "me") -> LeaderElector:
    return LeaderElector(
        cast(KubeClient, api),
        "ns",
        "l",
        identity,
        lease_duration=3.0,
        renew_deadline=2.0,
        retry_period=0.5,
        clock=clock,
    )


def _ghost(renew_time: str) -> Obj:
    return {
        "holderIdentity": "ghost",
        "leaseDurationSeconds": 3,
        "renewTime": renew_time,
        "acquireTime": renew_time,
        "leaseTransitions": 4,
    }


@pytest.mark.parametrize(
    "renew_time", ["2001-01-01T00:00:00.000000Z", "2999-01-01T00:00:00.000000Z"]
)
async def test_expiry_is_timed_on_our_clock_not_by_remote_renew_time(renew_time: str) -> None:
    api, clock = FakeLeaseApi(_ghost(renew_time)), FakeClock()
    me = _elector(api, clock)
    assert not await me._try_acquire_or_renew(), "first sight of a held lease starts our timer"
    assert me.observed_holder == "ghost"
    clock.now += 2.999
    assert not await me._try_acquire_or_renew()
    clock.now += 0.002
    assert await me._try_acquire_or_renew()
    assert api.lease is not None
    assert (api.lease["spec"]["holderIdentity"], api.lease["spec"]["leaseTransitions"]) == ("me", 5)


async def test_every_change_of_the_record_restarts_the_timer() -> None:
    api, clock = FakeLeaseApi(_ghost(NOW)), FakeClock()
    me = _elector(api, clock)
    assert not await me._try_acquire_or_renew()
    clock.now += 2.0
    api.renew_as("ghost", "2026-01-02T03:04:07.000000Z")
    assert not await me._try_acquire_or_renew()
    clock.now += 2.0
    assert not await me._try_acquire_or_renew(), "only 2 s since the record last changed"
    clock.now += 1.5
    assert await me._try_acquire_or_renew()


async def test_is_leader_turns_false_at_the_renew_deadline_by_itself() -> None:
    api, clock = FakeLeaseApi(), FakeClock()
    changes: list[bool] = []
    me = LeaderElector(
        cast(KubeClient, api),
        "ns",
        "l",
        "me",
        lease_duration=3.0,
        renew_deadline=2.0,
        retry_period=0.5,
        clock=clock,
        on_change=changes.append,
    )
    assert await me._try_acquire_or_renew()
    me._start_leading(lambda: None)
    assert (me.is_leader, me.leader_event.is_set(), changes) == (True, True, [True])
    api.down = True
    clock.now = 1001.0
    assert not await me._try_acquire_or_renew(), "API errors are a failed attempt, not a crash"
    clock.now = 1001.75
    assert me.is_leader
    clock.now = 1002.0
    assert not me.is_leader, "no event loop turn needed: the deadline is checked on read"


async def test_release_lets_another_candidate_take_over_at_once() -> None:
    api, clock = FakeLeaseApi(), FakeClock()
    me, other = _elector(api, clock), _elector(api, clock, "other")
    assert await me._try_acquire_or_renew()
    assert not await other._try_acquire_or_renew()
    assert await me.release()
    assert api.lease is not None
    assert (api.lease["spec"]["holderIdentity"], api.lease["spec"]["leaseDurationSeconds"]) == (
        "",
        1,
    )
    assert await other._try_acquire_or_renew(), "a released lease is free without waiting"
    assert not await me.release(), "only the holder releases"
    assert api.lease["spec"]["holderIdentity"] == "other"


def test_next_spec_create_renew_and_takeover() -> None:
    created = _next_spec({}, "me", 15, NOW)
    assert created == {
        "holderIdentity": "me",
        "leaseDurationSeconds": 15,
        "acquireTime": NOW,
        "renewTime": NOW,
        "leaseTransitions": 0,
    }
    later = "2026-01-02T03:04:09.000000Z"
    renewed = _next_spec(created, "me", 15, later)
    assert (renewed["acquireTime"], renewed["renewTime"], renewed["leaseTransitions"]) == (
        NOW,
        later,
        0,
    )
    taken = _next_spec({**renewed, "strategy": "OldestEmulationVersion"}, "you", 15, later)
    assert (taken["holderIdentity"], taken["acquireTime"], taken["leaseTransitions"]) == (
        "you",
        later,
        1,
    )
    assert taken["strategy"] == "OldestEmulationVersion", "fields we do not own are kept"
    released = _released_spec(taken, later)
    assert (released["holderIdentity"], released["leaseDurationSeconds"]) == ("", 1)
    assert _next_spec(released, "me", 15, later)["leaseTransitions"] == 2


def test_micro_time_is_utc_with_microseconds() -> None:
    moment = datetime(2026, 1, 2, 5, 4, 5, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert _micro_time(moment) == NOW


def test_jitter_stays_within_client_go_bounds() -> None:
    pauses = [_jittered(2.0) for _ in range(1000)]
    assert all(2.0 <= p <= 2.0 * (1 + JITTER_FACTOR) for p in pauses)
    assert max(pauses) - min(pauses) > 1.0, "jitter must actually spread the retries"


@pytest.mark.parametrize(
    ("identity", "lease", "renew", "retry"),
    [("", 15, 10, 2), ("me", 10, 10, 2), ("me", 15, 10, 9), ("me", 15, 10, 0)],
)
def test_unsafe_settings_are_refused(
    identity: str, lease: float, renew: float, retry: float
) -> None:
    with pytest.raises(ValueError, match=r"identity|lease_duration"):
        LeaderElector(
            cast(KubeClient, FakeLeaseApi()),
            "ns",
            "l",
            identity,
            lease_duration=lease,
            renew_deadline=renew,
            retry_period=retry,
        )

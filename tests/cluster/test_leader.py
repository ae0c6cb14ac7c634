"""Leader election against the real host API server (:mod:`syncer.leader`).

Timing: lease 3 s, renew deadline 2 s, retry 0.5 s. A candidate pauses up to
``MAX_PAUSE`` (retry * 2.2, client-go jitter) between tries, which is why the
takeover bounds allow two such pauses. Every wait is a condition polled with
``wait_until``; the only fixed-cadence loops are the sampler and the intruder,
which stand in for processes, not for conditions.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contract.resources import LEASES, Obj
from syncer.kube.client import KubeClient
from syncer.kube.errors import Conflict
from syncer.leader import JITTER_FACTOR, LeaderElector
from syncer.local.cluster import HostCluster
from tests.conftest import ClientFactory
from tests.proxy import FaultyProxy, kubeconfig_via
from tests.support import wait_until

NAMESPACE = "default"
LEASE, RENEW, RETRY = 3.0, 2.0, 0.5
MAX_PAUSE = RETRY * (1 + JITTER_FACTOR)
"""The longest a candidate waits between two tries."""
SLACK = 0.5
"""Allowance for request latency and polling granularity."""
POLL = 0.05
MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


class Candidate:
    """One elector running ``run`` in a task; records its callbacks."""

    def __init__(self, client: KubeClient, lease: str, identity: str) -> None:
        self.changes: list[bool] = []
        self.started = 0
        self.stopped = 0
        self.leader_at_stop: list[bool] = []
        self.working = False
        self.elector = LeaderElector(
            client,
            NAMESPACE,
            lease,
            identity,
            lease_duration=LEASE,
            renew_deadline=RENEW,
            retry_period=RETRY,
            on_change=self.changes.append,
        )
        self._task = asyncio.create_task(self.elector.run(self._on_started, self._on_stopped))

    def _on_started(self) -> Awaitable[None]:
        self.started += 1
        return self._work()

    async def _work(self) -> None:
        """Stands in for the syncer's controllers: runs until leadership ends."""
        self.working = True
        try:
            await asyncio.Event().wait()
        finally:
            self.working = False

    def _on_stopped(self) -> None:
        self.stopped += 1
        self.leader_at_stop.append(self.elector.is_leader or self.elector.leader_event.is_set())

    async def leading(self) -> bool:
        return self.elector.is_leader

    async def crash(self) -> None:
        """Cancel ``run`` without releasing: the Lease is left to expire."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def shutdown(self) -> bool:
        await self.crash()
        return await self.elector.release()


Spawn = Callable[..., Awaitable[Candidate]]


@pytest.fixture
async def spawn(host_cluster: HostCluster, connect: ClientFactory) -> AsyncIterator[Spawn]:
    """``await spawn(lease, identity[, client])`` starts a candidate with its own client."""
    made: list[Candidate] = []

    async def make(lease: str, identity: str, client: KubeClient | None = None) -> Candidate:
        candidate = Candidate(client or await connect(host_cluster), lease, identity)
        made.append(candidate)
        return candidate

    yield make
    for candidate in made:
        await candidate.crash()


class Sampler:
    """Samples ``is_leader`` of all candidates every few ms; keeps any instant with two leaders."""

    def __init__(self, *candidates: Candidate) -> None:
        self.samples = 0
        self.overlaps: list[list[str]] = []
        self._candidates = candidates
        self._task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            leaders = [c.elector.identity for c in self._candidates if c.elector.is_leader]
            if len(leaders) > 1:
                self.overlaps.append(leaders)
            self.samples += 1
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        assert self.samples > 10, f"only {self.samples} samples"
        assert self.overlaps == [], f"two leaders at once: {self.overlaps[:5]}"


def _lease_name() -> str:
    return f"leader-{uuid.uuid4().hex[:8]}"


async def _spec(client: KubeClient, name: str) -> Obj:
    spec: Obj = (await client.get(LEASES, name, NAMESPACE))["spec"]
    return spec


async def _renewal_after(client: KubeClient, name: str, renew_time: str) -> Obj:
    """Wait until the Lease's renewTime moves past ``renew_time``; return the new spec."""

    async def renewed() -> Obj:
        spec = await _spec(client, name)
        return spec if spec["renewTime"] > renew_time else {}

    return await wait_until(renewed, f"renewTime of {name} past {renew_time}", RENEW, POLL)


async def _observes(candidate: Candidate, holder: str) -> None:
    async def sees() -> bool:
        return candidate.elector.observed_holder == holder

    await wait_until(sees, f"{candidate.elector.identity} to see {holder} holding", 2 * MAX_PAUSE)


async def test_single_candidate_acquires_and_keeps_renewing(
    host_cluster: HostCluster, connect: ClientFactory, spawn: Spawn
) -> None:
    client = await connect(host_cluster)
    name = _lease_name()
    solo = await spawn(name, "solo")
    await wait_until(solo.leading, "solo to lead a fresh lease", SLACK + RETRY, POLL)

    first = await _spec(client, name)
    assert first["holderIdentity"] == "solo"
    assert first["leaseDurationSeconds"] == 3
    assert first["leaseTransitions"] == 0
    assert MICRO_TIME.match(first["renewTime"]), first["renewTime"]
    second = await _renewal_after(client, name, first["renewTime"])
    third = await _renewal_after(client, name, second["renewTime"])
    assert third["acquireTime"] == first["acquireTime"], "a renewal keeps acquireTime"
    assert third["holderIdentity"] == "solo"
    assert solo.elector.observed_holder == "solo"
    assert solo.elector.leader_event.is_set()
    assert (solo.started, solo.stopped, solo.changes, solo.working) == (1, 0, [True], True)


async def test_two_candidates_never_lead_at_once(
    host_cluster: HostCluster, connect: ClientFactory, spawn: Spawn
) -> None:
    client = await connect(host_cluster)
    name = _lease_name()
    first, second = await spawn(name, "first"), await spawn(name, "second")
    sampler = Sampler(first, second)

    async def one_leads() -> list[Candidate]:
        leaders = [c for c in (first, second) if c.elector.is_leader]
        return leaders if len(leaders) == 1 else []

    [leader] = await wait_until(one_leads, "exactly one of two candidates to lead", MAX_PAUSE, POLL)
    follower = second if leader is first else first
    identity = leader.elector.identity
    await _observes(follower, identity)
    spec = await _spec(client, name)
    for _ in range(3):
        spec = await _renewal_after(client, name, spec["renewTime"])
        assert spec["holderIdentity"] == identity
    await sampler.stop()
    assert not follower.elector.is_leader
    assert (follower.started, follower.changes) == (0, [])
    assert not follower.elector.leader_event.is_set()


async def test_crashed_leader_is_replaced_after_the_lease_expires(
    host_cluster: HostCluster, connect: ClientFactory, spawn: Spawn
) -> None:
    client = await connect(host_cluster)
    name = _lease_name()
    old = await spawn(name, "old")
    await wait_until(old.leading, "old to lead", SLACK + RETRY, POLL)
    standby = await spawn(name, "standby")
    await _observes(standby, "old")
    sampler = Sampler(old, standby)

    # Crash right after a renewal was seen: the last write is then at most
    # one poll (plus a GET) older than the crash.
    await _renewal_after(client, name, (await _spec(client, name))["renewTime"])
    await old.crash()
    crashed = time.monotonic()
    assert not old.elector.is_leader
    assert (old.stopped, old.leader_at_stop, old.working) == (1, [False], False)

    bound = LEASE + 2 * MAX_PAUSE + SLACK
    await wait_until(standby.leading, "standby to take over the expired lease", bound, POLL)
    elapsed = time.monotonic() - crashed
    assert elapsed >= LEASE - 2 * POLL, f"took over after {elapsed:.2f}s, before the lease expired"
    await sampler.stop()
    spec = await _spec(client, name)
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("standby", 1)


async def test_graceful_release_hands_over_at_once(
    host_cluster: HostCluster, connect: ClientFactory, spawn: Spawn
) -> None:
    client = await connect(host_cluster)
    name = _lease_name()
    old = await spawn(name, "old")
    await wait_until(old.leading, "old to lead", SLACK + RETRY, POLL)
    standby = await spawn(name, "standby")
    await _observes(standby, "old")
    sampler = Sampler(old, standby)

    released = time.monotonic()
    assert await old.shutdown(), "release() of the holder must succeed"
    assert (old.stopped, old.changes) == (1, [True, False])
    await wait_until(standby.leading, "standby to take the released lease", MAX_PAUSE + SLACK, POLL)
    elapsed = time.monotonic() - released
    assert elapsed < LEASE / 2, f"took {elapsed:.2f}s: the release was not honoured"
    await sampler.stop()
    spec = await _spec(client, name)
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("standby", 1)
    assert not await old.elector.release(), "a non-holder must not release"
    assert (await _spec(client, name))["holderIdentity"] == "standby"


async def _intrude(client: KubeClient, name: str, first_write: asyncio.Event) -> None:
    """A rogue writer: names itself holder and keeps renewing, as fast as a real leader."""
    while True:
        lease = await client.get(LEASES, name, NAMESPACE)
        lease["spec"].update(holderIdentity="intruder", renewTime=_now_micro())
        with contextlib.suppress(Conflict):
            await client.replace(LEASES, name, lease, NAMESPACE)
            first_write.set()
        await asyncio.sleep(0.3)


def _now_micro() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def test_leader_steps_down_when_another_holder_appears(
    host_cluster: HostCluster, connect: ClientFactory, spawn: Spawn
) -> None:
    client = await connect(host_cluster)
    name = _lease_name()
    victim = await spawn(name, "victim")
    await wait_until(victim.leading, "victim to lead", SLACK + RETRY, POLL)

    first_write = asyncio.Event()
    intruder = asyncio.create_task(_intrude(client, name, first_write))
    try:

        async def overwritten_once() -> bool:
            return first_write.is_set()

        await wait_until(overwritten_once, "the intruder's first overwrite", RENEW, POLL)
        overwritten = time.monotonic()

        async def stopped() -> bool:
            return victim.stopped == 1

        bound = RENEW + RETRY + SLACK
        await wait_until(stopped, "victim's on_stopped_leading", bound, POLL)
        elapsed = time.monotonic() - overwritten
        assert (victim.leader_at_stop, victim.changes) == ([False], [True, False])
        assert not victim.working, "the leading task must be cancelled on loss"
        await _observes(victim, "intruder")
        assert not victim.elector.is_leader, f"stepped down after {elapsed:.2f}s but led again"
    finally:
        intruder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await intruder


async def test_leader_steps_down_when_it_cannot_renew(
    host_cluster: HostCluster, spawn: Spawn, tmp_path: Path
) -> None:
    partition = await FaultyProxy(host_cluster.ports["apiserver"]).start()
    kubeconfig = kubeconfig_via(host_cluster, partition.port, tmp_path / "split.kubeconfig")
    client = await KubeClient.from_kubeconfig(str(kubeconfig), name="partitioned")
    leader = await spawn(_lease_name(), "partitioned", client)
    try:
        await wait_until(leader.leading, "partitioned candidate to lead", SLACK + RETRY, POLL)

        partition.dropping = True
        split = time.monotonic()

        async def stopped() -> bool:
            return leader.stopped == 1

        bound = RENEW + RETRY + SLACK
        await wait_until(stopped, "on_stopped_leading while partitioned", bound, POLL)
        elapsed = time.monotonic() - split
        assert elapsed > RENEW - RETRY - SLACK, f"gave up after {elapsed:.2f}s, too early"
        assert (leader.leader_at_stop, leader.changes) == ([False], [True, False])
        assert not leader.working, "the leading task must be cancelled on loss"

        partition.dropping = False
        bound = RENEW + 2 * MAX_PAUSE + SLACK
        await wait_until(leader.leading, "re-acquiring the lease after the split", bound, POLL)
        assert (leader.started, leader.changes) == (2, [True, False, True])
    finally:
        await leader.crash()  # before its client goes away
        await client.close()
        await partition.stop()


async def test_record_that_looks_stale_is_timed_on_our_clock(
    host_cluster: HostCluster, connect: ClientFactory, spawn: Spawn
) -> None:
    """A renewTime decades old proves nothing (the holder's clock may be wrong): wait a lease."""
    client = await connect(host_cluster)
    name = _lease_name()
    ancient = "2001-01-01T00:00:00.000000Z"
    spec = {
        "holderIdentity": "ghost",
        "leaseDurationSeconds": 3,
        "acquireTime": ancient,
        "renewTime": ancient,
        "leaseTransitions": 4,
    }
    await client.create(LEASES, {"metadata": {"name": name}, "spec": spec}, NAMESPACE)

    began = time.monotonic()
    newcomer = await spawn(name, "newcomer")
    bound = LEASE + 2 * MAX_PAUSE + SLACK
    await wait_until(newcomer.leading, "newcomer to take the ghost's lease", bound, POLL)
    elapsed = time.monotonic() - began
    assert elapsed > LEASE, f"took over after {elapsed:.2f}s, trusting the remote renewTime"
    spec = await _spec(client, name)
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("newcomer", 5)

"""The write path's own logic, against the in-memory API (syncer.kube.api.MemoryApi):
the Writer's guards, the StatusBatcher's coalescing, the EventRecorder's deduplication.

Behaviour against real API servers (admission, conflicts, throttling) stays in
tests/cluster; these pin what the writer decides before and around a request.
"""

from __future__ import annotations

import asyncio

import pytest

from contract import naming, resources
from contract.resources import Obj
from contract.translator import Create, Delete, Patch, Side
from syncer.kube.api import MemoryApi
from syncer.kube.errors import Conflict
from syncer.writer import EventRecorder, StatusBatcher, Writer, WriteRefused

VC = "vc"
HOST_NS = "vcluster-vc"


class World:
    def __init__(self, leading: bool = True) -> None:
        self.host, self.virtual = MemoryApi(), MemoryApi()
        self.leading = leading
        self.status = StatusBatcher(self.virtual, lambda: self.leading, interval=0)
        self.writer = Writer({Side.HOST: self.host, Side.VIRTUAL: self.virtual}, VC, HOST_NS,
                             lambda: self.leading, self.status)


def host_pod(name: str = "p-x-team-x-vc", namespace: str = HOST_NS, owner: str = VC) -> Obj:
    return {"metadata": {"name": name, "namespace": namespace,
                         "labels": {naming.LABEL_MANAGED_BY: owner}}}


async def test_host_writes_stay_in_the_host_namespace_and_on_owned_objects() -> None:
    world = World()
    await world.writer.create(Create(Side.HOST, resources.PODS, host_pod()))
    with pytest.raises(WriteRefused, match="namespace 'kube-system'"):
        await world.writer.create(Create(Side.HOST, resources.PODS,
                                         host_pod(namespace="kube-system")))
    with pytest.raises(WriteRefused, match="unowned host Pod"):
        await world.writer.create(Create(Side.HOST, resources.PODS, host_pod("q", owner="other")))
    with pytest.raises(WriteRefused, match="namespace 'default'"):
        await world.writer.delete(Delete(Side.HOST, resources.PODS, "p", "default", None))
    assert world.host.calls == [f"POST /api/v1/namespaces/{HOST_NS}/pods/p-x-team-x-vc"]


async def test_a_replica_that_does_not_lead_writes_nothing() -> None:
    world = World(leading=False)
    with pytest.raises(WriteRefused, match="not the leader"):
        await world.writer.create(Create(Side.HOST, resources.PODS, host_pod()))
    assert world.host.calls == []


async def test_deletes_carry_the_uid_precondition_and_a_missing_object_is_done() -> None:
    world = World()
    created = await world.writer.create(Create(Side.HOST, resources.PODS, host_pod()))
    with pytest.raises(Conflict):
        await world.writer.delete(Delete(Side.HOST, resources.PODS, "p-x-team-x-vc", HOST_NS,
                                         "someone-else"))
    await world.writer.delete(Delete(Side.HOST, resources.PODS, "p-x-team-x-vc", HOST_NS,
                                     created["metadata"]["uid"]))
    await world.writer.delete(Delete(Side.HOST, resources.PODS, "p-x-team-x-vc", HOST_NS, None))
    assert world.host.objects == {}


async def test_virtual_status_patches_are_coalesced_into_one_write() -> None:
    world = World()
    await world.virtual.create(resources.PODS, {"metadata": {"name": "p"}}, "team")
    runner = asyncio.create_task(world.status.run())
    try:
        for phase in ("Pending", "Running"):
            await world.writer.patch(Patch(Side.VIRTUAL, resources.PODS, "p", "team",
                                           {"status": {"phase": phase}}, subresource="status"))
        assert world.virtual.calls[-1].startswith("POST")  # queued, not written
        await world.status.drain(timeout=5)
    finally:
        runner.cancel()
    assert world.virtual.calls[1:] == ["PATCH /api/v1/namespaces/team/pods/p/status"]
    assert (world.status.flushed, world.status.coalesced) == (1, 1)
    assert world.virtual.objects["/api/v1/namespaces/team/pods/p"]["status"] == {
        "phase": "Running"}


async def test_a_warning_is_recorded_once_per_period() -> None:
    virtual = MemoryApi()
    events = EventRecorder(virtual, lambda: True)
    pod = {"kind": "Pod", "metadata": {"name": "p", "namespace": "team", "uid": "u1"}}
    for _ in range(3):
        await events.warn(pod, "SyncError", "refused")
    await events.warn(pod, "SyncError", "refused again")
    assert events.recorded == 2
    assert [c.split("/")[-1] for c in virtual.calls] == ["p.1", "p.2"]

"""A create whose host copy already exists *as ours* is done, not a collision.

Found by the chaos wire test at full size (tests/chaos/test_wire.py): after
the host had been unreachable for a while, the syncer's host cache lagged
(its informers were still backing off) while a pod's ensure had already
created a referenced ConfigMap's copy. The ConfigMap's own reconcile, seeing
no copy in the cache, created it again, got AlreadyExists and, its retries
counted since the outage, told the tenant "syncing to the host cluster
failed: configmaps ... already exists" about an object that was synced. The
same happens when a connection breaks after the server made the object (the
client sends the POST again).

The engine runs in-process against the real API servers, with the host cache
deliberately not running: the moment, short in real life, in which the
syncer's own write is not in its cache yet.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from contract import naming
from contract import resources as r
from contract.resources import Obj
from contract.translator import Context, Create, Side
from syncer.controller import CacheLookup, Controller, Wiring
from syncer.informer import InformerSet
from syncer.kube.client import KubeClient
from syncer.kube.errors import AlreadyExists
from syncer.writer import EventRecorder, StatusBatcher, Writer
from tests.cluster.conftest import VC, Stack
from translators.configmaps import ConfigMapTranslator

NS = "default"


@dataclass
class Engine:
    controller: Controller
    key: str
    copy: Create
    """The host copy the translator makes of the virtual ConfigMap."""


@pytest.fixture
async def engine(stack: Stack) -> AsyncIterator[Engine]:
    """A ConfigMap controller whose virtual cache runs and whose host cache does not."""
    await stack.virtual.create(r.CONFIGMAPS, {"metadata": {"name": "lagging"},
                                              "data": {"k": "v"}}, NS)
    clients: dict[Side, KubeClient] = {Side.HOST: stack.host, Side.VIRTUAL: stack.virtual}
    informers = InformerSet(clients, stack.host_namespace, f"{naming.LABEL_MANAGED_BY}={VC}")
    status = StatusBatcher(stack.virtual, lambda: True)
    writer = Writer(clients, VC, stack.host_namespace, lambda: True, status)
    controller = Controller(
        ConfigMapTranslator({"enabled": True, "all": True}),
        Wiring(informers, writer, status, EventRecorder(stack.virtual, lambda: True),
               Context(VC, stack.host_namespace, CacheLookup(informers)), lambda: True),
    )
    virtual = informers.informer(Side.VIRTUAL, r.CONFIGMAPS)
    task = asyncio.create_task(virtual.run())
    try:
        await asyncio.wait_for(virtual.synced.wait(), 30)
        key = f"{NS}/lagging"
        actions = controller.plan(virtual.store.get(key), None)
        copy = next(a for a in actions if isinstance(a, Create))
        yield Engine(controller, key, copy)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _warnings(stack: Stack) -> list[Obj]:
    events, _ = await stack.virtual.list(r.EVENTS, NS, field_selector="reason=SyncError")
    return events


async def test_own_copy_already_there_is_synced_not_a_collision(
    stack: Stack, engine: Engine
) -> None:
    meta = engine.copy.obj["metadata"]
    made = await stack.host.create(engine.copy.resource, engine.copy.obj, meta["namespace"])
    requeue = await engine.controller.reconcile(engine.key)
    assert requeue is not None, "the key must be looked at again once the cache has the copy"
    assert not await _warnings(stack)
    kept = await stack.host.get(r.CONFIGMAPS, meta["name"], meta["namespace"])
    assert kept["metadata"]["uid"] == made["metadata"]["uid"]


async def test_someone_elses_object_under_that_name_is_still_an_error(
    stack: Stack, engine: Engine
) -> None:
    meta = engine.copy.obj["metadata"]
    await stack.host.create(r.CONFIGMAPS, {"metadata": {"name": meta["name"]}},
                            meta["namespace"])
    with pytest.raises(AlreadyExists):
        await engine.controller.reconcile(engine.key)

"""A host object whose owner depends on *another* host cache (an Event and its involved object).

Found by the chaos suite's convergence oracle (``tests/chaos``): a host Event
that reached the syncer before the host object it is about (two watch
streams, or the LISTs of a restarted syncer, in either order) was filed in
the owner index under no virtual key. Nothing filed it again when its
involved object arrived (a store recomputed the *old* index values with the
new world, so even a later update of the Event changed nothing), and its
virtual copy was never made. Both layers are tested: the store keeps the
index values it computed, and the engine re-files dependents when what they
depend on arrives.
"""

from __future__ import annotations

from typing import Any, cast

from contract import naming, resources
from contract.translator import Context, Side
from syncer.controller import CacheLookup, Controller, Wiring
from syncer.informer import InformerSet
from syncer.kube.client import KubeClient
from syncer.store import Store
from tests.unit.test_events import HOST_NS, VIRTUAL_EVENT_NAME, host_event, host_pod
from tests.unit.test_store import make
from translators.events import EventTranslator


def test_an_index_keeps_the_values_it_computed_when_the_world_changes() -> None:
    world = {"known": False}
    store = Store()
    store.add_indexer("dep", lambda obj: ["x"] if world["known"] else [])
    first = make("a", rv="1")
    store.upsert(first)
    world["known"] = True
    second = make("a", rv="2")
    store.upsert(second)
    assert store.by_index("dep", "x") == [second], "an update must file the object anew"
    world["known"] = False
    store.delete("default/a")
    assert store.by_index("dep", "x") == []


def test_reindex_files_an_unchanged_object_under_its_new_values() -> None:
    world = {"known": False}
    store = Store()
    store.add_indexer("dep", lambda obj: ["x"] if world["known"] else [])
    obj = make("a")
    store.upsert(obj)
    world["known"] = True
    store.reindex("default/a")
    assert store.by_index("dep", "x") == [obj]
    store.reindex("default/gone")  # nothing there: nothing to do


def events_controller() -> tuple[Controller, InformerSet]:
    clients = cast(dict[Side, KubeClient], {Side.HOST: None, Side.VIRTUAL: None})
    informers = InformerSet(clients, HOST_NS, f"{naming.LABEL_MANAGED_BY}=vc")
    ctx = Context("vc", HOST_NS, CacheLookup(informers))
    none = cast(Any, None)
    controller = Controller(EventTranslator(), Wiring(informers, none, none, none, ctx,
                                                      lambda: True))
    return controller, informers


async def test_an_event_seen_before_its_involved_object_is_filed_when_that_arrives() -> None:
    controller, informers = events_controller()
    key = f"demo/{VIRTUAL_EVENT_NAME}"
    informers.informer(Side.HOST, resources.EVENTS)._apply("ADDED", host_event())
    assert controller.host_for(key) is None
    informers.informer(Side.HOST, resources.PODS)._apply("ADDED", host_pod())
    assert controller.host_for(key) == host_event()
    assert controller.queue.statistics().depth == 1, "its key must be reconciled"

"""The controller's reconcile against in-memory API servers (syncer.kube.api.MemoryApi):
it reads the caches, plans, and writes through the real Writer; an idle key writes nothing.

Watches, admission and timing stay with tests/cluster; here the caches are filled
by hand, as a watch would fill them.
"""

from __future__ import annotations

from typing import cast

import pytest

from contract import naming, resources
from contract.translator import Context, Side
from syncer.controller import CacheLookup, Controller, Wiring, _Writes
from syncer.informer import InformerSet
from syncer.kube.api import MemoryApi
from syncer.kube.client import KubeClient
from syncer.writer import EventRecorder, StatusBatcher, Writer
from translators.configmaps import ConfigMapTranslator
from translators.secrets import SecretTranslator

VC = "vc"
HOST_NS = "vcluster-vc"
HOST_NAME = "cfg-x-team-x-vc"


def controller() -> tuple[Controller, InformerSet, MemoryApi]:
    host, virtual = MemoryApi(), MemoryApi()
    # the informers are never started here: their clients are not called
    informers = InformerSet(cast(dict[Side, KubeClient], {Side.HOST: None, Side.VIRTUAL: None}),
                            HOST_NS, f"{naming.LABEL_MANAGED_BY}={VC}")
    status = StatusBatcher(virtual, lambda: True)
    writer = Writer({Side.HOST: host, Side.VIRTUAL: virtual}, VC, HOST_NS, lambda: True, status)
    ctx = Context(VC, HOST_NS, CacheLookup(informers))
    wiring = Wiring(informers, writer, status, EventRecorder(virtual, lambda: True), ctx,
                    lambda: True)
    return Controller(ConfigMapTranslator({"enabled": True, "all": True}), wiring), informers, host


async def test_a_virtual_configmap_gets_its_host_copy_once() -> None:
    c, informers, host = controller()
    virtual = {"metadata": {"name": "cfg", "namespace": "team", "uid": "u1",
                            "resourceVersion": "1"}, "data": {"k": "v"}}
    informers.informer(Side.VIRTUAL, resources.CONFIGMAPS)._apply("ADDED", virtual)
    assert await c.reconcile("team/cfg") is None
    path = f"/api/v1/namespaces/{HOST_NS}/configmaps/{HOST_NAME}"
    assert host.calls == [f"POST {path}"]
    copy = host.objects[path]
    assert copy["data"] == {"k": "v"}
    assert naming.identity_of(copy) == naming.VirtualIdentity("cfg", "team", "u1", "ConfigMap")
    informers.informer(Side.HOST, resources.CONFIGMAPS)._apply("ADDED", copy)
    await c.reconcile("team/cfg")
    assert host.calls == [f"POST {path}"], "an object in sync costs no write"


async def test_ensuring_a_kind_not_declared_in_ensures_is_a_bug_not_a_skip() -> None:
    c, _, host = controller()
    writes = _Writes(c, None)
    with pytest.raises(TypeError, match="configMaps ensures secrets, which it does not declare"):
        await writes.ensure(SecretTranslator, "team/s")
    assert host.calls == []

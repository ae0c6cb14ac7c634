"""The engine end to end: a real ``vcsync run`` process between real control planes.

The plugin under test is the ConfigMap translator with ``all: true`` (no pods
needed): create/update/delete flow down, host edits are overwritten, orphans
are collected after a restart, an idle restart writes nothing, unmanaged host
objects are never touched, a conflict produces a Warning event without
blocking other keys, SIGTERM exits 0, and two replicas hand over the Lease.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from syncer.kube import resources as r
from syncer.kube.client import KubeClient
from syncer.kube.errors import NotFound
from syncer.local.cluster import HostCluster, VirtualControlPlane
from syncer.local.syncer_process import SyncerProcess
from tests.conftest import ClientFactory
from tests.support import http_get, metric_total, syncer_idle, wait_until
from translators import naming

Obj = dict[str, Any]
VC = "vc1"
NS = "team"
_CONFIG = {
    "sync": {
        "toHost": {"configMaps": {"all": True}},
        "fromHost": {"nodes": {"enabled": False}, "events": {"enabled": False}},
    },
    "syncer": {
        "shards": 2,
        "workersPerShard": 2,
        "leaderElection": {"leaseDuration": 4, "renewDeadline": 3, "retryPeriod": 0.5},
    },
}


@dataclass
class Stack:
    """Host + virtual control planes, their clients, and syncer processes between them."""

    host_cluster: HostCluster
    virtual_cluster: VirtualControlPlane
    host: KubeClient
    virtual: KubeClient
    host_namespace: str
    root: Path
    syncers: list[SyncerProcess] = field(default_factory=list)

    def syncer(self, identity: str = "", *extra: str) -> SyncerProcess:
        config = self.root / "sync.yaml"
        config.write_text(yaml.safe_dump(_CONFIG))
        proc = SyncerProcess(
            name=VC, host=self.host_cluster, virtual=self.virtual_cluster,
            host_namespace=self.host_namespace, root=self.root, config=config,
            identity=identity, extra_args=list(extra),
        )
        self.syncers.append(proc)
        return proc

    async def host_cm(self, name: str) -> Obj | None:
        try:
            return await self.host.get(r.CONFIGMAPS, naming.host_name(name, NS, VC),
                                       self.host_namespace)
        except NotFound:
            return None


@pytest.fixture
async def stack(
    host_cluster: HostCluster, virtual_cluster: VirtualControlPlane, connect: ClientFactory,
    tmp_path: Path,
) -> AsyncIterator[Stack]:
    host, virtual = await connect(host_cluster), await connect(virtual_cluster)
    host_namespace = f"vcluster-{uuid.uuid4().hex[:8]}"
    await host.create(r.NAMESPACES, {"metadata": {"name": host_namespace}})
    await virtual.create(r.NAMESPACES, {"metadata": {"name": NS}})
    s = Stack(host_cluster, virtual_cluster, host, virtual, host_namespace, tmp_path)
    yield s
    for proc in s.syncers:
        proc.stop()


@pytest.fixture
def started(stack: Stack) -> SyncerProcess:
    return stack.syncer().start()


def _cm(name: str, data: dict[str, str], labels: dict[str, str] | None = None) -> Obj:
    return {"metadata": {"name": name, "labels": labels or {}}, "data": data}


async def _host_data(stack: Stack, name: str) -> dict[str, str] | None:
    obj = await stack.host_cm(name)
    return None if obj is None else obj.get("data")


async def test_configmap_create_update_delete_flow_down(
    stack: Stack, started: SyncerProcess
) -> None:
    await stack.virtual.create(r.CONFIGMAPS, _cm("app-cfg", {"k": "v1"}, {"tier": "web"}), NS)
    host = await wait_until(lambda: stack.host_cm("app-cfg"), "app-cfg on the host")
    assert host is not None
    meta = host["metadata"]
    assert meta["name"] == "app-cfg-x-team-x-vc1"
    assert meta["labels"] == {"tier": "web", naming.LABEL_MANAGED_BY: VC,
                              naming.LABEL_NAMESPACE: NS}
    virtual = await stack.virtual.get(r.CONFIGMAPS, "app-cfg", NS)
    assert meta["annotations"][naming.ANNOTATION_OBJECT_UID] == virtual["metadata"]["uid"]
    assert meta["annotations"][naming.ANNOTATION_OBJECT_KIND] == "ConfigMap"
    assert not any(k.startswith(naming.PREFIX) for k in virtual["metadata"].get("labels", {}))

    await stack.virtual.patch(r.CONFIGMAPS, "app-cfg", {"data": {"k": "v2"}}, NS)
    await wait_until(lambda: _is(_host_data(stack, "app-cfg"), {"k": "v2"}), "update on host")

    host_name = meta["name"]
    await stack.host.patch(r.CONFIGMAPS, host_name, {"data": {"k": "hacked"}},
                           stack.host_namespace)
    await wait_until(lambda: _is(_host_data(stack, "app-cfg"), {"k": "v2"}),
                     "the host-side edit to be overwritten by the virtual state")

    await stack.virtual.delete(r.CONFIGMAPS, "app-cfg", NS)
    await wait_until(lambda: _is(stack.host_cm("app-cfg"), None), "host copy to be deleted")


async def _both_synced(stack: Stack, *names: str) -> bool:
    return all([await stack.host_cm(name) is not None for name in names])


async def _is(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def test_unmanaged_host_object_is_never_touched_and_conflict_warns(
    stack: Stack, started: SyncerProcess
) -> None:
    squatter = {"metadata": {"name": naming.host_name("taken", NS, VC)}, "data": {"owner": "host"}}
    await stack.host.create(r.CONFIGMAPS, squatter, stack.host_namespace)
    await stack.virtual.create(r.CONFIGMAPS, _cm("taken", {"k": "v"}), NS)
    await stack.virtual.create(r.CONFIGMAPS, _cm("free", {"k": "v"}), NS)
    await wait_until(lambda: stack.host_cm("free"), "an unrelated key to sync meanwhile")

    async def warning() -> list[Obj]:
        events, _ = await stack.virtual.list(r.EVENTS, NS)
        return [e for e in events if e["involvedObject"]["name"] == "taken"
                and e["type"] == "Warning"]

    found = await wait_until(warning, "a Warning event on the conflicting ConfigMap")
    message = found[0]["message"]
    assert stack.host_namespace not in message, message
    assert "-x-" not in message, message
    host = await stack.host_cm("taken")
    assert host is not None
    assert host["data"] == {"owner": "host"}
    assert naming.LABEL_MANAGED_BY not in (host["metadata"].get("labels") or {})


async def test_controlled_by_label_is_an_escape_hatch(
    stack: Stack, started: SyncerProcess
) -> None:
    await stack.virtual.create(
        r.CONFIGMAPS, _cm("hands-off", {"k": "v"}, {naming.LABEL_CONTROLLED_BY: "other"}), NS
    )
    await stack.virtual.create(r.CONFIGMAPS, _cm("after", {"k": "v"}), NS)
    await wait_until(lambda: stack.host_cm("after"), "a later ConfigMap to sync")
    await wait_until(lambda: syncer_idle(started.url), "the syncer's queues to drain")
    assert await stack.host_cm("hands-off") is None


async def test_restart_collects_orphans_and_idle_restart_writes_nothing(
    stack: Stack,
) -> None:
    first = stack.syncer().start()
    for name in ("keep", "drop"):
        await stack.virtual.create(r.CONFIGMAPS, _cm(name, {"k": "v1"}), NS)
    await wait_until(lambda: _both_synced(stack, "keep", "drop"), "keep and drop on the host")
    first.stop()
    assert first.exit_code() == 0, "SIGTERM must drain and exit 0"

    await stack.virtual.delete(r.CONFIGMAPS, "drop", NS)
    await stack.virtual.patch(r.CONFIGMAPS, "keep", {"data": {"k": "v2"}}, NS)
    second = stack.syncer().start()
    await wait_until(lambda: _is(stack.host_cm("drop"), None), "the orphan to be collected")
    await wait_until(lambda: _is(_host_data(stack, "keep"), {"k": "v2"}), "missed update")
    second.stop()

    third = stack.syncer().start()
    await wait_until(lambda: syncer_idle(third.url), "the resync after restart to finish")
    assert metric_total(third.url, "vcsync_writes_total") == 0
    non_get = sum(
        metric_total(third.url, "rest_client_requests_total", cluster="host", method=m)
        for m in ("POST", "PATCH", "PUT", "DELETE")
    )
    assert non_get == 0, "an idle restart must not write to the host"


async def test_two_replicas_hand_over_the_lease(stack: Stack) -> None:
    a = stack.syncer("replica-a", "--leader-elect").start()
    b = stack.syncer("replica-b", "--leader-elect").start()
    replicas = {"replica-a": a, "replica-b": b}

    def leaders() -> list[str]:
        found = []
        for name, proc in replicas.items():
            if proc.exit_code() is None and orjson.loads(
                http_get(f"{proc.url}/debug/statistics")
            )["leading"]:
                found.append(name)
        assert len(found) <= 1, f"two leaders at once: {found}"
        return found

    leader = (await wait_until(leaders, "one replica to take the lease", timeout=20))[0]
    await stack.virtual.create(r.CONFIGMAPS, _cm("before", {"k": "v"}), NS)
    await wait_until(lambda: stack.host_cm("before"), "sync by the first leader")
    standby = "replica-b" if leader == "replica-a" else "replica-a"
    assert metric_total(replicas[standby].url, "vcsync_writes_total") == 0, "standby wrote"

    replicas[leader].kill()
    await wait_until(lambda: leaders() == [standby], "the standby to take over", timeout=15)
    await stack.virtual.create(r.CONFIGMAPS, _cm("after", {"k": "v"}), NS)
    await wait_until(lambda: stack.host_cm("after"), "sync by the new leader")

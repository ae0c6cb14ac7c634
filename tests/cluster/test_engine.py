"""The engine end to end: a real ``vcsync run`` process between real control planes.

The plugin under test is the ConfigMap translator with ``all: true`` (no pods
needed): create/update/delete flow down, host edits are overwritten, orphans
are collected after a restart, an idle restart writes nothing, unmanaged host
objects are never touched, a conflict produces a Warning event without
blocking other keys, SIGTERM exits 0, and two replicas hand over the Lease.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from contract import naming
from contract import resources as r
from contract.resources import Obj
from contract.translator import Create, Side
from syncer.kube.client import KubeClient
from syncer.local.syncer_process import SyncerProcess
from syncer.writer import StatusBatcher, Writer
from tests.cluster.conftest import VC, Stack, sync_config
from tests.support import (
    api_host,
    http_get,
    metric_samples,
    metric_total,
    syncer_idle,
    wait_until,
)

NS = "team"


@pytest.fixture
def config() -> Obj:
    return sync_config({"configMaps": {"all": True}},
                       {"nodes": {"enabled": False}, "events": {"enabled": False}})


@pytest.fixture
async def team(stack: Stack) -> Stack:
    await stack.virtual.create(r.NAMESPACES, {"metadata": {"name": NS}})
    return stack


@pytest.fixture
def started(team: Stack) -> SyncerProcess:
    return team.syncer().start()


async def _host_cm(stack: Stack, name: str) -> Obj | None:
    return await stack.host_get(r.CONFIGMAPS, name, NS)


def _cm(name: str, data: dict[str, str], labels: dict[str, str] | None = None) -> Obj:
    return {"metadata": {"name": name, "labels": labels or {}}, "data": data}


async def _host_data(stack: Stack, name: str) -> dict[str, str] | None:
    obj = await _host_cm(stack, name)
    return None if obj is None else obj.get("data")


async def test_configmap_create_update_delete_flow_down(
    team: Stack, started: SyncerProcess
) -> None:
    stack = team
    await stack.virtual.create(r.CONFIGMAPS, _cm("app-cfg", {"k": "v1"}, {"tier": "web"}), NS)
    host = await wait_until(lambda: _host_cm(stack, "app-cfg"), "app-cfg on the host")
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
    await wait_until(lambda: _is(_host_cm(stack, "app-cfg"), None), "host copy to be deleted")


async def _both_synced(stack: Stack, *names: str) -> bool:
    return all([await _host_cm(stack, name) is not None for name in names])


async def _is(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def test_unmanaged_host_object_is_never_touched_and_conflict_warns(
    team: Stack, started: SyncerProcess
) -> None:
    stack = team
    squatter = {"metadata": {"name": naming.host_name("taken", NS, VC)}, "data": {"owner": "host"}}
    await stack.host.create(r.CONFIGMAPS, squatter, stack.host_namespace)
    await stack.virtual.create(r.CONFIGMAPS, _cm("taken", {"k": "v"}), NS)
    await stack.virtual.create(r.CONFIGMAPS, _cm("free", {"k": "v"}), NS)
    await wait_until(lambda: _host_cm(stack, "free"), "an unrelated key to sync meanwhile")

    async def warning() -> list[Obj]:
        events, _ = await stack.virtual.list(r.EVENTS, NS)
        return [e for e in events if e["involvedObject"]["name"] == "taken"
                and e["type"] == "Warning"]

    found = await wait_until(warning, "a Warning event on the conflicting ConfigMap")
    message = found[0]["message"]
    assert stack.host_namespace not in message, message
    assert "-x-" not in message, message
    host = await _host_cm(stack, "taken")
    assert host is not None
    assert host["data"] == {"owner": "host"}
    assert naming.LABEL_MANAGED_BY not in (host["metadata"].get("labels") or {})


async def test_controlled_by_label_is_an_escape_hatch(
    team: Stack, started: SyncerProcess
) -> None:
    stack = team
    await stack.virtual.create(
        r.CONFIGMAPS, _cm("hands-off", {"k": "v"}, {naming.LABEL_CONTROLLED_BY: "other"}), NS
    )
    await stack.virtual.create(r.CONFIGMAPS, _cm("after", {"k": "v"}), NS)
    await wait_until(lambda: _host_cm(stack, "after"), "a later ConfigMap to sync")
    await wait_until(lambda: syncer_idle(started.url), "the syncer's queues to drain")
    assert await _host_cm(stack, "hands-off") is None


async def test_restart_collects_orphans_and_idle_restart_writes_nothing(team: Stack) -> None:
    stack = team
    first = stack.syncer().start()
    for name in ("keep", "drop"):
        await stack.virtual.create(r.CONFIGMAPS, _cm(name, {"k": "v1"}), NS)
    await wait_until(lambda: _both_synced(stack, "keep", "drop"), "keep and drop on the host")
    first.stop()
    assert first.exit_code() == 0, "SIGTERM must drain and exit 0"

    await stack.virtual.delete(r.CONFIGMAPS, "drop", NS)
    await stack.virtual.patch(r.CONFIGMAPS, "keep", {"data": {"k": "v2"}}, NS)
    second = stack.syncer().start()
    await wait_until(lambda: _is(_host_cm(stack, "drop"), None), "the orphan to be collected")
    await wait_until(lambda: _is(_host_data(stack, "keep"), {"k": "v2"}), "missed update")
    second.stop()

    third = stack.syncer().start()
    await wait_until(lambda: syncer_idle(third.url), "the resync after restart to finish")
    assert metric_samples(third.url, "vcsync_writes_total", side="host") == {}
    host = api_host(stack.host_cluster)
    assert metric_total(third.url, "rest_client_requests_total", host=host, method="GET") > 0, \
        "no request counted under the host API server's host label"
    non_get = sum(
        metric_total(third.url, "rest_client_requests_total", host=host, method=m)
        for m in ("POST", "PATCH", "PUT", "DELETE")
    )
    assert non_get == 0, "an idle restart must not write to the host"


async def test_two_replicas_hand_over_the_lease(team: Stack) -> None:
    stack = team
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
    await wait_until(lambda: _host_cm(stack, "before"), "sync by the first leader")
    standby = "replica-b" if leader == "replica-a" else "replica-a"
    assert metric_total(replicas[standby].url, "vcsync_writes_total") == 0, "standby wrote"

    replicas[leader].kill()
    await wait_until(lambda: leaders() == [standby], "the standby to take over", timeout=15)
    await stack.virtual.create(r.CONFIGMAPS, _cm("after", {"k": "v"}), NS)
    await wait_until(lambda: _host_cm(stack, "after"), "sync by the new leader")


async def test_a_repeated_binding_is_not_an_error(team: Stack) -> None:
    """The cache may lag behind our own binding; binding again (409) counts as done."""
    await team.virtual.create(r.PODS, {"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "c", "image": "busybox"}]}}, NS)
    clients: dict[Side, KubeClient] = {Side.VIRTUAL: team.virtual, Side.HOST: team.host}
    writer = Writer(clients, VC, team.host_namespace, lambda: True,
                    StatusBatcher(team.virtual, lambda: True))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p", "namespace": NS},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "kwok-node-0"}}
    action = Create(Side.VIRTUAL, r.PODS, binding, subresource="binding", name="p")
    await writer.create(action)
    assert await writer.create(action) == {}
    pod = await team.virtual_get(r.PODS, "p", NS)
    assert pod is not None
    assert pod["spec"]["nodeName"] == "kwok-node-0"

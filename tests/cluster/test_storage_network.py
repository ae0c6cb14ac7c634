"""Storage, classes, Ingress, NetworkPolicy, PriorityClass, quota (scenarios 28, 30-32, 36).

Cluster-scoped host objects (StorageClasses, PersistentVolumes) get names
unique to the test, since the host cluster is shared by the whole session.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from contract import naming
from contract import resources as r
from contract.resources import Obj
from syncer.kube.errors import NotFound
from syncer.local.syncer_process import SyncerProcess
from tests.cluster.conftest import VC, Stack, sync_config
from tests.support import wait_until

NS = "data"
SUFFIX = uuid.uuid4().hex[:6]
SELECTED = {"vcsync-test": f"yes-{SUFFIX}"}


@pytest.fixture
async def data(stack: Stack) -> Stack:
    await stack.virtual.create(r.NAMESPACES, {"metadata": {"name": NS}})
    return stack


@pytest.fixture
def syncer(data: Stack) -> SyncerProcess:
    return data.syncer().start()


def _claim(name: str, storage_class: str) -> Obj:
    return {"metadata": {"name": name}, "spec": {
        "accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
        "resources": {"requests": {"storage": "1Gi"}}}}


async def _warning(stack: Stack, name: str, reason: str) -> list[Obj]:
    events, _ = await stack.virtual.list(r.EVENTS, NS)
    return [e for e in events if e["involvedObject"]["name"] == name and e["reason"] == reason]


async def test_claim_binds_on_the_host_and_shows_bound(data: Stack, syncer: SyncerProcess) -> None:
    """Scenario 30: static binding by the host's PV controller, reflected in the tenant's view."""
    storage_class, volume = f"manual-{SUFFIX}", f"pv-{uuid.uuid4().hex[:8]}"
    await data.host.create(r.PVS, {"metadata": {"name": volume}, "spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
        "storageClassName": storage_class, "hostPath": {"path": f"/tmp/{volume}"}}})
    try:
        await data.virtual.create(r.PVCS, _claim("claim", storage_class), NS)

        async def bound() -> Obj | None:
            claim = await data.virtual_get(r.PVCS, "claim", NS)
            phase = (claim or {}).get("status", {}).get("phase")
            if claim is None or phase != "Bound" or not claim["spec"].get("volumeName"):
                return None
            return claim

        claim = await wait_until(bound, "the virtual claim Bound with a volume name", timeout=60)
        assert claim is not None
        assert claim["spec"]["volumeName"] == volume
        placeholder = await data.virtual.get(r.PVS, volume)
        assert placeholder["spec"]["claimRef"]["name"] == "claim"
        assert placeholder["spec"]["claimRef"]["namespace"] == NS
    finally:
        await data.host.delete(r.PVS, volume)


@pytest.mark.parametrize("config", [sync_config(
    from_host={"storageClasses": {"enabled": True, "selector": {"labels": SELECTED}}})])
async def test_selected_storage_classes_appear_and_others_are_refused(
    data: Stack, syncer: SyncerProcess
) -> None:
    """Scenario 28 for StorageClasses."""
    fast, slow = f"fast-{SUFFIX}", f"slow-{SUFFIX}"
    for name, labels in ((fast, SELECTED), (slow, {})):
        await data.host.create(r.STORAGECLASSES, {
            "metadata": {"name": name, "labels": labels}, "provisioner": "example.com/none"})
    try:
        copy = await wait_until(lambda: _get_cluster(data, r.STORAGECLASSES, fast),
                                "the selected StorageClass in the virtual cluster")
        assert copy is not None
        assert copy["provisioner"] == "example.com/none"
        assert await _get_cluster(data, r.STORAGECLASSES, slow) is None
        await data.virtual.create(r.PVCS, _claim("refused", slow), NS)
        events = await wait_until(lambda: _warning(data, "refused", "StorageClassNotSynced"),
                                  "a Warning for the claim naming an unsynced class")
        assert data.host_namespace not in events[0]["message"]
        assert await data.host_get(r.PVCS, "refused", NS) is None
    finally:
        for name in (fast, slow):
            await data.host.delete(r.STORAGECLASSES, name)
    await wait_until(lambda: _is_none(_get_cluster(data, r.STORAGECLASSES, fast)),
                     "the copy to vanish with its host class")


async def _get_cluster(stack: Stack, res: r.Resource, name: str) -> Obj | None:
    try:
        return await stack.virtual.get(res, name)
    except NotFound:
        return None


async def _is_none(value: Any) -> bool:
    return await value is None


@pytest.mark.parametrize("config", [sync_config({"ingresses": {"enabled": True}})])
async def test_ingress_backends_and_tls_secrets_are_translated(
    data: Stack, syncer: SyncerProcess
) -> None:
    """Scenario 31."""
    await data.virtual.create(r.SERVICES, {"metadata": {"name": "web"}, "spec": {
        "selector": {"app": "web"}, "ports": [{"port": 80}]}}, NS)
    await data.virtual.create(r.SECRETS, {"metadata": {"name": "tls-cert"},
                                          "stringData": {"tls.crt": "c", "tls.key": "k"}}, NS)
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    await data.virtual.create(r.INGRESSES, {"metadata": {"name": "web"}, "spec": {
        "tls": [{"hosts": ["shop.example"], "secretName": "tls-cert"}],
        "rules": [{"host": "shop.example", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": backend}]}}]}}, NS)
    host = await wait_until(lambda: data.host_get(r.INGRESSES, "web", NS), "the host Ingress")
    assert host is not None
    path = host["spec"]["rules"][0]["http"]["paths"][0]
    assert path["backend"]["service"]["name"] == data.host_name("web", NS)
    assert host["spec"]["tls"][0]["secretName"] == data.host_name("tls-cert", NS)
    assert await data.host_get(r.SECRETS, "tls-cert", NS) is not None


@pytest.mark.parametrize("config", [sync_config({"networkPolicies": {"enabled": True}})])
async def test_network_policy_selects_only_this_tenants_pods(
    data: Stack, syncer: SyncerProcess
) -> None:
    """Scenario 32."""
    await data.virtual.create(r.NETWORKPOLICIES, {"metadata": {"name": "db"}, "spec": {
        "podSelector": {"matchLabels": {"app": "db"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}},
                              {"ipBlock": {"cidr": "192.0.2.0/24"}}],
                     "ports": [{"protocol": "TCP", "port": 5432}]}]}}, NS)
    host = await wait_until(lambda: data.host_get(r.NETWORKPOLICIES, "db", NS),
                            "the host NetworkPolicy")
    assert host is not None
    spec = host["spec"]
    owned = {naming.LABEL_MANAGED_BY: VC, naming.LABEL_NAMESPACE: NS}
    assert spec["podSelector"]["matchLabels"] == {"app": "db", **owned}
    peers = spec["ingress"][0]["from"]
    assert peers[0]["podSelector"]["matchLabels"][naming.LABEL_MANAGED_BY] == VC
    assert "namespaceSelector" not in peers[0], "host pods all live in one namespace"
    assert peers[1] == {"ipBlock": {"cidr": "192.0.2.0/24"}}
    assert spec["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 5432}]


@pytest.mark.parametrize("config", [sync_config(
    {"priorityClasses": {"enabled": True}}, policies={"priorityClasses": {"maxValue": 5000}})])
async def test_priority_classes_are_synced_under_cluster_scoped_names(
    data: Stack, syncer: SyncerProcess
) -> None:
    await data.virtual.create(r.PRIORITYCLASSES, {"metadata": {"name": "high"},
                                                  "value": 1000})
    name = naming.host_cluster_scoped_name("high", data.host_namespace, VC)

    async def host_class() -> Obj | None:
        try:
            return await data.host.get(r.PRIORITYCLASSES, name)
        except NotFound:
            return None

    host = await wait_until(host_class, "the host PriorityClass")
    assert host is not None
    try:
        assert host["value"] == 1000, "below the platform's policies.priorityClasses.maxValue"
        assert host["preemptionPolicy"] == "Never", "allowPreemption is false by default"
        assert not host.get("globalDefault")
        await data.virtual.create(r.PODS, {"metadata": {"name": "urgent"}, "spec": {
            "priorityClassName": "high", "containers": [{"name": "c", "image": "busybox"}]}}, NS)
        pod = await wait_until(lambda: data.host_get(r.PODS, "urgent", NS), "the host pod")
        assert pod is not None
        assert pod["spec"]["priorityClassName"] == name
    finally:
        await data.virtual.delete(r.PRIORITYCLASSES, "high")


async def test_quota_rejection_warns_and_syncs_once_quota_frees(
    data: Stack, syncer: SyncerProcess
) -> None:
    """Host-namespace quota: a Warning, others keep syncing, sync once the cause is gone."""
    await data.host.create(r.Resource("", "v1", "resourcequotas", "ResourceQuota"), {
        "metadata": {"name": "pods"}, "spec": {"hard": {"pods": "1"}}}, data.host_namespace)
    pod = {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    await data.virtual.create(r.PODS, {"metadata": {"name": "first"}, **pod}, NS)
    await wait_until(lambda: data.host_get(r.PODS, "first", NS), "the first pod on the host")
    await data.virtual.create(r.PODS, {"metadata": {"name": "second"}, **pod}, NS)
    events = await wait_until(lambda: _warning(data, "second", "SyncError"),
                              "a Warning event for the pod over quota")
    assert "exceeded quota" in events[0]["message"]
    assert data.host_namespace not in events[0]["message"]
    await data.virtual.create(r.SERVICES, {"metadata": {"name": "still"}, "spec": {
        "ports": [{"port": 80}]}}, NS)
    await wait_until(lambda: data.host_get(r.SERVICES, "still", NS), "other kinds keep syncing")
    await data.virtual.delete(r.PODS, "first", NS, grace_period=0)
    await wait_until(lambda: data.host_get(r.PODS, "second", NS),
                     "the second pod once quota frees", timeout=120)


@pytest.mark.parametrize("config", [sync_config(
    {"ingresses": {"enabled": True}},
    {"ingressClasses": {"enabled": True, "selector": {"labels": SELECTED}}})])
async def test_selected_ingress_classes_appear_and_others_are_refused(
    data: Stack, syncer: SyncerProcess
) -> None:
    """Scenario 28 for IngressClasses."""
    public, private = f"public-{SUFFIX}", f"private-{SUFFIX}"
    for name, labels in ((public, SELECTED), (private, {})):
        await data.host.create(r.INGRESSCLASSES, {
            "metadata": {"name": name, "labels": labels},
            "spec": {"controller": "example.com/ingress"}})
    try:
        copy = await wait_until(lambda: _get_cluster(data, r.INGRESSCLASSES, public),
                                "the selected IngressClass in the virtual cluster")
        assert copy is not None
        assert copy["spec"]["controller"] == "example.com/ingress"
        assert await _get_cluster(data, r.INGRESSCLASSES, private) is None
        await data.virtual.create(r.INGRESSES, {"metadata": {"name": "hidden"}, "spec": {
            "ingressClassName": private, "defaultBackend": {
                "service": {"name": "web", "port": {"number": 80}}}}}, NS)
        await wait_until(lambda: _warning(data, "hidden", "IngressClassNotSynced"),
                         "a Warning for the Ingress naming an unsynced class")
        assert await data.host_get(r.INGRESSES, "hidden", NS) is None
    finally:
        for name in (public, private):
            await data.host.delete(r.INGRESSCLASSES, name)

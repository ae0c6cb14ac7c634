"""Shared fixtures of the security suites: hostile tenants and bad input.

A platform runs many virtual clusters on one host cluster, each tenant with
cluster-admin inside its own. These fixtures build that situation from real
processes: two virtual clusters on the session's host cluster, each with its
own host namespace and ``vcsync run`` process, plus objects that exist only on
the host (a Secret in a namespace no tenant owns, a system pod in kube-system,
a PriorityClass) for attacks to aim at.

Starting a tenant costs ~15 s on the test machine, so the pair is
package-scoped: every test of ``tests/security`` shares it and works in
virtual namespaces of its own (:func:`fresh_namespace`). Tests that need a
syncer of their own (other configuration, a clean memory measurement) use the
function-scoped ``stack`` re-exported from ``tests.cluster.conftest``.

Stable interface for other modules (keep it): ``Tenants`` (``a``: vc1, the
attacker, PSS baseline, NetworkPolicies and PriorityClasses synced; ``b``:
vc2, the victim, PSS restricted, NetworkPolicies synced), ``tenants``,
``victim``, ``host_targets``, ``fresh_namespace``, ``restricted_pod``,
``warnings``, ``wait_warning``, ``resource_versions``, ``host_copy``, ``tainted_node``,
``stack``, ``config``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from contract import resources as r
from contract.resources import Obj
from syncer.kube.client import KubeClient
from syncer.kube.errors import NotFound
from syncer.local.cluster import HostCluster, VirtualControlPlane, fake_node
from tests.cluster.conftest import Stack, config, open_stack, stack, sync_config  # noqa: F401
from tests.conftest import track, untrack
from tests.support import wait_until

TENANT_A = "vc1"
TENANT_B = "vc2"
ENDPOINTSLICES = r.Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice")
CONFIG_A = sync_config(
    {"networkPolicies": {"enabled": True}, "priorityClasses": {"enabled": True}},
    policies={"podSecurityStandard": "baseline"},
)
CONFIG_B = sync_config(
    {"networkPolicies": {"enabled": True}}, policies={"podSecurityStandard": "restricted"}
)
VICTIM_NS = "team"
VICTIM_LABELS = {"app": "victim", "tier": "db"}
"""Labels of the victim's pod, also worn by the host system pod: what attacks select."""
HOST_ONLY_NS = "hostile-platform"
HOST_SECRET = "platform-credentials"
HOST_SYSTEM_POD = "hostile-system-pod"
HOST_PRIORITY_CLASS = "hostile-platform-high"
SYSTEM_CLASSES = ("system-cluster-critical", "system-node-critical")
_SETTLE = 90.0


@dataclass
class Tenants:
    """Two virtual clusters on one host: ``a`` attacks, ``b`` is attacked."""

    a: Stack
    b: Stack


@dataclass(frozen=True)
class Victim:
    """Tenant B's workload in virtual namespace ``team``: a Ready pod, a Service selecting
    it, and the ConfigMap and Secret the pod mounts (all synced to B's host namespace)."""

    namespace: str
    pod: str
    pod_ip: str
    service: str
    cluster_ip: str
    config_map: str
    secret: str


@dataclass(frozen=True)
class HostTargets:
    """Objects only the host has: what a tenant must never read, select or change."""

    namespace: str
    secret: str
    system_pod: str
    system_pod_ip: str
    priority_class: str
    api_cluster_ip: str
    """ClusterIP of the host's ``default/kubernetes``: the host API server as pods see it."""


# -- helpers ------------------------------------------------------------------------------


async def fresh_namespace(tenant: Stack, prefix: str) -> str:
    """A new virtual namespace with a unique, short name (host names stay under 63)."""
    name = f"{prefix}-{uuid.uuid4().hex[:5]}"
    await tenant.virtual.create(r.NAMESPACES, {"metadata": {"name": name}})
    return name


def restricted_pod(name: str, labels: dict[str, str] | None = None, **spec: Any) -> Obj:
    """A pod the restricted Pod Security Standard admits (so every tenant's syncer takes it)."""
    container = {
        "name": "main", "image": "busybox",
        "securityContext": {"allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}},
    }
    return {
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [container],
            **spec,
        },
    }


async def warnings(tenant: Stack, namespace: str, name: str, reason: str = "") -> list[Obj]:
    """Warning events on virtual object ``namespace/name`` (of ``reason``, if given)."""
    events, _ = await tenant.virtual.list(r.EVENTS, namespace)
    return [e for e in events if e["involvedObject"].get("name") == name
            and e.get("type") == "Warning" and (not reason or e.get("reason") == reason)]


async def wait_warning(tenant: Stack, namespace: str, name: str, reason: str = "",
                       timeout: float = 60.0) -> Obj:
    """The first Warning event on ``namespace/name`` (fails after ``timeout``)."""
    found = await wait_until(lambda: warnings(tenant, namespace, name, reason),
                             f"a Warning event {reason or ''} on {namespace}/{name}", timeout)
    first: Obj = found[0]
    return first


async def host_copy(tenant: Stack, kind: r.Resource, name: str, namespace: str,
                    timeout: float = 60.0) -> Obj:
    """The host copy of ``tenant``'s virtual ``namespace/name`` once it exists."""
    async def probe() -> Obj:
        return await tenant.host_get(kind, name, namespace) or {}

    return await wait_until(probe, f"{kind.kind} {namespace}/{name} of {tenant.name} on the host",
                            timeout)


HOST_KINDS = (r.PODS, r.SERVICES, r.ENDPOINTS, r.CONFIGMAPS, r.SECRETS, r.NETWORKPOLICIES,
              ENDPOINTSLICES)
"""Namespaced kinds whose objects the isolation tests snapshot (events change by nature)."""


async def resource_versions(client: KubeClient, namespace: str | None,
                            kinds: Iterable[r.Resource] = HOST_KINDS) -> dict[str, str]:
    """``kind/name`` -> resourceVersion of every object of ``kinds`` in ``namespace``."""
    versions: dict[str, str] = {}
    for kind in kinds:
        items, _ = await client.list(kind, namespace)
        for item in items:
            meta = item["metadata"]
            versions[f"{kind.plural}/{meta['name']}"] = meta["resourceVersion"]
    return versions


def pod_ready(pod: Obj | None) -> bool:
    conditions = (pod or {}).get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


async def ready_pod(client: KubeClient, name: str, namespace: str,
                    timeout: float = _SETTLE) -> Obj:
    """The pod once it is Ready (with its IP)."""
    async def probe() -> Obj:
        try:
            pod = await client.get(r.PODS, name, namespace)
        except NotFound:
            return {}
        return pod if pod_ready(pod) and pod["status"].get("podIP") else {}

    return await wait_until(probe, f"pod {namespace}/{name} Ready", timeout)


@contextlib.asynccontextmanager
async def tainted_node(host: KubeClient, name: str, taint: Obj,
                       room: dict[str, str] | None = None) -> AsyncIterator[str]:
    """A host node (kwok's) with ``taint`` and, if given, only ``room`` to allocate; Ready
    inside the block, deleted after it."""
    node = fake_node(name)
    node["spec"] = {"taints": [taint]}
    if room is not None:
        node["status"] = {"allocatable": room, "capacity": room}
    await host.create(r.NODES, node)

    async def ready() -> bool:
        conditions = (await host.get(r.NODES, name)).get("status", {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    await wait_until(ready, f"host node {name} Ready", timeout=60)
    try:
        yield name
    finally:
        await host.delete(r.NODES, name)


# -- tenants ----------------------------------------------------------------------------------


async def _tenant(host_cluster: HostCluster, root: Path, name: str, cfg: Obj) -> Stack:
    """One virtual cluster with its host namespace and a running syncer."""
    plane = VirtualControlPlane(name=name, root=root / "control-plane", store="memory")
    track(plane)
    await asyncio.to_thread(plane.start)
    host = await KubeClient.from_kubeconfig(str(host_cluster.kubeconfig), name="host")
    virtual = await KubeClient.from_kubeconfig(str(plane.kubeconfig), name=name)
    tenant = await open_stack(host_cluster, plane, host, virtual, root, cfg, name=name)
    syncer = tenant.syncer()
    await asyncio.to_thread(syncer.start)
    return tenant


async def _close(tenant: Stack) -> None:
    for proc in tenant.syncers:
        untrack(proc)
    untrack(tenant.virtual_cluster)
    await tenant.host.close()
    await tenant.virtual.close()


@pytest.fixture(scope="package")
async def tenants(
    host_cluster: HostCluster, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Tenants]:
    """Tenant a (vc1, CONFIG_A) and tenant b (vc2, CONFIG_B), started side by side."""
    a, b = await asyncio.gather(
        _tenant(host_cluster, tmp_path_factory.mktemp(TENANT_A), TENANT_A, CONFIG_A),
        _tenant(host_cluster, tmp_path_factory.mktemp(TENANT_B), TENANT_B, CONFIG_B),
    )
    yield Tenants(a, b)
    await asyncio.gather(_close(a), _close(b))


@pytest.fixture(scope="package")
async def victim(tenants: Tenants) -> Victim:
    """Tenant b's workload, running and synced before any attack starts."""
    b = tenants.b
    ns = VICTIM_NS
    await b.virtual.create(r.NAMESPACES, {"metadata": {"name": ns}})
    await b.virtual.create(r.CONFIGMAPS, {"metadata": {"name": "victim-config"},
                                          "data": {"setting": "b-only"}}, ns)
    await b.virtual.create(r.SECRETS, {"metadata": {"name": "victim-secret"},
                                       "stringData": {"password": "b-secret"}}, ns)
    pod = restricted_pod("victim", dict(VICTIM_LABELS), volumes=[
        {"name": "cfg", "configMap": {"name": "victim-config"}},
        {"name": "sec", "secret": {"secretName": "victim-secret"}},
    ])
    await b.virtual.create(r.PODS, pod, ns)
    await b.virtual.create(r.SERVICES, {"metadata": {"name": "victim"}, "spec": {
        "selector": {"app": "victim"}, "ports": [{"port": 5432}]}}, ns)
    ready = await ready_pod(b.virtual, "victim", ns)

    async def service_on_host_ip() -> str:
        host = await b.host_get(r.SERVICES, "victim", ns)
        virtual = await b.virtual_get(r.SERVICES, "victim", ns)
        same = host and virtual and host["spec"]["clusterIP"] == virtual["spec"]["clusterIP"]
        return str(host["spec"]["clusterIP"]) if host and same else ""

    cluster_ip = await wait_until(service_on_host_ip, "b's victim Service on its host IP",
                                  _SETTLE)
    return Victim(ns, "victim", ready["status"]["podIP"], "victim", cluster_ip,
                  "victim-config", "victim-secret")


@pytest.fixture(scope="package")
async def host_targets(tenants: Tenants) -> AsyncIterator[HostTargets]:
    """Host-only objects: a Secret outside every tenant namespace, a system pod in
    kube-system wearing the victim's labels, a PriorityClass. Removed afterwards."""
    host = tenants.a.host
    await host.create(r.NAMESPACES, {"metadata": {"name": HOST_ONLY_NS}})
    await host.create(r.SECRETS, {"metadata": {"name": HOST_SECRET},
                                  "stringData": {"token": "platform-only"}}, HOST_ONLY_NS)
    await host.create(r.PRIORITYCLASSES, {"metadata": {"name": HOST_PRIORITY_CLASS},
                                          "value": 100000})
    await host.create(r.PODS, {
        "metadata": {"name": HOST_SYSTEM_POD, "labels": {**VICTIM_LABELS, "k8s-app": "kube-dns"}},
        "spec": {"priorityClassName": "system-cluster-critical",
                 "containers": [{"name": "main", "image": "registry.k8s.io/coredns"}]},
    }, "kube-system")
    pod = await ready_pod(host, HOST_SYSTEM_POD, "kube-system")
    api = await host.get(r.SERVICES, "kubernetes", "default")
    yield HostTargets(HOST_ONLY_NS, HOST_SECRET, HOST_SYSTEM_POD, pod["status"]["podIP"],
                      HOST_PRIORITY_CLASS, api["spec"]["clusterIP"])
    await host.delete(r.PODS, HOST_SYSTEM_POD, "kube-system", grace_period=0)
    await host.delete(r.PRIORITYCLASSES, HOST_PRIORITY_CLASS)
    await host.delete(r.NAMESPACES, HOST_ONLY_NS)

"""Hostile tenants and pods: host access under a Pod Security Standard, debug containers,
a chosen ``nodeName``, PriorityClasses aimed above the host's system pods.

Tenant a runs at ``baseline``, tenant b at ``restricted`` (tests/security/conftest.py).
Beyond tests/cluster/test_pods.py (one restricted violation): every host-access
control at both levels, a privileged container added after creation, and what
happens to pods that name their node.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from contract import naming
from contract import resources as r
from contract.resources import Obj
from syncer.kube.errors import ApiError, NotFound
from tests.cluster.conftest import Stack
from tests.security.conftest import (
    SYSTEM_CLASSES,
    HostTargets,
    Tenants,
    Victim,
    fresh_namespace,
    host_copy,
    ready_pod,
    restricted_pod,
    tainted_node,
    wait_warning,
)
from tests.support import syncer_idle, wait_until

TAINTED_NODE = "hostile-tainted-node"
TAINT = {"key": "platform.example/dedicated", "value": "system", "effect": "NoSchedule"}
SYSTEM_PRIORITY = 2_000_000_000


def _host_access(base: Obj) -> dict[str, Obj]:
    """``base`` (a pod the level admits) turned into each kind of host access."""
    def variant(**spec: Any) -> Obj:
        pod = {"metadata": dict(base["metadata"]), "spec": {**base["spec"], **spec}}
        return pod

    privileged = [{**c, "securityContext": {"privileged": True}}
                  for c in base["spec"]["containers"]]
    return {
        "hostpath": variant(volumes=[{"name": "root", "hostPath": {"path": "/"}}]),
        "privileged": variant(containers=privileged),
        "hostnetwork": variant(hostNetwork=True),
        "hostpid": variant(hostPID=True),
    }


async def _idle(*stacks: Stack) -> bool:
    return all(syncer_idle(s.syncers[0].url) for s in stacks)


@pytest.mark.parametrize("which", ["a", "b"])
async def test_host_access_pods_are_refused_at_baseline_and_restricted(
    tenants: Tenants, which: str,
) -> None:
    """hostPath, privileged, hostNetwork and hostPID pods: refused with a Warning event that
    names the control, nothing on the host; at restricted also a pod baseline admits
    (root user, no seccomp). A pod the level admits, created alongside, is synced."""
    tenant = tenants.a if which == "a" else tenants.b
    level = "baseline" if which == "a" else "restricted"
    ns = await fresh_namespace(tenant, "pss")
    base = restricted_pod("ok")
    pods = {name: {**pod, "metadata": {"name": name}}
            for name, pod in _host_access(base).items()}
    if level == "restricted":
        pods["rootful"] = {"metadata": {"name": "rootful"}, "spec": {
            "containers": [{"name": "main", "image": "busybox"}]}}
    for pod in [base, *pods.values()]:
        await tenant.virtual.create(r.PODS, pod, ns)
    await host_copy(tenant, r.PODS, "ok", ns)
    controls = {"hostpath": "hostPath", "privileged": "privileged",
                "hostnetwork": "hostNetwork", "hostpid": "hostPID", "rootful": "runAsNonRoot"}
    for name in pods:
        event = await wait_warning(tenant, ns, name, "PodSecurityViolation")
        assert level in event["message"], event
        assert controls[name] in event["message"], event
        assert tenant.host_namespace not in event["message"]
    await wait_until(lambda: _idle(tenant), "the syncer idle")
    host_pods = {p["metadata"]["annotations"][naming.ANNOTATION_OBJECT_NAME]
                 for p in await tenant.host_list(r.PODS)
                 if p["metadata"]["annotations"].get(naming.ANNOTATION_OBJECT_NAMESPACE) == ns}
    assert host_pods == {"ok"}


async def test_a_privileged_debug_container_never_reaches_the_host(tenants: Tenants) -> None:
    """A pod admitted at baseline, then a privileged ephemeral container added through the
    ephemeralcontainers subresource (``kubectl debug --profile=sysadmin``): refused with a
    Warning, the host pod never gets it."""
    a = tenants.a
    ns = await fresh_namespace(a, "debug")
    await a.virtual.create(r.PODS, restricted_pod("debuggee"), ns)
    await ready_pod(a.virtual, "debuggee", ns)
    debug = {"name": "shell", "image": "busybox", "securityContext": {"privileged": True}}
    await a.virtual.patch(r.PODS, "debuggee", {"spec": {"ephemeralContainers": [debug]}}, ns,
                          subresource="ephemeralcontainers", patch_type="strategic")
    event = await wait_warning(a, ns, "debuggee", "PodSecurityViolation")
    assert "privileged" in event["message"]
    assert "shell" in event["message"]
    await wait_until(lambda: _idle(a), "the syncer idle")
    host = await host_copy(a, r.PODS, "debuggee", ns)
    assert not host["spec"].get("ephemeralContainers"), "the privileged container reached it"


@pytest.fixture
async def platform_node(tenants: Tenants) -> AsyncIterator[str]:
    """A host node reserved for the platform (NoSchedule taint no tenant tolerates)."""
    async with tainted_node(tenants.a.host, TAINTED_NODE, TAINT) as name:
        yield name


async def _verdict(tenant: Stack, name: str, namespace: str) -> Obj:
    """The host pod once the host scheduler decided (PodScheduled set either way)."""
    async def decided() -> Obj:
        pod = await tenant.host_get(r.PODS, name, namespace) or {}
        conditions = pod.get("status", {}).get("conditions") or []
        return pod if any(c["type"] == "PodScheduled" for c in conditions) else {}

    return await wait_until(decided, f"the host scheduler's verdict on {name}", timeout=60)


def _scheduled(pod: Obj) -> Obj:
    return next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")


async def _virtual_nodes(tenant: Stack) -> set[str]:
    items, _ = await tenant.virtual.list(r.NODES)
    return {n["metadata"]["name"] for n in items}


async def test_a_chosen_node_name_still_goes_through_the_host_scheduler(
    tenants: Tenants, platform_node: str,
) -> None:
    """Documented behaviour: a virtual pod's ``spec.nodeName`` becomes a required node
    affinity on the host pod, so the host scheduler decides. The platform's tainted node
    refuses the pod (Unschedulable, never bound, virtual pod Pending); a node that does not
    exist leaves it Unschedulable; a node the tenant may use gets it, through the scheduler.
    Neither refused node appears in the tenant's virtual cluster."""
    a = tenants.a
    ns = await fresh_namespace(a, "pin")
    targets = {"squatter": platform_node, "ghost": "no-such-node", "guest": "kwok-node-0"}
    for name, node in targets.items():
        await a.virtual.create(r.PODS, restricted_pod(name, nodeName=node), ns)
    for name in ("squatter", "ghost"):
        pod = await _verdict(a, name, ns)
        assert "nodeName" not in pod["spec"], f"{name} was bound without the scheduler"
        assert (_scheduled(pod)["status"], _scheduled(pod).get("reason")) == (
            "False", "Unschedulable")
    guest = await ready_pod(a.virtual, "guest", ns)
    host_guest = await host_copy(a, r.PODS, "guest", ns)
    assert host_guest["spec"]["nodeName"] == guest["spec"]["nodeName"] == "kwok-node-0"
    assert _scheduled(host_guest)["status"] == "True"
    await wait_until(lambda: _idle(a), "the syncer idle")
    squatter = await a.virtual.get(r.PODS, "squatter", ns)
    assert squatter["status"].get("phase") == "Pending"
    nodes = await _virtual_nodes(a)
    assert "kwok-node-0" in nodes
    assert not nodes & {platform_node, "no-such-node"}, nodes


async def _host_classes(tenant: Stack) -> dict[str, Obj]:
    items, _ = await tenant.host.list(r.PRIORITYCLASSES)
    return {c["metadata"]["name"]: c for c in items}


async def test_priority_classes_cannot_outrank_or_redefine_the_hosts(
    tenants: Tenants, victim: Victim, host_targets: HostTargets,
) -> None:
    """``system-`` classes and values above 1e9 are refused by the tenant's own API server;
    the highest value it may create reaches the host capped at
    ``policies.priorityClasses.maxValue`` (0 by default, far below the system classes) and
    never preempting, a globalDefault class is never the host's default, a pod naming a
    virtual system class gets no host class. The host's system classes and its own class
    never change."""
    a = tenants.a
    before = await _host_classes(a)
    defaults_before = {n for n, c in before.items() if c.get("globalDefault")}
    for name, value in (("system-tenant", 2_000_000_000), ("above-max", 1_000_000_001)):
        with pytest.raises(ApiError):
            await a.virtual.create(r.PRIORITYCLASSES, {"metadata": {"name": name},
                                                       "value": value})
    await a.virtual.create(r.PRIORITYCLASSES, {"metadata": {"name": "tenant-max"},
                                               "value": 1_000_000_000})
    await a.virtual.create(r.PRIORITYCLASSES, {"metadata": {"name": "tenant-default"},
                                               "value": 1000, "globalDefault": True})
    ns = await fresh_namespace(a, "prio")
    try:
        await a.virtual.create(r.PODS, restricted_pod("top", priorityClassName="tenant-max"),
                               ns)
        await a.virtual.create(r.PODS, restricted_pod(
            "sys", priorityClassName="system-node-critical"), ns)
        await a.virtual.create(r.PODS, restricted_pod("plain"), ns)
        sys_pod, plain = [await ready_pod(a.virtual, n, ns) for n in ("sys", "plain")]
        assert sys_pod["spec"]["priority"] > SYSTEM_PRIORITY, "the virtual cluster's own view"
        hosts = {n: await host_copy(a, r.PODS, n, ns) for n in ("top", "sys", "plain")}
        assert hosts["top"]["spec"]["priority"] == 0 < SYSTEM_PRIORITY
        assert "priorityClassName" not in hosts["sys"]["spec"]
        assert hosts["sys"]["spec"].get("priority", 0) == 0
        assert plain["spec"]["priority"] == 1000
        assert hosts["plain"]["spec"].get("priority", 0) == 0, "its class, capped at 0"
        after = await _host_classes(a)
        for name in (*SYSTEM_CLASSES, host_targets.priority_class):
            assert after[name]["metadata"]["resourceVersion"] == before[name]["metadata"][
                "resourceVersion"], name
        assert {n for n, c in after.items() if c.get("globalDefault")} == defaults_before
        copies = [c for n, c in after.items() if n not in before
                  and c["metadata"]["labels"].get(naming.LABEL_MANAGED_BY) == a.name]
        assert {naming.identity_of(c).name for c in copies  # type: ignore[union-attr]
                } >= {"tenant-max", "tenant-default"}
        assert all(c["value"] <= 0 and c["preemptionPolicy"] == "Never" for c in copies)
        assert not any(n.startswith("system-") for n in after if n not in before)
    finally:
        # The virtual globalDefault would give every later pod of tenant a this class.
        for name in ("tenant-default", "tenant-max"):
            with contextlib.suppress(NotFound):
                await a.virtual.delete(r.PRIORITYCLASSES, name)


"""Hostile tenants and the host's own choices (issue 22): a priority that preempts another
tenant's pod, a host runtime class or scheduler picked by name, a generic ephemeral volume
of a host StorageClass the tenant was not given.

Tenant a (the attacker, PriorityClasses synced) runs with the policies' defaults, which
must be safe on a shared host: synced classes never preempt and reach at most
``policies.priorityClasses.maxValue``, pods name no host runtime class or scheduler
beyond the host's default. The ephemeral-volume attack needs StorageClasses synced from
the host, so it runs against a syncer of its own (the function-scoped ``stack``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from contract import resources as r
from contract.resources import Obj
from syncer.kube.errors import NotFound
from tests.cluster.conftest import Stack, sync_config
from tests.security.conftest import (
    Tenants,
    fresh_namespace,
    host_copy,
    ready_pod,
    restricted_pod,
    tainted_node,
    wait_warning,
)
from tests.support import syncer_idle, wait_until

ARENA = "hostile-preemption-arena"
ARENA_TAINT = {"key": "vcsync.test/arena", "value": "preemption", "effect": "NoSchedule"}
ARENA_CPU = "1"
POD_CPU = "800m"
"""Two such pods do not fit on the arena: the second one needs the first one gone."""
HOST_RUNTIME = "hostile-platform-runtime"
"""A runtime class the platform keeps for itself (say, one without a sandbox)."""
HOST_SCHEDULER = "platform-batch-scheduler"
TENANT_STORAGE = "hostile-tenant-standard"
PLATFORM_STORAGE = "hostile-platform-premium"
STORAGE_LABEL = {"vcsync.test/tenant-storage": "yes"}


# -- preemption ---------------------------------------------------------------------------


@pytest.fixture
async def arena(tenants: Tenants) -> AsyncIterator[str]:
    """A host node with one core, tainted so that only this test's pods go there."""
    room = {"cpu": ARENA_CPU, "memory": "8Gi", "pods": "10"}
    async with tainted_node(tenants.a.host, ARENA, ARENA_TAINT, room) as name:
        yield name


def _arena_pod(name: str, **spec: Any) -> Obj:
    """A pod (restricted, so either tenant syncs it) that needs most of the arena's CPU."""
    toleration = {**ARENA_TAINT, "operator": "Equal"}
    pod = restricted_pod(name, nodeName=ARENA, tolerations=[toleration], **spec)
    pod["spec"]["containers"][0]["resources"] = {"requests": {"cpu": POD_CPU}}
    return pod


def _condition(pod: Obj, kind: str) -> Obj:
    conditions = pod.get("status", {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == kind), {})


async def test_a_tenant_priority_class_never_preempts_another_tenants_pod(
    tenants: Tenants, arena: str,
) -> None:
    """Tenant b's pod runs on a full node; tenant a asks for that node with a pod of its
    own PriorityClass at the highest value a tenant may define (1e9, PreemptLowerPriority
    as the API server defaults it). The host copy of a's class is capped at
    ``policies.priorityClasses.maxValue`` and never preempts, so the host scheduler gives
    up on a's pod ("preemption: ...") and b's pod keeps running, untouched."""
    a, b = tenants.a, tenants.b
    ns_b = await fresh_namespace(b, "resident")
    await b.virtual.create(r.PODS, _arena_pod("resident"), ns_b)
    await ready_pod(b.virtual, "resident", ns_b)
    resident = await host_copy(b, r.PODS, "resident", ns_b)
    assert resident["spec"]["nodeName"] == arena
    await a.virtual.create(r.PRIORITYCLASSES, {"metadata": {"name": "hostile-top"},
                                               "value": 1_000_000_000})
    ns_a = await fresh_namespace(a, "usurp")
    try:
        await a.virtual.create(r.PODS, _arena_pod("usurper", priorityClassName="hostile-top"),
                               ns_a)

        async def decided() -> str:
            victim = await b.host_get(r.PODS, "resident", ns_b)
            if (victim is None or victim["metadata"]["uid"] != resident["metadata"]["uid"]
                    or victim["metadata"].get("deletionTimestamp")
                    or _condition(victim, "DisruptionTarget")):
                return "b's pod preempted"
            usurper = await a.host_get(r.PODS, "usurper", ns_a) or {}
            if usurper.get("spec", {}).get("nodeName"):
                return "a's pod bound"
            if usurper.get("status", {}).get("nominatedNodeName"):
                return "a's pod nominated for b's place"
            scheduled = _condition(usurper, "PodScheduled")
            if scheduled.get("status") == "False" and "preemption:" in scheduled.get(
                    "message", ""):
                return "the scheduler gave up on a's pod"
            return ""

        outcome = await wait_until(decided, "the host scheduler's decision on a's pod", 90)
        assert outcome == "the scheduler gave up on a's pod"
        usurper = await host_copy(a, r.PODS, "usurper", ns_a)
        host_class = usurper["spec"]["priorityClassName"]
        copy = await a.host.get(r.PRIORITYCLASSES, host_class)
        assert copy["value"] <= 0, "policies.priorityClasses.maxValue defaults to 0"
        assert copy["preemptionPolicy"] == "Never"
        assert usurper["spec"].get("preemptionPolicy") == "Never"
        victim = await b.virtual.get(r.PODS, "resident", ns_b)
        assert victim["status"]["phase"] == "Running"
    finally:
        for tenant, name, namespace in ((a, "usurper", ns_a), (b, "resident", ns_b)):
            with contextlib.suppress(NotFound):
                await tenant.virtual.delete(r.PODS, name, namespace, grace_period=0)
        with contextlib.suppress(NotFound):
            await a.virtual.delete(r.PRIORITYCLASSES, "hostile-top")


# -- runtime classes and schedulers -----------------------------------------------------------


@pytest.fixture
async def host_runtime(tenants: Tenants) -> AsyncIterator[str]:
    """A RuntimeClass on the host that no policy gives tenants."""
    host = tenants.a.host
    await host.create(r.RUNTIMECLASSES, {"metadata": {"name": HOST_RUNTIME}, "handler": "runc"})
    yield HOST_RUNTIME
    await host.delete(r.RUNTIMECLASSES, HOST_RUNTIME)


async def test_pods_cannot_pick_a_host_runtime_class_or_scheduler(
    tenants: Tenants, host_runtime: str,
) -> None:
    """A pod naming a host RuntimeClass (which the tenant also created in its own cluster,
    so its API server admits the pod) and a pod naming a host scheduler: neither reaches
    the host, each gets a Warning saying why; a plain pod created alongside is synced."""
    a = tenants.a
    await a.virtual.create(r.RUNTIMECLASSES, {"metadata": {"name": host_runtime},
                                            "handler": "runc"})
    ns = await fresh_namespace(a, "choose")
    try:
        refused = {  # pod name: (reason, field, value)
            "escape": ("RuntimeClassNotAllowed", "runtimeClassName", host_runtime),
            "jump": ("SchedulerNotAllowed", "schedulerName", HOST_SCHEDULER),
        }
        for name, (_, field, value) in refused.items():
            pod = restricted_pod(name)
            pod["spec"][field] = value
            await a.virtual.create(r.PODS, pod, ns)
        await a.virtual.create(r.PODS, restricted_pod("plain"), ns)
        await host_copy(a, r.PODS, "plain", ns)
        for name, (reason, _, value) in refused.items():
            event = await wait_warning(a, ns, name, reason)
            assert value in event["message"], event["message"]
            assert a.host_namespace not in event["message"]
        await wait_until(lambda: syncer_idle(a.syncers[0].url), "the syncer idle")
        for name in refused:
            assert await a.host_get(r.PODS, name, ns) is None, f"{name} reached the host"
    finally:
        await a.virtual.delete(r.RUNTIMECLASSES, host_runtime)


# -- generic ephemeral volumes ------------------------------------------------------------------


@pytest.fixture
def config() -> Obj:
    """StorageClasses shown to the tenant: only the host classes the platform labelled."""
    return sync_config(from_host={"storageClasses": {"enabled": True,
                                                     "selector": {"labels": STORAGE_LABEL}}})


@pytest.fixture
async def storage_classes(stack: Stack) -> AsyncIterator[None]:
    """Two host StorageClasses: one the tenant is given (labelled), one it is not."""
    for name, labels in ((TENANT_STORAGE, STORAGE_LABEL), (PLATFORM_STORAGE, {})):
        await stack.host.create(r.STORAGECLASSES, {
            "metadata": {"name": name, "labels": labels},
            "provisioner": "example.com/no-provisioner", "volumeBindingMode": "Immediate"})
    yield
    for name in (TENANT_STORAGE, PLATFORM_STORAGE):
        await stack.host.delete(r.STORAGECLASSES, name)


def _scratch_pod(name: str, storage_class: str) -> Obj:
    template = {"spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                         "resources": {"requests": {"storage": "1Gi"}}}}
    return {"metadata": {"name": name}, "spec": {
        "containers": [{"name": "main", "image": "busybox",
                        "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}],
        "volumes": [{"name": "scratch", "ephemeral": {"volumeClaimTemplate": template}}]}}


async def test_generic_ephemeral_volumes_get_only_the_tenants_storage_classes(
    stack: Stack, storage_classes: None,
) -> None:
    """A pod whose generic ephemeral volume names a host StorageClass the tenant was not
    given is refused like a claim naming it (Warning, no host pod, no host claim of that
    class); one naming a class it was given mounts the host copy of the claim the virtual
    cluster made for it, the only host claim of that volume."""
    syncer = stack.syncer().start()
    ns = await fresh_namespace(stack, "scratch")
    await wait_until(lambda: stack.virtual_get(r.STORAGECLASSES, TENANT_STORAGE, ""),
                     "the tenant's StorageClass synced from the host")
    await stack.virtual.create(r.PODS, _scratch_pod("premium", PLATFORM_STORAGE), ns)
    await stack.virtual.create(r.PODS, _scratch_pod("standard", TENANT_STORAGE), ns)
    event = await wait_warning(stack, ns, "premium", "StorageClassNotSynced")
    assert PLATFORM_STORAGE in event["message"]
    standard = await host_copy(stack, r.PODS, "standard", ns)
    claim = stack.host_name("standard-scratch", ns)
    volume = next(v for v in standard["spec"]["volumes"] if v["name"] == "scratch")
    assert volume == {"name": "scratch", "persistentVolumeClaim": {"claimName": claim}}
    await host_copy(stack, r.PVCS, "standard-scratch", ns)
    await wait_until(lambda: syncer_idle(syncer.url), "the syncer idle")
    assert await stack.host_get(r.PODS, "premium", ns) is None
    classes = {c["metadata"]["name"]: c["spec"].get("storageClassName")
               for c in await stack.host_list(r.PVCS)}
    assert classes == {claim: TENANT_STORAGE}, "claims in the host namespace: " + str(classes)

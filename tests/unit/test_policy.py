"""Unit tests of :mod:`translators.policy`: what tenants may choose on the host (issue 22)."""

from __future__ import annotations

from typing import Any

import pytest

from contract import naming, resources
from contract.facts import Facts, HostPolicy
from contract.resources import Obj
from contract.translator import Action, Context, Create, EnsureSynced, Requeue, Side, Warn
from tests.unit.fakes import FakeLookup, NoLookup
from translators import pods, policy
from translators.classes import CLASS_RETRY

HOST_NS = "vcluster-vc"


def context(lookup: Any = None, **values: Any) -> Context:
    found = lookup if lookup is not None else FakeLookup()
    return Context("vc", HOST_NS, found, facts=Facts(**values))


def pod(**spec: Any) -> Obj:
    return {"metadata": {"name": "web", "namespace": "team"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


def cluster_object(name: str, **fields: Any) -> Obj:
    return {"metadata": {"name": name}, **fields}


def reasons(actions: list[Action]) -> list[str]:
    return [a.reason for a in actions if isinstance(a, Warn)]


# -- runtime classes and schedulers -------------------------------------------------------------


def test_the_safe_defaults_allow_no_host_runtime_class_and_no_other_scheduler() -> None:
    ctx = context(NoLookup())
    assert policy.pod_refusal(pod(), ctx) == []
    assert policy.pod_refusal(pod(schedulerName="default-scheduler"), ctx) == []
    (runtime,) = policy.pod_refusal(pod(runtimeClassName="runc-unsandboxed"), ctx)
    assert isinstance(runtime, Warn)
    assert runtime.reason == "RuntimeClassNotAllowed"
    assert "'runc-unsandboxed'" in runtime.message
    (scheduler,) = policy.pod_refusal(pod(schedulerName="platform-batch"), ctx)
    assert isinstance(scheduler, Warn)
    assert scheduler.reason == "SchedulerNotAllowed"
    assert "'platform-batch'" in scheduler.message


@pytest.mark.parametrize("spec", [
    {"runtimeClassName": "kata"}, {"runtimeClassName": "gvisor"}, {"schedulerName": "batch"},
])
def test_what_the_platform_allows_is_synced(spec: Obj) -> None:
    """Allowed by name, or the pod default of sync.toHost.pods.runtimeClassName."""
    allowed = HostPolicy(runtime_classes=frozenset({"kata"}),
                         schedulers=frozenset({"batch"}), runtime_class="gvisor")
    ctx = context(NoLookup(), **{"policy": allowed})
    assert policy.pod_refusal(pod(**spec), ctx) == []


def test_runtime_classes_shown_from_the_host_are_allowed_by_the_host_cache() -> None:
    """The host cache (the selected host classes) decides, never the virtual cluster, where
    the tenant may create a class of any name; a refusal is looked at again later."""
    lookup = FakeLookup()
    lookup.add(Side.HOST, resources.RUNTIMECLASSES, cluster_object("kata"))
    lookup.add(Side.VIRTUAL, resources.RUNTIMECLASSES, cluster_object("unsandboxed"))
    ctx = context(lookup, **{"synced": frozenset({"runtimeClasses"})})
    assert policy.pod_refusal(pod(runtimeClassName="kata"), ctx) == []
    refused = policy.pod_refusal(pod(runtimeClassName="unsandboxed"), ctx)
    assert reasons(refused) == ["RuntimeClassNotAllowed"]
    assert refused[-1] == Requeue(CLASS_RETRY)
    off = context(lookup)
    assert reasons(policy.pod_refusal(pod(runtimeClassName="kata"), off)) == [
        "RuntimeClassNotAllowed"]


# -- generic ephemeral volumes ------------------------------------------------------------------


def ephemeral(storage_class: str | None) -> Obj:
    spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    return {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": spec}}}


def test_ephemeral_volumes_are_checked_like_claims() -> None:
    """With StorageClasses shown from the host, the template's class must be one of them;
    no class at all means the default, which names nothing to check."""
    lookup = FakeLookup()
    lookup.add(Side.VIRTUAL, resources.STORAGECLASSES, cluster_object("standard"))
    ctx = context(lookup, **{"synced": frozenset({"storageClasses"})})
    for allowed in ("standard", None):
        assert policy.pod_refusal(pod(volumes=[ephemeral(allowed)]), ctx) == []
    refused = policy.pod_refusal(pod(volumes=[{"name": "cfg", "configMap": {"name": "c"}},
                                              ephemeral("premium")]), ctx)
    assert reasons(refused) == ["StorageClassNotSynced"]
    assert "'premium'" in refused[0].message  # type: ignore[union-attr]
    assert policy.pod_refusal(pod(volumes=[ephemeral("premium")]), context()) == [], (
        "without the sync from the host, classes are the host's by name, as for claims")


# -- priority classes ----------------------------------------------------------------------------


@pytest.mark.parametrize(("values", "name", "expected"), [
    ({}, "high", ""),
    ({}, None, ""),
    ({"synced": frozenset({"priorityClasses"})}, "high", "vcsync-high-x-vcluster-vc-x-vc"),
    ({"synced": frozenset({"priorityClasses"})}, "system-node-critical", ""),
    ({"synced": frozenset({"priorityClasses"})}, "system-cluster-critical", ""),
    ({"synced": frozenset({"hostPriorityClasses"})}, "platform-batch", "platform-batch"),
    ({"synced": frozenset({"hostPriorityClasses"})}, "platform-critical", ""),
    ({"synced": frozenset({"hostPriorityClasses"})}, "system-node-critical", ""),
    ({"policy": HostPolicy(priority_class="tenants")}, None, "tenants"),
    ({"policy": HostPolicy(priority_class="tenants")}, "system-node-critical",
     "tenants"),
])
def test_host_priority_class(values: dict[str, Any], name: str | None, expected: str) -> None:
    """A synced class becomes its copy, a shown host class stays itself (only if the host
    cache, holding the selected classes, has it), system classes and anything else fall
    back to sync.toHost.pods.priorityClassName; no class: the host's default priority."""
    lookup = FakeLookup()
    lookup.add(Side.HOST, resources.PRIORITYCLASSES, cluster_object("platform-batch"))
    spec = {"priorityClassName": name} if name else {}
    assert policy.host_priority_class(spec, context(lookup, **values)) == expected


# -- in the pod translator -----------------------------------------------------------------------


def translated(virtual: Obj, **values: Any) -> list[Action]:
    """``PodTranslator.to_host`` in a world with the DNS Service on the host."""
    lookup = FakeLookup()
    dns_name, dns_ns = naming.DNS_SERVICE
    lookup.add(Side.HOST, resources.SERVICES, {
        "metadata": {"name": naming.host_name(dns_name, dns_ns, "vc"), "namespace": HOST_NS},
        "spec": {"clusterIP": "10.96.0.10"}})
    return pods.PodTranslator().to_host(virtual, context(
        lookup, **{"api_service_ip": "10.96.0.1", **values}))


def test_a_refused_pod_gets_a_warning_and_nothing_is_written() -> None:
    actions = translated(pod(runtimeClassName="unsandboxed"))
    assert reasons(actions) == ["RuntimeClassNotAllowed"]
    assert not [a for a in actions if isinstance(a, Create | EnsureSynced)]
    first = translated(pod(hostNetwork=True, schedulerName="other"),
                       **{"pod_security_standard": "baseline"})
    assert reasons(first) == ["PodSecurityViolation"], "the security standard speaks first"


def test_the_host_pod_gets_the_platforms_classes() -> None:
    """sync.toHost.pods.runtimeClassName and .priorityClassName, for a pod naming neither."""
    chosen = HostPolicy(runtime_class="gvisor", priority_class="tenants")
    (create,) = [a for a in translated(pod(), **{"policy": chosen})
                 if isinstance(a, Create)]
    assert create.obj["spec"]["runtimeClassName"] == "gvisor"
    assert create.obj["spec"]["priorityClassName"] == "tenants"

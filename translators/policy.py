"""What a tenant may choose on the host: runtime classes, schedulers, priority classes,
and the storage classes of generic ephemeral volumes (``policies`` in the configuration).

A pod names host-side things verbatim: ``runtimeClassName`` picks a host
RuntimeClass (a platform may keep a runtime without a sandbox for itself),
``schedulerName`` a host scheduler, a generic ephemeral volume a host
StorageClass. Copied unchecked, a tenant that is cluster-admin in its virtual
cluster picks whatever the host has. So a pod asking for more than the
platform allows is not synced and gets a Warning, as for the Pod Security
Standard (:mod:`translators.pss`); the defaults allow nothing beyond the host's
own defaults.

Where allowed names come from: ``policies.runtimeClasses.allowed``, the pod
default ``sync.toHost.pods.runtimeClassName``, and the host classes that
``sync.fromHost.runtimeClasses`` selects, looked up in that kind's *host*
cache (whose selector picks exactly them), never in the virtual cluster,
where the tenant could create a class of any name first.

Everything here is pure: the configuration arrives as a :class:`HostPolicy` in
``ctx.values`` (``syncer.app.translator_facts``), caches through ``ctx.lookup``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from syncer.kube.resources import PRIORITYCLASSES, RUNTIMECLASSES, Resource
from translators import naming
from translators.base import Action, Context, Requeue, Side, Warn
from translators.classes import CLASS_RETRY, storage_class_synced, unsynced_class
from translators.pvcs import STORAGE_CLASSES_FROM_HOST

Obj = dict[str, Any]
HOST_POLICY = "host_policy"
"""``ctx.values`` key of the :class:`HostPolicy`."""
SYNC_PRIORITY_CLASSES = "sync_priority_classes"
"""``ctx.values`` key: ``sync.toHost.priorityClasses.enabled``."""
RUNTIME_CLASSES_FROM_HOST = "runtime_classes_from_host"
PRIORITY_CLASSES_FROM_HOST = "priority_classes_from_host"
"""``ctx.values`` keys: ``sync.fromHost.<kind>.enabled`` (storage classes: pvcs')."""
DEFAULT_SCHEDULER = "default-scheduler"


@dataclass(frozen=True)
class HostPolicy:
    """The platform's choices for tenants; the defaults are the safe ones."""

    runtime_classes: frozenset[str] = field(default_factory=frozenset)
    schedulers: frozenset[str] = field(default_factory=frozenset)
    external_names: tuple[str, ...] = ()
    """Glob patterns of ExternalName targets allowed anyway (``translators.externalnames``)."""
    max_priority: int = 0
    allow_preemption: bool = False
    runtime_class: str = ""
    """Host RuntimeClass of pods that name none (``sync.toHost.pods.runtimeClassName``)."""
    priority_class: str = ""
    """Host PriorityClass of pods that get no other (``sync.toHost.pods.priorityClassName``)."""


def host_policy(ctx: Context) -> HostPolicy:
    """The policy in force (the safe defaults when the engine gave none)."""
    found = ctx.values.get(HOST_POLICY)
    return found if isinstance(found, HostPolicy) else HostPolicy()


def _selected_on_host(resource: Resource, name: str, flag: str, ctx: Context) -> bool:
    """Whether ``sync.fromHost`` shows host class ``name`` of ``resource`` (``flag`` on)."""
    return bool(ctx.values.get(flag)) and ctx.lookup.get(Side.HOST, resource, name) is not None


# -- refusals -----------------------------------------------------------------------------


def pod_refusal(pod: Obj, ctx: Context) -> list[Action]:
    """Why the pod may not reach the host, as Warnings (and a retry); [] if it may."""
    spec: Mapping[str, Any] = pod.get("spec") or {}
    return (_runtime_class_refusal(spec, ctx) or _scheduler_refusal(spec, ctx)
            or _ephemeral_volume_refusal(spec, ctx))


def _runtime_class_refusal(spec: Mapping[str, Any], ctx: Context) -> list[Action]:
    name = spec.get("runtimeClassName")
    policy = host_policy(ctx)
    if not name or name in policy.runtime_classes or name == policy.runtime_class:
        return []
    if _selected_on_host(RUNTIMECLASSES, name, RUNTIME_CLASSES_FROM_HOST, ctx):
        return []
    warning = Warn("RuntimeClassNotAllowed", (
        f"spec.runtimeClassName {name!r} is not a runtime class this virtual cluster may use "
        "in the host cluster, so the pod is not synced; leave it out, or ask the platform "
        "team to allow it (policies.runtimeClasses.allowed)"))
    retry = [Requeue(CLASS_RETRY)] if ctx.values.get(RUNTIME_CLASSES_FROM_HOST) else []
    return [warning, *retry]


def _scheduler_refusal(spec: Mapping[str, Any], ctx: Context) -> list[Action]:
    name = spec.get("schedulerName")
    if not name or name == DEFAULT_SCHEDULER or name in host_policy(ctx).schedulers:
        return []
    return [Warn("SchedulerNotAllowed", (
        f"spec.schedulerName {name!r} is not a scheduler this virtual cluster may use in the "
        f"host cluster, so the pod is not synced; use {DEFAULT_SCHEDULER}, or ask the "
        "platform team to allow it (policies.schedulers.allowed)"))]


def _ephemeral_volume_refusal(spec: Mapping[str, Any], ctx: Context) -> list[Action]:
    """A generic ephemeral volume becomes a claim: its class is checked like a claim's."""
    for volume in spec.get("volumes") or ():
        template = (volume.get("ephemeral") or {}).get("volumeClaimTemplate") or {}
        name = (template.get("spec") or {}).get("storageClassName")
        refusal = unsynced_class("StorageClass", name, ctx, STORAGE_CLASSES_FROM_HOST,
                                 storage_class_synced)
        if refusal:
            return refusal
    return []


# -- what the host pod gets -----------------------------------------------------------------


def host_priority_class(spec: Mapping[str, Any], ctx: Context) -> str:
    """The host PriorityClass of a pod ("": none, the host's default priority).

    A synced tenant class becomes its host copy; a class shown from the host is
    the host's own; ``system-*`` classes (the virtual cluster's) and any other
    name fall back to ``sync.toHost.pods.priorityClassName``.
    """
    name = str(spec.get("priorityClassName") or "")
    if name and not name.startswith("system-"):
        if ctx.values.get(SYNC_PRIORITY_CLASSES):
            return naming.host_cluster_scoped_name(name, ctx.host_namespace, ctx.vcluster)
        if _selected_on_host(PRIORITYCLASSES, name, PRIORITY_CLASSES_FROM_HOST, ctx):
            return name
    return host_policy(ctx).priority_class


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

Everything here is pure: the configuration arrives as a :class:`contract.facts.HostPolicy` in
``ctx.facts`` (``syncer.app.translator_facts``), caches through ``ctx.lookup``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contract import naming
from contract.resources import Obj
from contract.translator import Action, Context, Requeue, Side, Warn
from translators import priorityclasses
from translators.classes import (
    CLASS_RETRY,
    ClassTranslator,
    HostPriorityClassTranslator,
    RuntimeClassTranslator,
    StorageClassTranslator,
    storage_class_synced,
    unsynced_class,
)

DEFAULT_SCHEDULER = "default-scheduler"


def _selected_on_host(shown: type[ClassTranslator], name: str, ctx: Context) -> bool:
    """Whether ``sync.fromHost`` shows host class ``name`` of kind ``shown``."""
    return ctx.syncs(shown) and ctx.lookup.get(Side.HOST, shown.resource, name) is not None


def syncs_priority_classes(ctx: Context) -> bool:
    """Whether tenant PriorityClasses are copied to the host (``sync.toHost.priorityClasses``)."""
    return ctx.syncs(priorityclasses.PriorityClassTranslator)


# -- refusals -----------------------------------------------------------------------------


def pod_refusal(pod: Obj, ctx: Context) -> list[Action]:
    """Why the pod may not reach the host, as Warnings (and a retry); [] if it may."""
    spec: Mapping[str, Any] = pod.get("spec") or {}
    return (_runtime_class_refusal(spec, ctx) or _scheduler_refusal(spec, ctx)
            or _ephemeral_volume_refusal(spec, ctx))


def _runtime_class_refusal(spec: Mapping[str, Any], ctx: Context) -> list[Action]:
    name = spec.get("runtimeClassName")
    policy = ctx.facts.policy
    if not name or name in policy.runtime_classes or name == policy.runtime_class:
        return []
    if _selected_on_host(RuntimeClassTranslator, name, ctx):
        return []
    warning = Warn("RuntimeClassNotAllowed", (
        f"spec.runtimeClassName {name!r} is not a runtime class this virtual cluster may use "
        "in the host cluster, so the pod is not synced; leave it out, or ask the platform "
        "team to allow it (policies.runtimeClasses.allowed)"))
    retry = [Requeue(CLASS_RETRY)] if ctx.syncs(RuntimeClassTranslator) else []
    return [warning, *retry]


def _scheduler_refusal(spec: Mapping[str, Any], ctx: Context) -> list[Action]:
    name = spec.get("schedulerName")
    if not name or name == DEFAULT_SCHEDULER or name in ctx.facts.policy.schedulers:
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
        refusal = unsynced_class(StorageClassTranslator, name, ctx, storage_class_synced)
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
        if syncs_priority_classes(ctx):
            return naming.host_cluster_scoped_name(name, ctx.host_namespace, ctx.vcluster)
        if _selected_on_host(HostPriorityClassTranslator, name, ctx):
            return name
    return ctx.facts.policy.priority_class


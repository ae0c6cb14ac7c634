"""Storage, Ingress, Runtime and PriorityClasses: host -> virtual, read-only (acceptance
scenario 28; issue 22 for the last two).

A tenant's PVCs, Ingresses and pods run on the host, so only the host's classes
mean anything; the host classes the kind's label selector picks are mirrored
under their own names (cluster-scoped on both sides, nothing to rewrite). Pods
may name the runtime and priority classes shown (``translators.policy`` checks
against the host cache, which holds exactly the selected ones).

"Read-only" means the virtual copy follows the host: a tenant edit is
reverted by the next sync, a virtual class without a selected host class
(the tenant's own, or one whose host class went away) is deleted. The syncer
cannot refuse a write, only undo it, so the Helm chart should also deny it:
no write verbs on these kinds in the tenant roles, and for tenants that are
cluster-admin inside the virtual cluster a ValidatingAdmissionPolicy in the
virtual API server that lets only the syncer's identity write them.

Translators of objects that name a class (PVC ``storageClassName``, Ingress
``ingressClassName``) check it with :func:`storage_class_synced` /
:func:`ingress_class_synced` and refuse, with a Warning event, objects whose
class is not synced.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from contract.options import Selected
from contract.resources import (
    INGRESSCLASSES,
    PRIORITYCLASSES,
    RUNTIMECLASSES,
    STORAGECLASSES,
    Obj,
    Resource,
)
from contract.translator import (
    Action,
    Context,
    Create,
    Delete,
    Direction,
    Patch,
    Requeue,
    Side,
    Translator,
    Warn,
)
from translators.objects import merge_patch, same_json

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
"""Not copied: it describes what someone applied to the host object, not the copy."""


def _selected(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _at(obj: Obj, path: tuple[str, ...]) -> Any:
    value: Any = obj
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


class ClassTranslator(Translator):
    """A cluster-scoped host class mirrored read-only; subclasses name the kind's fields.

    ``fields`` are the top-level fields copied; ``immutable`` the paths the API
    server refuses to change, so a difference there (the host class was
    re-created with the same name) re-creates the virtual copy.
    """

    direction = Direction.FROM_HOST
    options_type = Selected
    manages_host_objects = False
    recreate_on_new_uid = False
    fields: ClassVar[tuple[str, ...]]
    immutable: ClassVar[tuple[tuple[str, ...], ...]]

    @property
    def _labels(self) -> Mapping[str, str]:
        selector: Mapping[str, Any] = self.options.get("selector") or {}
        labels: Mapping[str, str] = selector.get("labels") or {}
        return labels

    def host_label_selector(self, ctx: Context) -> str:
        """The configured labels as ``k=v,k2=v2`` ("" = every host class)."""
        return ",".join(f"{k}={v}" for k, v in sorted(self._labels.items()))

    def virtual_key(self, host: Obj, ctx: Context) -> str | None:
        """Same name on both sides: class names are cluster-wide and tenants reference them."""
        return str(host["metadata"]["name"])

    def wants(self, source: Obj, ctx: Context) -> bool:
        """The server-side selector already filters; checked again so a cache never leaks."""
        return _selected(source["metadata"].get("labels") or {}, self._labels)

    def virtual_copy(self, host: Obj) -> Obj:
        """Name, labels, annotations (but last-applied) and the kind's fields of ``host``."""
        meta = host["metadata"]
        annotations = meta.get("annotations") or {}
        copy: Obj = {
            "apiVersion": self.resource.api_version,
            "kind": self.resource.kind,
            "metadata": {
                "name": meta["name"],
                "labels": dict(meta.get("labels") or {}),
                "annotations": {k: v for k, v in annotations.items() if k != LAST_APPLIED},
            },
        }
        copy.update({f: host[f] for f in self.fields if f in host})
        return copy

    def to_virtual(self, host: Obj, ctx: Context) -> list[Action]:
        return [Create(Side.VIRTUAL, self.resource, self.virtual_copy(host))]

    def sync(self, virtual: Obj, host: Obj, ctx: Context) -> list[Action]:
        """Bring the copy back to the host class: a patch, or delete and create."""
        desired = self.virtual_copy(host)
        if not same_json(self._immutable_view(virtual), self._immutable_view(desired)):
            return [*self.to_host(virtual, ctx), Create(Side.VIRTUAL, self.resource, desired)]
        patch = merge_patch(self._mutable_view(virtual), self._mutable_view(desired))
        if not patch:
            return []
        return [Patch(Side.VIRTUAL, self.resource, virtual["metadata"]["name"], None, patch)]

    def to_host(self, virtual: Obj, ctx: Context) -> list[Action]:
        """The host class is gone or no longer selected: delete the virtual one."""
        meta = virtual["metadata"]
        return [Delete(Side.VIRTUAL, self.resource, meta["name"], None, meta.get("uid"))]

    def _immutable_view(self, obj: Obj) -> Obj:
        values = {".".join(path): _at(obj, path) for path in self.immutable}
        return {path: value for path, value in values.items() if value is not None}

    def _mutable_view(self, obj: Obj) -> Obj:
        """Labels, annotations and fields: everything the copy must match, as a patchable shape.

        Missing labels/annotations read as {} (the API server drops empty maps).
        """
        meta = obj["metadata"]
        return {
            "metadata": {
                "labels": meta.get("labels") or {},
                "annotations": meta.get("annotations") or {},
            },
            **{f: obj[f] for f in self.fields if f in obj},
        }


class StorageClassTranslator(ClassTranslator):
    """``sync.fromHost.storageClasses``: only ``allowVolumeExpansion`` can change in place."""

    kind = "storageClasses"
    summary = "Show host StorageClasses (read-only)."
    resource = STORAGECLASSES
    fields = (
        "provisioner", "parameters", "reclaimPolicy", "volumeBindingMode",
        "allowVolumeExpansion", "mountOptions", "allowedTopologies",
    )
    immutable = tuple((f,) for f in fields if f != "allowVolumeExpansion")


class IngressClassTranslator(ClassTranslator):
    """``sync.fromHost.ingressClasses``: ``spec.controller`` is immutable, the rest is not."""

    kind = "ingressClasses"
    summary = "Show host IngressClasses (read-only)."
    resource = INGRESSCLASSES
    fields = ("spec",)
    immutable = (("spec", "controller"),)


class RuntimeClassTranslator(ClassTranslator):
    """``sync.fromHost.runtimeClasses``: ``handler`` is immutable, the rest is not."""

    kind = "runtimeClasses"
    summary = "Show host RuntimeClasses (read-only); pods may name the ones shown."
    resource = RUNTIMECLASSES
    fields = ("handler", "overhead", "scheduling")
    immutable = (("handler",),)


class HostPriorityClassTranslator(ClassTranslator):
    """``sync.fromHost.priorityClasses``: selected host classes, never the system ones.

    ``system-*`` classes exist in every cluster, the virtual one included, with
    values above any tenant's: a host one is never shown (a pod naming it would
    get it on the host), and the virtual cluster's own are never touched.
    """

    kind = "hostPriorityClasses"
    summary = ("Show host PriorityClasses (read-only, never system-*); pods naming one get it "
               "on the host. Not together with sync.toHost.priorityClasses.")
    section = "priorityClasses"
    resource = PRIORITYCLASSES
    fields = ("value", "globalDefault", "description", "preemptionPolicy")
    immutable = (("value",), ("preemptionPolicy",))

    def wants(self, source: Obj, ctx: Context) -> bool:
        return not _system(source) and super().wants(source, ctx)

    def to_host(self, virtual: Obj, ctx: Context) -> list[Action]:
        return [] if _system(virtual) else super().to_host(virtual, ctx)


def _system(priority_class: Obj) -> bool:
    return str(priority_class["metadata"]["name"]).startswith("system-")


def _synced(resource: Resource, name: str, ctx: Context) -> bool:
    return ctx.lookup.get(Side.VIRTUAL, resource, name) is not None


def storage_class_synced(name: str, ctx: Context) -> bool:
    """Whether StorageClass ``name`` exists in the virtual cluster (i.e. is synced).

    A translator calling this must list ``(Side.VIRTUAL, STORAGECLASSES)`` in
    its ``reads()`` (the engine only caches what is declared), and should
    trigger on that cache so a referrer is retried once its class appears.
    Callers pass a real name: an empty or missing ``storageClassName`` means
    "no class" or "the default class" and names nothing to check.
    """
    return _synced(STORAGECLASSES, name, ctx)


def ingress_class_synced(name: str, ctx: Context) -> bool:
    """Whether IngressClass ``name`` exists in the virtual cluster (i.e. is synced).

    A translator calling this must list ``(Side.VIRTUAL, INGRESSCLASSES)`` in
    its ``reads()``; see :func:`storage_class_synced` for the rest.
    """
    return _synced(INGRESSCLASSES, name, ctx)


CLASS_RETRY = 30.0
"""Seconds until a referrer refused for an unsynced class is looked at again."""


def unsynced_class(
    shown: type[ClassTranslator], name: str | None, ctx: Context,
    synced: Callable[[str, Context], bool],
) -> list[Action]:
    """The refusal (Warning, retry later) for an object naming a class that is not synced.

    Only when the class kind is synced from the host (``shown`` is enabled);
    an empty or missing name ("no class", "the default class") names nothing
    to check. The retry is a timer because a trigger cannot map a class to
    the objects naming it.
    """
    if not name or not ctx.syncs(shown) or synced(name, ctx):
        return []
    kind = shown.resource.kind
    message = (
        f"{kind} {name!r} is not synced from the host cluster, so this object is not "
        "synced either; use a class that exists in this virtual cluster"
    )
    return [Warn(f"{kind}NotSynced", message), Requeue(CLASS_RETRY)]

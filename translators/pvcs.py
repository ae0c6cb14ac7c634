"""PersistentVolumeClaims: virtual -> host; binding, status and a stand-in PV back up
(docs/acceptance.md, scenarios 28 and 30).

Volumes are provisioned by the host: the host PVC (``<name>-x-<ns>-x-<vc>``)
carries the tenant's spec, and the host's provisioner and PV controller bind
it. What the tenant sees follows from that:

- once the host PVC is Bound, the virtual PVC's status (phase, capacity,
  access modes, conditions) mirrors it, and a *placeholder* virtual PV named
  like the host PV (CSI driver :data:`PLACEHOLDER_DRIVER`) is created and the
  virtual PVC's ``spec.volumeName`` set to it, so ``kubectl get pv`` and
  ``kubectl get pvc`` make sense. The virtual cluster's PV controller then sees
  a consistent pre-bound pair and keeps it Bound too. The placeholder says it
  was provisioned by :data:`PLACEHOLDER_DRIVER`, so that controller leaves its
  deletion to an "external deleter": the syncer, which removes placeholders
  with their claim;
- the spec is immutable on the API server except the storage request, so
  only an expansion flows down; nothing else is compared (the host fills in
  defaults such as its default class: comparing would loop);
- ``storageClassName`` names a *host* class and is kept: with StorageClasses
  synced from the host (``sync.fromHost.storageClasses``), a claim naming a
  class that is not synced is refused with a Warning (scenario 28); without
  that sync the tenant uses host classes by name, unchecked.
- ``selector`` is kept: it selects host PVs (not pods) by their labels, as it
  would on any cluster; it cannot reach another tenant's *bound* volume, as
  the host PV controller binds only Available ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from contract import resources
from contract.resources import STORAGECLASSES, Obj, Resource
from contract.translator import (
    Action,
    Context,
    Create,
    Delete,
    Index,
    Patch,
    Side,
    Translator,
    Trigger,
    Warn,
)
from translators.classes import StorageClassTranslator, storage_class_synced, unsynced_class
from translators.objects import host_metadata, merge_patch, metadata_patch

PLACEHOLDER_DRIVER = "host.vcsync.dev"
"""CSI driver of placeholder virtual PVs (a CSI driver name allows no ``/``)."""
PVS_BY_CLAIM = "placeholder-pvs-by-claim"
_PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
_STATUS_FIELDS = ("phase", "capacity", "accessModes", "conditions")
# Annotations the virtual cluster's PV, expand and scheduling machinery writes
# on the virtual claim: on the host, the host's controllers own them (a copied
# storage-resizer naming the placeholder driver would stall host expansion).
_CONTROLLER_ANNOTATIONS = frozenset({
    "pv.kubernetes.io/bind-completed",
    "pv.kubernetes.io/bound-by-controller",
    "volume.beta.kubernetes.io/storage-provisioner",
    "volume.kubernetes.io/storage-provisioner",
    "volume.kubernetes.io/storage-resizer",
    "volume.kubernetes.io/selected-node",
})
# Data sources that are objects of the claim's own namespace, renamed like it.
_RENAMED_SOURCES = frozenset({
    ("", "PersistentVolumeClaim"),
    ("snapshot.storage.k8s.io", "VolumeSnapshot"),
})


def _spec(obj: Obj) -> Obj:
    spec: Obj = obj.get("spec") or {}
    return spec


def _storage_request(claim: Obj) -> Any:
    return ((_spec(claim).get("resources") or {}).get("requests") or {}).get("storage")


def _is_placeholder(volume: Obj) -> bool:
    return bool((_spec(volume).get("csi") or {}).get("driver") == PLACEHOLDER_DRIVER)


def placeholder_claim(volume: Obj) -> list[str]:
    """``namespace/name`` of the claim a placeholder PV stands for (index and trigger)."""
    ref = _spec(volume).get("claimRef") or {}
    if not _is_placeholder(volume) or not ref.get("name"):
        return []
    return [f"{ref.get('namespace', '')}/{ref['name']}"]


def _host_data_source(ref: Obj, namespace: str, ctx: Context) -> Obj:
    """A same-namespace claim or snapshot source renamed like its object; others as they are."""
    if (ref.get("apiGroup") or "", ref.get("kind")) not in _RENAMED_SOURCES:
        return ref
    renamed = {k: v for k, v in ref.items() if k != "namespace"}
    renamed["name"] = ctx.host_name(ref["name"], namespace)
    return renamed


def _foreign_data_source(claim: Obj) -> str | None:
    """The namespace of a cross-namespace ``dataSourceRef``, if any.

    On the host every tenant object lives in one namespace and any other
    namespace is someone else's, so such a source cannot be translated.
    """
    namespace = (_spec(claim).get("dataSourceRef") or {}).get("namespace")
    own = claim["metadata"]["namespace"]
    return str(namespace) if namespace and namespace != own else None


def host_claim(virtual: Obj, ctx: Context) -> Obj:
    """The host PVC: translated metadata, the spec without ``volumeName`` (the host binds)."""
    namespace = virtual["metadata"]["namespace"]
    spec = {k: v for k, v in _spec(virtual).items() if k != "volumeName"}
    for field in ("dataSource", "dataSourceRef"):
        if spec.get(field):
            spec[field] = _host_data_source(spec[field], namespace, ctx)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _host_claim_metadata(virtual, ctx),
        "spec": spec,
    }


def _host_claim_metadata(virtual: Obj, ctx: Context) -> Obj:
    meta = virtual["metadata"]
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items()
        if k not in _CONTROLLER_ANNOTATIONS
    }
    return host_metadata({**virtual, "metadata": {**meta, "annotations": annotations}}, ctx,
                         "PersistentVolumeClaim")


def _reclaim_policy(class_name: str | None, ctx: Context) -> str:
    """The policy the host gave a provisioned PV: its class's (synced copy), else Delete."""
    synced = None
    if class_name and ctx.syncs(StorageClassTranslator):
        synced = ctx.lookup.get(Side.VIRTUAL, STORAGECLASSES, class_name)
    return str((synced or {}).get("reclaimPolicy") or "Delete")


def placeholder_volume(virtual: Obj, host: Obj, ctx: Context) -> Obj:
    """The virtual PV standing for the host PV that the host PVC is bound to."""
    meta, host_spec = virtual["metadata"], _spec(host)
    status = host.get("status") or {}
    volume = host_spec["volumeName"]
    spec: Obj = {
        "capacity": status.get("capacity") or {"storage": _storage_request(host)},
        "accessModes": status.get("accessModes") or host_spec.get("accessModes") or [],
        "claimRef": {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": meta.get("uid", ""),
        },
        "persistentVolumeReclaimPolicy": _reclaim_policy(host_spec.get("storageClassName"), ctx),
        "csi": {"driver": PLACEHOLDER_DRIVER, "volumeHandle": volume},
    }
    spec.update({f: host_spec[f] for f in ("storageClassName", "volumeMode") if f in host_spec})
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": volume, "annotations": {_PROVISIONED_BY: PLACEHOLDER_DRIVER}},
        "spec": spec,
    }


def status_patch(virtual: Obj, host: Obj) -> Obj:
    """``{"status": ...}`` mirroring the host claim's phase, capacity, modes, conditions; or {}."""
    def mirrored(claim: Obj) -> Obj:
        status = claim.get("status") or {}
        return {f: status[f] for f in _STATUS_FIELDS if f in status}

    patch = merge_patch(mirrored(virtual), mirrored(host))
    return {"status": patch} if patch else {}


class PersistentVolumeClaimTranslator(Translator):
    kind = "persistentVolumeClaims"
    summary = "Sync PVCs; the virtual PVC shows the host's binding."
    enabled_by_default = True
    resource = resources.PVCS

    def indexes(self) -> Sequence[Index]:
        return (Index(Side.VIRTUAL, resources.PVS, PVS_BY_CLAIM, placeholder_claim),)

    def triggers(self) -> Sequence[Trigger]:
        """A placeholder PV changed or vanished: its claim puts it right."""
        return (Trigger(Side.VIRTUAL, resources.PVS, placeholder_claim),)

    def reads(self) -> Sequence[tuple[Side, Resource]]:
        return ((Side.VIRTUAL, resources.PVS), (Side.VIRTUAL, STORAGECLASSES))

    # -- the three cases ---------------------------------------------------------

    def to_host(self, virtual: Obj, ctx: Context) -> list[Action]:
        refused = self._refusal(virtual, ctx)
        if refused:
            return refused
        meta = virtual["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        stale = self._delete_placeholders(key, ctx, meta.get("uid"))
        return [*stale, Create(Side.HOST, self.host, host_claim(virtual, ctx))]

    def sync(self, virtual: Obj, host: Obj, ctx: Context) -> list[Action]:
        return self._host_patch(virtual, host, ctx) + self._bound(virtual, host, ctx)

    def to_virtual(self, host: Obj, ctx: Context) -> list[Action]:
        """An orphan: its placeholder PVs go first (nothing else would find them later)."""
        key = self.virtual_key(host, ctx)
        placeholders = self._delete_placeholders(key, ctx) if key else []
        return [*placeholders, *super().to_virtual(host, ctx)]

    # -- helpers -------------------------------------------------------------------

    def _refusal(self, virtual: Obj, ctx: Context) -> list[Action]:
        """Why the claim cannot be provisioned on the host, as a Warning; [] if it can."""
        spec = _spec(virtual)
        if spec.get("volumeName"):
            return [Warn("VolumeNotOnHost", (
                "spec.volumeName is set: a claim bound to a particular volume cannot be "
                "provisioned on the host cluster (it names a volume of this virtual cluster, "
                "or its host volume was deleted); delete and re-create the claim"
            ))]
        foreign = _foreign_data_source(virtual)
        if foreign:
            return [Warn("DataSourceNotSupported", (
                f"spec.dataSourceRef names namespace {foreign!r}: cross-namespace data "
                "sources are not supported"
            ))]
        return unsynced_class(StorageClassTranslator, spec.get("storageClassName"), ctx,
                              storage_class_synced)

    def _delete_placeholders(
        self, key: str, ctx: Context, keep_uid: str | None = None
    ) -> list[Action]:
        """Delete the placeholder PVs of claim ``key``, but one standing for uid ``keep_uid``.

        Stale ones stand for an earlier claim of the same name (re-created
        under a new uid), or for a claim that is gone.
        """
        return [
            Delete(Side.VIRTUAL, resources.PVS, pv["metadata"]["name"], None,
                   pv["metadata"].get("uid"))
            for pv in ctx.lookup.by_index(Side.VIRTUAL, resources.PVS, PVS_BY_CLAIM, key)
            if keep_uid is None or (_spec(pv).get("claimRef") or {}).get("uid") != keep_uid
        ]

    def _host_patch(self, virtual: Obj, host: Obj, ctx: Context) -> list[Action]:
        """Labels, annotations and an expanded storage request; nothing else is mutable."""
        patch = metadata_patch(host, {"metadata": _host_claim_metadata(virtual, ctx)})
        storage = _storage_request(virtual)
        if storage is not None and storage != _storage_request(host):
            patch["spec"] = {"resources": {"requests": {"storage": storage}}}
        if not patch:
            return []
        meta = host["metadata"]
        return [Patch(Side.HOST, self.host, meta["name"], meta["namespace"], patch)]

    def _bound(self, virtual: Obj, host: Obj, ctx: Context) -> list[Action]:
        """Once the host claim is Bound: the placeholder PV, ``volumeName``, then the status.

        A claim the tenant pre-bound elsewhere, or a virtual PV of the host
        PV's name that is not a placeholder, is left alone: there is nothing
        consistent to show.
        """
        volume = _spec(host).get("volumeName")
        claimed = _spec(virtual).get("volumeName")
        if (host.get("status") or {}).get("phase") != "Bound" or not volume:
            return []
        existing = ctx.lookup.get(Side.VIRTUAL, resources.PVS, volume)
        if (claimed and claimed != volume) or (existing and not _is_placeholder(existing)):
            return []
        name, namespace = virtual["metadata"]["name"], virtual["metadata"]["namespace"]
        actions = self._placeholder(placeholder_volume(virtual, host, ctx), existing)
        if not claimed:
            actions.append(Patch(Side.VIRTUAL, self.resource, name, namespace,
                                 {"spec": {"volumeName": volume}}))
        status = status_patch(virtual, host)
        if status:
            actions.append(Patch(Side.VIRTUAL, self.resource, name, namespace, status, "status"))
        return actions

    def _placeholder(self, desired: Obj, existing: Obj | None) -> list[Action]:
        """Create the placeholder PV, or follow the host's capacity (expansion)."""
        if existing is None:
            return [Create(Side.VIRTUAL, resources.PVS, desired)]
        capacity = merge_patch(
            {"capacity": _spec(existing).get("capacity") or {}},
            {"capacity": desired["spec"]["capacity"]},
        )
        if not capacity:
            return []
        name = desired["metadata"]["name"]
        return [Patch(Side.VIRTUAL, resources.PVS, name, None, {"spec": capacity})]

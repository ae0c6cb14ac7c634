"""Unit tests of the PersistentVolumeClaim translator (scenarios 28 and 30).

Host claims are shaped as the host API server returns them after binding
(server metadata, the host's default class and binding annotations, a bound
status). Every translator call runs inside ``unchanged``: cached objects are
shared and must never be mutated.
"""

from __future__ import annotations

import copy
from typing import Any

from contract import naming, resources
from contract.facts import Facts
from contract.resources import STORAGECLASSES, Obj
from contract.translator import Context, Create, Delete, Patch, Requeue, Side, Warn
from tests.unit.fakes import FakeLookup, unchanged
from translators.pvcs import (
    PLACEHOLDER_DRIVER,
    PersistentVolumeClaimTranslator,
    host_claim,
    placeholder_claim,
)

HOST_NS = "vcluster-vc"
HOST_NAME = "data-x-team-x-vc"
VOLUME = "pvc-0f3a"
T = PersistentVolumeClaimTranslator()




def context(*objs: tuple[Side, Any, Obj], **values: Any) -> Context:
    lookup = FakeLookup(funcs=list(T.indexes()))
    for side, resource, obj in objs:
        lookup.add(side, resource, obj)
    return Context(vcluster="vc", host_namespace=HOST_NS, lookup=lookup, facts=Facts(**values))


def virtual_pvc(uid: str = "uid-1", **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "data",
            "namespace": "team",
            "uid": uid,
            "resourceVersion": "5",
            "labels": {"app": "db"},
            "annotations": {
                "note": "keep",
                "volume.kubernetes.io/storage-provisioner": "ebs.csi.aws.com",
                "pv.kubernetes.io/bind-completed": "yes",
            },
            "finalizers": ["kubernetes.io/pvc-protection"],
        },
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
            "storageClassName": "fast",
            "volumeMode": "Filesystem",
            **spec,
        },
        "status": {"phase": "Pending"},
    }


def bound_host(virtual: Obj, capacity: str = "1Gi") -> Obj:
    """The host copy of ``virtual`` as the host API server returns it once Bound."""
    host = copy.deepcopy(host_claim(virtual, context()))
    host["metadata"].update({"uid": "host-uid", "resourceVersion": "77"})
    host["metadata"]["annotations"].update({
        "pv.kubernetes.io/bind-completed": "yes",
        "volume.kubernetes.io/selected-node": "node-1",
    })
    host["spec"]["volumeName"] = VOLUME
    host["status"] = {
        "phase": "Bound",
        "capacity": {"storage": capacity},
        "accessModes": ["ReadWriteOnce"],
    }
    return host


def bound_virtual(virtual: Obj, host: Obj) -> Obj:
    """``virtual`` after the syncer set its volumeName and mirrored the host's status."""
    out = copy.deepcopy(virtual)
    out["spec"]["volumeName"] = VOLUME
    out["status"] = copy.deepcopy(host["status"])
    return out


def placeholder(virtual: Obj, **spec: Any) -> Obj:
    meta = virtual["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": VOLUME,
            "uid": "pv-uid",
            "annotations": {"pv.kubernetes.io/provisioned-by": PLACEHOLDER_DRIVER},
            "finalizers": ["kubernetes.io/pv-protection"],
        },
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "claimRef": {
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"],
            },
            "persistentVolumeReclaimPolicy": "Delete",
            "csi": {"driver": PLACEHOLDER_DRIVER, "volumeHandle": VOLUME},
            "storageClassName": "fast",
            "volumeMode": "Filesystem",
            **spec,
        },
    }


def pv(obj: Obj) -> tuple[Side, Any, Obj]:
    return (Side.VIRTUAL, resources.PVS, obj)


# --- to_host: the host claim ---------------------------------------------------------------------


def test_to_host_creates_the_host_claim_with_translated_metadata() -> None:
    virtual = virtual_pvc(volumeMode="Block")
    with unchanged(virtual):
        (action,) = T.to_host(virtual, context())
    assert isinstance(action, Create)
    assert (action.side, action.resource) == (Side.HOST, resources.PVCS)
    meta = action.obj["metadata"]
    assert (meta["name"], meta["namespace"]) == (HOST_NAME, HOST_NS)
    assert meta["labels"] == {
        "app": "db", naming.LABEL_MANAGED_BY: "vc", naming.LABEL_NAMESPACE: "team",
    }
    assert naming.identity_of(action.obj) == naming.VirtualIdentity(
        "data", "team", "uid-1", "PersistentVolumeClaim"
    )
    assert action.obj["spec"] == virtual["spec"]


def test_controller_annotations_of_the_virtual_claim_stay_inside() -> None:
    meta = host_claim(virtual_pvc(), context())["metadata"]
    assert meta["annotations"]["note"] == "keep"
    assert "volume.kubernetes.io/storage-provisioner" not in meta["annotations"]
    assert "pv.kubernetes.io/bind-completed" not in meta["annotations"]
    assert meta["annotations"][naming.ANNOTATION_MANAGED_ANNOTATIONS] == "note"


def test_volume_name_is_never_sent_and_a_claim_with_one_is_refused() -> None:
    virtual = virtual_pvc(volumeName="some-pv")
    assert "volumeName" not in host_claim(virtual, context())["spec"]
    with unchanged(virtual):
        (warn,) = T.to_host(virtual, context())
    assert isinstance(warn, Warn)
    assert warn.reason == "VolumeNotOnHost"
    assert HOST_NS not in warn.message


def test_claim_and_snapshot_data_sources_are_renamed() -> None:
    claim_source = {"kind": "PersistentVolumeClaim", "name": "src"}
    snapshot = {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "snap"}
    spec = host_claim(virtual_pvc(dataSource=claim_source, dataSourceRef=snapshot), context())
    assert spec["spec"]["dataSource"] == {**claim_source, "name": "src-x-team-x-vc"}
    assert spec["spec"]["dataSourceRef"] == {**snapshot, "name": "snap-x-team-x-vc"}


def test_same_namespace_data_source_ref_loses_its_namespace_other_kinds_stay() -> None:
    own = {"kind": "PersistentVolumeClaim", "name": "src", "namespace": "team"}
    populator = {"apiGroup": "example.com", "kind": "Seed", "name": "s"}
    spec = host_claim(virtual_pvc(dataSourceRef=own, dataSource=populator), context())["spec"]
    assert spec["dataSourceRef"] == {"kind": "PersistentVolumeClaim", "name": "src-x-team-x-vc"}
    assert spec["dataSource"] == populator


def test_cross_namespace_data_source_is_refused() -> None:
    ref = {"kind": "PersistentVolumeClaim", "name": "src", "namespace": "other"}
    (warn,) = T.to_host(virtual_pvc(dataSourceRef=ref), context())
    assert isinstance(warn, Warn)
    assert warn.reason == "DataSourceNotSupported"


# --- storage classes (scenario 28) ------------------------------------------------------------


def storage_class(name: str, **fields: Any) -> tuple[Side, Any, Obj]:
    return (Side.VIRTUAL, STORAGECLASSES, {"metadata": {"name": name}, **fields})


def test_unsynced_class_is_refused_when_classes_come_from_the_host() -> None:
    virtual = virtual_pvc()
    with unchanged(virtual):
        actions = T.to_host(virtual, context(**{"synced": frozenset({"storageClasses"})}))
    assert len(actions) == 2
    warn, requeue = actions
    assert isinstance(warn, Warn)
    assert warn.reason == "StorageClassNotSynced"
    assert "'fast'" in warn.message
    assert isinstance(requeue, Requeue)


def test_synced_class_is_kept_by_name() -> None:
    ctx = context(storage_class("fast"), **{"synced": frozenset({"storageClasses"})})
    (action,) = T.to_host(virtual_pvc(), ctx)
    assert isinstance(action, Create)
    assert action.obj["spec"]["storageClassName"] == "fast"


def test_class_names_are_unchecked_without_class_sync_and_default_class_is_unchecked() -> None:
    (action,) = T.to_host(virtual_pvc(), context())
    assert isinstance(action, Create)
    no_class = virtual_pvc()
    del no_class["spec"]["storageClassName"]
    (action,) = T.to_host(no_class, context(**{"synced": frozenset({"storageClasses"})}))
    assert isinstance(action, Create)
    assert "storageClassName" not in action.obj["spec"]


# --- sync: binding and status up (scenario 30) ---------------------------------------------------


def test_sync_is_idle_once_bound_and_mirrored() -> None:
    virtual = virtual_pvc()
    host = bound_host(virtual)
    virtual = bound_virtual(virtual, host)
    ctx = context(pv(placeholder(virtual)))
    with unchanged(virtual, host):
        assert T.sync(virtual, host, ctx) == []


def test_sync_is_idle_while_the_host_claim_is_pending() -> None:
    virtual = virtual_pvc()
    host = bound_host(virtual)
    host["status"] = {"phase": "Pending"}
    del host["spec"]["volumeName"]
    assert T.sync(virtual, host, context()) == []


def test_bound_host_claim_creates_placeholder_sets_volume_name_and_status() -> None:
    virtual = virtual_pvc()
    host = bound_host(virtual)
    with unchanged(virtual, host):
        actions = T.sync(virtual, host, context())
    create, bind, status = actions
    assert create == Create(Side.VIRTUAL, resources.PVS, {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": VOLUME,
            "annotations": {"pv.kubernetes.io/provisioned-by": PLACEHOLDER_DRIVER},
        },
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "claimRef": {
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "namespace": "team", "name": "data", "uid": "uid-1",
            },
            "persistentVolumeReclaimPolicy": "Delete",
            "csi": {"driver": PLACEHOLDER_DRIVER, "volumeHandle": VOLUME},
            "storageClassName": "fast",
            "volumeMode": "Filesystem",
        },
    })
    assert bind == Patch(Side.VIRTUAL, resources.PVCS, "data", "team",
                         {"spec": {"volumeName": VOLUME}})
    assert status == Patch(Side.VIRTUAL, resources.PVCS, "data", "team", {"status": {
        "phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
    }}, "status")


def test_placeholder_driver_is_a_valid_csi_driver_name() -> None:
    assert "/" not in PLACEHOLDER_DRIVER
    assert len(PLACEHOLDER_DRIVER) <= 63


def test_placeholder_takes_the_reclaim_policy_of_the_synced_host_class() -> None:
    virtual = virtual_pvc()
    ctx = context(storage_class("fast", reclaimPolicy="Retain"),
                  **{"synced": frozenset({"storageClasses"})})
    create = T.sync(virtual, bound_host(virtual), ctx)[0]
    assert isinstance(create, Create)
    assert create.obj["spec"]["persistentVolumeReclaimPolicy"] == "Retain"


def test_host_default_class_shows_on_the_placeholder_and_is_not_pushed_back() -> None:
    virtual = virtual_pvc()
    del virtual["spec"]["storageClassName"]
    host = bound_host(virtual)
    host["spec"]["storageClassName"] = "standard"
    create = T.sync(virtual, host, context())[0]
    assert isinstance(create, Create)
    assert create.obj["spec"]["storageClassName"] == "standard"
    virtual = bound_virtual(virtual, host)
    current = placeholder(virtual, storageClassName="standard")
    assert T.sync(virtual, host, context(pv(current))) == []


def test_status_conditions_follow_the_host() -> None:
    virtual = virtual_pvc()
    host = bound_host(virtual)
    virtual = bound_virtual(virtual, host)
    condition = {"type": "FileSystemResizePending", "status": "True"}
    host["status"]["conditions"] = [condition]
    (action,) = T.sync(virtual, host, context(pv(placeholder(virtual))))
    assert action == Patch(Side.VIRTUAL, resources.PVCS, "data", "team",
                           {"status": {"conditions": [condition]}}, "status")


def test_a_claim_the_tenant_bound_elsewhere_is_not_touched() -> None:
    virtual = virtual_pvc()
    host = bound_host(virtual)
    virtual["spec"]["volumeName"] = "tenant-pv"
    assert T.sync(virtual, host, context()) == []


def test_a_virtual_pv_that_is_not_a_placeholder_is_not_touched() -> None:
    virtual = virtual_pvc()
    host = bound_host(virtual)
    foreign = placeholder(virtual, csi={"driver": "ebs.csi.aws.com", "volumeHandle": "v"})
    assert T.sync(virtual, host, context(pv(foreign))) == []


# --- sync: spec and metadata down ----------------------------------------------------------------


def test_expansion_flows_down_and_capacity_comes_back_up() -> None:
    virtual = virtual_pvc()
    host = bound_host(virtual)
    virtual = bound_virtual(virtual, host)
    virtual["spec"]["resources"]["requests"]["storage"] = "2Gi"
    ctx = context(pv(placeholder(virtual)))
    with unchanged(virtual, host):
        (expand,) = T.sync(virtual, host, ctx)
    assert expand == Patch(Side.HOST, resources.PVCS, HOST_NAME, HOST_NS,
                           {"spec": {"resources": {"requests": {"storage": "2Gi"}}}})

    grown = copy.deepcopy(host)
    grown["spec"]["resources"]["requests"]["storage"] = "2Gi"
    grown["status"]["capacity"]["storage"] = "2Gi"
    assert T.sync(virtual, grown, ctx) == [
        Patch(Side.VIRTUAL, resources.PVS, VOLUME, None,
              {"spec": {"capacity": {"storage": "2Gi"}}}),
        Patch(Side.VIRTUAL, resources.PVCS, "data", "team",
              {"status": {"capacity": {"storage": "2Gi"}}}, "status"),
    ]


def test_other_spec_differences_are_not_pushed() -> None:
    virtual = virtual_pvc()
    host = bound_host(virtual)
    virtual = bound_virtual(virtual, host)
    host["spec"]["accessModes"] = ["ReadWriteMany"]
    host["spec"]["volumeMode"] = "Block"
    assert T.sync(virtual, host, context(pv(placeholder(virtual)))) == []


def test_labels_follow_and_host_controller_annotations_survive() -> None:
    virtual = virtual_pvc()
    host = bound_host(virtual)
    virtual = bound_virtual(virtual, host)
    virtual["metadata"]["labels"]["tier"] = "gold"
    (patch,) = T.sync(virtual, host, context(pv(placeholder(virtual))))
    assert patch == Patch(Side.HOST, resources.PVCS, HOST_NAME, HOST_NS,
                          {"metadata": {"labels": {"tier": "gold"}}})


# --- placeholders' life ------------------------------------------------------------------------


def test_placeholder_claim_maps_only_placeholders_to_their_claim() -> None:
    virtual = virtual_pvc()
    assert placeholder_claim(placeholder(virtual)) == ["team/data"]
    assert placeholder_claim(placeholder(virtual, csi={"driver": "x", "volumeHandle": "v"})) == []
    assert placeholder_claim({"metadata": {"name": "p"}, "spec": {}}) == []


def test_orphan_deletes_its_placeholders_then_the_host_claim() -> None:
    virtual = virtual_pvc()
    host = bound_host(virtual)
    ctx = context(pv(placeholder(virtual)))
    with unchanged(host):
        actions = T.to_virtual(host, ctx)
    assert actions == [
        Delete(Side.VIRTUAL, resources.PVS, VOLUME, None, "pv-uid"),
        Delete(Side.HOST, resources.PVCS, HOST_NAME, HOST_NS, "host-uid"),
    ]


def test_recreated_claim_removes_the_stale_placeholder_first() -> None:
    old = virtual_pvc(uid="uid-old")
    new = virtual_pvc(uid="uid-new")
    ctx = context(pv(placeholder(old)))
    delete, create = T.to_host(new, ctx)
    assert delete == Delete(Side.VIRTUAL, resources.PVS, VOLUME, None, "pv-uid")
    assert isinstance(create, Create)
    current = placeholder(new)
    (create,) = T.to_host(new, context(pv(current)))
    assert isinstance(create, Create)


def test_triggers_and_reads_cover_the_caches_it_uses() -> None:
    assert (Side.VIRTUAL, resources.PVS) in T.reads()
    assert (Side.VIRTUAL, STORAGECLASSES) in T.reads()
    (trigger,) = T.triggers()
    assert trigger.side is Side.VIRTUAL
    assert trigger.resource == resources.PVS
    assert trigger.keys(placeholder(virtual_pvc())) == ["team/data"]

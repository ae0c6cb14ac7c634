"""Unit tests of the fromHost class translators (scenario 28; runtime and priority classes:
issue 22).

Host classes are shaped as the host API server returns them (defaults filled
in, server metadata, a kubectl last-applied annotation). Every call runs
inside ``unchanged`` so a translator that mutates a cached object fails.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from contract.resources import INGRESSCLASSES, PRIORITYCLASSES, RUNTIMECLASSES, STORAGECLASSES, Obj
from contract.translator import Context, Create, Delete, Direction, Patch, Side
from syncer.controller import Controller
from tests.unit.fakes import FakeLookup, unchanged
from translators.classes import (
    LAST_APPLIED,
    ClassTranslator,
    HostPriorityClassTranslator,
    IngressClassTranslator,
    RuntimeClassTranslator,
    StorageClassTranslator,
    ingress_class_synced,
    storage_class_synced,
)

SELECTED = {"enabled": True, "selector": {"labels": {"vcsync.dev/share": "true", "tier": "gold"}}}


def context(lookup: FakeLookup | None = None) -> Context:
    return Context(vcluster="vc", host_namespace="vcluster-vc", lookup=lookup or FakeLookup())


def server_meta(name: str, **meta: Any) -> Obj:
    return {
        "name": name,
        "uid": f"uid-{name}",
        "resourceVersion": "100",
        "creationTimestamp": "2024-05-01T09:00:00Z",
        "labels": {"vcsync.dev/share": "true", "tier": "gold"},
        "annotations": {
            "storageclass.kubernetes.io/is-default-class": "true",
            LAST_APPLIED: '{"apiVersion":"storage.k8s.io/v1"}',
        },
        **meta,
    }


def host_storage_class(**fields: Any) -> Obj:
    obj: Obj = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": server_meta("fast"),
        "provisioner": "ebs.csi.aws.com",
        "parameters": {"type": "gp3", "encrypted": "true"},
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
        "mountOptions": ["noatime"],
        "allowedTopologies": [{"matchLabelExpressions": [
            {"key": "topology.kubernetes.io/zone", "values": ["eu-west-1a"]},
        ]}],
    }
    obj.update(fields)
    return obj


def host_ingress_class(**spec: Any) -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": server_meta("nginx"),
        "spec": {
            "controller": "k8s.io/ingress-nginx",
            "parameters": {"apiGroup": "k8s.nginx.org", "kind": "IngressParameters",
                           "name": "external", "scope": "Cluster"},
            **spec,
        },
    }


def created(actions: list[Any]) -> Obj:
    assert len(actions) == 1
    action = actions[0]
    assert isinstance(action, Create)
    assert action.side is Side.VIRTUAL
    return action.obj


def stored(obj: Obj) -> Obj:
    """``obj`` as the virtual API server returns it after the create."""
    out = copy.deepcopy(obj)
    out["metadata"].update({"uid": "virtual-uid", "resourceVersion": "7"})
    return out


# --- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [StorageClassTranslator, IngressClassTranslator])
def test_host_label_selector_comes_from_the_options(cls: type[ClassTranslator]) -> None:
    assert cls.direction is Direction.FROM_HOST
    assert cls(SELECTED).host_label_selector(context()) == "tier=gold,vcsync.dev/share=true"
    assert cls({"enabled": True}).host_label_selector(context()) == ""
    assert cls({"enabled": True, "selector": {"labels": {}}}).host_label_selector(context()) == ""


def test_kinds_and_resources() -> None:
    assert (StorageClassTranslator.kind, StorageClassTranslator.resource) == (
        "storageClasses", STORAGECLASSES)
    assert (IngressClassTranslator.kind, IngressClassTranslator.resource) == (
        "ingressClasses", INGRESSCLASSES)
    assert STORAGECLASSES.path(name="fast") == "/apis/storage.k8s.io/v1/storageclasses/fast"
    assert INGRESSCLASSES.path("ns", "nginx") == "/apis/networking.k8s.io/v1/ingressclasses/nginx"


def test_virtual_key_is_the_host_name_and_labels_are_rechecked() -> None:
    t, host = StorageClassTranslator(SELECTED), host_storage_class()
    with unchanged(host):
        assert t.virtual_key(host, context()) == "fast"
        assert t.wants(host, context())
    other = host_storage_class(metadata=server_meta("slow", labels={"tier": "gold"}))
    assert not t.wants(other, context())
    assert StorageClassTranslator({"enabled": True}).wants(other, context())


# --- the virtual copy -----------------------------------------------------------------------------


def test_storage_class_copy() -> None:
    t, host = StorageClassTranslator(SELECTED), host_storage_class()
    with unchanged(host):
        actions = t.to_virtual(host, context())
    assert actions == [Create(Side.VIRTUAL, STORAGECLASSES, {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": "fast",
            "labels": {"vcsync.dev/share": "true", "tier": "gold"},
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        **{k: v for k, v in host.items() if k not in ("apiVersion", "kind", "metadata")},
    })]


def test_ingress_class_copy() -> None:
    t, host = IngressClassTranslator(SELECTED), host_ingress_class()
    with unchanged(host):
        obj = created(t.to_virtual(host, context()))
    assert obj["apiVersion"] == "networking.k8s.io/v1"
    assert obj["kind"] == "IngressClass"
    assert obj["metadata"]["name"] == "nginx"
    assert obj["spec"] == host["spec"]
    assert LAST_APPLIED not in obj["metadata"]["annotations"]


def test_copy_without_optional_fields_or_metadata() -> None:
    host = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "plain", "uid": "u"}, "provisioner": "rancher.io/local-path"}
    obj = created(StorageClassTranslator().to_virtual(host, context()))
    assert obj == {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                   "metadata": {"name": "plain", "labels": {}, "annotations": {}},
                   "provisioner": "rancher.io/local-path"}


# --- sync -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "host"),
    [
        (StorageClassTranslator, host_storage_class()),
        (IngressClassTranslator, host_ingress_class()),
    ],
)
def test_sync_of_an_unchanged_copy_writes_nothing(cls: type[ClassTranslator], host: Obj) -> None:
    t = cls(SELECTED)
    virtual = stored(created(t.to_virtual(host, context())))
    with unchanged(virtual, host):
        assert t.sync(virtual, host, context()) == []
    bare = copy.deepcopy(virtual)
    bare["metadata"].update(labels=None, annotations=None)
    emptied = copy.deepcopy(host)
    emptied["metadata"].update(labels=None, annotations={LAST_APPLIED: "{}"})
    assert cls().sync(bare, emptied, context()) == []


def test_tenant_edit_of_the_copy_is_reverted() -> None:
    t, host = StorageClassTranslator(SELECTED), host_storage_class()
    virtual = stored(created(t.to_virtual(host, context())))
    virtual["allowVolumeExpansion"] = False
    virtual["metadata"]["labels"]["tier"] = "free"
    virtual["metadata"]["annotations"] = {"tenant": "was here", LAST_APPLIED: "{}"}
    with unchanged(virtual, host):
        actions = t.sync(virtual, host, context())
    assert actions == [Patch(Side.VIRTUAL, STORAGECLASSES, "fast", None, {
        "metadata": {
            "labels": {"tier": "gold"},
            "annotations": {
                "storageclass.kubernetes.io/is-default-class": "true",
                "tenant": None,
                LAST_APPLIED: None,
            },
        },
        "allowVolumeExpansion": True,
    })]


def test_mutable_host_change_is_patched() -> None:
    t = IngressClassTranslator(SELECTED)
    virtual = stored(created(t.to_virtual(host_ingress_class(), context())))
    host = host_ingress_class(parameters={"kind": "IngressParameters", "name": "internal"})
    assert t.sync(virtual, host, context()) == [Patch(Side.VIRTUAL, INGRESSCLASSES, "nginx", None, {
        "spec": {"parameters": {"apiGroup": None, "name": "internal", "scope": None}},
    })]


@pytest.mark.parametrize(
    ("cls", "old", "new"),
    [
        (StorageClassTranslator, host_storage_class(),
         host_storage_class(provisioner="disk.csi.azure.com")),
        (StorageClassTranslator, host_storage_class(),
         host_storage_class(parameters={"type": "io2"})),
        (StorageClassTranslator, host_storage_class(),
         host_storage_class(volumeBindingMode="Immediate")),
        (StorageClassTranslator, host_storage_class(mountOptions=None),
         host_storage_class(mountOptions=["noatime"])),
        (IngressClassTranslator, host_ingress_class(),
         host_ingress_class(controller="example.com/other")),
    ],
)
def test_immutable_difference_recreates_the_copy(
    cls: type[ClassTranslator], old: Obj, new: Obj
) -> None:
    t = cls(SELECTED)
    virtual = stored(created(t.to_virtual(old, context())))
    with unchanged(virtual, new):
        actions = t.sync(virtual, new, context())
    name = virtual["metadata"]["name"]
    assert actions == [
        Delete(Side.VIRTUAL, t.resource, name, None, "virtual-uid"),
        Create(Side.VIRTUAL, t.resource, t.virtual_copy(new)),
    ]


def test_host_class_gone_deletes_the_copy() -> None:
    t = StorageClassTranslator(SELECTED)
    virtual = stored(created(t.to_virtual(host_storage_class(), context())))
    with unchanged(virtual):
        assert t.to_host(virtual, context()) == [
            Delete(Side.VIRTUAL, STORAGECLASSES, "fast", None, "virtual-uid")
        ]


def test_plan_creates_syncs_and_deletes() -> None:
    c = Controller.__new__(Controller)
    c.translator, c.ctx = StorageClassTranslator(SELECTED), context()
    host = host_storage_class()
    virtual = stored(created(c.plan(None, host)))
    assert c.plan(virtual, host) == []
    unselected = copy.deepcopy(host)
    unselected["metadata"]["labels"] = {"tier": "gold"}
    delete = [Delete(Side.VIRTUAL, STORAGECLASSES, "fast", None, "virtual-uid")]
    assert c.plan(virtual, unselected) == delete
    assert c.plan(virtual, None) == delete


# --- helpers for referrers ------------------------------------------------------------------------


def test_class_synced_helpers_read_the_virtual_caches() -> None:
    lookup = FakeLookup()
    ctx = context(lookup)
    assert not storage_class_synced("fast", ctx)
    assert not ingress_class_synced("nginx", ctx)
    lookup.add(Side.VIRTUAL, STORAGECLASSES, stored(created(
        StorageClassTranslator().to_virtual(host_storage_class(), ctx))))
    lookup.add(Side.HOST, INGRESSCLASSES, host_ingress_class())
    assert storage_class_synced("fast", ctx)
    assert not ingress_class_synced("nginx", ctx)
    assert not storage_class_synced("slow", ctx)


# --- runtime and priority classes (issue 22) -----------------------------------------------------


def host_runtime_class(**fields: Any) -> Obj:
    return {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
            "metadata": server_meta("kata"), "handler": "kata-qemu",
            "overhead": {"podFixed": {"memory": "120Mi"}}, **fields}


def host_priority_class(name: str = "tenant-batch", **fields: Any) -> Obj:
    return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": server_meta(name), "value": 1000, "globalDefault": False,
            "preemptionPolicy": "Never", "description": "for tenants", **fields}


def test_runtime_classes_are_mirrored_and_a_new_handler_recreates_the_copy() -> None:
    t = RuntimeClassTranslator(SELECTED)
    assert (t.kind, t.resource, t.direction) == ("runtimeClasses", RUNTIMECLASSES,
                                                 Direction.FROM_HOST)
    copy_ = created(t.to_virtual(host_runtime_class(), context()))
    assert (copy_["handler"], copy_["overhead"]) == ("kata-qemu", {"podFixed": {"memory": "120Mi"}})
    virtual = stored(copy_)
    assert t.sync(virtual, host_runtime_class(), context()) == []
    assert [type(a) for a in t.sync(virtual, host_runtime_class(handler="kata-fc"),
                                      context())] == [Delete, Create]


def test_host_priority_classes_are_mirrored_under_their_own_section() -> None:
    """Its kind differs from the toHost translator's, its section is the same key under
    sync.fromHost; value and preemption are immutable."""
    t = HostPriorityClassTranslator(SELECTED)
    assert (t.kind, t.section, t.resource) == ("hostPriorityClasses", "priorityClasses",
                                               PRIORITYCLASSES)
    copy_ = created(t.to_virtual(host_priority_class(), context()))
    assert {k: copy_[k] for k in ("value", "preemptionPolicy", "globalDefault")} == {
        "value": 1000, "preemptionPolicy": "Never", "globalDefault": False}
    virtual = stored(copy_)
    assert [type(a) for a in t.sync(virtual, host_priority_class(value=2000),
                                      context())] == [Delete, Create]


def test_system_priority_classes_are_neither_shown_nor_touched() -> None:
    """A host system class would give a tenant's pod its priority; the virtual cluster's
    own system classes (same names, no host source wanted) are left alone."""
    t = HostPriorityClassTranslator({"enabled": True})
    system = host_priority_class("system-node-critical", value=2_000_001_000)
    assert not t.wants(system, context())
    assert t.wants(host_priority_class(), context())
    own = stored(created(t.to_virtual(system, context())))
    c = Controller.__new__(Controller)
    c.translator, c.ctx = t, context()
    assert c.plan(own, system) == []
    assert c.plan(own, None) == []
    tenant_own = stored(created(t.to_virtual(host_priority_class("tenant-made"), context())))
    assert c.plan(tenant_own, None) == [
        Delete(Side.VIRTUAL, PRIORITYCLASSES, "tenant-made", None, "virtual-uid")]

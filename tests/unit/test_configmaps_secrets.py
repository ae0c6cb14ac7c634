"""Unit tests of the ConfigMap and Secret translators (and of ``Controller.plan``).

The caches are replaced by :class:`FakeLookup`, a few dicts that answer
``get`` and ``by_index`` the way the engine's stores do (the index is
computed with the translator's own index function over the fake's pods).
Every test that calls a translator also checks that its inputs are unchanged.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from contract import naming, resources
from contract.resources import Obj, Resource
from contract.translator import Context, Create, Delete, Patch, Side, Trigger
from syncer.controller import Controller
from tests.unit.fakes import FakeLookup, unchanged
from translators.configmaps import ConfigMapTranslator
from translators.referenced import ReferencedTranslator
from translators.secrets import SecretTranslator

HOST_NS = "vcluster-vc"
HOST_NAME = "app-cfg-x-team-x-vc"


def context(translator: ReferencedTranslator, pods: list[Obj] | None = None) -> Context:
    lookup = FakeLookup(pods, list(translator.indexes()))
    return Context(vcluster="vc", host_namespace=HOST_NS, lookup=lookup)


def virtual_cm(**meta: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "app-cfg",
            "namespace": "team",
            "uid": "uid-1",
            "resourceVersion": "42",
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "labels": {"app": "web", "example.com/weird_Key.x": "V-1"},
            "annotations": {"note": "hi"},
            "ownerReferences": [{"kind": "Deployment", "name": "web", "uid": "d1"}],
            "finalizers": ["example.com/keep"],
            **meta,
        },
        "data": {"config.yaml": "a: 1\n", "empty": ""},
        "binaryData": {"blob": "AAEC"},
    }


def virtual_secret(type_: str = "Opaque", **meta: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "app-cfg",
            "namespace": "team",
            "uid": "uid-s",
            "resourceVersion": "7",
            "labels": {"app": "web"},
            **meta,
        },
        "type": type_,
        "data": {"token": "c2VjcmV0"},
    }


def pod_using(kind: str, name: str, namespace: str = "team") -> Obj:
    volume = {"configMap": {"name": name}} if kind == "cm" else {"secret": {"secretName": name}}
    return {
        "metadata": {"name": f"pod-{name}", "namespace": namespace},
        "spec": {"containers": [{"name": "c"}], "volumes": [{"name": "v", **volume}]},
    }


def stored(obj: Obj, **server: str) -> Obj:
    """``obj`` as the host API server returns it after the create."""
    out = copy.deepcopy(obj)
    out["metadata"].update(
        {"uid": "host-uid", "resourceVersion": "900", "creationTimestamp": "2024-05-01T10:00:01Z"}
    )
    out["metadata"].update(server)
    return out




def created(actions: list[Any]) -> Obj:
    assert len(actions) == 1
    action = actions[0]
    assert isinstance(action, Create)
    assert action.side is Side.HOST
    assert action.subresource is None
    return action.obj


# --- ConfigMaps: to_host ----------------------------------------------------------------------


def test_configmap_to_host_builds_the_host_copy() -> None:
    t = ConfigMapTranslator({"enabled": True})
    virtual = virtual_cm()
    with unchanged(virtual):
        actions = t.to_host(virtual, context(t))

    assert actions == [
        Create(
            Side.HOST,
            resources.CONFIGMAPS,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": HOST_NAME,
                    "namespace": HOST_NS,
                    "labels": {
                        "app": "web",
                        "example.com/weird_Key.x": "V-1",
                        naming.LABEL_MANAGED_BY: "vc",
                        naming.LABEL_NAMESPACE: "team",
                    },
                    "annotations": {
                        "note": "hi",
                        naming.ANNOTATION_OBJECT_NAME: "app-cfg",
                        naming.ANNOTATION_OBJECT_NAMESPACE: "team",
                        naming.ANNOTATION_OBJECT_UID: "uid-1",
                        naming.ANNOTATION_OBJECT_KIND: "ConfigMap",
                        naming.ANNOTATION_MANAGED_ANNOTATIONS: "note",
                    },
                },
                "data": {"config.yaml": "a: 1\n", "empty": ""},
                "binaryData": {"blob": "AAEC"},
            },
        )
    ]


def test_configmap_to_host_copies_immutable_and_nothing_of_the_server_metadata() -> None:
    t = ConfigMapTranslator()
    virtual = virtual_cm()
    virtual["immutable"] = True
    del virtual["binaryData"]
    obj = created(t.to_host(virtual, context(t)))
    assert obj["immutable"] is True
    assert "binaryData" not in obj
    assert set(obj["metadata"]) == {"name", "namespace", "labels", "annotations"}


def test_tenant_labels_are_copied_verbatim() -> None:
    t = ConfigMapTranslator()
    tenant = {
        "app.kubernetes.io/name": "web",
        "a": "",
        "UPPER_case.dots-x": "Value_1.2-3",
        "kubernetes.io/metadata.name": "team",
    }
    obj = created(t.to_host(virtual_cm(labels=tenant), context(t)))
    labels = obj["metadata"]["labels"]
    assert {k: labels[k] for k in tenant} == tenant
    assert set(labels) == {*tenant, naming.LABEL_MANAGED_BY, naming.LABEL_NAMESPACE}


def test_tenant_labels_cannot_forge_ownership() -> None:
    t = ConfigMapTranslator()
    forged = {naming.LABEL_MANAGED_BY: "other-vc", naming.LABEL_NAMESPACE: "kube-system"}
    obj = created(t.to_host(virtual_cm(labels=forged), context(t)))
    assert obj["metadata"]["labels"][naming.LABEL_MANAGED_BY] == "vc"
    assert obj["metadata"]["labels"][naming.LABEL_NAMESPACE] == "team"
    assert naming.virtual_labels(
        obj["metadata"]["labels"], obj["metadata"]["annotations"], "vc"
    ) == forged


def test_host_name_is_shortened_when_long() -> None:
    t = ConfigMapTranslator()
    obj = created(t.to_host(virtual_cm(name="n" * 60), context(t)))
    assert len(obj["metadata"]["name"]) == 63
    assert obj["metadata"]["annotations"][naming.ANNOTATION_OBJECT_NAME] == "n" * 60


# --- wants: only while referenced --------------------------------------------------------------


def test_not_wanted_without_a_referencing_pod() -> None:
    t = ConfigMapTranslator({"enabled": True})
    ctx = context(t)
    assert t.wants(virtual_cm(), ctx) is False
    assert isinstance(ctx.lookup, FakeLookup)
    assert ctx.lookup.queries == [(Side.VIRTUAL, resources.PODS, "configmap-refs", "team/app-cfg")]


@pytest.mark.parametrize(
    "pods",
    [
        [pod_using("cm", "other")],
        [pod_using("cm", "app-cfg", namespace="elsewhere")],
        [pod_using("secret", "app-cfg")],
    ],
    ids=["other-name", "other-namespace", "a-secret-of-that-name"],
)
def test_not_wanted_when_pods_reference_something_else(pods: list[Obj]) -> None:
    t = ConfigMapTranslator()
    assert t.wants(virtual_cm(), context(t, pods)) is False


def test_wanted_when_a_pod_references_it() -> None:
    t = ConfigMapTranslator()
    virtual = virtual_cm()
    pods = [pod_using("cm", "other"), pod_using("cm", "app-cfg")]
    with unchanged(virtual, *pods):
        assert t.wants(virtual, context(t, pods)) is True


def test_wanted_with_all_even_without_pods() -> None:
    t = ConfigMapTranslator({"enabled": True, "all": True})
    ctx = context(t)
    assert t.wants(virtual_cm(), ctx) is True
    assert isinstance(ctx.lookup, FakeLookup)
    assert ctx.lookup.queries == []
    assert ConfigMapTranslator({"all": False}).wants(virtual_cm(), ctx) is False


def test_secret_wanted_only_when_a_pod_references_the_secret() -> None:
    t = SecretTranslator()
    assert t.wants(virtual_secret(), context(t, [pod_using("cm", "app-cfg")])) is False
    assert t.wants(virtual_secret(), context(t, [pod_using("secret", "app-cfg")])) is True
    assert SecretTranslator({"all": True}).wants(virtual_secret(), context(t)) is True


def test_indexes_and_triggers_map_pods_to_keys() -> None:
    pod = pod_using("cm", "app-cfg")
    pod["spec"]["imagePullSecrets"] = [{"name": "pull"}]
    for t, index, keys in (
        (ConfigMapTranslator(), "configmap-refs", ["team/app-cfg"]),
        (SecretTranslator(), "secret-refs", ["team/pull"]),
    ):
        idx = t.indexes()[0]
        assert (idx.side, idx.resource, idx.name) == (Side.VIRTUAL, resources.PODS, index)
        assert list(idx.func(pod)) == keys
        trigger = t.triggers()[0]
        assert isinstance(trigger, Trigger)
        assert (trigger.side, trigger.resource) == (Side.VIRTUAL, resources.PODS)
        assert list(trigger.keys(pod)) == keys


def test_ingress_tls_secrets_count_as_referenced() -> None:
    """Scenario 31: a Secret an Ingress names for TLS is synced like a pod's."""
    t = SecretTranslator()
    ingress = {"metadata": {"name": "web", "namespace": "team"},
               "spec": {"tls": [{"secretName": "app-cfg"}]}}
    lookup = FakeLookup(funcs=list(t.indexes()))
    lookup.add(Side.VIRTUAL, resources.INGRESSES, ingress)
    ctx = Context(vcluster="vc", host_namespace=HOST_NS, lookup=lookup)
    assert t.wants(virtual_secret(), ctx)
    assert [list(tr.keys(ingress)) for tr in t.triggers()
            if tr.resource == resources.INGRESSES] == [["team/app-cfg"]]


# --- sync -------------------------------------------------------------------------------------


def test_sync_writes_nothing_when_the_host_matches() -> None:
    t = ConfigMapTranslator()
    virtual = virtual_cm()
    ctx = context(t)
    host = stored(created(t.to_host(virtual, ctx)), **{"creationTimestamp": "x"})
    host["metadata"]["annotations"]["host-controller.io/seen"] = "yes"
    with unchanged(virtual, host):
        assert t.sync(virtual, host, ctx) == []


def test_sync_restores_edited_host_data() -> None:
    t = ConfigMapTranslator()
    virtual = virtual_cm()
    ctx = context(t)
    host = stored(created(t.to_host(virtual, ctx)))
    host["data"]["config.yaml"] = "a: 2\n"
    host["data"]["injected"] = "x"
    host["binaryData"] = {"blob": "ZZZZ"}

    with unchanged(virtual, host):
        actions = t.sync(virtual, host, ctx)

    assert actions == [
        Patch(
            Side.HOST,
            resources.CONFIGMAPS,
            HOST_NAME,
            HOST_NS,
            {
                "data": {"config.yaml": "a: 1\n", "injected": None},
                "binaryData": {"blob": "AAEC"},
            },
        )
    ]


def test_sync_removes_keys_removed_from_the_virtual_data() -> None:
    t = ConfigMapTranslator()
    ctx = context(t)
    old = virtual_cm()
    host = stored(created(t.to_host(old, ctx)))
    new = virtual_cm(resourceVersion="43")
    new["data"] = {"config.yaml": "a: 1\n"}
    del new["binaryData"]

    actions = t.sync(new, host, ctx)

    assert actions == [
        Patch(
            Side.HOST, resources.CONFIGMAPS, HOST_NAME, HOST_NS,
            {"data": {"empty": None}, "binaryData": None},
        )
    ]


def test_sync_follows_tenant_label_and_annotation_changes() -> None:
    t = ConfigMapTranslator()
    ctx = context(t)
    host = stored(created(t.to_host(virtual_cm(), ctx)))
    host["metadata"]["annotations"]["host-controller.io/seen"] = "yes"
    new = virtual_cm(labels={"app": "api"}, annotations={})

    (action,) = t.sync(new, host, ctx)

    assert isinstance(action, Patch)
    assert action.patch == {
        "metadata": {
            "labels": {"app": "api", "example.com/weird_Key.x": None},
            "annotations": {"note": None, naming.ANNOTATION_MANAGED_ANNOTATIONS: ""},
        }
    }


# --- Secrets ----------------------------------------------------------------------------------


def test_secret_to_host() -> None:
    t = SecretTranslator({"enabled": True})
    virtual = virtual_secret("kubernetes.io/tls")
    with unchanged(virtual):
        obj = created(t.to_host(virtual, context(t)))
    assert obj["kind"] == "Secret"
    assert obj["apiVersion"] == "v1"
    assert obj["type"] == "kubernetes.io/tls"
    assert obj["data"] == {"token": "c2VjcmV0"}
    assert obj["metadata"]["name"] == HOST_NAME
    assert obj["metadata"]["namespace"] == HOST_NS
    assert obj["metadata"]["annotations"][naming.ANNOTATION_OBJECT_KIND] == "Secret"
    assert obj["metadata"]["annotations"][naming.ANNOTATION_OBJECT_UID] == "uid-s"
    assert t.to_host(virtual, context(t))[0] == Create(Side.HOST, resources.SECRETS, obj)


def test_service_account_token_secret_becomes_opaque() -> None:
    t = SecretTranslator()
    ctx = context(t)
    virtual = virtual_secret(
        "kubernetes.io/service-account-token",
        annotations={"kubernetes.io/service-account.name": "default"},
    )
    with unchanged(virtual):
        obj = created(t.to_host(virtual, ctx))
    assert obj["type"] == "Opaque"
    assert virtual["type"] == "kubernetes.io/service-account-token"
    # and the next sync does not try to turn it back
    assert t.sync(virtual, stored(obj), ctx) == []


def test_secret_sync_restores_data_and_type() -> None:
    t = SecretTranslator()
    ctx = context(t)
    virtual = virtual_secret()
    host = stored(created(t.to_host(virtual, ctx)))
    host["data"] = {"token": "ZWRpdGVk"}
    assert t.sync(virtual, host, ctx) == [
        Patch(Side.HOST, resources.SECRETS, HOST_NAME, HOST_NS, {"data": {"token": "c2VjcmV0"}})
    ]


# --- to_virtual -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("translator", "resource"),
    [(ConfigMapTranslator(), resources.CONFIGMAPS), (SecretTranslator(), resources.SECRETS)],
)
def test_orphaned_host_copy_is_deleted_with_uid_precondition(
    translator: ReferencedTranslator, resource: Resource
) -> None:
    virtual = virtual_cm() if resource is resources.CONFIGMAPS else virtual_secret()
    host = stored(created(translator.to_host(virtual, context(translator))), uid="host-uid-7")
    with unchanged(host):
        actions = translator.to_virtual(host, context(translator))
    assert actions == [Delete(Side.HOST, resource, HOST_NAME, HOST_NS, "host-uid-7")]
    assert translator.virtual_key(host, context(translator)) == "team/app-cfg"


def test_no_translator_call_mutates_its_inputs() -> None:
    for t, virtual in ((ConfigMapTranslator(), virtual_cm()),
                       (SecretTranslator(), virtual_secret("kubernetes.io/service-account-token"))):
        pods = [pod_using("cm", "app-cfg"), pod_using("secret", "app-cfg")]
        ctx = context(t, pods)
        host = stored(created(t.to_host(virtual, ctx)))
        host["data"] = {"edited": "x"}
        host["metadata"]["labels"]["app"] = "edited"
        with unchanged(virtual, host, *pods):
            t.wants(virtual, ctx)
            t.to_host(virtual, ctx)
            t.sync(virtual, host, ctx)
            t.to_virtual(host, ctx)
            t.virtual_key(host, ctx)
            t.references(pods[0])


# --- Controller.plan: which case runs (pure: no API server needed) ------------------------------


def planner(translator: ReferencedTranslator, pods: list[Obj] | None = None) -> Controller:
    """A Controller with only what ``plan`` reads (``__init__`` needs informers)."""
    controller = Controller.__new__(Controller)
    controller.translator = translator
    controller.ctx = context(translator, pods)
    return controller


def test_plan_creates_a_wanted_object_missing_on_the_host() -> None:
    c = planner(ConfigMapTranslator(), [pod_using("cm", "app-cfg")])
    virtual = virtual_cm()
    assert c.plan(virtual, None) == c.translator.to_host(virtual, c.ctx)


def test_plan_syncs_when_both_exist() -> None:
    c = planner(ConfigMapTranslator(), [pod_using("cm", "app-cfg")])
    virtual = virtual_cm()
    host = stored(created(c.translator.to_host(virtual, c.ctx)))
    assert c.plan(virtual, host) == []
    host["data"] = {}
    (action,) = c.plan(virtual, host)
    assert isinstance(action, Patch)


def test_plan_deletes_the_host_copy_of_an_unreferenced_object() -> None:
    c = planner(ConfigMapTranslator())
    virtual = virtual_cm()
    host = stored(created(c.translator.to_host(virtual, c.ctx)), uid="h1")
    assert c.plan(virtual, host) == [
        Delete(Side.HOST, resources.CONFIGMAPS, HOST_NAME, HOST_NS, "h1")
    ]
    assert c.plan(virtual, None) == []


def test_plan_deletes_an_orphan_and_ignores_nothing() -> None:
    c = planner(ConfigMapTranslator({"all": True}))
    host = stored(created(c.translator.to_host(virtual_cm(), c.ctx)), uid="h1")
    assert c.plan(None, host) == [
        Delete(Side.HOST, resources.CONFIGMAPS, HOST_NAME, HOST_NS, "h1")
    ]
    assert c.plan(None, None) == []


def test_plan_replaces_the_host_copy_of_a_recreated_object() -> None:
    c = planner(ConfigMapTranslator({"all": True}))
    host = stored(created(c.translator.to_host(virtual_cm(uid="old-uid"), c.ctx)), uid="h1")
    assert c.plan(virtual_cm(uid="new-uid"), host) == [
        Delete(Side.HOST, resources.CONFIGMAPS, HOST_NAME, HOST_NS, "h1")
    ]


@pytest.mark.parametrize("side", ["virtual", "host"])
def test_plan_leaves_objects_controlled_elsewhere_alone(side: str) -> None:
    c = planner(ConfigMapTranslator({"all": True}))
    virtual = virtual_cm()
    host = stored(created(c.translator.to_host(virtual, c.ctx)))
    host["data"] = {"edited": "x"}
    claimed = virtual if side == "virtual" else host
    claimed["metadata"]["labels"][naming.LABEL_CONTROLLED_BY] = "someone"
    assert c.plan(virtual, host) == []
    if side == "virtual":
        assert c.plan(virtual, None) == []
    else:
        assert c.plan(None, host) == []

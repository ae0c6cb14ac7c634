"""Unit tests of the Ingress translator (scenarios 28 and 31)."""

from __future__ import annotations

import copy
from typing import Any

from contract import naming
from contract.facts import Facts
from contract.resources import INGRESSCLASSES, INGRESSES, NAMESPACES, Obj
from contract.translator import Context, Create, Delete, EnsureSynced, Patch, Requeue, Side, Warn
from tests.unit.fakes import FakeLookup, unchanged
from translators import references
from translators.ingresses import (
    IngressTranslator,
    host_ingress,
)
from translators.secrets import SecretTranslator

HOST_NS = "vcluster-vc"
HOST_NAME = "web-x-team-x-vc"
T = IngressTranslator()



def context(*classes: str, **values: Any) -> Context:
    lookup = FakeLookup()
    for name in classes:
        lookup.add(Side.VIRTUAL, INGRESSCLASSES, {"metadata": {"name": name}})
    return Context(vcluster="vc", host_namespace=HOST_NS, lookup=lookup, facts=Facts(**values))


def service(name: str, port: Obj | None = None) -> Obj:
    return {"service": {"name": name, "port": port or {"number": 80}}}


def resource_backend(name: str) -> Obj:
    return {"resource": {"apiGroup": "k8s.example.com", "kind": "StorageBucket", "name": name}}


def path(backend: Obj, prefix: str = "/") -> Obj:
    return {"path": prefix, "pathType": "Prefix", "backend": backend}


def virtual_ingress(**spec: Any) -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "web",
            "namespace": "team",
            "uid": "uid-ing",
            "resourceVersion": "11",
            "labels": {"app": "web"},
        },
        "spec": {
            "ingressClassName": "nginx",
            "defaultBackend": service("fallback", {"name": "http"}),
            "rules": [
                {"host": "a.example.com", "http": {"paths": [
                    path(service("api", {"number": 8080}), "/api"),
                    path(service("ui")),
                ]}},
                {"host": "b.example.com"},
            ],
            "tls": [
                {"hosts": ["a.example.com"], "secretName": "tls-a"},
                {"hosts": ["b.example.com"], "secretName": "tls-a"},
                {"hosts": ["c.example.com"]},
            ],
            **spec,
        },
        "status": {"loadBalancer": {}},
    }


def stored(obj: Obj, **status: Any) -> Obj:
    out = copy.deepcopy(obj)
    out["metadata"].update({"uid": "host-uid", "resourceVersion": "90"})
    out["status"] = {"loadBalancer": status}
    return out


# --- to_host ---------------------------------------------------------------------------------


def test_to_host_translates_backends_and_tls_and_syncs_the_secrets_first() -> None:
    virtual = virtual_ingress()
    with unchanged(virtual):
        actions = T.to_host(virtual, context())
    ensure, create = actions
    assert ensure == EnsureSynced(SecretTranslator, "team/tls-a")
    assert isinstance(create, Create)
    assert (create.side, create.resource) == (Side.HOST, INGRESSES)
    obj = create.obj
    assert (obj["metadata"]["name"], obj["metadata"]["namespace"]) == (HOST_NAME, HOST_NS)
    assert obj["metadata"]["labels"][naming.LABEL_MANAGED_BY] == "vc"
    assert obj["spec"] == {
        "ingressClassName": "nginx",
        "defaultBackend": service("fallback-x-team-x-vc", {"name": "http"}),
        "rules": [
            {"host": "a.example.com", "http": {"paths": [
                path(service("api-x-team-x-vc", {"number": 8080}), "/api"),
                path(service("ui-x-team-x-vc")),
            ]}},
            {"host": "b.example.com"},
        ],
        "tls": [
            {"hosts": ["a.example.com"], "secretName": "tls-a-x-team-x-vc"},
            {"hosts": ["b.example.com"], "secretName": "tls-a-x-team-x-vc"},
            {"hosts": ["c.example.com"]},
        ],
    }
    assert "status" not in obj


def test_every_tls_secret_is_ensured_before_the_create() -> None:
    virtual = virtual_ingress(tls=[{"secretName": "z"}, {"secretName": "b"}])
    actions = T.to_host(virtual, context())
    assert actions[:2] == [EnsureSynced(SecretTranslator, "team/b"),
                           EnsureSynced(SecretTranslator, "team/z")]
    assert isinstance(actions[2], Create)


def test_tls_secret_keys_are_unique_and_sorted() -> None:
    assert references.ingress_tls_secret_keys(virtual_ingress(tls=[
        {"secretName": "b"}, {"secretName": "a"}, {"secretName": "b"}, {"hosts": ["x"]},
    ])) == ["team/a", "team/b"]
    virtual = virtual_ingress()
    del virtual["spec"]["tls"]
    assert references.ingress_tls_secret_keys(virtual) == []


def test_resource_backends_are_left_out_with_a_warning() -> None:
    virtual = virtual_ingress(
        defaultBackend=resource_backend("assets"),
        rules=[
            {"host": "a.example.com", "http": {"paths": [
                path(resource_backend("static"), "/static"), path(service("ui")),
            ]}},
            {"host": "b.example.com", "http": {"paths": [path(resource_backend("only"))]}},
        ],
        tls=[],
    )
    with unchanged(virtual):
        warn, create = T.to_host(virtual, context())
    assert isinstance(warn, Warn)
    assert warn.reason == "ResourceBackendNotSynced"
    assert "StorageBucket/assets" in warn.message
    assert "StorageBucket/static" in warn.message
    assert HOST_NS not in warn.message
    assert isinstance(create, Create)
    assert "defaultBackend" not in create.obj["spec"]
    assert create.obj["spec"]["rules"] == [
        {"host": "a.example.com", "http": {"paths": [path(service("ui-x-team-x-vc"))]}},
        {"host": "b.example.com"},
    ]


def test_unsynced_ingress_class_is_refused_when_classes_come_from_the_host() -> None:
    virtual = virtual_ingress()
    warn, requeue = T.to_host(virtual, context(**{"synced": frozenset({"ingressClasses"})}))
    assert isinstance(warn, Warn)
    assert warn.reason == "IngressClassNotSynced"
    assert isinstance(requeue, Requeue)
    actions = T.to_host(virtual, context("nginx", **{"synced": frozenset({"ingressClasses"})}))
    assert isinstance(actions[-1], Create)
    assert actions[-1].obj["spec"]["ingressClassName"] == "nginx"


def test_class_names_are_unchecked_without_class_sync() -> None:
    assert isinstance(T.to_host(virtual_ingress(), context())[-1], Create)
    assert (Side.VIRTUAL, INGRESSCLASSES) in T.reads()


# --- sync ------------------------------------------------------------------------------------


def test_sync_is_idle_when_nothing_differs() -> None:
    virtual = virtual_ingress()
    host = stored(host_ingress(virtual, context()))
    with unchanged(virtual, host):
        assert T.sync(virtual, host, context()) == []


def test_spec_change_ensures_secrets_then_patches() -> None:
    virtual = virtual_ingress()
    host = stored(host_ingress(virtual, context()))
    virtual["spec"]["tls"] = [{"hosts": ["a.example.com"], "secretName": "tls-new"}]
    with unchanged(virtual, host):
        ensure, patch = T.sync(virtual, host, context())
    assert ensure == EnsureSynced(SecretTranslator, "team/tls-new")
    assert patch == Patch(Side.HOST, INGRESSES, HOST_NAME, HOST_NS, {"spec": {"tls": [
        {"hosts": ["a.example.com"], "secretName": "tls-new-x-team-x-vc"},
    ]}})


def test_load_balancer_status_comes_back_up() -> None:
    virtual = virtual_ingress()
    lb = [{"ip": "203.0.113.7", "ports": [{"port": 443, "protocol": "TCP"}]}]
    host = stored(host_ingress(virtual, context()), ingress=lb)
    with unchanged(virtual, host):
        (action,) = T.sync(virtual, host, context())
    assert action == Patch(Side.VIRTUAL, INGRESSES, "web", "team",
                           {"status": {"loadBalancer": {"ingress": lb}}}, "status")
    virtual["status"] = {"loadBalancer": {"ingress": lb}}
    assert T.sync(virtual, host, context()) == []


def test_orphan_is_deleted() -> None:
    host = stored(host_ingress(virtual_ingress(), context()))
    assert T.to_virtual(host, context()) == [
        Delete(Side.HOST, INGRESSES, HOST_NAME, HOST_NS, "host-uid")
    ]


def test_a_backend_or_tls_name_another_namespace_may_hold_is_refused() -> None:
    """Service ``api`` of namespace ``team`` and Service ``api-x-team`` of namespace ``x``
    share a host name (as do ``x-x-<ns>`` names): with namespace ``x`` in the virtual
    cluster the host ingress controller could route to the other namespace's Service."""
    lookup = FakeLookup()
    lookup.add(Side.VIRTUAL, NAMESPACES, {"metadata": {"name": "api-x-team"}})
    spec = {"defaultBackend": service("db-x-api"), "tls": [{"secretName": "tls-x-api"}]}
    assert isinstance(T.to_host(virtual_ingress(**spec), context())[-1], Create)
    actions = T.to_host(virtual_ingress(**spec), Context(vcluster="vc", host_namespace=HOST_NS,
                                                         lookup=lookup))
    assert len(actions) == 1
    assert isinstance(actions[0], Warn)
    assert actions[0].reason == "NameConflict"
    assert "db-x-api" in actions[0].message
    assert "tls-x-api" in actions[0].message

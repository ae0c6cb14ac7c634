"""Unit tests of the Endpoints translator (docs/acceptance.md, scenario 22).

Fixtures are a selector-less virtual Service with hand-made Endpoints, as a
tenant writes them for an external database or a pod it manages itself. The
Service cache is a :class:`FakeLookup`; every call is checked not to mutate
its inputs.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from contract import naming, resources
from contract.resources import Obj
from contract.translator import Context, Create, Delete, Patch, Requeue, Side, Warn
from syncer.controller import Controller
from tests.unit.fakes import FakeLookup, unchanged
from translators.endpoints import SERVICE_UID, SKIP_MIRROR, EndpointsTranslator
from translators.services import RECREATING, ServiceTranslator

HOST_NS = "vcluster-vc"
HOST_NAME = "db-x-team-x-vc"


def service(name: str = "db", namespace: str = "team", selector: Obj | None = None) -> Obj:
    spec: Obj = {"ports": [{"name": "pg", "protocol": "TCP", "port": 5432, "targetPort": 5432}]}
    if selector is not None:
        spec["selector"] = selector
    return {"metadata": {"name": name, "namespace": namespace, "uid": "svc-uid"}, "spec": spec}


POD_IPS = {"db-0": "10.244.1.5", "db-1": "10.244.2.9", "db-2": "10.244.3.3"}
"""The fixture's pod addresses: host pods of this virtual cluster in namespace ``team``."""


def host_pod(name: str, ip: str, namespace: str = "team", **spec: Any) -> Obj:
    return {"metadata": {"name": f"{name}-x-{namespace}-x-vc", "namespace": HOST_NS,
                         "labels": {naming.LABEL_MANAGED_BY: "vc",
                                    naming.LABEL_NAMESPACE: namespace}},
            "spec": spec, "status": {"podIP": ip, "podIPs": [{"ip": ip}]}}


def context(*services: Obj, pods: list[Obj] | None = None) -> Context:
    lookup = FakeLookup(funcs=list(EndpointsTranslator().indexes()))
    for svc in services:
        lookup.add(Side.VIRTUAL, resources.SERVICES, svc)
    for pod in [host_pod(n, ip) for n, ip in POD_IPS.items()] if pods is None else pods:
        lookup.add(Side.HOST, resources.PODS, pod)
    return Context(vcluster="vc", host_namespace=HOST_NS, lookup=lookup)


def pod_ref(name: str, namespace: str = "team") -> Obj:
    return {"kind": "Pod", "namespace": namespace, "name": name, "uid": f"uid-{name}",
            "resourceVersion": "77"}


def virtual_endpoints(name: str = "db", namespace: str = "team", **meta: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": "ep-uid-1",
            "resourceVersion": "55",
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "labels": {"app": "db"},
            **meta,
        },
        "subsets": [
            {
                "addresses": [
                    {"ip": "10.244.1.5", "nodeName": "node-a", "hostname": "db-0",
                     "targetRef": pod_ref("db-0")},
                    {"ip": "10.244.2.9", "nodeName": "node-b",
                     "targetRef": pod_ref("db-1", namespace="ops")},
                    {"ip": "192.0.2.40",
                     "targetRef": {"kind": "ExternalThing", "name": "legacy-db"}},
                    {"ip": "192.0.2.41"},
                ],
                "notReadyAddresses": [
                    {"ip": "10.244.3.3", "nodeName": "node-c", "targetRef": pod_ref("db-2")},
                ],
                "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
            }
        ],
    }


def stored(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    out["metadata"].update({"uid": "host-ep-uid", "resourceVersion": "901"})
    return out




def to_host(virtual: Obj, ctx: Context | None = None) -> Obj:
    with unchanged(virtual):
        actions = EndpointsTranslator().to_host(virtual, ctx or context(service()))
    assert len(actions) == 1
    action = actions[0]
    assert isinstance(action, Create)
    assert (action.side, action.resource) == (Side.HOST, resources.ENDPOINTS)
    return action.obj


# --- which Endpoints are synced -----------------------------------------------------------------


def test_endpoints_of_a_selector_less_service_are_wanted() -> None:
    virtual = virtual_endpoints()
    ctx = context(service())
    with unchanged(virtual):
        assert EndpointsTranslator().wants(virtual, ctx) is True


@pytest.mark.parametrize(
    "services",
    [
        [service(selector={"app": "db"})],
        [],
        [service(namespace="other")],
        [service(name="db-other")],
    ],
    ids=["service-has-selector", "no-service", "service-in-other-namespace", "other-name"],
)
def test_other_endpoints_are_not_wanted(services: list[Obj]) -> None:
    assert EndpointsTranslator().wants(virtual_endpoints(), context(*services)) is False


def test_empty_selector_counts_as_selector_less() -> None:
    assert EndpointsTranslator().wants(virtual_endpoints(), context(service(selector={})))


def test_api_server_endpoints_are_not_wanted() -> None:
    kubernetes = virtual_endpoints("kubernetes", "default")
    ctx = context(service("kubernetes", "default"))
    assert EndpointsTranslator().wants(kubernetes, ctx) is False


def test_reads_services_and_a_service_change_requeues_its_endpoints() -> None:
    t = EndpointsTranslator()
    assert list(t.reads()) == [(Side.VIRTUAL, resources.SERVICES), (Side.HOST, resources.PODS),
                               (Side.VIRTUAL, resources.NAMESPACES),
                               (Side.HOST, resources.SERVICES)]
    by_service, by_pod = t.triggers()
    assert (by_service.side, by_service.resource) == (Side.VIRTUAL, resources.SERVICES)
    assert list(by_service.keys(service())) == ["team/db"]
    assert (by_pod.side, by_pod.resource) == (Side.HOST, resources.PODS)
    assert list(by_pod.keys(host_pod("db-0", "10.244.1.5"))) == ["team/*"]


# --- to_host --------------------------------------------------------------------------------------


def test_host_endpoints_are_named_like_the_host_service() -> None:
    obj = to_host(virtual_endpoints())
    host_service = ServiceTranslator().desired(service(), context())
    assert obj["metadata"]["name"] == host_service["metadata"]["name"] == HOST_NAME
    assert obj["metadata"]["namespace"] == HOST_NS
    assert obj["metadata"]["labels"] == {
        "app": "db", naming.LABEL_MANAGED_BY: "vc", naming.LABEL_NAMESPACE: "team",
    }
    annotations = obj["metadata"]["annotations"]
    assert annotations[naming.ANNOTATION_OBJECT_KIND] == "Endpoints"
    assert annotations[naming.ANNOTATION_OBJECT_UID] == "ep-uid-1"
    assert obj["apiVersion"] == "v1"
    assert obj["kind"] == "Endpoints"


def test_subsets_are_copied_with_pod_references_renamed() -> None:
    assert to_host(virtual_endpoints())["subsets"] == [
        {
            "addresses": [
                {"ip": "10.244.1.5", "nodeName": "node-a", "hostname": "db-0",
                 "targetRef": {"kind": "Pod", "namespace": HOST_NS, "name": "db-0-x-team-x-vc"}},
                {"ip": "10.244.2.9", "nodeName": "node-b",
                 "targetRef": {"kind": "Pod", "namespace": HOST_NS, "name": "db-1-x-ops-x-vc"}},
                {"ip": "192.0.2.40"},
                {"ip": "192.0.2.41"},
            ],
            "notReadyAddresses": [
                {"ip": "10.244.3.3", "nodeName": "node-c",
                 "targetRef": {"kind": "Pod", "namespace": HOST_NS, "name": "db-2-x-team-x-vc"}},
            ],
            "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
        }
    ]


def test_pod_reference_without_namespace_is_in_the_endpoints_namespace() -> None:
    virtual = virtual_endpoints()
    virtual["subsets"][0]["addresses"][0]["targetRef"] = {
        "kind": "Pod", "name": "db-0", "apiVersion": "v1",
    }
    ref = to_host(virtual)["subsets"][0]["addresses"][0]["targetRef"]
    assert ref == {"kind": "Pod", "namespace": HOST_NS, "name": "db-0-x-team-x-vc",
                   "apiVersion": "v1"}


def test_the_host_copy_never_skips_mirroring() -> None:
    virtual = virtual_endpoints(labels={"app": "db", SKIP_MIRROR: "true"})
    assert SKIP_MIRROR not in to_host(virtual)["metadata"]["labels"]


def test_endpoints_without_subsets() -> None:
    virtual = virtual_endpoints()
    del virtual["subsets"]
    obj = to_host(virtual)
    assert "subsets" not in obj
    assert EndpointsTranslator().sync(virtual, stored(obj), context(service())) == []


# --- sync -----------------------------------------------------------------------------------------


def test_idle_sync_writes_nothing() -> None:
    virtual = virtual_endpoints()
    host = stored(to_host(virtual))
    host["metadata"]["annotations"]["controller.example.com/seen"] = "yes"
    with unchanged(virtual, host):
        assert EndpointsTranslator().sync(virtual, host, context(service())) == []


def test_subset_changes_are_patched() -> None:
    virtual = virtual_endpoints()
    host = stored(to_host(virtual))
    changed = virtual_endpoints()
    changed["subsets"][0]["addresses"] = [{"ip": "192.0.2.50"}]
    with unchanged(changed, host):
        actions = EndpointsTranslator().sync(changed, host, context(service()))
    expected = copy.deepcopy(host["subsets"])
    expected[0]["addresses"] = [{"ip": "192.0.2.50"}]
    assert actions == [
        Patch(Side.HOST, resources.ENDPOINTS, HOST_NAME, HOST_NS, {"subsets": expected})
    ]


def test_removed_subsets_and_a_skip_mirror_label_are_removed_on_the_host() -> None:
    virtual = virtual_endpoints()
    host = stored(to_host(virtual))
    host["metadata"]["labels"][SKIP_MIRROR] = "true"
    emptied = virtual_endpoints()
    del emptied["subsets"]
    assert EndpointsTranslator().sync(emptied, host, context(service())) == [
        Patch(Side.HOST, resources.ENDPOINTS, HOST_NAME, HOST_NS,
              {"metadata": {"labels": {SKIP_MIRROR: None}}, "subsets": None})
    ]


# --- the engine's cases -------------------------------------------------------------------------


def planner(*services: Obj) -> Controller:
    controller = Controller.__new__(Controller)
    controller.translator = EndpointsTranslator()
    controller.ctx = context(*services)
    return controller


def test_plan_creates_endpoints_of_a_selector_less_service() -> None:
    c = planner(service())
    virtual = virtual_endpoints()
    assert c.plan(virtual, None) == c.translator.to_host(virtual, c.ctx)


def test_plan_leaves_controller_built_endpoints_to_the_host() -> None:
    c = planner(service(selector={"app": "db"}))
    assert c.plan(virtual_endpoints(), None) == []


def test_plan_deletes_the_host_copy_once_the_service_gets_a_selector() -> None:
    virtual = virtual_endpoints()
    host = stored(to_host(virtual))
    c = planner(service(selector={"app": "db"}))
    assert c.plan(virtual, host) == [
        Delete(Side.HOST, resources.ENDPOINTS, HOST_NAME, HOST_NS, "host-ep-uid")
    ]
    assert c.translator.virtual_key(host, c.ctx) == "team/db"


def test_no_call_mutates_its_inputs() -> None:
    t = EndpointsTranslator()
    svc = service()
    ctx = context(svc)
    virtual = virtual_endpoints(labels={SKIP_MIRROR: "true"})
    host = stored(to_host(virtual_endpoints()))
    host["subsets"][0]["addresses"][0]["ip"] = "10.244.9.9"
    with unchanged(virtual, host, svc):
        t.wants(virtual, ctx)
        t.to_host(virtual, ctx)
        t.sync(virtual, host, ctx)
        t.to_virtual(host, ctx)
        t.triggers()[0].keys(svc)


# --- addresses a tenant must not point the host at (CVE-2021-25740) -------------------------


@pytest.mark.parametrize("ip", [
    "10.244.7.7",  # a pod that is not this virtual cluster's (another tenant's, the host's)
    "10.96.0.1",  # the host API server's ClusterIP
    "172.18.0.2", "192.168.1.10", "100.64.3.4",  # nodes, other private networks
    "127.0.0.1", "169.254.169.254", "0.0.0.0", "224.0.0.1",
    "fd00::1", "fe80::1", "::1", "::ffff:10.0.0.1",
])
def test_internal_addresses_that_are_no_own_pod_are_refused_with_a_warning(ip: str) -> None:
    virtual = virtual_endpoints()
    virtual["subsets"][0]["addresses"].append({"ip": ip})
    actions = EndpointsTranslator().to_host(virtual, context(service()))
    warn, create = actions
    assert isinstance(warn, Warn)
    assert isinstance(create, Create)
    assert ip in warn.message
    assert HOST_NS not in warn.message
    kept = [a["ip"] for s in create.obj["subsets"] for f in ("addresses", "notReadyAddresses")
            for a in s.get(f) or ()]
    assert ip not in kept
    assert sorted(kept) == sorted([*POD_IPS.values(), "192.0.2.40", "192.0.2.41"])


@pytest.mark.parametrize("pod", [
    host_pod("elsewhere", "10.244.1.5", namespace="ops"),
    host_pod("db-0", "10.244.1.5", hostNetwork=True),
], ids=["pod-of-another-virtual-namespace", "host-network-pod"])
def test_pod_addresses_are_vouched_only_for_own_pods_of_the_namespace(pod: Obj) -> None:
    virtual = virtual_endpoints()
    virtual["subsets"][0]["addresses"] = [{"ip": "10.244.1.5"}]
    del virtual["subsets"][0]["notReadyAddresses"]
    actions = EndpointsTranslator().to_host(virtual, context(service(), pods=[pod]))
    assert isinstance(actions[0], Warn)
    assert "subsets" not in actions[1].obj  # type: ignore[union-attr]


def test_refused_addresses_warn_only_when_the_host_copy_changes() -> None:
    virtual = virtual_endpoints()
    virtual["subsets"][0]["addresses"].append({"ip": "10.96.0.1"})
    ctx = context(service())
    host = stored(to_host_with_warning(virtual, ctx))
    assert EndpointsTranslator().sync(virtual, host, ctx) == []
    gone = context(service(), pods=[])  # the pods went: their IPs are no longer vouched for
    warn, patch = EndpointsTranslator().sync(virtual, host, gone)
    assert isinstance(warn, Warn)
    assert "10.244.1.5" in warn.message
    assert isinstance(patch, Patch)
    assert [a["ip"] for a in patch.patch["subsets"][0]["addresses"]] == ["192.0.2.40",
                                                                          "192.0.2.41"]


def to_host_with_warning(virtual: Obj, ctx: Context) -> Obj:
    warn, create = EndpointsTranslator().to_host(virtual, ctx)
    assert isinstance(warn, Warn)
    assert isinstance(create, Create)
    return create.obj


def test_endpoints_another_namespace_may_own_the_host_name_of_are_refused() -> None:
    """Endpoints ``db`` of ``team`` and Endpoints ``db-x-team`` of namespace ``x`` share a
    host name: the host copy would hand these addresses to the other namespace's Service."""
    virtual = virtual_endpoints(name="db-x-x", namespace="team")
    ctx = context(service(name="db-x-x"))
    assert isinstance(EndpointsTranslator().to_host(virtual, ctx)[-1], Create)
    ctx.lookup.add(Side.VIRTUAL, resources.NAMESPACES,  # type: ignore[attr-defined]
                   {"metadata": {"name": "x-x-team"}})
    (warn,) = EndpointsTranslator().to_host(virtual, ctx)
    assert isinstance(warn, Warn)
    assert warn.reason == "NameConflict"


# --- restored across their Service's re-creation (issue 22) --------------------------------------

SERVICE_IP = "10.96.0.50"


def host_service(*, recreating: bool = False) -> Obj:
    """The host copy of Service team/db, synced under the Service's first uid."""
    annotations = naming.host_annotations({}, naming.VirtualIdentity(
        "db", "team", "svc-uid", "Service"))
    if recreating:
        annotations[RECREATING] = json.dumps({"uid": "svc-uid", "object": {
            "metadata": {"name": "db", "namespace": "team"}, "spec": {}}})
    return {"metadata": {"name": HOST_NAME, "namespace": HOST_NS, "uid": "host-svc",
                         "annotations": annotations},
            "spec": {"clusterIP": SERVICE_IP, "clusterIPs": [SERVICE_IP]}}


def virtual_service(uid: str, ip: str = SERVICE_IP, **spec: Any) -> Obj:
    svc = service()
    svc["metadata"]["uid"] = uid
    svc["spec"].update(clusterIP=ip, clusterIPs=[ip], **spec)
    return svc


def restoring_context(*services: Obj, host_copy_of_service: Obj | None = None) -> Context:
    """The virtual Services given, the host Service, and host pods that carry identities."""
    pods = [{**host_pod(n, ip), "metadata": {
        **host_pod(n, ip)["metadata"],
        "annotations": naming.host_annotations({}, naming.VirtualIdentity(
            n, "team", f"uid-{n}", "Pod"))}} for n, ip in POD_IPS.items()]
    ctx = context(*services, pods=pods)
    lookup = ctx.lookup
    assert isinstance(lookup, FakeLookup)
    lookup.add(Side.HOST, resources.SERVICES, host_copy_of_service or host_service())
    return ctx


def synced_copy() -> Obj:
    """The host copy as the syncer made it under the Service's first uid."""
    return stored(to_host(virtual_endpoints(), restoring_context(virtual_service("svc-uid"))))


def test_the_host_copy_records_the_service_it_was_synced_under() -> None:
    assert synced_copy()["metadata"]["annotations"][SERVICE_UID] == "svc-uid"


def test_endpoints_deleted_while_the_syncer_recreated_their_service_are_restored() -> None:
    """The virtual endpoints controller deletes the Endpoints of a Service that is gone,
    hand-written ones too; the Service is back with a new uid and the host's ClusterIP:
    the Endpoints are made again from the host copy, pod references named back."""
    host = synced_copy()
    ctx = restoring_context(virtual_service("svc-uid-2"))
    with unchanged(host):
        (action,) = EndpointsTranslator().to_virtual(host, ctx)
    assert isinstance(action, Create)
    assert (action.side, action.resource) == (Side.VIRTUAL, resources.ENDPOINTS)
    restored = action.obj
    assert restored["metadata"] == {"name": "db", "namespace": "team",
                                    "labels": {"app": "db"}, "annotations": {}}
    (subset,) = restored["subsets"]
    assert subset["addresses"] == [
        {"ip": "10.244.1.5", "nodeName": "node-a", "hostname": "db-0",
         "targetRef": {"kind": "Pod", "namespace": "team", "name": "db-0"}},
        {"ip": "10.244.2.9", "nodeName": "node-b"},  # it named a pod of no host copy
        {"ip": "192.0.2.40"}, {"ip": "192.0.2.41"}]
    assert subset["notReadyAddresses"] == [
        {"ip": "10.244.3.3", "nodeName": "node-c",
         "targetRef": {"kind": "Pod", "namespace": "team", "name": "db-2"}}]
    again = to_host({**restored, "metadata": {**restored["metadata"], "uid": "ep-uid-2"}}, ctx)
    expected = copy.deepcopy(host["subsets"])
    del expected[0]["addresses"][1]["targetRef"]
    assert again["subsets"] == expected, "the restored Endpoints sync to the same copy"


@pytest.mark.parametrize(("case", "services"), [
    ("deleted by the tenant", [virtual_service("svc-uid")]),
    ("with their Service", []),
    ("with a Service the tenant replaced (its own ClusterIP)", [
        virtual_service("svc-uid-2", ip="10.96.7.7")]),
    ("and the new Service has a selector", [virtual_service("svc-uid-2", selector={"a": "b"})]),
])
def test_other_deletions_take_the_host_copy_with_them(case: str, services: list[Obj]) -> None:
    host = synced_copy()
    assert EndpointsTranslator().to_virtual(host, restoring_context(*services)) == [
        Delete(Side.HOST, resources.ENDPOINTS, HOST_NAME, HOST_NS, "host-ep-uid")], case


def test_while_the_service_is_being_recreated_the_host_copy_waits() -> None:
    """Between the syncer's delete and create of the Service (or after an interruption)."""
    ctx = restoring_context(host_copy_of_service=host_service(recreating=True))
    (action,) = EndpointsTranslator().to_virtual(synced_copy(), ctx)
    assert isinstance(action, Requeue)


def test_a_restored_endpoints_object_keeps_its_host_copy() -> None:
    """It has a new uid: the copy is patched to it, never deleted and made again."""
    c = planner()
    c.ctx = restoring_context(virtual_service("svc-uid-2"))
    host = synced_copy()
    restored = virtual_endpoints(uid="ep-uid-2")
    (action,) = c.plan(restored, host)
    assert isinstance(action, Patch)
    assert action.patch["metadata"]["annotations"][naming.ANNOTATION_OBJECT_UID] == "ep-uid-2"
    assert action.patch["metadata"]["annotations"][SERVICE_UID] == "svc-uid-2"

"""Unit tests of the Service translator (docs/acceptance.md, scenarios 20, 21, 23).

Fixtures are Services as API servers store them: defaulted (type, protocol,
sessionAffinity, ipFamilies, ...) and with server metadata. ``host_stored``
plays the host API server: it takes the translator's Create payload and adds
what the host allocates (ClusterIPs, NodePorts, healthCheckNodePort), so the
tests walk the real cycle: create on the host, sync, re-create virtual, sync.
Every translator call is checked not to mutate its inputs.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from contract import naming, resources
from contract.facts import Facts
from contract.resources import Obj
from contract.translator import Action, Context, Create, Delete, EnsureSynced, Patch, Side, Warn
from syncer.controller import Controller
from tests.unit.fakes import FakeLookup, unchanged
from translators import pods
from translators.endpoints import EndpointsTranslator
from translators.services import API_SERVICE, RECREATING, ServiceTranslator, is_api_service

HOST_NS = "vcluster-vc"
HOST_NAME = "web-x-team-x-vc"
VIRTUAL_IP = "10.96.12.7"
HOST_IP = "10.128.40.3"
API_IP = "10.128.0.17"
OWNERS = [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "d-1"}]
PINNED = {naming.LABEL_MANAGED_BY: "vc", naming.LABEL_NAMESPACE: "team"}


def context(**values: Any) -> Context:
    return Context(vcluster="vc", host_namespace=HOST_NS, lookup=FakeLookup(),
                   facts=Facts(**values))


def virtual_service(name: str = "web", namespace: str = "team", **spec: Any) -> Obj:
    """A ClusterIP Service selecting ``app=x``, as the virtual API server stores it."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": "svc-uid-1",
            "resourceVersion": "812",
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "labels": {"app": "web"},
            "annotations": {"note": "hi"},
            "ownerReferences": OWNERS,
            "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
        },
        "spec": {
            "selector": {"app": "x"},
            "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}],
            "clusterIP": VIRTUAL_IP,
            "clusterIPs": [VIRTUAL_IP],
            "type": "ClusterIP",
            "sessionAffinity": "None",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
            **spec,
        },
        "status": {"loadBalancer": {}},
    }


def node_port_service(**spec: Any) -> Obj:
    ports = [
        {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30080},
        {"name": "metrics", "protocol": "TCP", "port": 9090, "targetPort": 9090,
         "nodePort": 30090},
    ]
    return virtual_service(**{"type": "NodePort", "ports": ports,
                              "externalTrafficPolicy": "Cluster", **spec})


def host_stored(obj: Obj, ip: str = HOST_IP, first_node_port: int = 31000) -> Obj:
    """``obj`` as the host API server returns it after the create: allocations filled in."""
    out = copy.deepcopy(obj)
    out["metadata"].update({"uid": "host-uid", "resourceVersion": "900",
                            "creationTimestamp": "2024-05-01T10:00:01Z"})
    spec = out["spec"]
    if spec.get("type") != "ExternalName":
        spec.setdefault("clusterIP", ip)
        spec["clusterIPs"] = [spec["clusterIP"]]
    if spec.get("type") in ("NodePort", "LoadBalancer"):
        for offset, port in enumerate(spec["ports"]):
            port["nodePort"] = first_node_port + offset
    if spec.get("externalTrafficPolicy") == "Local" and spec.get("type") == "LoadBalancer":
        spec["healthCheckNodePort"] = 32500
    out["status"] = {"loadBalancer": {}}
    return out


def converged(virtual: Obj, host: Obj) -> Obj:
    """The virtual Service after the syncer showed it the host's allocations."""
    out = copy.deepcopy(virtual)
    spec, host_spec = out["spec"], host["spec"]
    if "clusterIPs" in spec:
        spec["clusterIP"], spec["clusterIPs"] = host_spec["clusterIP"], host_spec["clusterIPs"]
    for port, host_port in zip(spec["ports"], host_spec["ports"], strict=True):
        if "nodePort" in host_port:
            port["nodePort"] = host_port["nodePort"]
    return out




def created(actions: list[Action]) -> Obj:
    assert len(actions) == 1
    action = actions[0]
    assert isinstance(action, Create)
    assert action.side is Side.HOST
    assert action.resource == resources.SERVICES
    return action.obj


def to_host(virtual: Obj, ctx: Context | None = None) -> Obj:
    with unchanged(virtual):
        return created(ServiceTranslator().to_host(virtual, ctx or context()))


def sync(virtual: Obj, host: Obj, ctx: Context | None = None) -> list[Action]:
    with unchanged(virtual, host):
        return ServiceTranslator().sync(virtual, host, ctx or context())


# --- to_host: the host spec --------------------------------------------------------------------


def test_service_with_selector_becomes_a_pinned_host_service() -> None:
    assert to_host(virtual_service()) == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": HOST_NAME,
            "namespace": HOST_NS,
            "labels": {"app": "web", **PINNED},
            "annotations": {
                "note": "hi",
                naming.ANNOTATION_OBJECT_NAME: "web",
                naming.ANNOTATION_OBJECT_NAMESPACE: "team",
                naming.ANNOTATION_OBJECT_UID: "svc-uid-1",
                naming.ANNOTATION_OBJECT_KIND: "Service",
                naming.ANNOTATION_MANAGED_ANNOTATIONS: "note",
            },
        },
        "spec": {
            "selector": {"app": "x", **PINNED},
            "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}],
            "type": "ClusterIP",
            "sessionAffinity": "None",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
        },
    }


@pytest.mark.parametrize(
    "selector",
    [
        {naming.LABEL_MANAGED_BY: "other-vc", naming.LABEL_NAMESPACE: "kube-system"},
        {"app": "x", naming.LABEL_NAMESPACE: "other-team"},
    ],
    ids=["forged-ownership", "forged-namespace"],
)
def test_host_selector_always_pins_managed_by_and_namespace(selector: dict[str, str]) -> None:
    spec = to_host(virtual_service(selector=selector))["spec"]
    assert spec["selector"][naming.LABEL_MANAGED_BY] == "vc"
    assert spec["selector"][naming.LABEL_NAMESPACE] == "team"
    assert spec["selector"] == naming.host_selector(selector, "vc", "team")


@pytest.mark.parametrize("selector", [None, {}], ids=["missing", "empty"])
def test_selector_less_service_stays_selector_less(selector: dict[str, str] | None) -> None:
    virtual = virtual_service()
    if selector is None:
        del virtual["spec"]["selector"]
    else:
        virtual["spec"]["selector"] = selector
    assert "selector" not in to_host(virtual)["spec"]


def test_headless_service_keeps_cluster_ip_none() -> None:
    spec = to_host(virtual_service(clusterIP="None", clusterIPs=["None"]))["spec"]
    assert spec["clusterIP"] == "None"
    assert "clusterIPs" not in spec


def test_external_name_service() -> None:
    virtual = virtual_service(type="ExternalName", externalName="db.example.com.")
    for key in ("selector", "clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy",
                "internalTrafficPolicy"):
        del virtual["spec"][key]
    virtual["spec"]["ports"] = []
    assert to_host(virtual)["spec"] == {
        "type": "ExternalName",
        "externalName": "db.example.com.",
        "ports": [],
        "sessionAffinity": "None",
    }


def test_node_ports_health_check_port_and_external_ips_stay_behind() -> None:
    virtual = node_port_service(
        type="LoadBalancer",
        externalTrafficPolicy="Local",
        healthCheckNodePort=32111,
        externalIPs=["203.0.113.9"],
        loadBalancerIP="198.51.100.7",
        loadBalancerSourceRanges=["192.0.2.0/24"],
        loadBalancerClass="example.com/lb",
        allocateLoadBalancerNodePorts=True,
        sessionAffinity="ClientIP",
        sessionAffinityConfig={"clientIP": {"timeoutSeconds": 600}},
        publishNotReadyAddresses=True,
        trafficDistribution="PreferClose",
    )
    virtual["spec"]["ports"][0]["appProtocol"] = "http"
    spec = to_host(virtual)["spec"]
    assert spec["ports"] == [
        {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080, "appProtocol": "http"},
        {"name": "metrics", "protocol": "TCP", "port": 9090, "targetPort": 9090},
    ]
    assert "healthCheckNodePort" not in spec
    assert "externalIPs" not in spec
    assert "clusterIP" not in spec
    kept = ("type", "externalTrafficPolicy", "loadBalancerIP", "loadBalancerSourceRanges",
            "loadBalancerClass", "allocateLoadBalancerNodePorts", "sessionAffinity",
            "sessionAffinityConfig", "publishNotReadyAddresses", "trafficDistribution")
    assert {key: spec[key] for key in kept} == {key: virtual["spec"][key] for key in kept}


def test_dns_service_is_synced_under_the_name_pods_read_their_nameserver_from() -> None:
    name, namespace = naming.DNS_SERVICE
    dns = virtual_service(name, namespace, selector={"k8s-app": "kube-dns"})
    obj = to_host(dns)
    assert obj["metadata"]["name"] == "kube-dns-x-kube-system-x-vc"
    lookup = FakeLookup()
    lookup.add(Side.HOST, resources.SERVICES, host_stored(obj, ip="10.128.0.10"))
    ctx = Context(vcluster="vc", host_namespace=HOST_NS, lookup=lookup)
    assert pods.PodTranslator()._dns_ip(ctx) == "10.128.0.10"


# --- default/kubernetes -----------------------------------------------------------------------


def api_service(ip: str = "10.96.0.1") -> Obj:
    name, namespace = API_SERVICE
    virtual = virtual_service(name, namespace, clusterIP=ip, clusterIPs=[ip])
    del virtual["spec"]["selector"]
    virtual["spec"]["ports"] = [
        {"name": "https", "protocol": "TCP", "port": 443, "targetPort": 6443}
    ]
    virtual["metadata"]["labels"] = {"component": "apiserver", "provider": "kubernetes"}
    del virtual["metadata"]["ownerReferences"], virtual["metadata"]["annotations"]
    return virtual


def test_api_service_takes_the_host_ip_of_the_virtual_api_server() -> None:
    virtual = api_service()
    with unchanged(virtual):
        actions = ServiceTranslator().to_host(virtual, context(**{"api_service_ip": API_IP}))
    assert is_api_service(virtual)
    assert actions == [
        Delete(Side.VIRTUAL, resources.SERVICES, "kubernetes", "default", "svc-uid-1"),
        Create(Side.VIRTUAL, resources.SERVICES, {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "kubernetes",
                "namespace": "default",
                "labels": {"component": "apiserver", "provider": "kubernetes"},
            },
            "spec": {
                "ports": [{"name": "https", "protocol": "TCP", "port": 443, "targetPort": 6443}],
                "clusterIP": API_IP,
                "clusterIPs": [API_IP],
                "type": "ClusterIP",
                "sessionAffinity": "None",
                "ipFamilyPolicy": "SingleStack",
                "internalTrafficPolicy": "Cluster",
            },
        }),
    ]


@pytest.mark.parametrize(
    ("ip", "values"),
    [(API_IP, {"api_service_ip": API_IP}), ("10.96.0.1", {}),
     ("10.96.0.1", {"api_service_ip": ""})],
    ids=["already-the-host-ip", "no-fact", "empty-fact"],
)
def test_api_service_is_left_alone(ip: str, values: dict[str, str]) -> None:
    assert ServiceTranslator().to_host(api_service(ip), context(**values)) == []


def test_api_service_namesake_in_another_namespace_is_an_ordinary_service() -> None:
    virtual = virtual_service("kubernetes", "team")
    assert not is_api_service(virtual)
    assert to_host(virtual)["metadata"]["name"] == "kubernetes-x-team-x-vc"


# --- sync: host follows the virtual spec -----------------------------------------------------


def test_idle_sync_writes_nothing() -> None:
    for virtual in (virtual_service(), node_port_service(),
                    virtual_service(clusterIP="None", clusterIPs=["None"])):
        host = host_stored(to_host(virtual))
        host["metadata"]["annotations"]["cloud.example.com/seen"] = "yes"
        assert sync(converged(virtual, host), host) == []


def test_host_allocated_values_alone_cause_no_host_write() -> None:
    virtual = node_port_service(type="LoadBalancer", externalTrafficPolicy="Local")
    host = host_stored(to_host(virtual))
    assert host["spec"]["healthCheckNodePort"] == 32500
    assert sync(converged(virtual, host), host) == []


def test_defaults_the_virtual_spec_lacks_are_not_fought_over() -> None:
    virtual = virtual_service()
    for key in ("internalTrafficPolicy", "ipFamilies", "ipFamilyPolicy"):
        del virtual["spec"][key]
    host = host_stored(to_host(virtual))
    host["spec"].update(internalTrafficPolicy="Cluster", ipFamilies=["IPv4"],
                        ipFamilyPolicy="SingleStack")
    assert sync(converged(virtual, host), host) == []


def test_spec_changes_are_patched_and_allocations_wait_for_the_host() -> None:
    old = virtual_service()
    host = host_stored(to_host(old))
    new = converged(old, host)
    new["spec"]["selector"] = {"app": "y"}
    new["spec"]["ports"] = [{"name": "http", "protocol": "TCP", "port": 81, "targetPort": 8081}]
    new["spec"]["sessionAffinity"] = "ClientIP"
    new["spec"]["clusterIP"] = new["spec"]["clusterIPs"][0] = VIRTUAL_IP  # also stale

    assert sync(new, host) == [
        Patch(Side.HOST, resources.SERVICES, HOST_NAME, HOST_NS, {
            "spec": {
                "selector": {"app": "y"},  # a merge patch: the pinning labels stay
                "ports": [{"name": "http", "protocol": "TCP", "port": 81, "targetPort": 8081}],
                "sessionAffinity": "ClientIP",
            },
        })
    ]


def test_removing_the_selector_removes_it_on_the_host() -> None:
    virtual = virtual_service()
    host = host_stored(to_host(virtual))
    changed = converged(virtual, host)
    del changed["spec"]["selector"]
    assert sync(changed, host) == [
        Patch(Side.HOST, resources.SERVICES, HOST_NAME, HOST_NS, {"spec": {"selector": None}})
    ]


def test_type_change_to_node_port_sends_no_node_ports() -> None:
    virtual = virtual_service()
    host = host_stored(to_host(virtual))
    changed = converged(virtual, host)
    changed["spec"].update(type="NodePort", externalTrafficPolicy="Cluster")
    changed["spec"]["ports"][0]["nodePort"] = 30080  # the virtual API server's choice
    (action,) = sync(changed, host)
    assert isinstance(action, Patch)
    assert action.side is Side.HOST
    assert action.patch == {"spec": {"type": "NodePort", "externalTrafficPolicy": "Cluster"}}


def test_host_side_edits_of_owned_fields_are_reverted() -> None:
    virtual = virtual_service()
    host = host_stored(to_host(virtual))
    host["spec"]["selector"] = {"app": "x"}  # someone dropped the pinning
    host["spec"]["loadBalancerSourceRanges"] = ["0.0.0.0/0"]
    host["metadata"]["labels"]["app"] = "edited"
    assert sync(converged(virtual, host), host) == [
        Patch(Side.HOST, resources.SERVICES, HOST_NAME, HOST_NS, {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"selector": PINNED, "loadBalancerSourceRanges": None},
        })
    ]


def test_fields_the_syncer_does_not_copy_are_not_compared() -> None:
    virtual = virtual_service(externalIPs=["203.0.113.9"])
    host = host_stored(to_host(virtual))
    host["spec"]["externalIPs"] = ["198.51.100.1"]  # a host admin's business, not the tenant's
    assert sync(converged(virtual, host), host) == []


def test_headlessness_change_replaces_the_host_copy() -> None:
    virtual = virtual_service()
    host = host_stored(to_host(virtual))
    headless = converged(virtual, host)
    headless["spec"]["clusterIP"] = "None"
    headless["spec"]["clusterIPs"] = ["None"]
    assert sync(headless, host) == [
        Delete(Side.HOST, resources.SERVICES, HOST_NAME, HOST_NS, "host-uid")
    ]


# --- sync: the host's allocations go up --------------------------------------------------------


def test_virtual_service_is_recreated_with_the_host_cluster_ip_and_node_ports() -> None:
    virtual = node_port_service()
    host = host_stored(to_host(virtual))

    actions = sync(virtual, host)

    spec = copy.deepcopy(virtual["spec"])
    spec.update(clusterIP=HOST_IP, clusterIPs=[HOST_IP])
    spec["ports"][0]["nodePort"] = 31000
    spec["ports"][1]["nodePort"] = 31001
    recreated = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "web",
            "namespace": "team",
            "labels": {"app": "web"},
            "annotations": {"note": "hi"},
            "ownerReferences": OWNERS,
        },
        "spec": spec,
    }
    record = json.dumps({"uid": "svc-uid-1", "object": recreated}, sort_keys=True)
    assert actions == [
        Patch(Side.HOST, resources.SERVICES, HOST_NAME, HOST_NS,
              {"metadata": {"annotations": {RECREATING: record}}}),
        Delete(Side.VIRTUAL, resources.SERVICES, "web", "team", "svc-uid-1"),
        Create(Side.VIRTUAL, resources.SERVICES, recreated),
    ]


def test_hand_written_endpoints_reach_the_host_before_their_service_is_recreated() -> None:
    """Issue 22: the virtual endpoints controller deletes them with the Service; the host
    copy is what they are restored from (``translators.endpoints``)."""
    virtual = virtual_service()
    del virtual["spec"]["selector"]
    actions = sync(virtual, host_stored(to_host(virtual)))
    assert actions[0] == EnsureSynced(EndpointsTranslator, "team/web")
    assert [type(a) for a in actions[1:]] == [Patch, Delete, Create]
    selected = virtual_service()
    assert not [a for a in sync(selected, host_stored(to_host(selected)))
                if isinstance(a, EnsureSynced)], "the host's controllers make those Endpoints"


def test_recreate_takes_the_families_of_the_host_ips() -> None:
    v6 = "fd00:10:96::7"
    virtual = virtual_service(ipFamilyPolicy="PreferDualStack")
    host = host_stored(to_host(virtual))
    host["spec"].update(clusterIPs=[HOST_IP, v6], ipFamilies=["IPv4", "IPv6"])
    # (record on the host, delete, create): the added family alone is no reason for a spec patch
    _, _, create = sync(virtual, host)
    assert isinstance(create, Create)
    assert create.obj["spec"]["clusterIPs"] == [HOST_IP, v6]
    assert create.obj["spec"]["ipFamilies"] == ["IPv4", "IPv6"]
    recreated = copy.deepcopy(create.obj)
    recreated["metadata"]["uid"] = "svc-uid-1"
    assert sync(recreated, host) == []


def test_only_node_ports_differ_patches_the_virtual_ports() -> None:
    virtual = node_port_service()
    host = host_stored(to_host(virtual))
    shown = converged(virtual, host)
    shown["spec"]["ports"][1]["nodePort"] = 30090  # the virtual API server's own choice

    assert sync(shown, host) == [
        Patch(Side.VIRTUAL, resources.SERVICES, "web", "team", {
            "spec": {"ports": [
                {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080,
                 "nodePort": 31000},
                {"name": "metrics", "protocol": "TCP", "port": 9090, "targetPort": 9090,
                 "nodePort": 31001},
            ]},
        })
    ]


def test_a_node_port_the_host_did_not_allocate_is_left_alone() -> None:
    virtual = node_port_service(type="LoadBalancer", allocateLoadBalancerNodePorts=False)
    host = host_stored(to_host(virtual))
    for port in host["spec"]["ports"]:
        del port["nodePort"]
    shown = converged(virtual, host)
    assert shown["spec"]["ports"][0]["nodePort"] == 30080
    assert sync(shown, host) == []


def test_load_balancer_ingress_appears_in_the_virtual_status() -> None:
    virtual = node_port_service(type="LoadBalancer")
    host = host_stored(to_host(virtual))
    shown = converged(virtual, host)
    ingress = [{"ip": "198.51.100.20", "ipMode": "VIP"}]
    host["status"] = {"loadBalancer": {"ingress": ingress}}

    assert sync(shown, host) == [
        Patch(Side.VIRTUAL, resources.SERVICES, "web", "team",
              {"status": {"loadBalancer": {"ingress": ingress}}}, "status")
    ]
    shown["status"] = {"loadBalancer": {"ingress": ingress}}
    assert sync(shown, host) == []
    host["status"] = {"loadBalancer": {}}
    assert sync(shown, host) == [
        Patch(Side.VIRTUAL, resources.SERVICES, "web", "team",
              {"status": {"loadBalancer": {"ingress": None}}}, "status")
    ]


def test_metadata_patch_and_allocations_go_together() -> None:
    virtual = node_port_service(type="LoadBalancer")
    host = host_stored(to_host(virtual))
    host["status"] = {"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}]}}
    shown = converged(virtual, host)
    shown["metadata"]["annotations"] = {"note": "changed"}
    host_patch, status = sync(shown, host)
    assert isinstance(host_patch, Patch)
    assert host_patch.side is Side.HOST
    assert host_patch.patch == {"metadata": {"annotations": {"note": "changed"}}}
    assert isinstance(status, Patch)
    assert status.subresource == "status"


def test_no_recreate_while_the_virtual_service_is_being_deleted() -> None:
    virtual = virtual_service()
    virtual["metadata"]["deletionTimestamp"] = "2024-05-01T11:00:00Z"
    host = host_stored(to_host(virtual))
    assert sync(virtual, host) == []


def test_no_recreate_of_a_service_with_finalizers_but_a_warning() -> None:
    virtual = virtual_service()
    virtual["metadata"]["finalizers"] = ["example.com/keep"]
    host = host_stored(to_host(virtual))
    (warning,) = sync(virtual, host)
    assert isinstance(warning, Warn)
    assert HOST_NAME not in warning.message
    assert HOST_NS not in warning.message


def external_name(target: str) -> Obj:
    service = virtual_service(type="ExternalName", externalName=target)
    for key in ("selector", "clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
        del service["spec"][key]
    return service


def test_external_names_inside_the_host_cluster_are_refused_and_never_kept() -> None:
    """Issue 22 (the rule itself: tests/unit/test_externalnames.py). Not created; and a Service
    that turns into one loses its host copy, which must not point there either."""
    refused = external_name("kubernetes.default")
    with unchanged(refused):
        (warning,) = ServiceTranslator().to_host(refused, context())
    assert isinstance(warning, Warn)
    assert warning.reason == "ExternalNameRefused"
    host = host_stored(to_host(external_name("db.example.com.")))
    assert sync(refused, host) == [
        warning, Delete(Side.HOST, resources.SERVICES, HOST_NAME, HOST_NS, "host-uid")]


def test_no_recreate_when_either_side_has_no_cluster_ip() -> None:
    external = virtual_service(type="ExternalName", externalName="db.example.com.")
    for key in ("selector", "clusterIP", "clusterIPs"):
        del external["spec"][key]
    host = host_stored(to_host(external))
    assert sync(external, host) == []


# --- identity across re-creation -----------------------------------------------------------------


def planner() -> Controller:
    """A Controller with only what ``plan`` reads (``__init__`` needs informers)."""
    controller = Controller.__new__(Controller)
    controller.translator = ServiceTranslator()
    controller.ctx = context()
    return controller


def test_recreated_virtual_service_keeps_its_host_copy_and_moves_the_uid() -> None:
    c = planner()
    virtual = virtual_service()
    host = host_stored(to_host(virtual))
    recreated = converged(virtual, host)
    recreated["metadata"]["uid"] = "svc-uid-2"

    assert c.plan(recreated, host) == [
        Patch(Side.HOST, resources.SERVICES, HOST_NAME, HOST_NS,
              {"metadata": {"annotations": {naming.ANNOTATION_OBJECT_UID: "svc-uid-2"}}})
    ]
    assert c.translator.virtual_key(host, c.ctx) == "team/web"


def test_orphaned_host_service_is_deleted() -> None:
    c = planner()
    host = host_stored(to_host(virtual_service()))
    assert c.plan(None, host) == [
        Delete(Side.HOST, resources.SERVICES, HOST_NAME, HOST_NS, "host-uid")
    ]


def test_api_service_is_never_created_on_the_host() -> None:
    c = planner()
    assert c.plan(api_service(), None) == []


def test_no_call_mutates_its_inputs() -> None:
    t, ctx = ServiceTranslator(), context(**{"api_service_ip": API_IP})
    for virtual in (node_port_service(type="LoadBalancer"), api_service(),
                    virtual_service(clusterIP="None", clusterIPs=["None"])):
        host = host_stored(t.desired(virtual, ctx))
        host["status"] = {"loadBalancer": {"ingress": [{"ip": "198.51.100.20"}]}}
        host["spec"]["ports"][0]["port"] = 1
        with unchanged(virtual, host):
            t.wants(virtual, ctx)
            t.to_host(virtual, ctx)
            t.sync(virtual, host, ctx)
            t.sync(converged(virtual, host), host, ctx)
            t.to_virtual(host, ctx)

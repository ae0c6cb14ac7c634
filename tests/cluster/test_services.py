"""Services, Endpoints, DNS, events (docs/acceptance.md, scenarios 20-23 and 29) end to end.

Addresses written into Endpoints and LoadBalancer status are documentation
addresses (192.0.2.0/24): objects only, never dialled (the API server refuses
loopback addresses there).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from contract import naming
from contract import resources as r
from contract.resources import Obj
from syncer.kube.client import KubeClient
from syncer.kube.errors import NotFound
from syncer.local import coredns
from syncer.local.syncer_process import SyncerProcess
from tests.cluster.conftest import VC, Stack
from tests.support import syncer_idle, wait_until

NS = "shop"


@pytest.fixture
async def shop(stack: Stack) -> Stack:
    await stack.virtual.create(r.NAMESPACES, {"metadata": {"name": NS}})
    return stack


@pytest.fixture
def syncer(shop: Stack) -> SyncerProcess:
    return shop.syncer().start()


def _service(name: str, selector: dict[str, str] | None, **spec: Any) -> Obj:
    body: Obj = {"ports": [{"name": "http", "port": 80, "targetPort": 8080}], **spec}
    if selector is not None:
        body["selector"] = selector
    return {"metadata": {"name": name}, "spec": body}


async def _host_ip_shown(stack: Stack, name: str, namespace: str = NS) -> Obj | None:
    """The virtual Service once it shows its host copy's ClusterIP (else None)."""
    host = await stack.host_get(r.SERVICES, name, namespace)
    virtual = await stack.virtual_get(r.SERVICES, name, namespace)
    if host and virtual and host["spec"]["clusterIP"] == virtual["spec"]["clusterIP"]:
        return virtual
    return None


async def test_service_selector_is_confined_and_host_allocations_show(
    shop: Stack, syncer: SyncerProcess
) -> None:
    """Scenario 20: selector confined to the tenant; ClusterIP and NodePorts from the host."""
    await shop.virtual.create(r.SERVICES, _service("web", {"app": "x"}, type="NodePort"), NS)
    virtual = await wait_until(lambda: _host_ip_shown(shop, "web"),
                               "the virtual Service to show the host ClusterIP")
    assert virtual is not None
    host = await shop.host_get(r.SERVICES, "web", NS)
    assert host is not None
    assert host["spec"]["selector"] == {
        "app": "x", naming.LABEL_MANAGED_BY: VC, naming.LABEL_NAMESPACE: NS}

    async def node_ports_match() -> bool:
        v = await shop.virtual_get(r.SERVICES, "web", NS)
        return bool(v and [p.get("nodePort") for p in v["spec"]["ports"]] ==
                    [p["nodePort"] for p in host["spec"]["ports"]])

    await wait_until(node_ports_match, "the virtual NodePort to equal the host's")


async def test_api_and_dns_services_map_to_the_control_planes_host_services(
    shop: Stack, syncer: SyncerProcess
) -> None:
    """Scenario 21: default/kubernetes -> the API Service; kube-dns -> its host copy."""
    async def api_mapped() -> bool:
        svc = await shop.virtual_get(r.SERVICES, "kubernetes", "default")
        return bool(svc and svc["spec"]["clusterIP"] == shop.api_ip)

    await wait_until(api_mapped, "default/kubernetes to carry the API Service's ClusterIP")
    assert await shop.host_get(r.SERVICES, "kubernetes", "default") is None
    dns = await wait_until(lambda: _host_ip_shown(shop, "kube-dns", "kube-system"),
                           "kube-system/kube-dns to show its host ClusterIP")
    assert dns is not None
    assert dns["spec"]["clusterIP"] == await shop.dns_ip()


async def test_manual_endpoints_sync_only_for_selectorless_services(
    shop: Stack, syncer: SyncerProcess
) -> None:
    """Scenario 22."""
    await shop.virtual.create(r.SERVICES, _service("external", None), NS)
    # The Service is re-created with the host's ClusterIP first: the virtual
    # endpoints controller deletes Endpoints whose Service is (briefly) gone,
    # so manual Endpoints are written once it carries the host IP (README).
    await wait_until(lambda: _host_ip_shown(shop, "external"), "external on the host IP")
    await shop.virtual.create(r.ENDPOINTS, {
        "metadata": {"name": "external"},
        "subsets": [{"addresses": [{"ip": "192.0.2.42"}], "ports": [{"name": "http",
                                                                      "port": 8080}]}],
    }, NS)
    host = await wait_until(lambda: shop.host_get(r.ENDPOINTS, "external", NS),
                            "the manual Endpoints on the host")
    assert host is not None
    assert host["subsets"][0]["addresses"][0]["ip"] == "192.0.2.42"
    assert host["metadata"]["annotations"][naming.ANNOTATION_OBJECT_NAME] == "external"

    await shop.virtual.create(r.SERVICES, _service("selected", {"app": "y"}), NS)
    await wait_until(lambda: _host_ip_shown(shop, "selected"), "the selector Service synced")
    managed = await shop.host_get(r.ENDPOINTS, "selected", NS)
    annotations = (managed or {}).get("metadata", {}).get("annotations") or {}
    assert naming.ANNOTATION_OBJECT_NAME not in annotations, (
        "Endpoints of a Service with a selector belong to the host's controllers")


async def test_manual_endpoints_written_with_their_service_survive_its_recreation(
    shop: Stack, syncer: SyncerProcess
) -> None:
    """Issue 22: a selector-less Service and its Endpoints written together (one
    ``kubectl apply``), so the Endpoints exist when the syncer re-creates the Service with
    the host's ClusterIP. The virtual endpoints controller deletes the Endpoints of a
    Service that is gone, the tenant's hand-written ones too; they must end up on both
    sides all the same, with the tenant's address."""
    await shop.virtual.create(r.SERVICES, _service("early", None), NS)
    await shop.virtual.create(r.ENDPOINTS, {
        "metadata": {"name": "early", "labels": {"team": "shop"}},
        "subsets": [{"addresses": [{"ip": "192.0.2.43"}], "ports": [{"name": "http",
                                                                      "port": 8080}]}],
    }, NS)
    await wait_until(lambda: _host_ip_shown(shop, "early"), "early on the host IP")
    await wait_until(lambda: syncer_idle(syncer.url), "the syncer idle")

    async def on_both_sides() -> bool:
        found = [await shop.virtual_get(r.ENDPOINTS, "early", NS),
                 await shop.host_get(r.ENDPOINTS, "early", NS)]
        return all(e and [a["ip"] for a in e["subsets"][0]["addresses"]] == ["192.0.2.43"]
                   for e in found)

    await wait_until(on_both_sides, "the tenant's Endpoints in the virtual cluster and on "
                     "the host after the re-creation")
    virtual = await shop.virtual.get(r.ENDPOINTS, "early", NS)
    assert virtual["metadata"]["labels"] == {"team": "shop"}
    assert virtual["subsets"][0]["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]


async def test_load_balancer_ingress_reaches_the_virtual_service(
    shop: Stack, syncer: SyncerProcess
) -> None:
    """Scenario 23 (the host's cloud controller is played by a status patch)."""
    await shop.virtual.create(r.SERVICES, _service("lb", {"app": "z"}, type="LoadBalancer"), NS)
    host = await wait_until(lambda: shop.host_get(r.SERVICES, "lb", NS), "the host Service")
    assert host is not None
    await shop.host.patch(r.SERVICES, host["metadata"]["name"],
                          {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.77"}]}}},
                          shop.host_namespace, subresource="status")

    async def shown() -> bool:
        svc = await shop.virtual_get(r.SERVICES, "lb", NS)
        ingress = (svc or {}).get("status", {}).get("loadBalancer", {}).get("ingress") or []
        return [i.get("ip") for i in ingress] == ["192.0.2.77"]

    await wait_until(shown, "the LoadBalancer ingress IP in the virtual Service status")


async def test_host_events_about_synced_pods_appear_with_virtual_names(
    shop: Stack, syncer: SyncerProcess
) -> None:
    """Scenario 29: the host scheduler's event about a host pod, rewritten."""
    pod = {"metadata": {"name": "evented"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    await shop.virtual.create(r.PODS, pod, NS)
    host_name = shop.host_name("evented", NS)

    async def scheduled() -> list[Obj]:
        events, _ = await shop.virtual.list(r.EVENTS, NS)
        return [e for e in events if e["involvedObject"]["name"] == "evented"
                and e["reason"] == "Scheduled"]

    events = await wait_until(scheduled, "the host's Scheduled event in the virtual cluster")
    event = events[0]
    virtual_pod = await shop.virtual.get(r.PODS, "evented", NS)
    assert event["involvedObject"]["uid"] == virtual_pod["metadata"]["uid"]
    assert event["involvedObject"]["namespace"] == NS
    assert host_name not in event["message"]
    assert shop.host_namespace not in event["message"]
    assert f"{NS}/evented" in event["message"], event["message"]


async def test_coredns_runs_as_an_ordinary_synced_deployment(
    shop: Stack, syncer: SyncerProcess
) -> None:
    """CoreDNS manifests: the DNS pod is synced like any other and goes Running."""
    await wait_until(lambda: _host_ip_shown(shop, "kube-dns", "kube-system"), "kube-dns")
    objects = [m for m in coredns.manifests() if m != coredns.dns_service()]
    client = shop.virtual_cluster.client()
    coredns.apply(client, objects)

    async def running() -> list[Obj]:
        pods, _ = await shop.virtual.list(r.PODS, "kube-system", label_selector="k8s-app=kube-dns")
        return [p for p in pods if p.get("status", {}).get("phase") == "Running"]

    pods = await wait_until(running, "a Running CoreDNS pod", timeout=60)
    host = await shop.host_get(r.PODS, pods[0]["metadata"]["name"], "kube-system")
    assert host is not None
    assert host["spec"]["dnsPolicy"] == "Default", "CoreDNS itself must not resolve through itself"
    # kube-dns has endpoints on both sides: the DNS pod's real IP (the session's network)
    ip = host["status"]["podIP"]
    assert await wait_until(lambda: _slice_ips(shop.virtual, "kube-system", "kube-dns"),
                            "the virtual kube-dns EndpointSlice") == {ip}
    assert await wait_until(lambda: _slice_ips(shop.host, shop.host_namespace,
                                               shop.host_name("kube-dns", "kube-system")),
                            "the host kube-dns EndpointSlice") == {ip}
    await _no_endpoint_failures(shop)


ENDPOINTSLICES = r.Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice")


async def _slice_ips(client: KubeClient, namespace: str, service: str) -> set[str]:
    items, _ = await client.list(ENDPOINTSLICES, namespace,
                                 label_selector=f"kubernetes.io/service-name={service}")
    return {ip for s in items for e in s.get("endpoints") or () for ip in e["addresses"]}


async def _endpoint_ips(client: KubeClient, namespace: str, service: str) -> set[str]:
    try:
        endpoints = await client.get(r.ENDPOINTS, service, namespace)
    except NotFound:
        return set()
    return {a["ip"] for s in endpoints.get("subsets") or () for a in s.get("addresses") or ()}


async def _no_endpoint_failures(stack: Stack) -> None:
    """No FailedToUpdateEndpoint(Slices) Warning on either side (loopback pod IPs made
    the endpoint controllers fail over and over)."""
    for client in (stack.virtual, stack.host):
        events, _ = await client.list(r.EVENTS)
        failures = [e["message"] for e in events
                    if e.get("reason", "").startswith("FailedToUpdateEndpoint")]
        assert failures == [], failures


async def test_an_exposed_deployment_gets_endpoints_on_both_sides(
    shop: Stack, syncer: SyncerProcess
) -> None:
    """``kubectl expose``: the virtual and the host Service each get Endpoints and an
    EndpointSlice listing the host pods' IPs, which the virtual pods show too."""
    await shop.virtual.create(r.DEPLOYMENTS, {
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}},
        NS)
    await shop.virtual.create(r.SERVICES, _service("web", {"app": "web"}), NS)

    async def pod_ips() -> set[str]:
        pods, _ = await shop.virtual.list(r.PODS, NS, label_selector="app=web")
        ips = {p.get("status", {}).get("podIP") for p in pods}
        return ips if len(ips) == 2 and None not in ips else set()

    ips = await wait_until(pod_ips, "2 virtual web pods with their host IPs", timeout=60)
    host_service = shop.host_name("web", NS)
    for client, namespace, name in ((shop.virtual, NS, "web"),
                                    (shop.host, shop.host_namespace, host_service)):
        for probe in (_endpoint_ips, _slice_ips):
            read = functools.partial(probe, client, namespace, name)

            async def complete(read: Callable[[], Awaitable[set[str]]] = read) -> bool:
                return await read() == ips

            await wait_until(complete, f"{probe.__name__} of {namespace}/{name}: {ips}")
    await _no_endpoint_failures(shop)

"""Translations the bad-input corpus (tests/security) found wrong, pinned at unit level.

Each test is one input a tenant may legally write whose host copy the host
API server refused (or whose Warning named host objects) before the fix.
"""

from __future__ import annotations

from typing import Any

from contract import naming, resources
from contract.facts import Facts
from contract.resources import Obj
from contract.translator import Context, Create, EnsureSynced, Requeue, Side, Warn
from syncer.controller import warning_text
from syncer.kube.errors import Forbidden, Invalid
from tests.unit.fakes import FakeLookup
from translators import pods
from translators.priorityclasses import PriorityClassTranslator
from translators.services import ServiceTranslator

VC = "vc1"
HOST_NS = "vcluster-abc"
NS = "corpus"


def _context(lookup: FakeLookup | None = None) -> Context:
    return Context(VC, HOST_NS, lookup or FakeLookup(), facts=Facts(api_service_ip="10.96.0.1"))


def _pod(**spec: Any) -> Obj:
    containers = spec.pop("containers", [{"name": "main", "image": "busybox"}])
    return {"metadata": {"name": "p", "namespace": NS, "uid": "u-1"},
            "spec": {"containers": containers, **spec}}


def _world_with_services(count: int, ports: int) -> FakeLookup:
    """The caches a pod is translated from: the DNS Service on the host, ``count``
    Services with ``ports`` ports each in the pod's virtual namespace."""
    lookup = FakeLookup()
    dns_name, dns_ns = naming.DNS_SERVICE
    lookup.add(Side.HOST, resources.SERVICES, {
        "metadata": {"name": naming.host_name(dns_name, dns_ns, VC), "namespace": HOST_NS},
        "spec": {"clusterIP": "10.96.0.10"}})
    for i in range(count):
        lookup.add(Side.VIRTUAL, resources.SERVICES, {
            "metadata": {"name": f"svc-{i:03d}", "namespace": NS},
            "spec": {"clusterIP": f"10.96.1.{i % 250}", "ports": [
                {"name": f"port-{p}", "port": 8000 + p, "protocol": "TCP"}
                for p in range(ports)]}})
    return lookup


def _host_pod(virtual: Obj, lookup: FakeLookup) -> Obj:
    actions = pods.PodTranslator().to_host(virtual, _context(lookup))
    created = [a for a in actions if isinstance(a, Create)]
    assert created, actions
    return created[-1].obj


def test_dns_search_list_is_cut_to_2048_characters() -> None:
    """Eight 253-character domains are valid (2031 characters); our three cluster domains
    come first on the host, so the tenant's last domains must go, not the whole pod."""
    user = [f"s{i}.example-" + "a" * 241 for i in range(8)]
    host = _host_pod(_pod(dnsConfig={"searches": user}), _world_with_services(0, 0))
    searches = host["spec"]["dnsConfig"]["searches"]
    assert searches[:3] == [f"{NS}.svc.cluster.local", "svc.cluster.local", "cluster.local"]
    assert searches[3:] == user[: len(searches) - 3]
    assert len(" ".join(searches)) <= 2048
    assert len(searches) == 3 + 7


def test_dns_search_list_is_cut_to_32_domains() -> None:
    user = [f"d{i}.example" for i in range(32)]
    host = _host_pod(_pod(dnsConfig={"searches": user}), _world_with_services(0, 0))
    assert host["spec"]["dnsConfig"]["searches"][3:] == user[:29]


def test_cluster_ip_service_with_external_ips_keeps_no_traffic_policy() -> None:
    """externalIPs stay behind (a tenant must not claim host addresses), and with them the
    externalTrafficPolicy the virtual API server defaulted for them: the host refuses it on
    a ClusterIP Service. NodePort and LoadBalancer Services keep it."""
    spec = {"type": "ClusterIP", "externalIPs": ["203.0.113.7"],
            "externalTrafficPolicy": "Cluster", "ports": [{"port": 80}]}
    virtual = {"metadata": {"name": "s", "namespace": NS, "uid": "u"}, "spec": spec}
    host = ServiceTranslator().desired(virtual, _context())["spec"]
    assert "externalIPs" not in host
    assert "externalTrafficPolicy" not in host
    node_port = {**virtual, "spec": {**spec, "type": "NodePort", "externalTrafficPolicy": "Local"}}
    assert ServiceTranslator().desired(node_port, _context())["spec"][
        "externalTrafficPolicy"] == "Local"


def test_pod_too_large_for_the_host_gets_a_warning_naming_service_links() -> None:
    """40 Services with 6 ports make ~66 KB of variables per container; 48 containers make
    a pod of 3 MB, which no host stores: a Warning that says why (and a later look), not
    a create that fails forever with "request entity too large"."""
    lookup = _world_with_services(40, 6)
    many = [{"name": f"c{i}", "image": "busybox"} for i in range(48)]
    actions = pods.PodTranslator().to_host(_pod(containers=many), _context(lookup))
    assert isinstance(actions[0], Warn)
    assert actions[0].reason == pods.POD_TOO_LARGE
    assert "40 Services" in actions[0].message
    assert "48 containers" in actions[0].message
    assert "spec.enableServiceLinks" in actions[0].message
    assert actions[1:] == [Requeue(60.0)]
    linkless = _host_pod(_pod(containers=many, enableServiceLinks=False), lookup)
    assert len(linkless["spec"]["containers"]) == 48


def test_warning_text_names_no_host_object() -> None:
    """A pod's Warning about the ConfigMap the host refused names the ConfigMap's virtual
    name and the virtual namespace, never their host counterparts."""
    pod = {"metadata": {"name": "user", "namespace": NS}}
    exc = Invalid(422, {"message": (
        f'ConfigMap "cfg-x-{NS}-x-{VC}" is invalid: in namespace {HOST_NS}: too long')},
        "POST", "/x")
    text = warning_text(exc, _context(), pod)
    assert text == (f'syncing to the host cluster failed: ConfigMap "cfg" is invalid: '
                    f"in namespace {NS}: too long")


def test_pod_naming_a_synced_priority_class_waits_for_its_host_copy() -> None:
    """Host admission refuses a pod naming a PriorityClass that does not exist yet: the
    class's copy is made first (like a mounted ConfigMap's), not after a refusal."""
    ctx = Context(VC, HOST_NS, _world_with_services(0, 0), facts=Facts(
        api_service_ip="10.96.0.1", synced=frozenset({"priorityClasses"})))
    actions = pods.PodTranslator().to_host(_pod(priorityClassName="high"), ctx)
    assert actions[-2:-1] == [EnsureSynced(PriorityClassTranslator, "high")]
    assert isinstance(actions[-1], Create)
    system = pods.PodTranslator().to_host(_pod(priorityClassName="system-node-critical"), ctx)
    assert not [a for a in system if isinstance(a, EnsureSynced)]


def test_warning_text_names_no_cluster_scoped_host_object() -> None:
    pod = {"metadata": {"name": "user", "namespace": NS}}
    exc = Forbidden(403, {"message": (
        f"no PriorityClass with name vcsync-high-x-{HOST_NS}-x-{VC} was found")}, "POST", "/x")
    assert warning_text(exc, _context(), pod) == (
        "syncing to the host cluster failed: no PriorityClass with name high was found")

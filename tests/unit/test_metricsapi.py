"""The metrics API's pure parts: routes, the caller from front-proxy headers, the access
review, the translation of host metrics to virtual ones, the APIService objects; and the
certificates and options it needs."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from contract.resources import Obj
from contract.translator import Context
from syncer.app import RunOptions
from syncer.kubelet.routes import RouteError
from syncer.kubelet.tls import FRONT_PROXY_COMMON_NAME, mint_serving_cert, peer_allowed
from syncer.local.cluster import fake_node
from syncer.local.pki import generate_pki, load_pki
from syncer.metricsapi import apiservice, routes, translate
from syncer.metricsapi.routes import Caller, MetricsCall
from tests.unit.fakes import FakeLookup
from translators.services import ServiceTranslator

P = routes.PREFIX


# -- routes --------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "query", "call"), [
    (P, {}, None),
    (P + "/", {}, None),
    (P + "/nodes", {}, MetricsCall("nodes")),
    (P + "/nodes/kwok-node-0", {}, MetricsCall("nodes", name="kwok-node-0")),
    (P + "/pods", {"labelSelector": "app=web"}, MetricsCall("pods", label_selector="app=web")),
    (P + "/namespaces/demo/pods", {"fieldSelector": "metadata.name=web"},
     MetricsCall("pods", "demo", field_selector="metadata.name=web")),
    (P + "/namespaces/demo/pods/web", {}, MetricsCall("pods", "demo", "web")),
    (P + "/namespaces/demo/pods/web.v2", {"watch": "false"}, MetricsCall("pods", "demo", "web.v2")),
])
def test_paths_metrics_server_serves_are_routed(path: str, query: dict[str, str],
                                                call: MetricsCall | None) -> None:
    assert routes.parse("GET", path, query) == call


@pytest.mark.parametrize(("method", "path", "query", "status"), [
    ("GET", "/apis", {}, 404),
    ("GET", "/apis/metrics.k8s.io", {}, 404),
    ("GET", "/apis/metrics.k8s.io/v1beta1x", {}, 404),
    ("GET", "/api/v1/namespaces/demo/pods", {}, 404),
    ("GET", P + "/namespaces/demo/nodes", {}, 404),
    ("GET", P + "/namespaces/demo", {}, 404),
    ("GET", P + "/pods/web", {}, 404),
    ("GET", P + "/namespaces/demo/pods/web/log", {}, 404),
    ("GET", P + "/services", {}, 404),
    ("GET", P + "/namespaces/Demo/pods", {}, 400),
    ("GET", P + "/namespaces/demo/pods/web%0A", {}, 400),
    ("GET", P + "/nodes/a%2Fb", {}, 400),
    ("POST", P + "/namespaces/demo/pods", {}, 405),
    ("DELETE", P + "/nodes/n", {}, 405),
    ("GET", P + "/pods", {"watch": "true"}, 405),
    ("GET", P + "/nodes", {"watch": "1"}, 405),
])
def test_other_requests_are_refused(method: str, path: str, query: dict[str, str],
                                    status: int) -> None:
    with pytest.raises(RouteError) as refused:
        routes.parse(method, path, query)
    assert refused.value.status == status


def test_the_discovery_document_lists_pods_and_nodes_read_only() -> None:
    doc = routes.DISCOVERY
    assert doc["groupVersion"] == "metrics.k8s.io/v1beta1"
    assert {(r["name"], r["kind"], r["namespaced"]) for r in doc["resources"]} == {
        ("pods", "PodMetrics", True), ("nodes", "NodeMetrics", False)}
    assert all(r["verbs"] == ["get", "list"] for r in doc["resources"])


# -- the caller ------------------------------------------------------------------------------


def test_the_caller_follows_kube_apiservers_requestheader_rules() -> None:
    headers = [
        ("X-Remote-User", "alice"), ("x-remote-user", "mallory"),
        ("X-Remote-Group", "devs"), ("X-Remote-Group", "system:authenticated"),
        ("X-Remote-Extra-Scopes", "a"), ("X-Remote-Extra-Scopes", "b"),
        ("X-Remote-Extra-Acme.com%2Fproject", "p1"), ("X-Remote-Uid", "u-1"),
        ("Authorization", "Bearer ignored"),
    ]
    assert routes.caller(headers) == Caller(
        "alice", ("devs", "system:authenticated"),
        {"scopes": ["a", "b"], "acme.com/project": ["p1"]}, "u-1")
    assert routes.caller([("X-Remote-Group", "system:masters")]) is None
    assert routes.caller([]) is None


def test_the_access_review_asks_for_exactly_the_call() -> None:
    who = Caller("alice", ("devs",), {"scopes": ["a"]}, "u-1")
    review = routes.access_review(who, MetricsCall("pods", "demo", "web"))
    assert review["spec"] == {
        "user": "alice", "groups": ["devs"], "extra": {"scopes": ["a"]}, "uid": "u-1",
        "resourceAttributes": {"group": "metrics.k8s.io", "version": "v1beta1",
                               "resource": "pods", "verb": "get", "namespace": "demo",
                               "name": "web"}}
    nodes = routes.access_review(Caller("bob"), MetricsCall("nodes", label_selector="a=b"))
    assert nodes["spec"] == {"user": "bob", "groups": [], "resourceAttributes": {
        "group": "metrics.k8s.io", "version": "v1beta1", "resource": "nodes", "verb": "list"}}


@pytest.mark.parametrize(("call", "message"), [
    (MetricsCall("pods", "demo"), 'pods.metrics.k8s.io is forbidden: User "bob" cannot list '
     'resource "pods" in API group "metrics.k8s.io" in the namespace "demo"'),
    (MetricsCall("pods", "demo", "web"), 'pods.metrics.k8s.io "web" is forbidden: User "bob" '
     'cannot get resource "pods" in API group "metrics.k8s.io" in the namespace "demo"'),
    (MetricsCall("nodes"), 'nodes.metrics.k8s.io is forbidden: User "bob" cannot list '
     'resource "nodes" in API group "metrics.k8s.io" at the cluster scope'),
])
def test_refusals_read_like_kube_apiservers(call: MetricsCall, message: str) -> None:
    assert routes.forbidden_message(Caller("bob"), call) == message


# -- translation ---------------------------------------------------------------------------


def host_pod_metrics(name: str, cpu: str = "250m") -> Obj:
    return {
        "kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": name, "namespace": "vcluster-vc", "creationTimestamp": "T0",
                     "labels": {"app": "web", "vcsync.dev/managed-by": "vc"},
                     "selfLink": f"/apis/metrics.k8s.io/v1beta1/namespaces/vcluster-vc/{name}"},
        "timestamp": "T1", "window": "10s",
        "containers": [{"name": "app", "usage": {"cpu": cpu, "memory": "100Mi"},
                        "hostOnly": True}],
    }


def virtual_pod(name: str, namespace: str = "demo") -> Obj:
    return {"metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}",
                         "labels": {"app": name}, "annotations": {"a": "b"}}}


def test_pod_metrics_carry_virtual_names_and_labels_and_only_the_figures() -> None:
    assert translate.pod_metrics(host_pod_metrics("web-x-demo-x-vc"), virtual_pod("web")) == {
        "kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": "web", "namespace": "demo", "creationTimestamp": "T0",
                     "labels": {"app": "web"}},
        "timestamp": "T1", "window": "10s",
        "containers": [{"name": "app", "usage": {"cpu": "250m", "memory": "100Mi"}}],
    }


def test_pod_items_keep_only_host_pods_a_virtual_pod_claims() -> None:
    hosts = [host_pod_metrics("web-x-demo-x-vc"), host_pod_metrics("api-x-demo-x-vc", "5m"),
             host_pod_metrics("payroll-x-demo-x-vc2"), host_pod_metrics("orphan")]
    pods = [virtual_pod("web"), virtual_pod("api"), virtual_pod("new"), virtual_pod("b", "a")]
    claimed = {"web": "web-x-demo-x-vc", "api": "api-x-demo-x-vc", "b": "b-x-a-x-vc"}
    items = translate.pod_items(pods, hosts,
                                lambda p: claimed.get(p["metadata"]["name"]))
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in items] == [
        ("demo", "api"), ("demo", "web")]
    assert items[0]["containers"][0]["usage"]["cpu"] == "5m"
    listed = translate.metrics_list("pods", items)
    assert (listed["kind"], listed["items"]) == ("PodMetricsList", items)


def test_node_items_are_the_virtual_nodes_with_metrics_and_their_labels() -> None:
    hosts = [{"metadata": {"name": n, "labels": {"host": "only"}}, "timestamp": "T",
              "window": "10s", "usage": {"cpu": "1", "memory": "1Gi"}} for n in ("n1", "n2")]
    nodes: list[Obj] = [{"metadata": {"name": "n2", "labels": {"zone": "a"}}},
                        {"metadata": {"name": "n3"}}]
    assert translate.node_items(nodes, hosts) == [{
        "kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": "n2", "labels": {"zone": "a"}}, "timestamp": "T",
        "window": "10s", "usage": {"cpu": "1", "memory": "1Gi"}}]
    assert translate.metrics_list("nodes", [])["kind"] == "NodeMetricsList"


def test_status_bodies_name_the_reason() -> None:
    body = translate.status(503, "no metrics")
    assert (body["kind"], body["code"], body["reason"], body["message"]) == (
        "Status", 503, "ServiceUnavailable", "no metrics")
    assert translate.status(401, "x")["reason"] == "Unauthorized"
    assert translate.not_found_message(MetricsCall("pods", "demo", "web")) == (
        'pods.metrics.k8s.io "web" not found')


# -- the route through the aggregator --------------------------------------------------------


def test_the_apiservice_routes_to_localhost_and_trusts_only_the_given_ca() -> None:
    (svc_res, svc), (api_res, api) = apiservice.objects(("m", "kube-system"), 9443, b"PEM")
    assert (svc_res.plural, api_res.plural) == ("services", "apiservices")
    assert svc["spec"] == {"type": "ExternalName", "externalName": "localhost",
                           "ports": [{"name": "https", "port": 9443, "protocol": "TCP"}]}
    assert api["metadata"]["name"] == "v1beta1.metrics.k8s.io"
    assert api["spec"]["service"] == {"name": "m", "namespace": "kube-system", "port": 9443}
    assert base64.b64decode(api["spec"]["caBundle"]) == b"PEM"
    assert "insecureSkipTLSVerify" not in api["spec"]
    assert apiservice.server_name(("m", "kube-system")) == "m.kube-system.svc"


def test_the_virtual_route_is_never_synced_to_the_host() -> None:
    translator = ServiceTranslator({})
    ctx = Context("vc", "vcluster-vc", FakeLookup())
    name, namespace = apiservice.VIRTUAL_SERVICE
    assert not translator.wants({"metadata": {"name": name, "namespace": namespace}}, ctx)
    assert translator.wants({"metadata": {"name": name, "namespace": "default"}}, ctx)


# -- certificates and options ----------------------------------------------------------------


def test_the_front_proxy_certificate_comes_from_the_kubelet_ca(tmp_path: Path) -> None:
    pki = generate_pki(tmp_path, "10.96.0.1", {"admin": ("system:masters",)},
                       servers={"metrics": ["metrics.kube-system.svc"]})
    ca = x509.load_pem_x509_certificate(pki.kubelet_ca_cert.read_bytes())
    proxy = x509.load_pem_x509_certificate(pki.front_proxy_client_cert.read_bytes())
    proxy.verify_directly_issued_by(ca)
    assert proxy.subject.rfc4514_string() == f"CN={FRONT_PROXY_COMMON_NAME}"
    assert peer_allowed({"subject": ((("commonName", FRONT_PROXY_COMMON_NAME),),)},
                        FRONT_PROXY_COMMON_NAME)
    assert not peer_allowed({"subject": ((("commonName", FRONT_PROXY_COMMON_NAME),),)})
    serving = x509.load_pem_x509_certificate(pki.serving_pair("metrics")[0].read_bytes())
    serving.verify_directly_issued_by(x509.load_pem_x509_certificate(pki.ca_pem()))
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["metrics.kube-system.svc"]


def test_a_pki_written_before_the_front_proxy_gets_one(tmp_path: Path) -> None:
    pki = generate_pki(tmp_path, "10.96.0.1", {"admin": ("system:masters",)})
    pki.front_proxy_client_cert.unlink()
    pki.front_proxy_client_key.unlink()
    ca_before = pki.kubelet_ca_cert.read_bytes()
    loaded = load_pki(tmp_path)
    assert loaded.kubelet_ca_cert.read_bytes() == ca_before
    proxy = x509.load_pem_x509_certificate(loaded.front_proxy_client_cert.read_bytes())
    proxy.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_before))


def test_minted_certificates_name_the_dns_names_too(tmp_path: Path) -> None:
    pki = generate_pki(tmp_path, "10.96.0.1", {"admin": ("system:masters",)})
    cert_pem, _ = mint_serving_cert(pki.kubelet_ca_cert, pki.kubelet_ca_key, ["127.0.0.1"],
                                    ["localhost", "vcsync-metrics.kube-system.svc"])
    cert = x509.load_pem_x509_certificate(cert_pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [
        "localhost", "vcsync-metrics.kube-system.svc"]


@pytest.mark.parametrize(("options", "port"), [
    ({"metrics_api_port": 9443, "kubelet_ca_cert": "c", "kubelet_ca_key": "k"}, 9443),
    ({"metrics_api_port": 0}, None),
])
def test_the_metrics_api_port_option(options: dict[str, Any], port: int | None) -> None:
    assert RunOptions("vc", "ns", "v.kubeconfig", **options).metrics_api() == port


@pytest.mark.parametrize("options", [
    {"metrics_api_port": 9443},
    {"metrics_api_port": 70000, "kubelet_ca_cert": "c", "kubelet_ca_key": "k"},
])
def test_bad_metrics_api_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="metrics"):
        RunOptions("vc", "ns", "v.kubeconfig", **options).metrics_api()


def test_fake_nodes_point_metrics_server_at_kwoks_metrics_path() -> None:
    annotations = fake_node("kwok-node-1")["metadata"]["annotations"]
    assert annotations["metrics.k8s.io/resource-metrics-path"] == (
        "/metrics/nodes/kwok-node-1/metrics/resource")

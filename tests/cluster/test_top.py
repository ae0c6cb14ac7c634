"""kubectl top inside a virtual cluster, end to end.

The whole path is real: kubectl -> the virtual kube-apiserver's aggregator (APIService
``v1beta1.metrics.k8s.io``, registered by the syncer) -> the syncer's metrics API
(``vcsync run``) -> the host's ``metrics.k8s.io`` -> the host's metrics-server -> kwok's
simulated resource metrics, whose figures each pod chooses with kwok's usage annotations.
Every figure read through the virtual cluster is compared with what the host shows for
the host pod or node itself.

The module shares one tenant (vc1: pods ``web`` and ``api`` in ``demo``, ``cron`` in
``ops``) and a second one (vc2, pod ``payroll``) whose pods vc1 must never see.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import orjson
import pytest

from contract import naming
from contract import resources as r
from contract.resources import Obj
from syncer.kube.client import KubeClient
from syncer.kube.errors import KubeError
from syncer.local import kwok
from syncer.local.cluster import HostCluster
from syncer.local.pki import Pki
from syncer.metricsapi import apiservice
from syncer.metricsapi.server import HOST_UNAVAILABLE
from tests.cluster.tenants import NS, Tenant, pod, running, start_tenant, stop_tenant
from tests.support import eventually, kubeconfig_for_token, wait_until

OPS = "ops"
USAGE = {"web": ("250m", "100Mi"), "api": ("125m", "64Mi"), "cron": ("50m", "32Mi"),
         "payroll": ("300m", "200Mi")}
"""Per-container usage each pod's annotations give kwok (CPU, memory)."""
PODS = {(NS, "web"): ("app", "side"), (NS, "api"): ("app",), (OPS, "cron"): ("job",)}
TIERS = {"web": "front", "api": "back"}
METRICS_PATH = "/apis/metrics.k8s.io/v1beta1"
ROLES = r.Resource("rbac.authorization.k8s.io", "v1", "roles", "Role")
Rows = list[list[str]]


def usage_pod(name: str, *containers: str) -> Obj:
    cpu, memory = USAGE[name]
    labels = {"tier": TIERS[name]} if name in TIERS else {}
    return pod(name, *containers, labels=labels,
               annotations={kwok.USAGE_CPU: cpu, kwok.USAGE_MEMORY: memory})


def rows(output: bytes) -> Rows:
    """The table kubectl top printed, without its header."""
    return [line.split() for line in output.decode().splitlines()[1:]]


def top(tenant: Tenant, *args: str, kubeconfig: Path | None = None) -> Rows:
    """``kubectl top ...`` in the virtual cluster; [] while it fails."""
    done = tenant.kubectl("top", *args, kubeconfig=kubeconfig)
    return rows(done.stdout) if done.returncode == 0 else []


def host_top_pods(tenant: Tenant, namespace: str) -> Rows:
    """``kubectl top pod --containers`` of the tenant's host pods from ``namespace``, the host
    pod names replaced by the virtual ones."""
    selector = f"{naming.LABEL_MANAGED_BY}={tenant.stack.name},{naming.LABEL_NAMESPACE}={namespace}"
    done = tenant.host_kubectl("top", "pod", "--containers", "-l", selector)
    names = {tenant.host_pod(name, ns): name for ns, name in PODS if ns == namespace}
    found = rows(done.stdout) if done.returncode == 0 else []
    return sorted([names.get(row[0], row[0]), *row[1:]] for row in found)


async def start(host_cluster: HostCluster, root: Path, name: str,
                pods: dict[tuple[str, str], tuple[str, ...]]) -> Tenant:
    """A tenant with ``pods`` Running and their figures served by the host's metrics-server."""
    t = await start_tenant(host_cluster, root, name)
    for namespace in {ns for ns, _ in pods} - {NS}:
        await t.stack.virtual.create(r.NAMESPACES, {"metadata": {"name": namespace}})
    for (namespace, name_), containers in pods.items():
        await t.stack.virtual.create(r.PODS, usage_pod(name_, *containers), namespace)
    for namespace, name_ in pods:
        await running(t.stack.virtual, name_, namespace)
    host_items = f"{METRICS_PATH}/namespaces/{t.stack.host_namespace}/pods"

    async def all_measured() -> bool:
        try:
            found = await t.stack.host.request("GET", host_items, retry=False)
        except KubeError:  # the host's metrics API is still starting
            return False
        return len(found["items"]) == len(pods)

    await wait_until(all_measured, f"host metrics of {name}'s {len(pods)} pods", 90)
    return t


@pytest.fixture(scope="module")
async def tenant(host_cluster: HostCluster, tmp_path_factory: pytest.TempPathFactory
                 ) -> AsyncIterator[Tenant]:
    t = await start(host_cluster, tmp_path_factory.mktemp("vc1"), "vc1", PODS)
    yield t
    await stop_tenant(t)


@pytest.fixture(scope="module")
async def other(host_cluster: HostCluster, tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[Tenant]:
    t = await start(host_cluster, tmp_path_factory.mktemp("vc2"), "vc2",
                    {(NS, "payroll"): ("app",)})
    yield t
    await stop_tenant(t)


# -- what the tenant sees ------------------------------------------------------------------


def test_top_pod_shows_the_hosts_figures_under_virtual_names(tenant: Tenant) -> None:
    """The same rows as on the host (two requests see the same scrape within its 10 s);
    the figures are the annotated ones (CPU is a rate over the scrape window: within 2%)."""
    expected = sorted((name, container) for (ns, name), containers in PODS.items()
                      if ns == NS for container in containers)

    def same() -> Rows:
        virtual = sorted(top(tenant, "pod", "-n", NS, "--containers"))
        host = host_top_pods(tenant, NS)
        return virtual if virtual == host and [(r[0], r[1]) for r in virtual] == expected else []

    shown = eventually(same, "kubectl top pod --containers equal in the virtual cluster and "
                             "on the host", 60)
    for name, _, cpu, memory in shown:
        assert_usage(name, cpu, memory)
    [[name, cpu, memory]] = top(tenant, "pod", "-n", OPS)
    assert name == "cron"
    assert_usage(name, cpu, memory)


def assert_usage(name: str, cpu: str, memory: str, containers: int = 1) -> None:
    """kubectl top's figures are ``containers`` times the pod's annotated usage."""
    want_cpu, want_memory = USAGE[name]
    assert memory == f"{containers * int(want_memory.removesuffix('Mi'))}Mi"
    want = containers * int(want_cpu.removesuffix("m"))
    assert abs(int(cpu.removesuffix("m")) - want) <= want * 0.02, (name, cpu, want)


def test_top_node_shows_the_hosts_figures_of_the_virtual_nodes(tenant: Tenant) -> None:
    names = tenant.kubectl("get", "nodes", "-o", "name").stdout.decode().split()
    virtual_nodes = {n.removeprefix("node/") for n in names}
    assert virtual_nodes

    def same() -> Rows:
        virtual = sorted(top(tenant, "node"))
        done = tenant.host_kubectl("top", "node")
        host = sorted(row for row in rows(done.stdout) if row[0] in virtual_nodes)
        complete = {row[0] for row in virtual} == virtual_nodes
        return virtual if complete and virtual == host else []

    shown = eventually(same, "kubectl top node equal in the virtual cluster and on the host", 60)
    assert all("<unknown>" not in row for row in shown)
    raw = orjson.loads(tenant.kubectl("get", "--raw", f"{METRICS_PATH}/nodes").stdout)
    assert {i["metadata"]["name"] for i in raw["items"]} == virtual_nodes


@pytest.mark.parametrize(("selector", "expected"), [
    (["-l", "app=api"], ["api"]),
    (["-l", "tier in (front,back)"], ["api", "web"]),
    (["-l", "app!=web"], ["api"]),
    (["-l", "tier"], ["api", "web"]),
    (["-l", "!tier"], []),
    (["--field-selector", "metadata.name=web"], ["web"]),
], ids=lambda v: " ".join(v))
def test_selectors_select_among_the_virtual_pods(tenant: Tenant, selector: list[str],
                                                 expected: list[str]) -> None:
    """Selectors mean what they mean in the virtual cluster (its labels, not the host's)."""
    path = f"{METRICS_PATH}/namespaces/{NS}/pods"
    flag, value = selector
    param = "labelSelector" if flag == "-l" else "fieldSelector"
    done = tenant.kubectl("get", "--raw", f"{path}?{param}={quote(value, safe='')}")
    assert done.returncode == 0, done.stderr
    items = orjson.loads(done.stdout)["items"]
    assert sorted(i["metadata"]["name"] for i in items) == expected
    if expected:
        assert sorted(row[0] for row in top(tenant, "pod", "-n", NS, *selector)) == expected


def test_all_namespaces_show_only_this_tenants_pods(tenant: Tenant, other: Tenant) -> None:
    shown = top(tenant, "pod", "-A")
    assert sorted((row[0], row[1]) for row in shown) == sorted(PODS)
    [[namespace, name, cpu, memory]] = top(other, "pod", "-A")
    assert (namespace, name) == (NS, "payroll")
    assert_usage(name, cpu, memory)
    for output in (tenant.kubectl("top", "pod", "-A").stdout,
                   tenant.kubectl("get", "--raw", f"{METRICS_PATH}/pods").stdout):
        assert b"-x-" not in output
        assert b"payroll" not in output
        assert tenant.stack.host_namespace.encode() not in output


def test_one_pod_by_name_equals_the_host_pods_metrics(tenant: Tenant) -> None:
    """Same scrape (timestamp) on both sides: the same figures, containers and window."""
    host_path = f"{METRICS_PATH}/namespaces/{tenant.stack.host_namespace}/pods/" \
                f"{tenant.host_pod('web')}"
    virtual_path = f"{METRICS_PATH}/namespaces/{NS}/pods/web"

    def pair() -> tuple[Obj, Obj] | None:
        virtual = orjson.loads(tenant.kubectl("get", "--raw", virtual_path).stdout)
        host = orjson.loads(tenant.host_kubectl("get", "--raw", host_path).stdout)
        return (virtual, host) if virtual["timestamp"] == host["timestamp"] else None

    found = eventually(pair, "one scrape seen by both the virtual and the host request", 60)
    assert found is not None
    virtual, host = found
    for key in ("timestamp", "window", "containers", "kind", "apiVersion"):
        assert virtual[key] == host[key]
    assert virtual["metadata"]["name"] == "web"
    assert virtual["metadata"]["namespace"] == NS
    assert virtual["metadata"]["labels"] == {"app": "web", "tier": "front"}


def test_other_tenants_and_host_names_are_not_found(tenant: Tenant, other: Tenant) -> None:
    targets = [(NS, "payroll"), (other.stack.host_namespace, other.host_pod("payroll")),
               (tenant.stack.host_namespace, tenant.host_pod("web"))]
    for namespace, name in targets:
        done = tenant.kubectl("top", "pod", name, "-n", namespace)
        assert done.returncode != 0
        assert b"not found" in done.stderr, done.stderr
        assert b"250m" not in done.stdout + done.stderr
    [[name, cpu, memory]] = top(tenant, "pod", "web", "-n", NS)
    assert name == "web"
    assert_usage(name, cpu, memory, containers=2)


# -- who may ask ---------------------------------------------------------------------------


async def test_a_user_without_rights_on_pod_metrics_is_refused(tenant: Tenant,
                                                               tmp_path: Path) -> None:
    """Reading pods is not reading their metrics: the virtual API refuses
    ``pods.metrics.k8s.io`` (it authorizes aggregated groups like its own; the syncer's
    own review is tested below), and a grant of exactly that lets the user in."""
    v = tenant.stack.virtual
    await v.create(r.SERVICEACCOUNTS, {"metadata": {"name": "looker"}}, NS)
    await _role(tenant, "looker", [{"apiGroups": [""], "resources": ["pods"],
                                    "verbs": ["get", "list"]}])
    token = await v.create_subresource(r.SERVICEACCOUNTS, "looker", "token",
                                       {"spec": {"expirationSeconds": 600}}, NS)
    config = kubeconfig_for_token(tenant.plane, token["status"]["token"], tmp_path / "looker")
    eventually(lambda: tenant.kubectl("get", "pods", "-n", NS, kubeconfig=config).returncode
               == 0, "the looker listing pods", 30)
    refused = tenant.kubectl("top", "pod", "-n", NS, kubeconfig=config)
    assert refused.returncode != 0
    assert (b'pods.metrics.k8s.io is forbidden: User "system:serviceaccount:demo:looker" '
            b'cannot list resource "pods" in API group "metrics.k8s.io" in the namespace '
            b'"demo"') in refused.stderr, refused.stderr
    nodes = tenant.kubectl("top", "node", kubeconfig=config)
    assert nodes.returncode != 0
    assert b"forbidden" in nodes.stderr
    await _role(tenant, "metrics-looker", [{"apiGroups": ["metrics.k8s.io"],
                                            "resources": ["pods"], "verbs": ["list"]}])
    eventually(lambda: top(tenant, "pod", "-n", NS, kubeconfig=config),
               "the looker's kubectl top pod after the grant", 30)


async def _role(tenant: Tenant, name: str, rules: list[Obj]) -> None:
    """A Role with ``rules`` in NS bound to the ServiceAccount ``looker``."""
    v = tenant.stack.virtual
    await v.create(ROLES, {"metadata": {"name": name}, "rules": rules}, NS)
    await v.create(r.ROLEBINDINGS, {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": "looker", "namespace": NS}]}, NS)


def _direct(tenant: Tenant, path: str, cert: tuple[Path, Path] | None,
            user: str = "vcsync-admin", groups: tuple[str, ...] = ("system:masters",)
            ) -> tuple[int, Obj]:
    """(status, JSON body) of ``GET path`` sent straight to the syncer's metrics API with
    ``cert`` and the front proxy's user headers (its certificate verified by the kubelet CA)."""
    pki = tenant.plane.pki
    assert isinstance(pki, Pki)
    context = ssl.create_default_context(cafile=str(pki.kubelet_ca_cert))
    if cert is not None:
        context.load_cert_chain(*cert)
    conn = http.client.HTTPSConnection("127.0.0.1", tenant.stack.metrics_api_port,
                                       context=context, timeout=10)
    try:
        conn.putrequest("GET", path)
        conn.putheader("X-Remote-User", user)
        for group in groups:
            conn.putheader("X-Remote-Group", group)
        conn.endheaders()
        answer = conn.getresponse()
        return answer.status, orjson.loads(answer.read())
    finally:
        conn.close()


def test_only_the_front_proxy_may_call_the_metrics_api(tenant: Tenant) -> None:
    """The user headers count only from the front proxy's certificate: kube-apiserver's
    kubelet client certificate (same CA, another name) gets 401 and no figures; no
    certificate at all gets no TLS session; the front proxy naming a user without
    rights gets 403."""
    pki = tenant.plane.pki
    assert isinstance(pki, Pki)
    path = f"{METRICS_PATH}/namespaces/{NS}/pods"
    front_proxy = (pki.front_proxy_client_cert, pki.front_proxy_client_key)
    status, body = _direct(tenant, path, front_proxy)
    assert status == 200
    assert {i["metadata"]["name"] for i in body["items"]} == {"web", "api"}
    status, body = _direct(tenant, path, (pki.kubelet_client_cert, pki.kubelet_client_key))
    assert (status, body["reason"]) == (401, "Unauthorized")
    assert "items" not in body
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _direct(tenant, path, None)
    status, body = _direct(tenant, path, front_proxy, user="nobody", groups=())
    assert (status, body["reason"]) == (403, "Forbidden")


def test_a_taken_metrics_api_port_stops_the_syncer_at_start(tenant: Tenant) -> None:
    """A port another process holds: exit 1 naming it, before any sync work."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        blocked = tenant.stack.syncer("blocked", f"--metrics-api-port={port}")
        blocked.start(wait_ready=False)
        eventually(lambda: blocked.exit_code() is not None, "the blocked syncer's exit", 60)
    assert blocked.exit_code() == 1
    assert f"metrics API 127.0.0.1:{port}" in blocked.logs(), blocked.logs()


# -- a host without metrics (last: it takes the host's metrics API away for a while) -------


def _available(tenant: Tenant) -> str:
    done = tenant.kubectl("get", "apiservice", apiservice.NAME, "-o",
                          "jsonpath={.status.conditions[?(@.type=='Available')].status}")
    return done.stdout.decode()


async def test_without_host_metrics_top_is_unavailable_and_nothing_else_breaks(
    tenant: Tenant
) -> None:
    """The host's APIService gone: the syncer's discovery answers 503 saying why, the virtual
    APIService turns unavailable, ``kubectl top`` says so, pods are still listed; with the
    host's APIService back, ``kubectl top`` works again."""
    host = tenant.stack.host
    removed = await host.get(r.APISERVICES, apiservice.NAME)
    await host.delete(r.APISERVICES, apiservice.NAME)
    try:
        await wait_until(lambda: _available(tenant) == "False",
                         "the virtual APIService unavailable", 90)
        done = tenant.kubectl("top", "pod", "-n", NS)
        assert done.returncode != 0
        assert b"Metrics API not available" in done.stderr, done.stderr
        pki = tenant.plane.pki
        assert isinstance(pki, Pki)
        status, body = _direct(tenant, METRICS_PATH,
                               (pki.front_proxy_client_cert, pki.front_proxy_client_key))
        assert (status, body["message"]) == (503, f"{HOST_UNAVAILABLE}; the host answered 404")
        listed = tenant.kubectl("get", "pods", "-n", NS, "-o", "name")
        assert sorted(listed.stdout.decode().split()) == ["pod/api", "pod/web"]
    finally:
        await _restore(host, removed)
    eventually(lambda: top(tenant, "pod", "-n", NS), "kubectl top pod working again", 120)
    assert _available(tenant) == "True"


async def _restore(host: KubeClient, removed: Obj) -> None:
    """Create the host's APIService again as it was."""
    meta = removed["metadata"]
    await host.create(r.APISERVICES, {
        "apiVersion": removed["apiVersion"], "kind": removed["kind"], "spec": removed["spec"],
        "metadata": {"name": meta["name"], "labels": meta.get("labels") or {}}})

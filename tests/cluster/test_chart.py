"""The Helm chart against the local host cluster (real control plane, kwok nodes).

- The rendered manifests of several value sets pass a server-side dry-run apply.
- ``helm install`` (no flags but a namespace) installs it: every object is
  accepted, the syncer's ServiceAccount gets exactly its rights, and the
  StatefulSet's pod is scheduled onto a kwok node and reported Running.
- kwok runs no containers, so the pod's containers are then run locally, as
  rendered (tests/chart/localpod.py): the chart's kine, kube-apiserver,
  controller-manager, pki init container and syncer (with the config file the
  chart rendered and the host rights of the chart's ServiceAccount). A tenant
  pod created with the user's kubeconfig from the chart's Secret is synced to
  the host namespace, scheduled onto a kwok node, and its status comes back.

Persistence: the local host has no StorageClass or provisioner, so the
StatefulSet's claim would stay Pending and its pod unschedulable ("pod has
unbound immediate PersistentVolumeClaims"). The install test keeps the chart's
default (a claim) and pre-creates a hostPath PersistentVolume bound to that
claim, as an admin of a cluster without dynamic provisioning would.
"""

from __future__ import annotations

import base64
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import yaml

from contract import naming
from contract.resources import Obj
from syncer.cli import portforward
from syncer.cli.errors import CliError
from syncer.cli.state import VClusterRecord
from syncer.kube.blocking import BlockingClient
from syncer.local import binaries
from syncer.local.cluster import HostCluster
from syncer.snapshot import archive
from tests.chart.localpod import LocalPod
from tests.chart.rendering import CHART, VALUE_SETS, helm, template
from tests.conftest import OWNER, track, untrack
from tests.support import eventually, kubeconfig_for_token, kubectl

RELEASE = "tenant"


@dataclass
class Installed:
    """A release installed by ``helm install`` into a fresh namespace of the host cluster."""

    host: HostCluster
    namespace: str
    objects: list[Obj]

    def get(self, path: str) -> Obj:
        result: Obj = self.host.client().json("GET", path)
        return result


def _delete_namespace(host: HostCluster, namespace: str, wait: bool = True) -> None:
    kubectl(host, "delete", "namespace", namespace, f"--wait={str(wait).lower()}",
            "--timeout=60s", check=False)


@pytest.fixture(scope="module")
def installed(host_cluster: HostCluster, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[Installed]:
    namespace = f"chart-{uuid.uuid4().hex[:8]}"
    volume = f"{namespace}-data"
    pv = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": volume},
          "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"],
                   "persistentVolumeReclaimPolicy": "Retain",
                   "hostPath": {"path": str(tmp_path_factory.mktemp("pv"))},
                   "claimRef": {"namespace": namespace, "name": f"data-{RELEASE}-0"}}}
    host_cluster.client().json("POST", "/api/v1/persistentvolumes", pv)
    try:
        helm("install", RELEASE, str(CHART), "-n", namespace, "--create-namespace",
             "--wait", "--timeout=120s", kubeconfig=host_cluster.kubeconfig, timeout=180)
        manifest = helm("get", "manifest", RELEASE, "-n", namespace,
                        kubeconfig=host_cluster.kubeconfig).stdout
        yield Installed(host_cluster, namespace,
                        [doc for doc in yaml.safe_load_all(manifest) if doc])
    finally:
        helm("uninstall", RELEASE, "-n", namespace, "--wait", check=False,
             kubeconfig=host_cluster.kubeconfig)
        _delete_namespace(host_cluster, namespace)
        host_cluster.client().request("DELETE", f"/api/v1/persistentvolumes/{volume}")


@pytest.mark.parametrize("name", ["defaults", "etcd-embedded-ha", "database-external",
                                  "etcd-external", "policies-off", "everything"])
def test_server_side_dry_run(host_cluster: HostCluster, tmp_path: Path, name: str) -> None:
    """The API server (with its admission and validation) accepts every rendered object."""
    assignments = VALUE_SETS.get(name) or [
        "sync.toHost.ingresses.enabled=true", "sync.toHost.networkPolicies.enabled=true",
        "sync.toHost.priorityClasses.enabled=true", "sync.fromHost.storageClasses.enabled=true",
        "sync.fromHost.ingressClasses.enabled=true", "sync.fromHost.nodes.selector.all=true"]
    namespace = f"dry-{uuid.uuid4().hex[:8]}"
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(template(assignments, release=RELEASE, namespace=namespace))
    kubectl(host_cluster, "create", "namespace", namespace)
    try:
        out = kubectl(host_cluster, "apply", "--server-side", "--dry-run=server",
                      f"--field-manager=chart-{name}", "-f", str(manifest))
    finally:
        _delete_namespace(host_cluster, namespace, wait=False)  # nothing was created in it
    lines = out.strip().splitlines()
    objects = [doc for doc in yaml.safe_load_all(manifest.read_text()) if doc]
    assert len(lines) == len(objects), out
    assert all(line.endswith("serverside-applied (server dry run)") for line in lines), out


def test_install_schedules_onto_kwok(installed: Installed) -> None:
    """Every object is there; the StatefulSet's pod runs (as far as kwok goes) on a kwok node."""
    ns = installed.namespace
    for obj in installed.objects:
        kind = obj["kind"].lower()
        scope = [] if kind.startswith("cluster") else ["-n", ns]
        kubectl(installed.host, "get", kind, obj["metadata"]["name"], *scope)
    pod = installed.get(f"/api/v1/namespaces/{ns}/pods/{RELEASE}-0")
    node = installed.get(f"/api/v1/nodes/{pod['spec']['nodeName']}")
    assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
    assert pod["status"]["phase"] == "Running"
    claim = installed.get(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/data-{RELEASE}-0")
    assert claim["status"]["phase"] == "Bound"
    # The quota and limit range admitted the control plane (its requests are within them).
    quota = installed.get(f"/api/v1/namespaces/{ns}/resourcequotas/{RELEASE}-quota")
    assert eventually(lambda: quota_used(installed, "count/pods") == "1",
                      "the quota to count the control-plane pod")
    assert quota["spec"]["hard"]["requests.cpu"] == "10"
    status = helm("status", RELEASE, "-n", ns, kubeconfig=installed.host.kubeconfig).stdout
    assert "STATUS: deployed" in status


def quota_used(installed: Installed, resource: str) -> str:
    path = f"/api/v1/namespaces/{installed.namespace}/resourcequotas/{RELEASE}-quota"
    used: dict[str, str] = installed.get(path).get("status", {}).get("used", {})
    return used.get(resource, "")


@pytest.mark.parametrize(
    ("verb", "resource", "where", "allowed"),
    [
        ("create", "pods", "own", True),
        ("delete", "pods", "own", True),
        ("patch", "pods/ephemeralcontainers", "own", True),
        ("get", "pods/log", "own", True),
        ("create", "pods/exec", "own", True),
        ("create", "pods/portforward", "own", True),
        ("list", "pods.metrics.k8s.io", "own", True),
        ("get", "pods.metrics.k8s.io", "other", False),
        ("list", "nodes.metrics.k8s.io", "cluster", True),
        ("create", "pods/exec", "other", False),
        ("update", "secrets", "own", True),
        ("create", "services", "own", True),
        ("list", "events", "own", True),
        ("create", "events", "own", False),
        ("create", "ingresses.networking.k8s.io", "own", False),  # off by default
        ("create", "leases.coordination.k8s.io", "own", False),  # one replica: no election
        ("create", "pods", "other", False),
        ("list", "secrets", "other", False),
        ("list", "nodes", "cluster", True),
        ("create", "nodes", "cluster", False),
        ("list", "storageclasses.storage.k8s.io", "cluster", False),
        ("create", "priorityclasses.scheduling.k8s.io", "cluster", False),
        ("create", "namespaces", "cluster", False),
        ("create", "clusterrolebindings.rbac.authorization.k8s.io", "cluster", False),
    ],
)
def test_rbac_binds(installed: Installed, verb: str, resource: str, where: str,
                    allowed: bool) -> None:
    """The API server's authorizer agrees: the release namespace, and read-only nodes."""
    scope = {"own": ["-n", installed.namespace], "other": ["-n", "default"],
             "cluster": []}[where]
    user = f"system:serviceaccount:{installed.namespace}:vc-{RELEASE}"
    out = kubectl(installed.host, "auth", "can-i", verb, resource, *scope, f"--as={user}",
                  check=False).strip()
    assert out == ("yes" if allowed else "no"), f"{verb} {resource} {where}: {out}"


@pytest.fixture
def local_pod(installed: Installed, tmp_path: Path) -> Iterator[LocalPod]:
    """The installed release's pod, run locally with the rights of its ServiceAccount."""
    ns = installed.namespace
    token = kubectl(installed.host, "create", "token", f"vc-{RELEASE}", "-n", ns,
                    "--duration=1h").strip()
    service = installed.get(f"/api/v1/namespaces/{ns}/services/{RELEASE}")
    pod = LocalPod(
        installed.objects, RELEASE, tmp_path, OWNER,
        host_kubeconfig=kubeconfig_for_token(installed.host, token, tmp_path / "sa.kubeconfig"),
        service_links={f"{RELEASE.upper()}_SERVICE_HOST": service["spec"]["clusterIP"]},
    )
    track(pod)
    yield pod
    untrack(pod)


def test_chart_pod_runs_and_syncs(installed: Installed, local_pod: LocalPod) -> None:
    """The rendered pod works: a tenant pod goes down to the host and its status comes back."""
    ns = installed.namespace
    local_pod.materialise_volumes()
    local_pod.run_init_containers()
    for name in ("kine", "kube-apiserver", "kube-controller-manager"):
        local_pod.start(name)
    admin = local_pod.admin()  # the kubeconfig Secret, server moved to the local port
    names = {n["metadata"]["name"] for n in admin.json("GET", "/api/v1/namespaces")["items"]}
    assert {"default", "kube-system"} <= names
    serving = (local_pod.volume("serving") / "apiserver.crt").read_bytes()
    assert serving  # issued by the pki init container, trusted through the Secret's CA

    local_pod.start("syncer")  # start.py: CoreDNS first, then exec vcsync run
    coredns = admin.json("GET", "/apis/apps/v1/namespaces/kube-system/deployments/coredns")
    assert coredns["spec"]["replicas"] == 1
    host = installed.host.client()
    dns = naming.host_name("kube-dns", "kube-system", RELEASE)
    eventually(lambda: host.request("GET", f"/api/v1/namespaces/{ns}/services/{dns}")[0] == 200,
               "the virtual kube-dns Service on the host", timeout=60)

    admin.json("POST", "/api/v1/namespaces", {"metadata": {"name": "demo"}})
    eventually(lambda: admin.request(
        "GET", "/api/v1/namespaces/demo/serviceaccounts/default")[0] == 200,
        "the default ServiceAccount in the virtual namespace demo", timeout=60)
    # Requests set: the host's LimitRange then only adds a memory limit, and the QoS class
    # is Burstable on both sides (see the report on qosClass in the chart README).
    requests = {"cpu": "50m", "memory": "64Mi"}
    admin.json("POST", "/api/v1/namespaces/demo/pods", {
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx",
                                 "resources": {"requests": requests}}]},
    })
    host_pod = eventually(lambda: _get(host, f"/api/v1/namespaces/{ns}/pods/"
                                             f"{naming.host_name('web', 'demo', RELEASE)}"),
                          "the tenant's pod on the host", timeout=60)
    assert host_pod is not None
    assert host_pod["metadata"]["labels"][naming.LABEL_MANAGED_BY] == RELEASE
    # The host's LimitRange gave it the default memory limit; the quota admitted it.
    assert host_pod["spec"]["containers"][0]["resources"] == {
        "requests": requests, "limits": {"memory": "512Mi"}}
    virtual = eventually(
        lambda: _running(admin, "/api/v1/namespaces/demo/pods/web"),
        "the virtual pod bound to a kwok node and Running", timeout=90)
    assert virtual is not None
    assert virtual["spec"]["nodeName"].startswith("kwok-node-")
    env = {e["name"]: e.get("value") for e in host_pod["spec"]["containers"][0]["env"]}
    service_ip = installed.get(f"/api/v1/namespaces/{ns}/services/{RELEASE}")["spec"][
        "clusterIP"]
    assert env["KUBERNETES_SERVICE_HOST"] == service_ip  # named in the serving certificate
    assert _certificate_names_ip(serving, service_ip)
    # kubectl logs in the virtual cluster: its API server dials the syncer's kubelet
    # endpoint in the pod (kubelet CA and client certificate from the chart's Secret), which
    # forwards to the host's pods/log with the ServiceAccount's rights.
    status, log = admin.request("GET", "/api/v1/namespaces/demo/pods/web/log")
    assert status == 200, log
    assert b"runs on a kwok node" in log
    # kubectl top: the aggregator reaches the syncer's metrics API in the pod through the
    # APIService the syncer registered (front-proxy certificate from the chart's Secret),
    # which reads the host's metrics.k8s.io with the ServiceAccount's rights.
    metrics = eventually(lambda: _get(admin, "/apis/metrics.k8s.io/v1beta1/namespaces/demo/"
                                             "pods/web"),
                         "the pod's metrics through the virtual API", timeout=120)
    assert metrics is not None
    assert (metrics["metadata"]["name"], metrics["metadata"]["namespace"]) == ("web", "demo")
    assert [(c["name"], c["usage"]["memory"]) for c in metrics["containers"]] == [
        ("web", "1Mi")]  # kwok's default usage per container


def _chart_pod_running(pod: LocalPod) -> BlockingClient:
    """Every container of the rendered pod started locally; the admin client."""
    pod.materialise_volumes()
    pod.run_init_containers()
    for name in ("kine", "kube-apiserver", "kube-controller-manager", "syncer"):
        pod.start(name)
    return pod.admin()


def _helm_record(installed: Installed, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `vcsync create --driver helm` would have recorded for the installed release."""
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    record = VClusterRecord(RELEASE, installed.namespace, "host", "vc", "v1.36.3", "helm",
                            {"replicas": 1}, {})
    record.directory.mkdir(parents=True)
    (record.directory / "host.kubeconfig").write_text(installed.host.kubeconfig.read_text())
    (record.directory / "values.yaml").write_text("{}\n")
    record.save()


def test_snapshot_leaves_the_chart_pod_through_port_forward(
    installed: Installed, local_pod: LocalPod, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`vcsync snapshot create` of a Helm install: the syncer builds the archive in the pod
    and serves it on the pod's loopback; the CLI fetches it through kubectl port-forward
    (the host API server, then kwok, which forwards the pod's port to the local pod's)
    with the admin token, verifies it and adds the release's values."""
    ns = installed.namespace
    admin = _chart_pod_running(local_pod)
    admin.json("POST", "/api/v1/namespaces", {"metadata": {"name": "snap"}})
    for i in range(25):
        admin.json("POST", "/api/v1/namespaces/snap/configmaps",
                   {"metadata": {"name": f"c{i}"}, "data": {"i": str(i)}})
    installed.host.client().json(
        "POST", f"/apis/kwok.x-k8s.io/v1alpha1/namespaces/{ns}/portforwards",
        {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "PortForward",
         "metadata": {"name": f"{RELEASE}-0", "namespace": ns},
         "spec": {"forwards": [{"ports": [8081], "target": {
             "port": local_pod.ports[8081], "address": "127.0.0.1"}}]}})
    _helm_record(installed, tmp_path / "state", monkeypatch)
    file = tmp_path / "helm.tgz"
    proc = subprocess.run([sys.executable, "-m", "syncer.cli.main", "snapshot", "create",
                           RELEASE, "-n", ns, "-o", str(file)], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    manifest = archive.read(file, tmp_path / "unpacked")
    listed = admin.json("GET", f"/api/v1/configmaps?resourceVersion={manifest.revision}"
                               "&resourceVersionMatch=Exact")["items"]  # as of the snapshot
    assert manifest.objects["configmaps"] == len(listed) >= 25
    assert (manifest.store_type, manifest.source["driver"]) == ("kine-sqlite", "helm")
    assert {"pki/ca.key", "pki/sa.key", "pki/tokens.csv", "config/syncer.yaml",
            "config/values.yaml"} <= set(manifest.files)
    secret = installed.get(f"/api/v1/namespaces/{ns}/secrets/{RELEASE}-certs")["data"]
    assert (tmp_path / "unpacked" / "pki" / "ca.key").read_bytes() == base64.b64decode(
        secret["ca.key"])
    assert not list(local_pod.volume("data").glob(".vcsync-snapshot-*")), "staging left"

    with portforward.forward(installed.host.kubeconfig, ns, f"{RELEASE}-0", 8081) as port, \
            pytest.raises(CliError, match="answered 401"):
        portforward.download(f"http://127.0.0.1:{port}/snapshot", "not-the-admin-token",
                             tmp_path / "refused.tgz")
    _restores_into_a_local_cluster(installed, file, tmp_path, admin, monkeypatch)


def _restores_into_a_local_cluster(installed: Installed, file: Path, tmp_path: Path,
                                   admin: BlockingClient, monkeypatch: pytest.MonkeyPatch
                                   ) -> None:
    """The Helm install's archive restores with the local driver: same objects (uids), and
    the chart's admin token (derived from its CA key) authenticates there."""
    kubeconfig = tmp_path / "kube" / "config"
    kubeconfig.parent.mkdir()
    kubeconfig.write_text(installed.host.kubeconfig.read_text())
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    copy = f"{RELEASE}-copy"

    def vcsync(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "syncer.cli.main", *args],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=300, check=False)
        assert proc.returncode == 0, f"vcsync {' '.join(args)}: {proc.stderr}"
        return proc.stdout

    vcsync("snapshot", "restore", copy, str(file), "--no-connect")
    try:
        restored = yaml.safe_load(vcsync("connect", copy, "--print"))
        token = installed.get(f"/api/v1/namespaces/{installed.namespace}/secrets/vc-{RELEASE}")[
            "data"]["token"]
        restored["users"][0]["user"] = {"token": base64.b64decode(token).decode()}
        client = BlockingClient.from_kubeconfig(restored)
        assert _workload_uids(client) == _workload_uids(admin)
    finally:
        vcsync("delete", copy)


def _workload_uids(client: BlockingClient) -> dict[str, str]:
    """name -> uid of the test's ConfigMaps in ``snap`` (the namespace's root CA ConfigMap
    belongs to the controller-manager's publisher, which may re-create it)."""
    items = client.json("GET", "/api/v1/namespaces/snap/configmaps")["items"]
    return {c["metadata"]["name"]: c["metadata"]["uid"] for c in items
            if c["metadata"]["name"].startswith("c")}


def _get(client: BlockingClient, path: str) -> Obj | None:
    status, _ = client.request("GET", path)
    if status != 200:
        return None
    result: Obj = client.json("GET", path)
    return result


def _running(client: BlockingClient, path: str) -> Obj | None:
    pod = _get(client, path)
    if pod and pod.get("status", {}).get("phase") == "Running" and pod["spec"].get("nodeName"):
        return pod
    return None


def _certificate_names_ip(pem: bytes, ip: str) -> bool:
    import ipaddress

    from cryptography import x509

    cert = x509.load_pem_x509_certificate(pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return ipaddress.ip_address(ip) in names.get_values_for_type(x509.IPAddress)


def test_chart_pod_runs_on_embedded_etcd(installed: Installed, tmp_path: Path) -> None:
    """The etcd store's flags work too (one replica: peers on loopback, clients on loopback)."""
    objects = [doc for doc in yaml.safe_load_all(template(
        VALUE_SETS["etcd-embedded"], release=RELEASE, namespace=installed.namespace)) if doc]
    pod = LocalPod(objects, RELEASE, tmp_path, OWNER, host_kubeconfig=tmp_path / "unused",
                   service_links={f"{RELEASE.upper()}_SERVICE_HOST": "10.96.0.10"})
    track(pod)
    try:
        pod.materialise_volumes()
        pod.run_init_containers()
        for name in ("etcd", "kube-apiserver", "kube-controller-manager"):
            pod.start(name)
        admin = pod.admin()
        admin.json("POST", "/api/v1/namespaces", {"metadata": {"name": "demo"}})
        eventually(lambda: admin.request(
            "GET", "/api/v1/namespaces/demo/serviceaccounts/default")[0] == 200,
            "the controller-manager to create the default ServiceAccount", timeout=60)
        assert (tmp_path / "volumes" / "data" / "etcd" / "member").is_dir()
    finally:
        untrack(pod)


def test_upgrade_keeps_the_credentials(installed: Installed) -> None:
    """`helm upgrade` reads the CA and keys back (lookup): kubeconfigs stay valid."""
    ns = installed.namespace

    def secrets() -> tuple[Obj, Obj]:
        return (installed.get(f"/api/v1/namespaces/{ns}/secrets/{RELEASE}-certs")["data"],
                installed.get(f"/api/v1/namespaces/{ns}/secrets/vc-{RELEASE}")["data"])

    before = secrets()
    helm("upgrade", RELEASE, str(CHART), "-n", ns, "--set",
         "policies.podSecurityStandard=baseline", "--wait", "--timeout=120s",
         kubeconfig=installed.host.kubeconfig, timeout=180)
    after = secrets()
    assert after == before
    config = installed.get(f"/api/v1/namespaces/{ns}/configmaps/{RELEASE}-config")
    assert "podSecurityStandard: baseline" in config["data"]["config.yaml"]


def test_connect_runs_its_own_port_forward(
    installed: Installed, local_pod: LocalPod, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`vcsync connect` of a Helm install, as vCluster's: a port-forward to the release's
    Service that vcsync runs in the background (the host API server, then kwok, which
    forwards the pod's 6443 to the local pod's API server); kubectl works through the
    switched context; `disconnect` stops it; `--server` takes an exposed endpoint instead."""
    ns = installed.namespace
    admin = _chart_pod_running(local_pod)
    admin.json("POST", "/api/v1/namespaces", {"metadata": {"name": "through-forward"}})
    host = installed.host.client()
    forwards = f"/apis/kwok.x-k8s.io/v1alpha1/namespaces/{ns}/portforwards"
    host.request("DELETE", f"{forwards}/{RELEASE}-0")  # another test's, aimed elsewhere
    host.json("POST", forwards, {
        "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "PortForward",
        "metadata": {"name": f"{RELEASE}-0", "namespace": ns},
        "spec": {"forwards": [{"ports": [6443], "target": {
            "port": local_pod.ports[6443], "address": "127.0.0.1"}}]}})
    _helm_record(installed, tmp_path / "state", monkeypatch)
    config = tmp_path / "kube" / "config"
    config.parent.mkdir()
    config.write_text(installed.host.kubeconfig.read_text())
    monkeypatch.setenv("KUBECONFIG", str(config))
    proxy = portforward.Proxy(VClusterRecord.directory_for(RELEASE, ns, "host"))

    def vcsync(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "syncer.cli.main", *args],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=180, check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    try:
        vcsync("connect", RELEASE, "-n", ns)
        switched = yaml.safe_load(config.read_text())
        assert switched["current-context"] == "vc"
        server = next(c["cluster"]["server"] for c in switched["clusters"] if c["name"] == "vc")
        port = proxy.port()
        assert port is not None
        assert server == f"https://127.0.0.1:{port}"
        got = subprocess.run([str(binaries.binary_path("kubectl")), "get", "namespace",
                              "through-forward", "-o", "name"], capture_output=True, text=True,
                             timeout=60, check=False)
        assert got.stdout.strip() == "namespace/through-forward", got.stderr
        printed = yaml.safe_load(vcsync("connect", RELEASE, "-n", ns, "--print", "-o", "json"))
        assert printed["clusters"][0]["cluster"]["server"] == server

        vcsync("disconnect")
        assert yaml.safe_load(config.read_text())["current-context"] != "vc"
        assert proxy.port() is None, "disconnect left the port-forward running"
        assert BlockingClient(server, ssl.create_default_context(), "", timeout=2.0).request(
            "GET", "/readyz")[0] == 0, "something still answers on the forwarded port"

        # another machine (no record of it): `list` finds the release on the host
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "elsewhere"))
        rows = orjson.loads(vcsync("list", "-o", "json"))
        assert [(r["name"], r["driver"], r["status"]) for r in rows if r["namespace"] == ns] \
            == [(RELEASE, "helm", "Running")]
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))

        exposed = "https://tenant.example.test:6443"
        printed = yaml.safe_load(vcsync("connect", RELEASE, "-n", ns, "--print", "--server",
                                        exposed))
        assert printed["clusters"][0]["cluster"]["server"] == exposed
        assert proxy.port() is None
    finally:
        proxy.stop()
        host.request("DELETE", f"{forwards}/{RELEASE}-0")

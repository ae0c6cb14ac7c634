"""helm lint / helm template over a matrix of value sets; what schema and templates refuse."""

from __future__ import annotations

import pytest

from syncer.local import footprint
from tests.chart.rendering import (
    CHART,
    NAMESPACE,
    RELEASE,
    VALUE_SETS,
    container,
    find,
    helm,
    kinds,
    pod_spec,
    render,
    set_flags,
    template_error,
)


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_lint_and_template(name: str) -> None:
    """Every value set lints (strict: warnings fail) and renders the core objects."""
    assignments = VALUE_SETS[name]
    helm("lint", "--strict", str(CHART), "-n", NAMESPACE, *set_flags(assignments))
    objects = render(assignments)
    names = kinds(objects)
    for expected in (f"StatefulSet/{RELEASE}", f"Service/{RELEASE}",
                     f"Service/{RELEASE}-headless", f"Secret/vc-{RELEASE}",
                     f"Secret/{RELEASE}-certs", f"ConfigMap/{RELEASE}-config",
                     f"ServiceAccount/vc-{RELEASE}", f"Role/vc-{RELEASE}",
                     f"RoleBinding/vc-{RELEASE}"):
        assert expected in names, f"{name}: {expected} missing from {names}"
    for obj in objects:
        namespaced = obj["kind"] not in ("ClusterRole", "ClusterRoleBinding")
        assert obj["metadata"].get("namespace") == (NAMESPACE if namespaced else None)


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("sync.toHost.pods.enabld=true", "additional properties 'enabld' not allowed"),
        ("sync.toHost.ingresses.enabled=yes", "/sync/toHost/ingresses/enabled"),
        ("policies.podSecurityStandard=strict",
         "value must be one of 'privileged', 'baseline', 'restricted'"),
        ("syncer.shards=0", "/syncer/shards"),
        ("syncer.host.qps=0", "/syncer/host/qps"),
        ("controlPlane.statefulSet.highAvailability.replicas=0",
         "/controlPlane/statefulSet/highAvailability/replicas"),
        ("controlPlane.distro.k8s.version=1.36", "/controlPlane/distro/k8s/version"),
        ("controlPlane.statefulSet.persistence.volumeClaim.enabled=sometimes",
         "/controlPlane/statefulSet/persistence/volumeClaim/enabled"),
        ("controlPlane.backingStore.etcd.embeded.enabled=true",
         "additional properties 'embeded' not allowed"),
        ("controlPlane.distro.k8s.apiServer.extraArgs[0]=v=4",
         "/controlPlane/distro/k8s/apiServer/extraArgs/0"),
        ("networking.serviceCIDR=10.96.0.0", "/networking/serviceCIDR"),
        ("logging.level=verbose", "/logging/level"),
        ("nonsense=1", "additional properties 'nonsense' not allowed"),
    ],
)
def test_schema_rejects(assignment: str, message: str) -> None:
    stderr = template_error([assignment])
    assert "values don't meet the specifications of the schema" in stderr
    assert message in stderr, stderr


@pytest.mark.parametrize(
    ("assignments", "message"),
    [
        (["controlPlane.backingStore.etcd.embedded.enabled=true",
          "controlPlane.backingStore.database.external.enabled=true"],
         "enable at most one store, got database.external, etcd.embedded"),
        (["controlPlane.statefulSet.highAvailability.replicas=2"],
         "replicas > 1 needs a shared or replicated store"),
        (["controlPlane.backingStore.database.external.enabled=true"],
         "set dataSource or existingSecret.name"),
        (["controlPlane.backingStore.etcd.external.enabled=true"],
         "etcd.external.endpoint: required"),
        (["syncer.leaderElection.renewDeadline=20"],
         "need leaseDuration > renewDeadline > retryPeriod"),
        (["controlPlane.certificates.ca.cert=abc"], "set both cert and key"),
    ],
)
def test_templates_refuse(assignments: list[str], message: str) -> None:
    """Rules a schema cannot say are checked by the templates, with the key named."""
    assert message in template_error(assignments)


def test_release_name_must_be_a_dns_label() -> None:
    assert "must start with a letter" in template_error([], release="1st")


def test_secure_defaults() -> None:
    """Non-root, read-only root filesystems, no privilege escalation, requests everywhere."""
    spec = pod_spec(render())
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] == 65532
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    containers = [*spec["initContainers"], *spec["containers"]]
    assert [c["name"] for c in containers] == [
        "pki", "kine", "kube-apiserver", "kube-controller-manager", "syncer"]
    for c in containers:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True, c["name"]
        assert sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc["capabilities"] == {"drop": ["ALL"]}, c["name"]
        assert {"cpu", "memory"} <= set(c["resources"]["requests"]), c["name"]
        assert "memory" in c["resources"]["limits"], c["name"]


def test_policies_on_by_default_and_off_on_request() -> None:
    on = kinds(render())
    for name in (f"ResourceQuota/{RELEASE}-quota", f"LimitRange/{RELEASE}-limitrange",
                 f"NetworkPolicy/{RELEASE}-workloads", f"NetworkPolicy/{RELEASE}-control-plane"):
        assert name in on
    off = kinds(render(VALUE_SETS["policies-off"]))
    assert not [k for k in off if k.split("/")[0] in
                ("ResourceQuota", "LimitRange", "NetworkPolicy")]


def test_workload_isolation() -> None:
    """The tenant's pods: ingress only from their own pods and their control plane."""
    policy = find(render(), "NetworkPolicy", f"{RELEASE}-workloads")["spec"]
    assert policy["podSelector"] == {"matchLabels": {"vcsync.dev/managed-by": RELEASE}}
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    sources = policy["ingress"][0]["from"]
    assert sources[0] == {"podSelector": {"matchLabels": {"vcsync.dev/managed-by": RELEASE}}}
    assert all("namespaceSelector" not in s and "ipBlock" not in s for s in sources)
    blocks = [to["ipBlock"] for rule in policy["egress"] for to in rule.get("to", [])
              if "ipBlock" in to]
    assert blocks == [{"cidr": "0.0.0.0/0", "except": [
        "100.64.0.0/10", "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}]


def test_quota_and_limit_defaults_admit_the_control_plane() -> None:
    """Every quota'd resource is requested (or limited) by each control-plane container."""
    objects = render()
    hard = find(objects, "ResourceQuota", f"{RELEASE}-quota")["spec"]["hard"]
    spec = pod_spec(objects)
    for c in [*spec["initContainers"], *spec["containers"]]:
        for key in hard:
            kind, _, resource = key.partition(".")
            if kind in ("requests", "limits") and resource in ("cpu", "memory"):
                assert resource in c["resources"][kind], (c["name"], key)
    limits = find(objects, "LimitRange", f"{RELEASE}-limitrange")["spec"]["limits"][0]
    # No default CPU limit (throttling) and no ephemeral-storage default (nodes that do not
    # report it, like kwok's, could not schedule anything).
    assert "cpu" not in limits["default"]
    assert all("ephemeral-storage" not in limits.get(f, {}) for f in ("default", "defaultRequest"))


@pytest.mark.parametrize(
    ("name", "store_containers", "claim"),
    [
        ("defaults", ["kine"], True),
        ("database-embedded", ["kine"], True),
        ("database-external", ["kine"], False),
        ("etcd-embedded", ["etcd"], True),
        ("etcd-external", [], False),
        ("no-coredns-no-persistence", ["kine"], False),
    ],
)
def test_backing_stores(name: str, store_containers: list[str], claim: bool) -> None:
    objects = render(VALUE_SETS[name])
    sts = find(objects, "StatefulSet", RELEASE)
    names = [c["name"] for c in sts["spec"]["template"]["spec"]["containers"]]
    assert names == [*store_containers, "kube-apiserver", "kube-controller-manager", "syncer"]
    assert ("volumeClaimTemplates" in sts["spec"]) is claim
    apiserver = container(objects, "kube-apiserver")["command"]
    servers = [a for a in apiserver if a.startswith("--etcd-servers=")]
    expected = "https://etcd:2379" if name == "etcd-external" else "http://127.0.0.1:2379"
    assert servers == [f"--etcd-servers={expected}"]
    if name == "etcd-external":
        assert "--etcd-certfile=/store-tls/tls.crt" in apiserver
    if name == "database-external":
        kine = container(objects, "kine")
        assert "--endpoint=$(KINE_ENDPOINT)" in kine["command"]
        go_runtime = [{"name": k, "value": v} for k, v in footprint.GO_RUNTIME_ENV["kine"].items()]
        assert kine["env"] == [*go_runtime, {"name": "KINE_ENDPOINT", "valueFrom": {
            "secretKeyRef": {"name": "db", "key": "dataSource"}}}]
        assert "--ca-file=/store-tls/ca.crt" in kine["command"]
    if name == "defaults":
        endpoint = [a for a in container(objects, "kine")["command"]
                    if a.startswith("--endpoint=")]
        assert endpoint[0].startswith("--endpoint=sqlite:///data/state.db?")


def test_etcd_ha_peers_over_tls() -> None:
    objects = render(VALUE_SETS["etcd-embedded-ha"])
    assert find(objects, "StatefulSet", RELEASE)["spec"]["replicas"] == 3
    etcd = container(objects, "etcd")["command"]
    assert "--listen-client-urls=http://127.0.0.1:2379" in etcd
    assert "--peer-client-cert-auth=true" in etcd
    cluster = next(a for a in etcd if a.startswith("--initial-cluster="))
    assert cluster == "--initial-cluster=" + ",".join(
        f"{RELEASE}-{i}=https://{RELEASE}-{i}.{RELEASE}-headless.{NAMESPACE}.svc:2380"
        for i in range(3))
    assert "--leader-elect=true" in container(objects, "kube-controller-manager")["command"]
    assert "--leader-elect" in container(objects, "syncer")["args"]


def test_syncer_flags() -> None:
    """The syncer is named after the release, in the release namespace, behind its Service;
    its kubelet endpoint and metrics API are on the pod's loopback, where the API server
    dials them (the aggregator with its front-proxy certificate from the kubelet CA)."""
    objects = render()
    syncer = container(objects, "syncer")
    assert syncer["args"] == [
        f"--name={RELEASE}", f"--host-namespace={NAMESPACE}",
        "--virtual-kubeconfig=/pki/syncer.kubeconfig", "--in-cluster",
        "--config=/etc/vcsync/config.yaml", "--health-address=0.0.0.0:8080",
        f"--api-service={RELEASE}", "--identity=$(POD_NAME)", "--log-level=info",
        "--kubelet-address=127.0.0.1:10250", "--kubelet-ca-cert=/pki/kubelet-ca.crt",
        "--kubelet-ca-key=/pki/kubelet-ca.key", "--metrics-api-port=9443",
        "--snapshot-address=127.0.0.1:8081",
        "--snapshot-store=/data/state.db", "--snapshot-pki=/pki", "--kubernetes-version=v1.36.3",
    ]
    apiserver = container(objects, "kube-apiserver")["command"]
    front_proxy = [a for a in apiserver if a.startswith(("--proxy-client", "--requestheader"))]
    assert front_proxy == [
        "--proxy-client-cert-file=/pki/front-proxy-client.crt",
        "--proxy-client-key-file=/pki/front-proxy-client.key",
        "--requestheader-client-ca-file=/pki/kubelet-ca.crt",
        "--requestheader-allowed-names=vcsync-front-proxy",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
    ]
    assert [a for a in apiserver if a.startswith("--kubelet-")] == [
        "--kubelet-preferred-address-types=InternalIP",
        "--kubelet-client-certificate=/pki/kubelet-client.crt",
        "--kubelet-client-key=/pki/kubelet-client.key",
        "--kubelet-certificate-authority=/pki/kubelet-ca.crt",
    ]
    assert syncer["command"][:4] == ["tini", "--", "python", "/scripts/start.py"]
    assert syncer["command"][-3:] == ["--", "vcsync", "run"]
    assert syncer["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert syncer["livenessProbe"]["httpGet"]["path"] == "/healthz"
    service = find(objects, "Service", RELEASE)["spec"]
    assert service["ports"] == [{"name": "https", "port": 443, "targetPort": 6443,
                                 "protocol": "TCP"}]
    without_dns = container(render(VALUE_SETS["no-coredns-no-persistence"]), "syncer")
    assert "command" not in without_dns  # the image's entrypoint: tini -- vcsync run
    assert without_dns["args"] == syncer["args"]


def test_snapshot_endpoint_only_for_the_sqlite_store() -> None:
    """The syncer serves snapshots of kine's SQLite file (the data volume mounted into it, on
    the pod's loopback); other stores render neither the flags nor the mount."""
    syncer = container(render(), "syncer")
    assert {"name": "data", "mountPath": "/data"} in syncer["volumeMounts"]
    for values in ("etcd-embedded", "etcd-external"):
        other = container(render(VALUE_SETS[values]), "syncer")
        assert not [a for a in other["args"] if a.startswith("--snapshot-")], values
        assert "data" not in {m["name"] for m in other["volumeMounts"]}, values


def test_kubernetes_version_sets_both_images() -> None:
    objects = render(["controlPlane.distro.k8s.version=v1.35.4"])
    assert container(objects, "kube-apiserver")["image"] == "registry.k8s.io/kube-apiserver:v1.35.4"
    assert container(objects, "kube-controller-manager")["image"] == (
        "registry.k8s.io/kube-controller-manager:v1.35.4")
    assert container(objects, "syncer")["image"] == "vcsync:0.1.0"


def test_scheduling_values_reach_the_pod() -> None:
    spec = pod_spec(render([
        "controlPlane.statefulSet.scheduling.nodeSelector.type=kwok",
        "controlPlane.statefulSet.scheduling.tolerations[0].key=dedicated",
        "controlPlane.statefulSet.scheduling.tolerations[0].operator=Exists",
        "controlPlane.statefulSet.scheduling.priorityClassName=tenants",
    ]))
    assert spec["nodeSelector"] == {"type": "kwok"}
    assert spec["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    assert spec["priorityClassName"] == "tenants"


@pytest.mark.parametrize("store", ["database.embedded.enabled=true",
                                   "database.external.enabled=true"])
def test_control_plane_runs_the_local_drivers_small_cluster_choices(store: str) -> None:
    """The chart and the local driver make the same idle tenant: the virtual apiserver's
    small-cluster flags, the controller-manager's controllers and the Go runtime
    settings of syncer.local.footprint (the density benchmark measures the local one)."""
    assignments = [f"controlPlane.backingStore.{store}"]
    if "external" in store:
        assignments.append("controlPlane.backingStore.database.external.dataSource=mysql://x")
    objects = render(assignments)
    apiserver = container(objects, "kube-apiserver")
    for flag in footprint.APISERVER_FLAGS:
        assert flag in apiserver["command"]
    manager = container(objects, "kube-controller-manager")
    assert f"--controllers={footprint.controllers()}" in manager["command"]
    for name, env in footprint.GO_RUNTIME_ENV.items():
        rendered = {e["name"]: e.get("value") for e in container(objects, name).get("env", [])}
        assert {k: rendered.get(k) for k in env} == dict(env), name


def test_metrics_service_and_service_monitor() -> None:
    """/metrics is reachable through a Service port; the ServiceMonitor (off by default)
    selects that Service and port only."""
    plain = render()
    metrics = find(plain, "Service", f"{RELEASE}-metrics")
    assert metrics["spec"]["ports"] == [
        {"name": "metrics", "port": 8080, "targetPort": "health", "protocol": "TCP"}]
    pod = find(plain, "StatefulSet")["spec"]["template"]
    assert metrics["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert not [o for o in plain if o["kind"] == "ServiceMonitor"]

    rendered = render(["controlPlane.serviceMonitor.enabled=true",
                       "controlPlane.serviceMonitor.interval=15s",
                       "controlPlane.serviceMonitor.labels.release=prometheus"])
    monitor = find(rendered, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics",
                                             "interval": "15s"}]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    selected = [o for o in rendered if o["kind"] == "Service" and
                monitor["spec"]["selector"]["matchLabels"].items()
                <= o["metadata"]["labels"].items()]
    assert [o["metadata"]["name"] for o in selected] == [f"{RELEASE}-metrics"]

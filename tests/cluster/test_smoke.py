"""Smoke tests: the control planes are real Kubernetes, not something that looks like it."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
from pathlib import Path

from contract import resources as r
from contract.resources import Obj
from syncer.kube.client import KubeClient
from syncer.local import binaries, network
from syncer.local.cluster import HostCluster, VirtualControlPlane
from syncer.local.process import leftover_pids
from tests.conftest import ClientFactory, VirtualFactory
from tests.support import kubectl, listening_addresses, wait_until


def _deployment(name: str, replicas: int) -> Obj:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            },
        },
    }


async def _pods(client: KubeClient, namespace: str, selector: str) -> list[Obj]:
    items, _ = await client.list(r.PODS, namespace, label_selector=selector)
    return items


async def test_host_deployment_runs_on_kwok_nodes(
    host_cluster: HostCluster, connect: ClientFactory
) -> None:
    host = await connect(host_cluster)
    await host.create(r.DEPLOYMENTS, _deployment("smoke", 2), "default")

    async def two_running() -> list[Obj]:
        pods = await _pods(host, "default", "app=smoke")
        running = [p for p in pods if p.get("status", {}).get("phase") == "Running"]
        return running if len(running) == 2 else []

    running = await wait_until(two_running, "2 Running pods of deployment smoke", timeout=60)
    nodes = {p["spec"]["nodeName"] for p in running}
    assert nodes <= {f"kwok-node-{i}" for i in range(host_cluster.nodes)}, nodes
    layout = host_cluster.layout  # realistic ranges in the session's network namespace
    for pod in running:
        index = int(pod["spec"]["nodeName"].rsplit("-", 1)[1])
        cidr = layout.node_pod_cidr(index) or layout.pod_cidr
        assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network(cidr)
        assert pod["status"]["hostIP"] == layout.node_ip(index)


async def test_virtual_has_only_builtin_namespaces(virtual_cluster: VirtualControlPlane) -> None:
    out = kubectl(virtual_cluster, "get", "namespaces", "-o", "name")
    assert sorted(out.split()) == [
        "namespace/default",
        "namespace/kube-node-lease",
        "namespace/kube-public",
        "namespace/kube-system",
    ]


async def test_virtual_issues_tokens_it_accepts(
    virtual_cluster: VirtualControlPlane, connect: ClientFactory
) -> None:
    vc = await connect(virtual_cluster)
    await vc.create(r.SERVICEACCOUNTS, {"metadata": {"name": "robot"}}, "default")
    token = await vc.create_subresource(
        r.SERVICEACCOUNTS,
        "robot",
        "token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
        "default",
    )
    review = await vc.create(
        r.TOKENREVIEWS,
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token["status"]["token"]},
        },
    )
    assert review["status"]["authenticated"] is True, review["status"]
    assert review["status"]["user"]["username"] == "system:serviceaccount:default:robot"


async def test_virtual_deployment_pods_stay_pending(
    virtual_cluster: VirtualControlPlane, connect: ClientFactory
) -> None:
    vc = await connect(virtual_cluster)
    await vc.create(r.DEPLOYMENTS, _deployment("web", 2), "default")

    async def replicaset() -> list[Obj]:
        items, _ = await vc.list(r.REPLICASETS, "default", label_selector="app=web")
        return items

    await wait_until(replicaset, "a ReplicaSet for deployment web")

    async def two_pods() -> list[Obj]:
        pods = await _pods(vc, "default", "app=web")
        return pods if len(pods) == 2 else []

    pods = await wait_until(two_pods, "2 pods created by the ReplicaSet")
    for pod in pods:
        assert pod["status"]["phase"] == "Pending", pod["status"]
        assert "nodeName" not in pod["spec"], pod["spec"]
    nodes, _ = await vc.list(r.NODES)
    assert nodes == [], "a virtual control plane has no nodes until the syncer adds them"


_CRD: Obj = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object"}},
            }
        ],
    },
}


async def test_crd_stays_in_its_virtual_cluster(
    host_cluster: HostCluster,
    virtual_cluster_factory: VirtualFactory,
    connect: ClientFactory,
) -> None:
    first = await connect(virtual_cluster_factory("vc-a"))
    second = await connect(virtual_cluster_factory("vc-b"))
    host = await connect(host_cluster)
    await first.create(r.CRDS, _CRD)
    assert (await first.get(r.CRDS, "widgets.example.com"))["metadata"]["name"]
    for other in (second, host):
        names = [c["metadata"]["name"] for c in (await other.list(r.CRDS))[0]]
        assert "widgets.example.com" not in names, f"CRD leaked into {other.name}"


def test_stop_leaves_no_process(tmp_path: Path) -> None:
    owner = f"teardown-{os.getpid()}"
    cluster = VirtualControlPlane(name="gone", root=tmp_path, store="memory", owner=owner)
    with cluster:
        assert len(leftover_pids(owner)) == 3, "kine, kube-apiserver, controller-manager"
    assert leftover_pids(owner) == []


def test_components_listen_only_on_loopback(
    host_cluster: HostCluster, virtual_cluster: VirtualControlPlane
) -> None:
    pids = [c.pid for cl in (host_cluster, virtual_cluster) for c in cl.components.values()]
    found = listening_addresses(pids)
    listeners = {pid for _, _, pid in found}
    assert listeners == set(pids), f"some component listens nowhere: {found}"
    kwok = host_cluster.components["kwok"].pid
    outside = [(ip, port, pid) for ip, port, pid in found
               if ipaddress.ip_address(ip) not in ipaddress.ip_network("127.0.0.0/8")
               and not (host_cluster.layout.isolated and pid == kwok)]
    assert outside == [], f"listening outside 127.0.0.0/8: {outside}"
    if host_cluster.layout.isolated:
        # kwok answers every node address, on every interface of the session's namespace:
        # lo and the veth pair whose ends both stay in it (syncer.local.network)
        names = {name for _, name in socket.if_nameindex()}
        assert names == {"lo", network.INTERFACE, network.PEER}, names


def test_binaries_report_their_pinned_versions() -> None:
    for component in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        out = subprocess.run([str(binaries.binary_path(component)), "--version"],
                             capture_output=True, text=True, check=True).stdout
        assert out.strip() == f"Kubernetes {binaries.KUBERNETES_VERSION}", out
    etcd = subprocess.run([str(binaries.binary_path("etcd")), "--version"],
                          capture_output=True, text=True, check=True).stdout
    assert f"etcd Version: {binaries.ETCD_VERSION.lstrip('v')}" in etcd
    helm = subprocess.run([str(binaries.binary_path("helm")), "version", "--short"],
                          capture_output=True, text=True, check=True).stdout
    assert helm.startswith(binaries.HELM_VERSION), helm
    metrics = subprocess.run([str(binaries.binary_path("metrics-server")), "--version"],
                             capture_output=True, text=True, check=True).stdout
    assert metrics.strip() == binaries.METRICS_SERVER_VERSION, metrics

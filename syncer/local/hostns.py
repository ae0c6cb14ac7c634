"""What a virtual cluster's host namespace holds before its syncer starts.

In a real deployment the Helm chart (or ``vcsync create``) makes these: the
namespace and the Service in front of the virtual kube-apiserver (pods reach
their API through its ClusterIP). The DNS Service is not made here: the
Services translator syncs the virtual ``kube-system/kube-dns`` (see
``syncer.local.coredns``). Nothing here listens anywhere: the ClusterIP is
only data, never dialled.
"""

from __future__ import annotations

from dataclasses import dataclass

from syncer.kube.blocking import BlockingClient


@dataclass(frozen=True)
class HostNamespace:
    name: str
    api_ip: str


def prepare(client: BlockingClient, namespace: str, vcluster: str) -> HostNamespace:
    """Create the namespace and the API Service (named ``vcluster``)."""
    client.json("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    services = f"/api/v1/namespaces/{namespace}/services"
    api = client.json("POST", services, {
        "metadata": {"name": vcluster},
        "spec": {"ports": [{"name": "https", "port": 443, "targetPort": 6443}]},
    })
    return HostNamespace(namespace, api["spec"]["clusterIP"])

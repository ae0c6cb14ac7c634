"""What a virtual cluster's host namespace holds before its syncer starts.

In a real deployment the Helm chart (or ``vcsync create``) makes these: the
namespace, the Service in front of the virtual kube-apiserver (pods reach
their API through its ClusterIP) and the DNS Service (until the Services
translator syncs the virtual ``kube-system/kube-dns`` there, it is made here
with the same name and ownership labels). Nothing here listens anywhere: the
ClusterIPs are only data, never dialled.
"""

from __future__ import annotations

from dataclasses import dataclass

from syncer.kube.blocking import BlockingClient
from translators import naming


@dataclass(frozen=True)
class HostNamespace:
    name: str
    api_ip: str
    dns_ip: str


def prepare(client: BlockingClient, namespace: str, vcluster: str) -> HostNamespace:
    """Create the namespace, the API Service (named ``vcluster``) and the DNS Service."""
    client.json("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    services = f"/api/v1/namespaces/{namespace}/services"
    api = client.json("POST", services, {
        "metadata": {"name": vcluster},
        "spec": {"ports": [{"name": "https", "port": 443, "targetPort": 6443}]},
    })
    dns = client.json("POST", services, {
        "metadata": {
            "name": naming.host_name("kube-dns", "kube-system", vcluster),
            "labels": {naming.LABEL_MANAGED_BY: vcluster,
                       naming.LABEL_NAMESPACE: "kube-system"},
        },
        "spec": {"ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                           {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]},
    })
    return HostNamespace(namespace, api["spec"]["clusterIP"], dns["spec"]["clusterIP"])

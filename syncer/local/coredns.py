"""CoreDNS for a virtual cluster: the manifests ``vcsync`` applies into it.

Why inside the virtual cluster: tenants' Services live only in the virtual API
server, so the DNS server must watch that API. CoreDNS runs as an ordinary
virtual Deployment; its pods are synced to the host like any other (their
API access goes to the virtual API server through the synced token), and the
``kube-system/kube-dns`` Service is synced to the host as
``kube-dns-x-kube-system-x-<vc>``, whose ClusterIP every synced pod gets as
its nameserver (see ``translators.pods``).
"""

from __future__ import annotations

from contract.resources import Obj
from syncer.kube.blocking import BlockingClient, BlockingError

IMAGE = "registry.k8s.io/coredns/coredns:v1.12.1"
NAMESPACE = "kube-system"
_LABELS = {"k8s-app": "kube-dns"}
_COREFILE = """.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
}
"""


def _rbac() -> list[tuple[str, Obj]]:
    rules = [
        {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
         "verbs": ["list", "watch"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
         "verbs": ["list", "watch"]},
    ]
    return [
        ("/api/v1/namespaces/kube-system/serviceaccounts",
         {"metadata": {"name": "coredns", "namespace": NAMESPACE}}),
        ("/apis/rbac.authorization.k8s.io/v1/clusterroles",
         {"metadata": {"name": "system:coredns"}, "rules": rules}),
        ("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
            "metadata": {"name": "system:coredns"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "system:coredns"},
            "subjects": [{"kind": "ServiceAccount", "name": "coredns",
                          "namespace": NAMESPACE}],
        }),
    ]


def _deployment() -> Obj:
    container = {
        "name": "coredns",
        "image": IMAGE,
        "args": ["-conf", "/etc/coredns/Corefile"],
        "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                  {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"}],
        "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                      "limits": {"memory": "170Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"],
                                             "add": ["NET_BIND_SERVICE"]}},
    }
    return {
        "metadata": {"name": "coredns", "namespace": NAMESPACE, "labels": _LABELS},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": _LABELS},
            "template": {"metadata": {"labels": _LABELS}, "spec": {
                "serviceAccountName": "coredns",
                "dnsPolicy": "Default",
                "containers": [container],
                "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
            }},
        },
    }


def manifests() -> list[tuple[str, Obj]]:
    """(collection path, object) pairs, in the order they must be created."""
    ns = f"/api/v1/namespaces/{NAMESPACE}"
    return [
        *_rbac(),
        (f"{ns}/configmaps", {"metadata": {"name": "coredns", "namespace": NAMESPACE},
                              "data": {"Corefile": _COREFILE}}),
        (f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", _deployment()),
        (f"{ns}/services", {
            "metadata": {"name": "kube-dns", "namespace": NAMESPACE,
                         "labels": {**_LABELS, "kubernetes.io/name": "CoreDNS"}},
            "spec": {"selector": _LABELS, "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP"},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                {"name": "metrics", "port": 9153, "protocol": "TCP"},
            ]},
        }),
    ]


def dns_service() -> tuple[str, Obj]:
    """Only the ``kube-dns`` Service (tests that need a DNS target but no DNS pod)."""
    return manifests()[-1]


def apply(client: BlockingClient, objects: list[tuple[str, Obj]] | None = None) -> None:
    """Create CoreDNS objects in the virtual cluster (all by default; existing ones kept)."""
    for path, obj in manifests() if objects is None else objects:
        status, body = client.request("POST", path, obj)
        if status not in (200, 201, 409):
            name = obj["metadata"]["name"]
            raise BlockingError(f"creating {path}/{name}: {status} {body[:200]!r}")

"""What a virtual cluster's host namespace holds before its syncer starts.

In a real deployment the Helm chart (or ``vcsync create``) makes these: the
namespace and the Service in front of the virtual kube-apiserver (pods reach
their API through its ClusterIP). The DNS Service is not made here: the
Services translator syncs the virtual ``kube-system/kube-dns`` (see
``syncer.local.coredns``). Nothing here listens anywhere: the ClusterIP is
only data, never dialled.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

import orjson

from contract import discovery, naming, resources
from contract.resources import Resource
from syncer.kube.blocking import BlockingClient, BlockingError
from syncer.local.process import wait_for


def managed_kinds() -> tuple[Resource, ...]:
    """Namespaced host kinds the built-in kinds create (all carry the managed-by label),
    as the kinds declare them: a new kind's objects are cleaned up without a line here."""
    return tuple(dict.fromkeys(
        cls.host_resource or cls.resource for cls in discovery.builtins().values()
        if cls.manages_host_objects and (cls.host_resource or cls.resource).namespaced))


@dataclass(frozen=True)
class HostNamespace:
    name: str
    api_ip: str


def prepare(client: BlockingClient, namespace: str, vcluster: str) -> HostNamespace:
    """Create the namespace and the API Service (named ``vcluster``).

    The namespace is labelled with the virtual cluster's name so a host
    admin sees who it belongs to.
    """
    client.json("POST", "/api/v1/namespaces", {"metadata": {
        "name": namespace, "labels": {naming.LABEL_MANAGED_BY: vcluster}}})
    services = f"/api/v1/namespaces/{namespace}/services"
    api = client.json("POST", services, {
        "metadata": {"name": vcluster},
        "spec": {"ports": [{"name": "https", "port": 443, "targetPort": 6443}]},
    })
    return HostNamespace(namespace, api["spec"]["clusterIP"])


def owned_by(client: BlockingClient, namespace: str, vcluster: str) -> bool:
    """Whether ``namespace`` exists with the label :func:`prepare` gives it."""
    status, body = client.request("GET", resources.NAMESPACES.path(name=namespace))
    if status != 200:
        return False
    labels = orjson.loads(body)["metadata"].get("labels") or {}
    return bool(labels.get(naming.LABEL_MANAGED_BY) == vcluster)


def api_ip(client: BlockingClient, namespace: str, vcluster: str) -> str:
    """The ClusterIP of the API Service :func:`prepare` made."""
    service = client.json("GET", resources.SERVICES.path(namespace, vcluster))
    return str(service["spec"]["clusterIP"])


def delete_pods(client: BlockingClient, namespace: str, vcluster: str) -> None:
    """Delete the virtual cluster's host pods at once (pause): nothing runs, state stays."""
    _delete_managed(client, namespace, vcluster, (resources.PODS,))


def cleanup(
    client: BlockingClient, namespace: str, vcluster: str, keep_namespace: bool,
    timeout: float = 60.0,
) -> None:
    """Delete every host object the virtual cluster owns, then (unless kept) its namespace.

    Cluster-scoped copies (PriorityClasses) carry the host namespace in their
    name; only those whose name is the one we would give their recorded
    identity are ours (another tenant may use the same virtual cluster name). Waits until the
    namespace is gone, so a later create of the same name does not collide
    with a terminating namespace.
    """
    _delete_managed(client, namespace, vcluster, managed_kinds())
    _delete_priority_classes(client, namespace, vcluster)
    if keep_namespace:
        _delete_api_service(client, namespace, vcluster)
        return
    path = resources.NAMESPACES.path(name=namespace)
    status, body = client.request("DELETE", path)
    if status not in (200, 202, 404):
        raise BlockingError(f"deleting namespace {namespace}: {status} {body[:200]!r}")
    if not wait_for(lambda: client.request("GET", path)[0] == 404, timeout, interval=0.5):
        raise BlockingError(f"namespace {namespace} still terminating after {timeout:.0f}s")


def _delete_managed(
    client: BlockingClient, namespace: str, vcluster: str, kinds: tuple[Resource, ...]
) -> None:
    selector = urllib.parse.quote(f"{naming.LABEL_MANAGED_BY}={vcluster}")
    for kind in kinds:
        path = f"{kind.path(namespace)}?labelSelector={selector}"
        status, body = client.request("DELETE", path)
        if status not in (200, 404):
            raise BlockingError(f"deleting {kind.plural} in {namespace}: {status} {body[:200]!r}")


def _delete_priority_classes(client: BlockingClient, namespace: str, vcluster: str) -> None:
    selector = urllib.parse.quote(f"{naming.LABEL_MANAGED_BY}={vcluster}")
    listed = client.json("GET", f"{resources.PRIORITYCLASSES.path()}?labelSelector={selector}")
    for item in listed.get("items") or ():
        name, identity = item["metadata"]["name"], naming.identity_of(item)
        ours = identity is not None and name == naming.host_cluster_scoped_name(
            identity.name, namespace, vcluster)
        if ours:
            client.request("DELETE", resources.PRIORITYCLASSES.path(name=name))


def _delete_api_service(client: BlockingClient, namespace: str, vcluster: str) -> None:
    status, body = client.request("DELETE", resources.SERVICES.path(namespace, vcluster))
    if status not in (200, 404):
        raise BlockingError(f"deleting Service {namespace}/{vcluster}: {status} {body[:200]!r}")

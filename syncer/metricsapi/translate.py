"""Host PodMetrics and NodeMetrics as the tenant sees them; Status bodies of refusals.

Pure functions. What crosses from the host is an allow-list: timestamp, window
and usage figures, and container names (the tenant's own, unchanged by the pod
translator). Names, namespaces and labels come from the *virtual* object the
syncer's caches tie the host object to, so no host name, host label or other
tenant's object can appear in an answer: a host item that no virtual object
claims is dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from contract.resources import Obj
from syncer.metricsapi.routes import GROUP, GROUP_VERSION, KINDS, MetricsCall

_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
            405: "MethodNotAllowed", 503: "ServiceUnavailable"}


def _metadata(host: Obj, virtual: Obj) -> Obj:
    meta = virtual["metadata"]
    metadata: Obj = {"name": meta["name"]}
    if meta.get("namespace"):
        metadata["namespace"] = meta["namespace"]
    created = (host.get("metadata") or {}).get("creationTimestamp")
    if created:
        metadata["creationTimestamp"] = created
    if meta.get("labels"):
        metadata["labels"] = dict(meta["labels"])
    return metadata


def _usage(item: Obj) -> Obj:
    return dict(item.get("usage") or {})


def _figures(host: Obj) -> Obj:
    return {key: host[key] for key in ("timestamp", "window") if key in host}


def pod_metrics(host: Obj, virtual_pod: Obj) -> Obj:
    """The host pod's PodMetrics under the virtual pod's namespace, name and labels."""
    containers = [{"name": c["name"], "usage": _usage(c)}
                  for c in host.get("containers") or [] if c.get("name")]
    return {"kind": KINDS["pods"], "apiVersion": GROUP_VERSION,
            "metadata": _metadata(host, virtual_pod), **_figures(host), "containers": containers}


def node_metrics(host: Obj, virtual_node: Obj) -> Obj:
    """The host node's NodeMetrics with the virtual node's labels."""
    return {"kind": KINDS["nodes"], "apiVersion": GROUP_VERSION,
            "metadata": _metadata(host, virtual_node), **_figures(host),
            "usage": _usage(host)}


def metrics_list(resource: str, items: list[Obj]) -> Obj:
    return {"kind": f"{KINDS[resource]}List", "apiVersion": GROUP_VERSION, "metadata": {},
            "items": items}


def _by_name(host_items: Iterable[Obj]) -> dict[str, Obj]:
    return {str(h["metadata"]["name"]): h for h in host_items if h.get("metadata")}


def pod_items(virtual_pods: Iterable[Obj], host_items: Iterable[Obj],
              host_name_of: Callable[[Obj], str | None]) -> list[Obj]:
    """PodMetrics of the virtual pods whose host pod (``host_name_of``, None: not this
    cluster's) has metrics among ``host_items``; sorted by namespace and name like
    metrics-server's."""
    hosts = _by_name(host_items)
    items = []
    for pod in virtual_pods:
        host_name = host_name_of(pod)
        if host_name is not None and host_name in hosts:
            items.append(pod_metrics(hosts[host_name], pod))
    return sorted(items, key=lambda i: (i["metadata"]["namespace"], i["metadata"]["name"]))


def node_items(virtual_nodes: Iterable[Obj], host_items: Iterable[Obj]) -> list[Obj]:
    """NodeMetrics of the virtual nodes (named as their host nodes) that have metrics."""
    hosts = _by_name(host_items)
    items = [node_metrics(hosts[n["metadata"]["name"]], n)
             for n in virtual_nodes if n["metadata"]["name"] in hosts]
    return sorted(items, key=lambda i: str(i["metadata"]["name"]))


def not_found_message(call: MetricsCall) -> str:
    return f'{call.resource}.{GROUP} "{call.name}" not found'


def status(code: int, message: str) -> Obj:
    """A ``metav1.Status`` failure, as kube-apiserver writes them."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": _REASONS.get(code, "InternalError"), "code": code}

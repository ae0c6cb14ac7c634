"""Paths of ``metrics.k8s.io/v1beta1``, the caller a front proxy vouches for, the access review.

Pure functions (no I/O), so every mapping is unit-tested on its own.

What is served (what metrics-server serves; read-only, no watch):

=====================================================  =====================================
``GET /apis/metrics.k8s.io/v1beta1``                   discovery (an APIResourceList)
``GET .../nodes``, ``.../nodes/{name}``                NodeMetrics
``GET .../pods``                                       PodMetrics of every namespace
``GET .../namespaces/{ns}/pods``, ``.../pods/{name}``  PodMetrics of one namespace
=====================================================  =====================================

Every other path is 404, ``/apis`` included: the aggregator then falls back to
the legacy discovery of the one group version it routes here. Other methods and
``watch`` are 405, as from metrics-server.

Who calls: the aggregator authenticated the user and names them in request
headers (``X-Remote-User``, ``X-Remote-Group``, ``X-Remote-Extra-*``,
``X-Remote-Uid``), which mean something only on a connection whose client
certificate proves it is the front proxy (checked by the server).
kube-apiserver authorized the request before proxying it (its handler chain
runs for aggregated groups too); like metrics-server, the server does not rely
on that alone and asks the virtual API's authorizer again with
:func:`access_review` (the same attributes), so a caller that reaches it with
the front proxy's certificate but around kube-apiserver gains nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

from contract.resources import Obj
from syncer.kubelet.routes import RouteError, is_dns_label, is_dns_subdomain

GROUP = "metrics.k8s.io"
VERSION = "v1beta1"
GROUP_VERSION = f"{GROUP}/{VERSION}"
PREFIX = f"/apis/{GROUP_VERSION}"
KINDS = {"pods": "PodMetrics", "nodes": "NodeMetrics"}

USER_HEADER = "x-remote-user"
GROUP_HEADER = "x-remote-group"
UID_HEADER = "x-remote-uid"
EXTRA_PREFIX = "x-remote-extra-"


DISCOVERY: Obj = {
    "kind": "APIResourceList",
    "apiVersion": "v1",
    "groupVersion": GROUP_VERSION,
    "resources": [
        {"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics",
         "verbs": ["get", "list"]},
        {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics",
         "verbs": ["get", "list"]},
    ],
}
"""What metrics-server v0.8.0 answers for its group version."""


@dataclass(frozen=True)
class MetricsCall:
    """One resource request: a get (``name`` set) or a list of ``resource``."""

    resource: str
    """"pods" or "nodes"."""
    namespace: str = ""
    """Empty for nodes and for pods of every namespace."""
    name: str = ""
    label_selector: str = ""
    field_selector: str = ""

    @property
    def verb(self) -> str:
        return "get" if self.name else "list"


@dataclass(frozen=True)
class Caller:
    """The user the front proxy authenticated."""

    user: str
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(default_factory=dict)
    uid: str = ""


def parse(method: str, path: str, query: Mapping[str, str]) -> MetricsCall | None:
    """The resource call of ``method path?query``; None for the discovery document.

    Raises :class:`RouteError` (404 unknown path, 405 method or watch, 400 bad name).
    """
    if path.rstrip("/") != PREFIX and not path.startswith(PREFIX + "/"):
        raise RouteError(404, f"{path}: not found (this server serves {GROUP_VERSION} only)")
    if method != "GET":
        raise RouteError(405, f"{method} is not supported by {GROUP_VERSION} (read-only)")
    segments = [unquote(s) for s in path[len(PREFIX):].split("/") if s]
    if not segments:
        return None
    if query.get("watch", "").lower() in ("1", "true"):
        raise RouteError(405, f"watch is not supported by {GROUP_VERSION}")
    selectors = {"label_selector": query.get("labelSelector", ""),
                 "field_selector": query.get("fieldSelector", "")}
    return _resource_call(segments, path, selectors)


def _resource_call(segments: list[str], path: str, selectors: dict[str, str]) -> MetricsCall:
    namespace = ""
    if segments[0] == "namespaces" and len(segments) >= 3:
        namespace = segments[1]
        if not is_dns_label(namespace):
            raise RouteError(400, f"invalid namespace {namespace!r}")
        segments = segments[2:]
        if segments[0] != "pods":
            raise RouteError(404, f"{path}: not found (only pods are namespaced)")
    if segments[0] not in KINDS or len(segments) > 2:
        raise RouteError(404, f"{path}: not found")
    name = segments[1] if len(segments) == 2 else ""
    if name and not is_dns_subdomain(name):
        raise RouteError(400, f"invalid {segments[0][:-1]} name {name!r}")
    if name and segments[0] == "pods" and not namespace:
        raise RouteError(404, f"{path}: not found (a pod is named within its namespace)")
    return MetricsCall(segments[0], namespace, name, **selectors)


def caller(headers: Iterable[tuple[str, str]]) -> Caller | None:
    """The user named by the front proxy's headers (kube-apiserver's requestheader rules:
    the first user header, every group header, extras keyed by their unescaped lower-case
    name); None without a user."""
    user, uid = "", ""
    groups: list[str] = []
    extra: dict[str, list[str]] = {}
    for key, value in headers:
        lowered = key.lower()
        if lowered == USER_HEADER and not user:
            user = value
        elif lowered == GROUP_HEADER:
            groups.append(value)
        elif lowered == UID_HEADER and not uid:
            uid = value
        elif lowered.startswith(EXTRA_PREFIX):
            extra.setdefault(unquote(lowered[len(EXTRA_PREFIX):]), []).append(value)
    return Caller(user, tuple(groups), extra, uid) if user else None


def access_review(who: Caller, call: MetricsCall) -> Obj:
    """The SubjectAccessReview deciding whether ``who`` may make ``call``."""
    attributes = {"group": GROUP, "version": VERSION, "resource": call.resource,
                  "verb": call.verb, "namespace": call.namespace, "name": call.name}
    spec: Obj = {"user": who.user, "groups": list(who.groups),
                 "resourceAttributes": {k: v for k, v in attributes.items() if v}}
    if who.extra:
        spec["extra"] = who.extra
    if who.uid:
        spec["uid"] = who.uid
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": spec}


def forbidden_message(who: Caller, call: MetricsCall) -> str:
    """kube-apiserver's wording for a refused request."""
    target = f"{call.resource}.{GROUP}" + (f' "{call.name}"' if call.name else "")
    scope = (f'in the namespace "{call.namespace}"' if call.namespace
             else "at the cluster scope")
    return (f'{target} is forbidden: User "{who.user}" cannot {call.verb} resource '
            f'"{call.resource}" in API group "{GROUP}" {scope}')

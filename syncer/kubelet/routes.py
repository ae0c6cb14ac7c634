"""Kubelet paths the virtual kube-apiserver calls, and the host API call each becomes.

Pure functions: no I/O, so every mapping is unit-tested on its own.

What kube-apiserver sends a kubelet (``pkg/registry/core/pod/strategy.go``):

=================================================  ======================================
kubelet request                                    host API request
=================================================  ======================================
``GET /containerLogs/{ns}/{pod}/{container}?...``  ``GET .../pods/{host pod}/log?container=...``
``POST|GET /exec/{ns}/{pod}/{container}?...``      ``.../pods/{host pod}/exec?container=...``
``POST|GET /attach/{ns}/{pod}/{container}?...``    ``.../pods/{host pod}/attach?container=...``
``POST|GET /portForward/{ns}/{pod}?port=...``      ``.../pods/{host pod}/portforward?ports=...``
=================================================  ======================================

The kubelet's stream parameters have other names than the API's (``input``,
``output``, ``error`` for ``stdin``, ``stdout``, ``stderr``; ``port`` for
``ports``); they are renamed back here. Only parameters the API defines for the
subresource are passed on, so a caller cannot smuggle others to the host.

Invariant: a :class:`KubeletCall` names a namespace, pod and container that
are valid Kubernetes names; nothing else reaches the resolver.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit


class Call(Enum):
    """The pod subresource a kubelet request stands for (its value: the API's name)."""

    LOGS = "log"
    EXEC = "exec"
    ATTACH = "attach"
    PORT_FORWARD = "portforward"


_PREFIXES = {
    "containerLogs": Call.LOGS,
    "exec": Call.EXEC,
    "attach": Call.ATTACH,
    "portForward": Call.PORT_FORWARD,
}
_NODE_PATHS = ("stats", "metrics", "pods", "spec", "configz", "logs", "runningpods", "checkpoint",
               "debug", "cri")
"""Node-level kubelet paths: not served (see :func:`parse`)."""

_LOG_PARAMS = ("follow", "previous", "timestamps", "sinceSeconds", "sinceTime", "tailLines",
               "limitBytes", "stream")
_STREAM_PARAMS = {"input": "stdin", "output": "stdout", "error": "stderr", "tty": "tty"}
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_PORT = re.compile(r"^[0-9]{1,5}$")

Query = list[tuple[str, str]]


class RouteError(Exception):
    """A request this endpoint refuses: ``status`` is the HTTP code, the message its text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class KubeletCall:
    """One parsed kubelet request for a pod's subresource."""

    call: Call
    namespace: str
    pod: str
    container: str
    """Empty for port-forward (the kubelet API names no container there)."""
    query: tuple[tuple[str, str], ...]

    @property
    def streaming(self) -> bool:
        """True for the calls that upgrade the connection (SPDY or WebSocket)."""
        return self.call is not Call.LOGS


def parse(method: str, target: str) -> KubeletCall:
    """The pod call of ``method target``, or :class:`RouteError` (404 for unknown paths).

    Node-level paths (``/stats/summary``, ``/metrics/resource``, ``/pods``, ...) get
    404 as well: answering them would need ``nodes/proxy`` on the host, which reaches
    every pod of a node, other tenants' included (see docs on the kubelet endpoint).
    """
    parts = urlsplit(target)
    segments = [unquote(s) for s in parts.path.split("/")[1:]]
    if not segments or segments[0] not in _PREFIXES:
        head = segments[0] if segments else ""
        if head in _NODE_PATHS:
            raise RouteError(404, f"/{head} is not served by the virtual cluster's kubelet "
                                  "endpoint; use the metrics API (kubectl top) instead")
        raise RouteError(404, f"{parts.path}: no such kubelet path")
    call = _PREFIXES[segments[0]]
    _check_method(call, method)
    namespace, pod, container = _names(call, segments[1:])
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    return KubeletCall(call, namespace, pod, container, tuple(pairs))


def _check_method(call: Call, method: str) -> None:
    allowed = ("GET",) if call is Call.LOGS else ("GET", "POST")
    if method not in allowed:
        raise RouteError(405, f"{method} is not allowed for {call.value}")


def _names(call: Call, rest: Sequence[str]) -> tuple[str, str, str]:
    """(namespace, pod, container) from the path after the prefix.

    The kubelet also accepts ``{ns}/{pod}/{uid}/{container}`` (and ``{ns}/{pod}/{uid}``
    for port-forward); kube-apiserver never sends the uid form, so neither do we.
    """
    expected = 2 if call is Call.PORT_FORWARD else 3
    if len(rest) != expected:
        raise RouteError(404, f"{call.value}: expected {expected} path segments after the "
                              f"prefix, got {len(rest)}")
    namespace, pod = rest[0], rest[1]
    container = rest[2] if expected == 3 else ""
    if not is_dns_label(namespace):
        raise RouteError(400, f"invalid namespace {namespace!r}")
    if not is_dns_subdomain(pod):
        raise RouteError(400, f"invalid pod name {pod!r}")
    if expected == 3 and not is_dns_label(container):
        raise RouteError(400, f"invalid container name {container!r}")
    return namespace, pod, container


def is_dns_label(text: str) -> bool:
    """A DNS-1123 label: what namespace and container names must be."""
    return len(text) <= 63 and _DNS_LABEL.fullmatch(text) is not None


def is_dns_subdomain(text: str) -> bool:
    """A DNS-1123 subdomain: what pod and node names must be."""
    return len(text) <= 253 and _DNS_SUBDOMAIN.fullmatch(text) is not None


def host_query(call: KubeletCall) -> Query:
    """The API query of the host subresource call: parameters renamed, unknown ones dropped."""
    if call.call is Call.LOGS:
        query = _log_query(call.query)
    elif call.call is Call.PORT_FORWARD:
        query = _port_query(call.query)
    else:
        query = _stream_query(call.query, with_command=call.call is Call.EXEC)
    if call.container:
        query.insert(0, ("container", call.container))
    return query


def host_target(call: KubeletCall, host_namespace: str, host_pod: str) -> str:
    """The request target (path and query) of the host API call for ``call``."""
    path = f"/api/v1/namespaces/{host_namespace}/pods/{host_pod}/{call.call.value}"
    query = host_query(call)
    return f"{path}?{urlencode(query)}" if query else path


def _log_query(pairs: Sequence[tuple[str, str]]) -> Query:
    query: Query = []
    for key, value in pairs:
        if key == "tail":  # the kubelet's old name; "all" means no limit
            if value != "all":
                query.append(("tailLines", value))
        elif key in _LOG_PARAMS:
            query.append((key, value))
    return query


def _stream_query(pairs: Sequence[tuple[str, str]], *, with_command: bool) -> Query:
    query: Query = []
    for key, value in pairs:
        if key in _STREAM_PARAMS:
            query.append((_STREAM_PARAMS[key], _boolean(value)))
        elif key == "command" and with_command:
            query.append(("command", value))
    if with_command and not any(key == "command" for key, _ in query):
        raise RouteError(400, "exec: no command given")
    return query


def _port_query(pairs: Sequence[tuple[str, str]]) -> Query:
    query: Query = []
    for key, value in pairs:
        if key in ("port", "ports"):
            for port in value.split(","):
                if not _PORT.match(port) or not 0 < int(port) < 65536:
                    raise RouteError(400, f"invalid port {port!r}")
                query.append(("ports", port))
    return query


def _boolean(value: str) -> str:
    """The kubelet gets ``1``; the API is given ``true``/``false``, decoded as apimachinery
    decodes a query boolean (``0``, ``f`` and ``false`` are false, anything else true)."""
    return "false" if value.lower() in ("0", "f", "false") else "true"

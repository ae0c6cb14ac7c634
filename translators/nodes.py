"""Nodes: host -> virtual, so the tenant sees where its pods run.

Two modes, as in vCluster:
- default: a virtual node exists only while the host scheduler has placed
  some pod of this virtual cluster on it (the tenant sees the nodes it uses,
  no more; a ``nodeName`` the tenant writes proves nothing); it is created
  just before the first pod is bound (``EnsureSynced`` from the pod
  translator) and deleted when the last one goes;
- real-node mode (``selector.all`` or ``selector.labels``): matching host
  nodes are mirrored whether pods use them or not.

Where the virtual kube-apiserver finds a node's kubelet: with the syncer's
kubelet endpoint on (``ctx.facts.kubelet_endpoint``), a virtual node's
addresses and ``daemonEndpoints`` point at that endpoint instead of the host
node (see :mod:`syncer.kubelet`), so ``kubectl logs``/``exec``/... of the
tenant reach the syncer, which forwards them to the host API. The host node's
own addresses are not shown: they are nothing a tenant can dial.

Node status changes every heartbeat (kubelets and kwok renew conditions every
10-60 s). Copying each heartbeat would cost one write per node per beat for
nothing the tenant reads, so a status difference that is *only* heartbeat
times is written at most once per :data:`HEARTBEAT_RESOLUTION` seconds of
host time (judged on the timestamps themselves: no clock here).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from contract import resources
from contract.facts import Endpoint
from contract.options import NodeOptions
from contract.resources import Obj
from contract.translator import (
    Action,
    Context,
    Create,
    Delete,
    Direction,
    HostRule,
    Index,
    Patch,
    Side,
    Translator,
    Trigger,
)
from translators.objects import merge_patch

PODS_BY_NODE = "pods-by-node"
HEARTBEAT_RESOLUTION = 60.0
_STATUS_FIELDS = ("capacity", "allocatable", "conditions", "addresses", "nodeInfo", "phase")
_ENDPOINT_FIELDS = (*_STATUS_FIELDS, "daemonEndpoints")
"""With the endpoint on, the port is the syncer's to set; with it off, the field is left
alone (the API server always returns one, so comparing it would mean a write per sync)."""


def bound_node(pod: Obj) -> Iterable[str]:
    """The node a pod is bound to (index and trigger: pods -> node keys)."""
    node = (pod.get("spec") or {}).get("nodeName")
    return (node,) if node else ()


def _status(node: Obj, fields: Sequence[str] = _STATUS_FIELDS) -> Obj:
    status = node.get("status") or {}
    return {k: status[k] for k in fields if k in status}


def desired_status(host: Obj, endpoint: Endpoint | None) -> Obj:
    """The host node's status as the tenant sees it: with a kubelet endpoint, its address
    and port instead of the host node's."""
    status = _status(host)
    if endpoint is not None:
        address, port = endpoint
        status["addresses"] = [{"type": "InternalIP", "address": address}]
        status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": port}}
    return status


def virtual_node(host: Obj, endpoint: Endpoint | None = None) -> Obj:
    """The virtual copy: name, labels, taints/unschedulable and status of the host node."""
    meta = host["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": meta["name"], "labels": dict(meta.get("labels") or {})},
        "spec": _spec(host),
        "status": desired_status(host, endpoint),
    }


def _without_heartbeats(conditions: Sequence[Obj]) -> list[Obj]:
    return [{k: v for k, v in c.items() if k != "lastHeartbeatTime"} for c in conditions]


def _newest_heartbeat(conditions: Sequence[Obj]) -> datetime.datetime | None:
    stamps = [c["lastHeartbeatTime"] for c in conditions if c.get("lastHeartbeatTime")]
    if not stamps:
        return None
    return max(datetime.datetime.fromisoformat(s.replace("Z", "+00:00")) for s in stamps)


def _heartbeat_due(virtual: Sequence[Obj], host: Sequence[Obj]) -> bool:
    new, old = _newest_heartbeat(host), _newest_heartbeat(virtual)
    if new is None or old is None:
        return new is not old
    return (new - old).total_seconds() >= HEARTBEAT_RESOLUTION


def status_patch(virtual: Obj, host: Obj, endpoint: Endpoint | None = None) -> Obj:
    """``{"status": ...}`` bringing the virtual node's status to the host's, or {}."""
    want = desired_status(host, endpoint)
    have = _status(virtual, _STATUS_FIELDS if endpoint is None else _ENDPOINT_FIELDS)
    patch = merge_patch(have, want)
    only_heartbeats = set(patch) == {"conditions"} and _without_heartbeats(
        have.get("conditions") or []
    ) == _without_heartbeats(want.get("conditions") or [])
    if not patch or (only_heartbeats and not _heartbeat_due(
        have.get("conditions") or [], want.get("conditions") or []
    )):
        return {}
    return {"status": patch}


def _selector_matches(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


class NodeTranslator(Translator):
    kind = "nodes"
    summary = "Show host nodes in the virtual cluster."
    enabled_by_default = True
    options_type = NodeOptions
    manages_host_objects = False
    host_rules = (HostRule(resources.NODE_METRICS, ("get", "list")),)
    """kubectl top node: the metrics API (syncer.metricsapi) reads the host's node metrics."""
    direction = Direction.FROM_HOST
    resource = resources.NODES
    recreate_on_new_uid = False

    @property
    def _selector(self) -> Mapping[str, Any]:
        return self.options.get("selector") or {}

    def indexes(self) -> Sequence[Index]:
        """Host pods by node: where the host scheduler placed this cluster's pods. Not the
        virtual pods: a tenant can write any ``nodeName`` into one, and must not make a
        host node it does not use appear (with its labels, addresses and capacity)."""
        return (Index(Side.HOST, resources.PODS, PODS_BY_NODE, bound_node),)

    def triggers(self) -> Sequence[Trigger]:
        return (Trigger(Side.HOST, resources.PODS, bound_node),)

    def host_label_selector(self, ctx: Context) -> str:
        """Every host node: pods may be bound to nodes a label selector leaves out."""
        return ""

    def virtual_key(self, host: Obj, ctx: Context) -> str | None:
        return str(host["metadata"]["name"])

    def wants(self, source: Obj, ctx: Context) -> bool:
        name, labels = source["metadata"]["name"], source["metadata"].get("labels") or {}
        if self._selector.get("all"):
            return True
        selector = self._selector.get("labels") or {}
        if selector and _selector_matches(labels, selector):
            return True
        return bool(ctx.lookup.by_index(Side.HOST, resources.PODS, PODS_BY_NODE, name))

    def to_virtual(self, host: Obj, ctx: Context) -> list[Action]:
        return [Create(Side.VIRTUAL, self.resource, virtual_node(host, ctx.facts.kubelet_endpoint))]

    def sync(self, virtual: Obj, host: Obj, ctx: Context) -> list[Action]:
        name = virtual["metadata"]["name"]
        endpoint = ctx.facts.kubelet_endpoint
        desired = virtual_node(host, endpoint)
        actions: list[Action] = []
        spec_patch = merge_patch(
            {"labels": virtual["metadata"].get("labels") or {}, **_spec(virtual)},
            {"labels": desired["metadata"]["labels"], **desired["spec"]},
        )
        if spec_patch:
            labels = spec_patch.pop("labels", None)
            patch: Obj = {"metadata": {"labels": labels}} if labels else {}
            if spec_patch:
                patch["spec"] = spec_patch
            actions.append(Patch(Side.VIRTUAL, self.resource, name, None, patch))
        status = status_patch(virtual, host, endpoint)
        if status:
            actions.append(Patch(Side.VIRTUAL, self.resource, name, None, status, "status"))
        return actions

    def to_host(self, virtual: Obj, ctx: Context) -> list[Action]:
        """The host node is gone (or no pod uses it any more): remove the virtual copy."""
        meta = virtual["metadata"]
        return [Delete(Side.VIRTUAL, self.resource, meta["name"], None, meta.get("uid"))]


def _spec(node: Obj) -> Obj:
    spec = node.get("spec") or {}
    return {k: spec[k] for k in ("taints", "unschedulable") if k in spec}

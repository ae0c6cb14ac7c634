"""Services: virtual -> host, the host's allocations back up (docs/acceptance.md, 20, 21, 23).

A virtual Service is only a name and a promise; the host Service is what
kube-proxy programs and what host DNS answers for. So the spec flows down
(selector pinned to the tenant's namespace, see ``naming.host_selector``) and
what the *host* allocates flows up: the ClusterIP(s), NodePorts and the
LoadBalancer status. Pods read the virtual ClusterIP (``<SVC>_SERVICE_HOST``
variables, the tenant's DNS), so it must be the host's, or a pod would be
told an address nothing routes.

ClusterIPs are immutable, so the virtual Service is deleted and re-created
with the host's IPs (NodePorts are mutable and just patched). Therefore
``recreate_on_new_uid`` is False: the re-created virtual Service has a new
uid, and its host copy (whose IP it now carries) must survive; ``sync``
moves the host's ``object-uid`` annotation to the new uid instead.

Deployment requirements that follow: the virtual API server must allocate
from the host's Service CIDRs (same IP families) and NodePort range, or it
rejects the host's values, and the re-create leaves the Service deleted.

Special Services:
- ``default/kubernetes`` is the virtual API server itself. It is never
  created on the host; its virtual ClusterIP is made the host ClusterIP of
  the Service fronting the virtual API server (``ctx.facts.api_service_ip``), so
  in-cluster clients reach it from host pods.
- the DNS Service (``contract.naming.DNS_SERVICE``) is synced like any other; its host
  copy is the one whose ClusterIP the pod translator makes every pod's
  nameserver.
- ``kube-system/vcsync-metrics`` (``contract.naming.METRICS_API_SERVICE``) routes the virtual
  aggregator's ``metrics.k8s.io`` to the syncer (ExternalName ``localhost``, see
  ``syncer.metricsapi``); it means nothing on the host and is never synced.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from contract import naming, resources
from contract.resources import Obj
from contract.translator import (
    Action,
    Context,
    Create,
    Delete,
    EnsureSynced,
    Patch,
    Side,
    Translator,
    Warn,
)
from translators import endpoints, externalnames
from translators.objects import host_metadata, merge_patch, metadata_patch, same_json

API_SERVICE = ("kubernetes", "default")
"""(name, namespace) of the virtual API server's own Service."""

_HEADLESS = "None"
_SPEC_FIELDS = (
    "type", "ports", "selector", "externalName", "sessionAffinity", "sessionAffinityConfig",
    "publishNotReadyAddresses", "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy",
    "externalTrafficPolicy", "loadBalancerClass", "loadBalancerIP", "loadBalancerSourceRanges",
    "allocateLoadBalancerNodePorts", "trafficDistribution",
)
"""Spec fields copied to the host: an allow-list, so a field added to the API later cannot
slip through unreviewed. Not copied: ``clusterIP(s)`` (allocated by the host; only
"None" is kept, as it makes the Service headless), ``healthCheckNodePort`` (allocated by
the host), ``externalIPs`` (a tenant must not claim addresses of the host's nodes and
network: kube-proxy would capture traffic to them for every workload on the host)."""

_PORT_FIELDS = ("name", "protocol", "port", "targetPort", "appProtocol")
"""Port fields copied to the host; ``nodePort`` is the host's to allocate."""

_DEFAULTED = (
    "type", "sessionAffinity", "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy",
    "externalTrafficPolicy", "allocateLoadBalancerNodePorts",
)
"""Fields the API server fills in when they are missing. Where the virtual spec lacks one,
the host's value is not compared: removing it would only make the host fill it in again
(a write on every sync when the two API servers' versions default differently)."""

_EXTERNALLY_ACCESSIBLE = ("NodePort", "LoadBalancer")
"""Types that may carry ``externalTrafficPolicy`` without ``externalIPs``."""

_RECREATED_METADATA = ("name", "namespace", "labels", "annotations", "ownerReferences")
RECREATING = naming.PREFIX + "recreating"
"""On the host Service while its virtual Service is deleted and created again with the
host's ClusterIP: ``{"uid": <deleted virtual uid>, "object": <the Service to create>}``
(JSON). A syncer interrupted between the two requests (killed, or the create failed)
finds the host copy alone with this record and creates the virtual Service from it,
instead of collecting the host copy as an orphan and losing the tenant's Service on both
sides. The next sync removes it (our key, no longer desired)."""


def is_api_service(service: Obj) -> bool:
    """Whether ``service`` is the virtual ``default/kubernetes``: never synced to the host."""
    meta = service["metadata"]
    return (meta["name"], meta.get("namespace")) == API_SERVICE


class ServiceTranslator(Translator):
    kind = "services"
    summary = "Sync Services; the virtual Service gets the host's ClusterIP."
    enabled_by_default = True
    resource = resources.SERVICES
    recreate_on_new_uid = False

    @classmethod
    def ensures(cls) -> tuple[type[Translator], ...]:
        return (endpoints.EndpointsTranslator,)

    def desired(self, virtual: Obj, ctx: Context) -> Obj:
        """The host Service: translated metadata and the host spec of the virtual spec."""
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": host_metadata(virtual, ctx, self.resource.kind),
            "spec": _host_spec(virtual.get("spec") or {}, ctx.vcluster, _namespace(virtual)),
        }

    def wants(self, source: Obj, ctx: Context) -> bool:
        meta = source["metadata"]
        return (meta["name"], meta.get("namespace")) != naming.METRICS_API_SERVICE

    def to_host(self, virtual: Obj, ctx: Context) -> list[Action]:
        if is_api_service(virtual):
            return _follow_api_service(virtual, ctx)
        return externalnames.refusal(virtual, ctx) or [
            Create(Side.HOST, self.host, self.desired(virtual, ctx))]

    def to_virtual(self, host: Obj, ctx: Context) -> list[Action]:
        """An orphan, unless its virtual Service was deleted by an unfinished re-create."""
        pending = _interrupted_recreate(host)
        if pending is not None:
            return [Create(Side.VIRTUAL, resources.SERVICES, pending)]
        return super().to_virtual(host, ctx)

    def sync(self, virtual: Obj, host: Obj, ctx: Context) -> list[Action]:
        """The host follows the virtual spec; once it has, its allocations go up.

        Allocations are copied only from a host spec that already matches: while
        a patch is on its way (a type change, say) the host's NodePorts and IPs
        may be about to change, and copying them would be wasted or invalid.
        """
        meta = host["metadata"]
        refusal = externalnames.refusal(virtual, ctx)
        if refusal:  # it became one: the host copy must not point there
            return [*refusal, Delete(Side.HOST, self.host, meta["name"], meta["namespace"],
                                     meta.get("uid"))]
        if _is_headless(virtual) != _is_headless(host):
            # clusterIP "None" can neither be set nor cleared on an existing Service.
            return [Delete(Side.HOST, self.host, meta["name"], meta["namespace"], meta.get("uid"))]
        desired = self.desired(virtual, ctx)
        have = host.get("spec") or {}
        spec = merge_patch(_comparable(have, desired["spec"]), desired["spec"])
        patch = metadata_patch(host, desired)
        if spec:
            patch["spec"] = spec
        actions: list[Action] = []
        if patch:
            actions.append(Patch(Side.HOST, self.host, meta["name"], meta["namespace"], patch))
        if spec:
            return actions
        return actions + _show_allocations(virtual, host)


# -- the host spec -----------------------------------------------------------------------


def _namespace(service: Obj) -> str:
    return str(service["metadata"]["namespace"])


def _host_port(port: Obj) -> Obj:
    return {key: port[key] for key in _PORT_FIELDS if key in port}


def _project(spec: Obj) -> Obj:
    """The part of a Service spec the syncer owns on the host (allocated values left out)."""
    projected = {key: spec[key] for key in _SPEC_FIELDS if key in spec}
    if "ports" in projected:
        projected["ports"] = [_host_port(port) for port in projected["ports"]]
    if spec.get("clusterIP") == _HEADLESS:
        projected["clusterIP"] = _HEADLESS
    return projected


def _host_spec(virtual_spec: Obj, vcluster: str, namespace: str) -> Obj:
    """The host Service spec; a selector-less Service stays selector-less (no key at all),
    as host controllers tell "selector-less" by the missing selector."""
    spec = _project(virtual_spec)
    if spec.get("type", "ClusterIP") not in _EXTERNALLY_ACCESSIBLE:
        # Only the externalIPs (left out) made the policy valid on a ClusterIP Service.
        spec.pop("externalTrafficPolicy", None)
    selector = naming.host_selector(virtual_spec.get("selector"), vcluster, namespace)
    if selector:
        spec["selector"] = selector
    else:
        spec.pop("selector", None)
    return spec


def _comparable(host_spec: Obj, desired: Obj) -> Obj:
    """The host spec as :func:`_project` sees it, minus defaults the virtual spec leaves out.

    A dual-stack host adds a second IP family to a ``PreferDualStack`` Service;
    the families asked for coming first is a match (the virtual Service takes
    the host's families with its IPs).
    """
    projected = _project(host_spec)
    wanted = desired.get("ipFamilies") or []
    if wanted and projected.get("ipFamilies", [])[: len(wanted)] == wanted:
        projected["ipFamilies"] = wanted
    return {
        key: value for key, value in projected.items()
        if key in desired or key not in _DEFAULTED
    }


def _is_headless(service: Obj) -> bool:
    return bool((service.get("spec") or {}).get("clusterIP") == _HEADLESS)


# -- allocations up ------------------------------------------------------------------------


def _cluster_ips(service: Obj) -> list[str]:
    """The allocated ClusterIPs, primary first; [] for headless and ExternalName Services."""
    spec = service.get("spec") or {}
    ips = list(spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []))
    return [] if not ips or ips[0] == _HEADLESS else ips


def _node_ports(ports: Iterable[Obj]) -> dict[str, int]:
    """NodePorts by port name (names are unique within a Service; "" for a lone port)."""
    return {port.get("name", ""): port["nodePort"] for port in ports if port.get("nodePort")}


def _with_node_ports(ports: list[Obj], allocated: dict[str, int]) -> list[Obj]:
    """``ports`` with the host's NodePorts. A port the host allocated none for keeps its own:
    dropping it would make the virtual API server restore it, a write on every sync."""
    return [
        {**port, "nodePort": allocated[port.get("name", "")]}
        if port.get("name", "") in allocated else port
        for port in ports
    ]


def _show_allocations(virtual: Obj, host: Obj) -> list[Action]:
    """Make the virtual Service show the host's ClusterIPs, NodePorts and LoadBalancer status."""
    spec = virtual.get("spec") or {}
    host_spec = host.get("spec") or {}
    virtual_ips, host_ips = _cluster_ips(virtual), _cluster_ips(host)
    allocated = _node_ports(host_spec.get("ports") or [])
    if virtual_ips and host_ips and virtual_ips != host_ips:
        recreated = {**spec, "clusterIP": host_ips[0], "clusterIPs": host_ips}
        if "ports" in spec:
            recreated["ports"] = _with_node_ports(spec["ports"], allocated)
        if host_spec.get("ipFamilies"):
            recreated["ipFamilies"] = host_spec["ipFamilies"]  # the families of those IPs
        return [*_endpoints_first(virtual), *_recreate(virtual, recreated, host)]
    meta = virtual["metadata"]
    actions: list[Action] = []
    ports = spec.get("ports") or []
    host_ports = _with_node_ports(ports, allocated)
    if not same_json(host_ports, ports):
        patch = {"spec": {"ports": host_ports}}
        actions.append(Patch(Side.VIRTUAL, resources.SERVICES, meta["name"], meta["namespace"],
                             patch))
    status = _load_balancer_patch(virtual, host)
    if status:
        actions.append(Patch(Side.VIRTUAL, resources.SERVICES, meta["name"], meta["namespace"],
                             status, "status"))
    return actions


def _endpoints_first(virtual: Obj) -> list[Action]:
    """Hand-written Endpoints of a selector-less Service onto the host before the re-create:
    the virtual endpoints controller deletes them with the Service, and the host copy is
    what ``translators.endpoints`` restores them from."""
    if (virtual.get("spec") or {}).get("selector"):
        return []
    meta = virtual["metadata"]
    return [EnsureSynced(endpoints.EndpointsTranslator, f"{meta['namespace']}/{meta['name']}")]


def carries_host_ips(virtual: Obj, host: Obj) -> bool:
    """Whether the virtual Service shows its host copy's ClusterIPs (a re-create is done)."""
    return bool(_cluster_ips(virtual)) and _cluster_ips(virtual) == _cluster_ips(host)


def _load_balancer_patch(virtual: Obj, host: Obj) -> Obj:
    """``{"status": {"loadBalancer": ...}}`` making the virtual status the host's ({}: equal)."""
    have = (virtual.get("status") or {}).get("loadBalancer") or {}
    want = (host.get("status") or {}).get("loadBalancer") or {}
    patch = merge_patch(have, want)
    return {"status": {"loadBalancer": patch}} if patch else {}


def _recreate(virtual: Obj, spec: Obj, host: Obj | None = None) -> list[Action]:
    """Delete the virtual Service and create it again with ``spec`` (ClusterIPs are immutable).

    The new object is the old one as its author wrote it: server-set metadata
    (uid, resourceVersion, timestamps, managedFields) and status are left out.
    It is first recorded on the ``host`` copy (:data:`RECREATING`), so an
    interrupted re-create is finished rather than lost.
    A Service being deleted is left to go; one with finalizers is not touched,
    as the delete would wait for them and the create would then fail, leaving
    the tenant's Service stuck in deletion.
    """
    meta = virtual["metadata"]
    if meta.get("deletionTimestamp"):
        return []
    if meta.get("finalizers"):
        return [Warn("ClusterIPNotSynced",
                     "the Service has finalizers, so it cannot be re-created with the "
                     "ClusterIP allocated for it in the host cluster")]
    kept = {key: meta[key] for key in _RECREATED_METADATA if key in meta}
    obj = {"apiVersion": "v1", "kind": "Service", "metadata": kept, "spec": spec}
    actions: list[Action] = []
    if host is not None:
        record = json.dumps({"uid": meta.get("uid"), "object": obj}, sort_keys=True)
        host_meta = host["metadata"]
        actions.append(Patch(Side.HOST, resources.SERVICES, host_meta["name"],
                             host_meta["namespace"],
                             {"metadata": {"annotations": {RECREATING: record}}}))
    return [
        *actions,
        Delete(Side.VIRTUAL, resources.SERVICES, meta["name"], meta["namespace"], meta.get("uid")),
        Create(Side.VIRTUAL, resources.SERVICES, obj),
    ]


def recreating_uid(host: Obj) -> str | None:
    """The uid of the virtual Service being re-created from this host copy, if one is."""
    identity = naming.identity_of(host)
    return identity.uid if identity and _interrupted_recreate(host) is not None else None


def _interrupted_recreate(host: Obj) -> Obj | None:
    """The virtual Service a re-create was about to create, if this host copy's was deleted.

    Only a record of the incarnation the host copy belongs to counts (same
    uid, same name and namespace): tenants cannot write host annotations
    under our prefix, and an older record is no evidence of anything.
    """
    identity = naming.identity_of(host)
    text = ((host.get("metadata") or {}).get("annotations") or {}).get(RECREATING)
    if identity is None or not text:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    obj = record.get("object") if isinstance(record, dict) else None
    if not isinstance(obj, dict) or record.get("uid") != identity.uid:
        return None
    meta = obj.get("metadata") or {}
    if (meta.get("name"), meta.get("namespace")) != (identity.name, identity.namespace):
        return None
    return obj


def _follow_api_service(virtual: Obj, ctx: Context) -> list[Action]:
    """Give ``default/kubernetes`` the host ClusterIP of the virtual API server's Service.

    Its ports stay as the virtual API server wrote them. ``ipFamilies`` is
    left out so the virtual API server derives it from the new IP.
    """
    ip = ctx.facts.api_service_ip
    if not ip or ip == _HEADLESS or _cluster_ips(virtual) == [ip]:
        return []
    spec = {key: value for key, value in (virtual.get("spec") or {}).items()
            if key != "ipFamilies"}
    spec.update(clusterIP=ip, clusterIPs=[ip])
    return _recreate(virtual, spec)

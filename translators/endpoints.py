"""Endpoints of selector-less Services: virtual -> host (docs/acceptance.md, scenario 22).

A Service with a selector gets its Endpoints and EndpointSlices from the host's
controllers, which see the host pods the selector (pinned by
``naming.host_selector``) matches; copying the virtual ones would fight them.
A Service without a selector has hand-made endpoints: those are copied, under
the host Service's name, which is how the host ties Endpoints to a Service.

Only core/v1 Endpoints are synced, no EndpointSlices: the host's
kube-controller-manager runs the EndpointSlice mirroring controller, which
mirrors every Endpoints object whose Service exists and has no selector into
EndpointSlices (unless the Endpoints carry the label
``endpointslice.kubernetes.io/skip-mirror: "true"`` or a leader-election
annotation), and kube-proxy and DNS read those slices. So the host copy never
carries the skip-mirror label. Limitation: a tenant that writes EndpointSlices
by hand without Endpoints gets nothing on the host (nothing turns slices back
into Endpoints, in either cluster).

Addresses are copied as they are: for pods they are host pod IPs already
(the pod translator copies host pod IPs into the virtual pods). References to
pods are renamed to the host pods; references to anything else have no host
counterpart and are dropped (the address stays).

Which addresses (CVE-2021-25740): hand-written Endpoints make the host's
proxies and ingress controllers send traffic wherever they point, from their
own place in the network, so a tenant could aim its Service at another
tenant's pods, the host's system pods, its nodes or its API server. An
address reaches the host only if it is the IP of a (non-hostNetwork) host pod
of this virtual cluster in the Endpoints' own virtual namespace, or if it lies
outside every range a cluster uses internally (``addresses.INTERNAL_NETWORKS``:
private, shared, loopback, link-local, multicast, unspecified, reserved;
IPv4-mapped IPv6 counts as IPv4). Other addresses are dropped with a Warning
event on the virtual Endpoints. Consequences: an external endpoint in a
private range (a database on the company network) is refused too (use an
ExternalName Service); a pod address is re-checked whenever a host pod of
that namespace changes, so a deleted pod's IP leaves the host copy before
it can be reused by someone else's pod.
"""

from __future__ import annotations

from collections.abc import Sequence

from contract import naming, resources
from contract.resources import Obj, Resource
from contract.translator import (
    ALL_IN_NAMESPACE,
    Action,
    Context,
    Create,
    Index,
    Patch,
    Requeue,
    Side,
    Translator,
    Trigger,
    Warn,
)
from translators import addresses, services
from translators.objects import host_metadata, update_patch
from translators.referenced import ambiguous_names, name_conflict

SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"
_ADDRESS_LISTS = ("addresses", "notReadyAddresses")
PODS_BY_IP = "pods-by-ip"
SERVICE_UID = naming.PREFIX + "service-uid"
"""On the host copy: the uid of the virtual Service it was last synced under."""
_RECREATE_WAIT = 1.0
"""Seconds until Endpoints whose Service is being re-created are looked at again."""


def _key(obj: Obj) -> str:
    meta = obj["metadata"]
    return f"{meta['namespace']}/{meta['name']}"


def _service_key(service: Obj) -> list[str]:
    """A Service's Endpoints have its key: a Service change re-decides whether they sync."""
    return [_key(service)]


def _pod_ips(pod: Obj) -> list[str]:
    """IPs only this pod has (a hostNetwork pod shares its node's: never vouched for)."""
    if (pod.get("spec") or {}).get("hostNetwork"):
        return []
    status = pod.get("status") or {}
    ips = {entry["ip"] for entry in status.get("podIPs") or () if entry.get("ip")}
    if status.get("podIP"):
        ips.add(status["podIP"])
    return sorted(ips)


def _pod_namespace(pod: Obj) -> list[str]:
    """A host pod's change re-checks the Endpoints of its virtual namespace (its IP may
    have come or gone)."""
    namespace = (pod["metadata"].get("labels") or {}).get(naming.LABEL_NAMESPACE)
    return [f"{namespace}/{ALL_IN_NAMESPACE}"] if namespace else []


class EndpointsTranslator(Translator):
    kind = "endpoints"
    summary = "Sync the Endpoints of selector-less Services."
    enabled_by_default = True
    resource = resources.ENDPOINTS
    recreate_on_new_uid = False
    """Endpoints restored from the host copy (:meth:`to_virtual`) have a new uid; their
    copy must stay (it is patched to the new identity)."""

    def reads(self) -> Sequence[tuple[Side, Resource]]:
        return ((Side.VIRTUAL, resources.SERVICES), (Side.HOST, resources.PODS),
                (Side.VIRTUAL, resources.NAMESPACES), (Side.HOST, resources.SERVICES))

    def indexes(self) -> Sequence[Index]:
        return (Index(Side.HOST, resources.PODS, PODS_BY_IP, _pod_ips),)

    def triggers(self) -> Sequence[Trigger]:
        return (Trigger(Side.VIRTUAL, resources.SERVICES, _service_key),
                Trigger(Side.HOST, resources.PODS, _pod_namespace))

    def wants(self, virtual: Obj, ctx: Context) -> bool:
        """Only Endpoints of an existing selector-less Service.

        ``default/kubernetes`` is excluded: it lists the virtual API server,
        and its Service has no host copy (see ``translators.services``).
        """
        meta = virtual["metadata"]
        if (meta["name"], meta["namespace"]) == services.API_SERVICE:
            return False
        service = ctx.lookup.get(Side.VIRTUAL, resources.SERVICES, _key(virtual))
        return service is not None and not (service.get("spec") or {}).get("selector")

    def desired(self, virtual: Obj, ctx: Context) -> Obj:
        """The host Endpoints: named like the host Service, pod references renamed."""
        meta = host_metadata(virtual, ctx, self.resource.kind)
        labels = {key: value for key, value in meta["labels"].items() if key != SKIP_MIRROR}
        service = ctx.lookup.get(Side.VIRTUAL, resources.SERVICES, _key(virtual))
        if service is not None:
            meta["annotations"][SERVICE_UID] = service["metadata"].get("uid", "")
        obj: Obj = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {**meta, "labels": labels},
        }
        namespace = virtual["metadata"]["namespace"]
        subsets = [_host_subset(s, ctx, namespace) for s in virtual.get("subsets") or ()]
        subsets = [s for s in subsets if any(s.get(f) for f in _ADDRESS_LISTS)]
        if subsets:  # the API server stores no empty list (nor a subset without addresses)
            obj["subsets"] = subsets
        return obj

    def to_host(self, virtual: Obj, ctx: Context) -> list[Action]:
        """Create the host copy, unless its name may be another namespace's Service's (it
        would give that Service these addresses: see ``referenced.ambiguous_names``)."""
        meta = virtual["metadata"]
        if ambiguous_names((meta["name"],), meta["namespace"], ctx):
            return [name_conflict("Endpoints", (meta["name"],))]
        return [*_refusal(virtual, ctx), Create(Side.HOST, self.host, self.desired(virtual, ctx))]

    def to_virtual(self, host: Obj, ctx: Context) -> list[Action]:
        """The virtual Endpoints are gone: deleted by the tenant or with their Service, the
        host copy goes too. Deleted by the virtual endpoints controller while the syncer
        re-created their Service with the host's ClusterIP (it deletes the Endpoints of a
        Service that is gone, hand-written ones too), they are made again from the copy."""
        return _restoration(host, ctx) or super().to_virtual(host, ctx)

    def sync(self, virtual: Obj, host: Obj, ctx: Context) -> list[Action]:
        patch = update_patch(host, self.desired(virtual, ctx), ("subsets",))
        if not patch:
            return []
        meta = host["metadata"]
        return [*_refusal(virtual, ctx),
                Patch(Side.HOST, self.host, meta["name"], meta["namespace"], patch)]


def _restoration(host: Obj, ctx: Context) -> list[Action]:
    """Re-create the virtual Endpoints from ``host`` if their Service was re-created by the
    syncer since the copy was synced (a new uid, now showing the host's ClusterIPs); wait
    while that re-create is under way; [] otherwise."""
    identity = naming.identity_of(host)
    synced_under = (host["metadata"].get("annotations") or {}).get(SERVICE_UID)
    if identity is None or not identity.namespace or not synced_under:
        return []
    host_service = ctx.lookup.get(Side.HOST, resources.SERVICES,
                                  f"{ctx.host_namespace}/{host['metadata']['name']}")
    service = ctx.lookup.get(Side.VIRTUAL, resources.SERVICES,
                             f"{identity.namespace}/{identity.name}")
    if host_service is None:
        return []
    if service is None:
        underway = services.recreating_uid(host_service) == synced_under
        return [Requeue(_RECREATE_WAIT)] if underway else []
    recreated = (service["metadata"].get("uid") != synced_under
                 and services.carries_host_ips(service, host_service))
    if not recreated or (service.get("spec") or {}).get("selector"):
        return []
    return [Create(Side.VIRTUAL, resources.ENDPOINTS, _restored(host, ctx))]


def _restored(host: Obj, ctx: Context) -> Obj:
    """The virtual Endpoints ``host`` is the copy of (addresses the host refused stay out;
    pod references named back)."""
    meta = host["metadata"]
    annotations = meta.get("annotations") or {}
    namespace = annotations[naming.ANNOTATION_OBJECT_NAMESPACE]
    obj: Obj = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {
        "name": annotations[naming.ANNOTATION_OBJECT_NAME], "namespace": namespace,
        "labels": naming.virtual_labels(meta.get("labels"), annotations, ctx.vcluster),
        "annotations": naming.virtual_annotations(annotations)}}
    subsets = [_virtual_subset(subset, ctx, namespace) for subset in host.get("subsets") or ()]
    if subsets:
        obj["subsets"] = subsets
    return obj


def _virtual_subset(subset: Obj, ctx: Context, namespace: str) -> Obj:
    virtual = dict(subset)
    for field in _ADDRESS_LISTS:
        if subset.get(field) is not None:
            virtual[field] = [_virtual_address(a, ctx, namespace) for a in subset[field]]
    return virtual


def _virtual_address(address: Obj, ctx: Context, namespace: str) -> Obj:
    """An address with its host pod reference named back, or without it."""
    virtual = {key: value for key, value in address.items() if key != "targetRef"}
    ref = address.get("targetRef") or {}
    pod = ctx.lookup.get(Side.HOST, resources.PODS, f"{ctx.host_namespace}/{ref.get('name')}")
    identity = naming.identity_of(pod) if ref.get("kind") == "Pod" and pod else None
    if identity is not None:
        virtual["targetRef"] = {"kind": "Pod", "namespace": namespace, "name": identity.name}
    return virtual


def _refused(ip: str, ctx: Context, namespace: str) -> bool:
    """Whether ``ip`` must not reach the host (module doc: CVE-2021-25740)."""
    owners = ctx.lookup.by_index(Side.HOST, resources.PODS, PODS_BY_IP, ip)
    if any((o["metadata"].get("labels") or {}).get(naming.LABEL_NAMESPACE) == namespace
           for o in owners):
        return False
    return addresses.internal(ip) is not False  # not an IP: the API server refuses it anyway


def _refusal(virtual: Obj, ctx: Context) -> list[Action]:
    """A Warning naming the addresses left out of the host copy, if any."""
    namespace = virtual["metadata"]["namespace"]
    refused = sorted({
        address.get("ip", "")
        for subset in virtual.get("subsets") or ()
        for field in _ADDRESS_LISTS
        for address in subset.get(field) or ()
        if _refused(address.get("ip", ""), ctx, namespace)
    })
    if not refused:
        return []
    return [Warn("EndpointAddressRefused", (
        f"addresses {', '.join(refused)} are not synced to the host cluster: they are no "
        "pods of this namespace and lie in ranges clusters use internally (pods, Services, "
        "nodes, API servers, loopback, link-local)"))]


def _host_subset(subset: Obj, ctx: Context, namespace: str) -> Obj:
    """The subset with refused addresses left out (an emptied list is left out too)."""
    host = {key: value for key, value in subset.items() if key not in _ADDRESS_LISTS}
    for field in _ADDRESS_LISTS:
        kept = [_host_address(address, ctx, namespace) for address in subset.get(field) or ()
                if not _refused(address.get("ip", ""), ctx, namespace)]
        if kept or subset.get(field) == []:
            host[field] = kept
    return host


def _host_address(address: Obj, ctx: Context, namespace: str) -> Obj:
    """An address with its pod reference renamed, or without a reference to a non-pod."""
    host = {key: value for key, value in address.items() if key != "targetRef"}
    ref = address.get("targetRef") or {}
    if ref.get("kind") == "Pod" and ref.get("name"):
        host["targetRef"] = _host_pod_ref(ref, ctx, namespace)
    return host


def _host_pod_ref(ref: Obj, ctx: Context, namespace: str) -> Obj:
    """The host pod's reference. The virtual uid and resourceVersion name nothing on the
    host, so they are left out (the name alone identifies the pod in one namespace)."""
    host = {
        "kind": "Pod",
        "namespace": ctx.host_namespace,
        "name": ctx.host_name(ref["name"], ref.get("namespace") or namespace),
    }
    if "apiVersion" in ref:
        host["apiVersion"] = ref["apiVersion"]
    return host

"""Endpoints of selector-less Services: virtual -> host (ACCEPTANCE scenario 22).

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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from syncer.kube import resources
from syncer.kube.resources import Resource
from translators.base import Action, Context, Create, Patch, Side, Translator, Trigger, register
from translators.objects import host_metadata, update_patch
from translators.services import API_SERVICE

Obj = dict[str, Any]
SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"
_ADDRESS_LISTS = ("addresses", "notReadyAddresses")


def _key(obj: Obj) -> str:
    meta = obj["metadata"]
    return f"{meta['namespace']}/{meta['name']}"


def _service_key(service: Obj) -> list[str]:
    """A Service's Endpoints have its key: a Service change re-decides whether they sync."""
    return [_key(service)]


@register
class EndpointsTranslator(Translator):
    kind = "endpoints"
    resource = resources.ENDPOINTS

    def reads(self) -> Sequence[tuple[Side, Resource]]:
        return ((Side.VIRTUAL, resources.SERVICES),)

    def triggers(self) -> Sequence[Trigger]:
        return (Trigger(Side.VIRTUAL, resources.SERVICES, _service_key),)

    def wants(self, virtual: Obj, ctx: Context) -> bool:
        """Only Endpoints of an existing selector-less Service.

        ``default/kubernetes`` is excluded: it lists the virtual API server,
        and its Service has no host copy (see ``translators.services``).
        """
        meta = virtual["metadata"]
        if (meta["name"], meta["namespace"]) == API_SERVICE:
            return False
        service = ctx.lookup.get(Side.VIRTUAL, resources.SERVICES, _key(virtual))
        return service is not None and not (service.get("spec") or {}).get("selector")

    def desired(self, virtual: Obj, ctx: Context) -> Obj:
        """The host Endpoints: named like the host Service, pod references renamed."""
        meta = host_metadata(virtual, ctx, self.resource.kind)
        labels = {key: value for key, value in meta["labels"].items() if key != SKIP_MIRROR}
        obj: Obj = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {**meta, "labels": labels},
        }
        if virtual.get("subsets"):  # the API server stores no empty list: nor do we
            namespace = virtual["metadata"]["namespace"]
            obj["subsets"] = [_host_subset(s, ctx, namespace) for s in virtual["subsets"]]
        return obj

    def to_host(self, virtual: Obj, ctx: Context) -> list[Action]:
        return [Create(Side.HOST, self.host, self.desired(virtual, ctx))]

    def sync(self, virtual: Obj, host: Obj, ctx: Context) -> list[Action]:
        patch = update_patch(host, self.desired(virtual, ctx), ("subsets",))
        if not patch:
            return []
        meta = host["metadata"]
        return [Patch(Side.HOST, self.host, meta["name"], meta["namespace"], patch)]


def _host_subset(subset: Obj, ctx: Context, namespace: str) -> Obj:
    host = dict(subset)
    for field in _ADDRESS_LISTS:
        if subset.get(field) is not None:
            host[field] = [_host_address(address, ctx, namespace) for address in subset[field]]
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

"""Events: host -> virtual, so the tenant sees what happens to its objects on the host.

The scheduler, kubelets and host controllers write Events about the host
copies of the tenant's objects (``Scheduled``, ``Pulling``, ``FailedMount``,
...). Each one about an object this syncer manages becomes a virtual Event
about the virtual object, with the involved object and the message rewritten
to virtual names (acceptance scenario 29).

Which host events are ours: the involved object lives in the host namespace,
is of a kind in :data:`INVOLVED_RESOURCES`, is in the engine's host cache of
that kind with our ``managed-by`` label and identity annotations of the same
kind (a pod's token Secret stands for the Pod, not for a virtual Secret), and
is the same incarnation the event names (uid, when the event has one). Host
events carry no labels of ours, so the host watch is unfiltered within the
host namespace and the filtering happens here.

Virtual events are never deleted by the syncer (see
:meth:`EventTranslator.to_host`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from contract import naming, resources
from contract.resources import Obj, Resource
from contract.translator import (
    Action,
    Context,
    Create,
    Direction,
    Patch,
    Side,
    Translator,
    dependency_ref,
)
from translators.objects import fields_patch

INVOLVED_RESOURCES: Mapping[str, Resource] = {
    r.kind: r
    for r in (
        resources.PODS, resources.SERVICES, resources.CONFIGMAPS, resources.SECRETS,
        resources.PVCS, resources.ENDPOINTS,
    )
}
"""Kinds whose host events are copied, by ``involvedObject.kind`` (the engine caches these)."""

_COPIED = (
    "reason", "type", "count", "firstTimestamp", "lastTimestamp", "eventTime", "source",
    "reportingComponent", "reportingInstance", "series", "action",
)
_CHANGING = ("count", "lastTimestamp", "series", "message")
"""What a host event recorder updates on a repeated event; everything else is fixed."""

_SUFFIX_HEX = 16
_MAX_NAME = 253


def virtual_event_name(involved_name: str, host_event_name: str) -> str:
    """Name of the virtual copy: ``<virtual involved name>.<16 hex of sha256(host event name)>``.

    Why not reuse the host event's suffix: names are never parsed back
    (NAMING.md), and only client-go's legacy recorder names events
    ``<involved>.<hex timestamp>``; other writers pick any name or use
    generateName, so there may be no suffix to find. Hashing the *full* host
    name is stable across restarts (no state to keep), unique per host event
    (64 bits), and keeps the tenant-readable prefix. The prefix is cut so the
    result fits 253 characters, without leaving a ``.`` or ``-`` before the dot.
    """
    suffix = hashlib.sha256(host_event_name.encode()).hexdigest()[:_SUFFIX_HEX]
    prefix = involved_name[: _MAX_NAME - _SUFFIX_HEX - 1].rstrip(".-")
    return f"{prefix}.{suffix}"


class _Target(NamedTuple):
    """The virtual object a host object reference stands for (always namespaced here)."""

    name: str
    namespace: str
    uid: str


def _host_object(reference: Obj, ctx: Context) -> Obj | None:
    """The cached host object a reference names, if it is ours and the incarnation it names."""
    resource = INVOLVED_RESOURCES.get(reference.get("kind") or "")
    name = reference.get("name")
    if resource is None or not name or reference.get("namespace") != ctx.host_namespace:
        return None
    host = ctx.lookup.get(Side.HOST, resource, f"{ctx.host_namespace}/{name}")
    if host is None or not naming.is_managed(host, ctx.vcluster):
        return None
    earlier = reference.get("uid") and reference["uid"] != host["metadata"].get("uid")
    return None if earlier else host


def _target(reference: Obj, ctx: Context) -> _Target | None:
    """The virtual object behind a host object reference, or None if the object is not ours.

    The identity must be of the reference's kind: a pod's token Secret
    carries the pod's identity, and there is no virtual Secret to point at.
    """
    host = _host_object(reference, ctx)
    identity = naming.identity_of(host) if host is not None else None
    if identity is None or identity.kind != reference["kind"] or not identity.namespace:
        return None
    return _Target(identity.name, identity.namespace, identity.uid)


def _virtual_reference(reference: Obj, target: _Target) -> Obj:
    """The reference rewritten to the virtual object; host resourceVersion dropped.

    ``fieldPath`` (``spec.containers{web}``) names no host object and is kept.
    """
    virtual: Obj = {
        "kind": reference["kind"],
        "name": target.name,
        "namespace": target.namespace,
        "uid": target.uid,
    }
    virtual.update({k: reference[k] for k in ("apiVersion", "fieldPath") if reference.get(k)})
    return virtual


def _replace_all(text: str, replacements: Mapping[str, str]) -> str:
    """Replace every key of ``replacements`` in one pass, longest first.

    One pass, so a virtual name that happens to contain the host namespace is
    not rewritten again; longest first, so a host name wins over a host
    namespace that is a part of it.
    """
    pattern = "|".join(re.escape(k) for k in sorted(replacements, key=len, reverse=True))
    return re.sub(pattern, lambda match: replacements[match.group(0)], text)


def _virtual_event(host: Obj, ctx: Context) -> Obj | None:
    """The virtual copy of a host event, or None if it is not about an object of ours."""
    involved: Obj = host.get("involvedObject") or {}
    target = _target(involved, ctx)
    if target is None:
        return None
    replacements = {involved["name"]: target.name, ctx.host_namespace: target.namespace}
    event: Obj = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": virtual_event_name(target.name, host["metadata"]["name"]),
            "namespace": target.namespace,
        },
        "involvedObject": _virtual_reference(involved, target),
    }
    event.update({k: host[k] for k in _COPIED if host.get(k) is not None})
    related: Obj = host.get("related") or {}
    related_target = _target(related, ctx)
    if related_target is not None:
        event["related"] = _virtual_reference(related, related_target)
        replacements.setdefault(related["name"], related_target.name)
    if host.get("message") is not None:
        event["message"] = _replace_all(host["message"], replacements)
    return event


class EventTranslator(Translator):
    """Copies host events about synced objects into the virtual cluster (scenario 29)."""

    kind = "events"
    summary = "Copy host events about synced objects, renamed to virtual names."
    enabled_by_default = True
    manages_host_objects = False
    direction = Direction.FROM_HOST
    resource = resources.EVENTS
    recreate_on_new_uid = False

    def reads(self) -> Sequence[tuple[Side, Resource]]:
        """The host caches of every involved kind: they tell which host objects are ours."""
        return tuple((Side.HOST, r) for r in INVOLVED_RESOURCES.values())

    def host_label_selector(self, ctx: Context) -> str:
        """Every event of the host namespace: host events carry no labels of ours."""
        return ""

    def host_dependencies(self, host: Obj) -> list[str]:
        """The involved and related objects: whether the event is ours is read from them."""
        return [
            dependency_ref(ref["kind"], ref.get("namespace") or "", ref["name"])
            for ref in (host.get("involvedObject") or {}, host.get("related") or {})
            if ref.get("kind") in INVOLVED_RESOURCES and ref.get("name")
        ]

    def virtual_key(self, host: Obj, ctx: Context) -> str | None:
        event = _virtual_event(host, ctx)
        if event is None:
            return None
        meta = event["metadata"]
        return f"{meta['namespace']}/{meta['name']}"

    def wants(self, source: Obj, ctx: Context) -> bool:
        return self.virtual_key(source, ctx) is not None

    def to_virtual(self, host: Obj, ctx: Context) -> list[Action]:
        event = _virtual_event(host, ctx)
        return [] if event is None else [Create(Side.VIRTUAL, self.resource, event)]

    def sync(self, virtual: Obj, host: Obj, ctx: Context) -> list[Action]:
        """Follow a repeated host event: count, lastTimestamp, series and message."""
        desired = _virtual_event(host, ctx)
        if desired is None:
            return []
        # The API server returns unset timestamps as null ("lastTimestamp": null on every
        # event the events.k8s.io recorders write): null is unset, not a field to remove
        # (that patch changed nothing and was sent for every copy, twice per pod under
        # load and once per event on every restart; vcsync bench load).
        present = {k: v for k, v in virtual.items() if v is not None}
        patch = fields_patch(present, desired, _CHANGING)
        if not patch:
            return []
        meta = virtual["metadata"]
        return [Patch(Side.VIRTUAL, self.resource, meta["name"], meta["namespace"], patch)]

    def to_host(self, virtual: Obj, ctx: Context) -> list[Action]:
        """Never delete a virtual event.

        Reaching here means either the host event expired (host event TTL) or
        its object is gone, or the event was never a copy: the tenant's own
        controllers and the syncer's Warning events live in the same virtual
        namespaces, and copies cannot be told from them without marking them.
        The virtual API server expires all events by its own ``--event-ttl``,
        so nothing accumulates.
        """
        return []

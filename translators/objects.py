"""Building host objects' metadata and computing minimal merge patches.

Why here and not in each kind: every toHost kind writes the same ownership
metadata and must compute "what differs" the same way; one implementation
keeps the rules of docs/naming.md in one place and keeps idle syncs write-free.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any

from contract import naming
from contract.resources import Obj
from contract.translator import Action, Context, Create, Patch, Side, Translator


def host_metadata(virtual: Obj, ctx: Context, kind: str) -> Obj:
    """Name, namespace, labels and annotations of the host copy of ``virtual``."""
    meta = virtual["metadata"]
    namespace = meta.get("namespace")
    labels = meta.get("labels") or {}
    identity = naming.VirtualIdentity(meta["name"], namespace, meta.get("uid", ""), kind)
    annotations = naming.host_annotations(meta.get("annotations"), identity)
    annotations.update(naming.rewritten_labels_annotation(labels, ctx.vcluster))
    return {
        "name": ctx.host_name(meta["name"], namespace) if namespace else meta["name"],
        "namespace": ctx.host_namespace,
        "labels": naming.host_labels(labels, ctx.vcluster, namespace),
        "annotations": annotations,
    }


def merge_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> Obj:
    """The JSON merge patch (RFC 7386) that turns ``current`` into ``desired``.

    Lists are replaced whole (merge-patch semantics); keys missing from
    ``desired`` are removed with null. Empty result: nothing to write.
    """
    patch: Obj = {}
    for key, want in desired.items():
        have = current.get(key)
        if isinstance(want, dict) and isinstance(have, dict):
            sub = merge_patch(have, want)
            if sub:
                patch[key] = sub
        elif key not in current or not same_json(have, want):
            patch[key] = want
    for key in current:
        if key not in desired:
            patch[key] = None
    return patch


def same_json(a: Any, b: Any) -> bool:
    """JSON equality: unlike ``==``, ``True`` is not ``1`` and ``1.0`` is not ``1``."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def fields_patch(current: Obj, desired: Obj, fields: Iterable[str]) -> Obj:
    """Merge patch restricted to top-level ``fields`` (e.g. ``data``, ``spec``)."""
    names = tuple(fields)
    return merge_patch(
        {f: current[f] for f in names if f in current},
        {f: desired[f] for f in names if f in desired},
    )


def metadata_patch(current: Obj, desired: Obj) -> Obj:
    """Patch of labels and annotations; annotations other host controllers added survive."""
    have, want = current.get("metadata", {}), desired["metadata"]
    patch: Obj = {}
    labels = merge_patch(have.get("labels") or {}, want.get("labels") or {})
    if labels:
        patch["labels"] = labels
    annotations = naming.annotation_patch(want.get("annotations") or {}, have.get("annotations"))
    if annotations:
        patch["annotations"] = annotations
    return {"metadata": patch} if patch else {}


def update_patch(current: Obj, desired: Obj, fields: Iterable[str]) -> Obj:
    """Everything that must change on the host copy: metadata plus ``fields``."""
    return {**metadata_patch(current, desired), **fields_patch(current, desired, fields)}


class SpecCopy(Translator):
    """A toHost kind whose host copy is a function of the virtual object (:meth:`desired`)
    and whose metadata and ``spec`` are all that is kept in step (NetworkPolicies,
    PodDisruptionBudgets): the kind states only how the copy looks."""

    @abstractmethod
    def desired(self, virtual: Obj, ctx: Context) -> Obj: ...

    def to_host(self, virtual: Obj, ctx: Context) -> list[Action]:
        return [Create(Side.HOST, self.host, self.desired(virtual, ctx))]

    def sync(self, virtual: Obj, host: Obj, ctx: Context) -> list[Action]:
        patch = update_patch(host, self.desired(virtual, ctx), ("spec",))
        if not patch:
            return []
        meta = host["metadata"]
        return [Patch(Side.HOST, self.host, meta["name"], meta["namespace"], patch)]

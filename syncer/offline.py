"""The syncer's world read from manifest files instead of two clusters (``vcsync translate``).

Why: translators only read the world through :class:`contract.translator.Lookup`
and ``ctx.values``. Answering that protocol from the objects of some input
manifests lets the real translators show what they would create, with no
cluster. The indexes the translators declare are applied for real, so "is
this ConfigMap referenced by a pod?" sees the pods of the same input.

The input is read the way ``kubectl create -f`` reads it: multi-document
YAML, ``kind: List`` (and typed ``...List``) items flattened, namespaced
objects without a namespace placed in ``default``, and the fields the API
server ignores on create (``status``, ``metadata.deletionTimestamp``) dropped,
so an object pasted from ``kubectl get -o yaml`` is translated as if created now.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import yaml

from contract import resources as resources_mod
from contract.resources import Obj, Resource
from contract.translator import Index, IndexFunc, Side, Translator
from syncer.store import object_key
from syncer.yamlread import ManifestLoader, position

GroupKind = tuple[str, str]

_IGNORED_ON_CREATE = ("status",)
_IGNORED_METADATA_ON_CREATE = ("deletionTimestamp", "deletionGracePeriodSeconds")
_CLUSTER_SCOPED_KINDS = frozenset({
    "APIService", "CertificateSigningRequest", "ClusterRole", "ClusterRoleBinding",
    "CSIDriver", "CSINode", "MutatingWebhookConfiguration", "RuntimeClass",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration", "VolumeAttachment",
})
"""Cluster-scoped kinds the syncer has no :class:`Resource` for (so they get no namespace)."""


class ManifestError(ValueError):
    """An input the API server would reject outright; the message says which document."""


# -- reading manifests ---------------------------------------------------------


def read_manifests(text: str, source: str) -> list[Obj]:
    """Every object of a YAML stream, lists flattened, in order (empty documents skipped)."""
    try:
        documents = list(yaml.load_all(text, Loader=ManifestLoader))
    except yaml.YAMLError as err:
        raise ManifestError(f"{source}: invalid YAML{_where(err)}") from None
    objects: list[Obj] = []
    for number, document in enumerate(documents, 1):
        if document is not None:
            objects += _flatten(document, f"{source}: document {number}")
    return objects


def _where(err: yaml.YAMLError) -> str:
    found = position(err)
    return f" at {found}" if found else f": {err}"


def _flatten(document: object, where: str) -> list[Obj]:
    """The document itself, or the items of a list (a typed list's items inherit its kind)."""
    if not isinstance(document, dict):
        raise ManifestError(f"{where}: expected an object, got {type(document).__name__}")
    kind, items = document.get("kind"), document.get("items")
    if not (isinstance(kind, str) and kind.endswith("List") and isinstance(items, list)):
        _check(document, where)
        return [document]
    inherited = {} if kind == "List" else {"apiVersion": document.get("apiVersion"),
                                           "kind": kind.removesuffix("List")}
    objects: list[Obj] = []
    for number, item in enumerate(items, 1):
        if isinstance(item, dict):
            item = {**{k: v for k, v in inherited.items() if v}, **item}
        objects += _flatten(item, f"{where}, item {number}")
    return objects


def _check(obj: Obj, where: str) -> None:
    """What every object needs before anything can be said about it."""
    for field in ("apiVersion", "kind"):
        if not isinstance(obj.get(field), str) or not obj[field]:
            raise ManifestError(f"{where}: missing {field}")
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        hint = " (generateName is not supported)" if isinstance(meta, dict) and (
            meta.get("generateName")) else ""
        raise ManifestError(f"{where}: {obj['kind']} without metadata.name{hint}")
    _check_json(obj, where, "")


def _check_json(value: object, where: str, path: str) -> None:
    """Manifests are JSON in YAML clothes: no binary, sets or non-string keys."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ManifestError(f"{where}: key {key!r} at {path or 'top level'} "
                                    "is not a string (quote it)")
            _check_json(item, where, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for number, item in enumerate(value):
            _check_json(item, where, f"{path}[{number}]")
    elif value is not None and not isinstance(value, str | int | float | bool):
        raise ManifestError(f"{where}: {path} is a {type(value).__name__}, not a JSON value")


def group_kind(obj: Obj) -> GroupKind:
    """(API group, kind) of an object: ``apps/v1`` Deployment -> ("apps", "Deployment")."""
    group, _, _ = str(obj.get("apiVersion", "")).rpartition("/")
    return group, str(obj.get("kind", ""))


def known_resources(translators: Iterable[type[Translator]]) -> list[Resource]:
    """The syncer's resource table plus every resource the given translators name."""
    found = [r for r in vars(resources_mod).values() if isinstance(r, Resource)]
    for cls in translators:
        found += [r for r in (cls.resource, cls.host_resource) if r is not None]
    return found


def as_created(obj: Obj, known: Iterable[Resource]) -> Obj:
    """A copy as the API server would store it on create: namespace settled, status dropped."""
    created = {k: copy.deepcopy(v) for k, v in obj.items() if k not in _IGNORED_ON_CREATE}
    meta = created["metadata"]
    for field in _IGNORED_METADATA_ON_CREATE:
        meta.pop(field, None)
    if _namespaced(group_kind(obj), known):
        meta["namespace"] = meta.get("namespace") or "default"
    else:
        meta.pop("namespace", None)
    return created


def _namespaced(gk: GroupKind, known: Iterable[Resource]) -> bool:
    for resource in known:
        if (resource.group, resource.kind) == gk:
            return resource.namespaced
    return gk[1] not in _CLUSTER_SCOPED_KINDS


# -- the lookup ---------------------------------------------------------------------


class ManifestLookup:
    """A :class:`contract.translator.Lookup` over objects given up front (no I/O, no watches).

    Objects are filed by side and (group, kind), so any kind can be added
    without a resource table. ``by_index`` answers only indexes declared at
    construction and raises ``KeyError`` for others, as the engine's stores
    do: a translator reading an index it never declared is a bug either way.
    """

    def __init__(self, indexes: Iterable[Index] = ()) -> None:
        self._objects: dict[tuple[Side, str, str], dict[str, Obj]] = {}
        self._indexes: dict[tuple[Side, str, str, str], IndexFunc] = {
            (i.side, i.resource.group, i.resource.kind, i.name): i.func for i in indexes
        }

    def add(self, side: Side, obj: Obj) -> None:
        """File ``obj`` (the last object added under a key wins, as with ``kubectl apply``)."""
        self._objects.setdefault((side, *group_kind(obj)), {})[object_key(obj)] = obj

    def _all(self, side: Side, resource: Resource) -> Iterable[Obj]:
        return self._objects.get((side, resource.group, resource.kind), {}).values()

    def get(self, side: Side, resource: Resource, key: str) -> Obj | None:
        return self._objects.get((side, resource.group, resource.kind), {}).get(key)

    def by_index(self, side: Side, resource: Resource, index: str, value: str) -> list[Obj]:
        func = self._indexes.get((side, resource.group, resource.kind, index))
        if func is None:
            raise KeyError(f"no index {index!r} was declared on {side} {resource.kind} objects")
        return [obj for obj in self._all(side, resource) if value in func(obj)]

    def in_namespace(self, side: Side, resource: Resource, namespace: str) -> list[Obj]:
        return [
            obj for obj in self._all(side, resource)
            if obj.get("metadata", {}).get("namespace") == namespace
        ]

"""An in-memory cache of one kind on one cluster, with indexers.

Invariants:
- objects are plain dicts as parsed from the API server, minus
  ``metadata.managedFields`` (often half of an object's bytes and never read);
- stored objects are immutable by convention: nothing mutates a dict after
  :meth:`Store.upsert`; readers may hold on to them, writers build new dicts;
- every index is consistent with the objects after each call returns: an
  object's index values are computed when it is stored and *remembered*, so
  an index function that reads other state (an Event's owner depends on the
  cache of its involved object) can file an unchanged object anew
  (:meth:`Store.reindex`, or any update) without leaving stale entries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from contract.resources import Obj

IndexFunc = Callable[[Obj], Iterable[str]]
NAMESPACE_INDEX = "namespace"


def object_key(obj: Obj) -> str:
    """``namespace/name`` for namespaced objects, ``name`` for cluster-scoped ones."""
    meta = obj.get("metadata", {})
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name', '')}" if namespace else str(meta.get("name", ""))


def strip(obj: Obj) -> Obj:
    """Drop ``managedFields`` from a freshly parsed object (before anyone sees it)."""
    meta = obj.get("metadata")
    if meta and "managedFields" in meta:
        del meta["managedFields"]
    return obj


def _namespace_of(obj: Obj) -> Iterable[str]:
    namespace = obj.get("metadata", {}).get("namespace")
    return (namespace,) if namespace else ()


@dataclass(frozen=True)
class Change:
    """What a list replacement changed: ``old`` is None for adds, ``new`` None for deletes."""

    key: str
    old: Obj | None
    new: Obj | None


class Store:
    """Objects by key, plus named indexes ``value -> {keys}``."""

    def __init__(self) -> None:
        self._objects: dict[str, Obj] = {}
        self._index_funcs: dict[str, IndexFunc] = {NAMESPACE_INDEX: _namespace_of}
        self._indexes: dict[str, dict[str, set[str]]] = {NAMESPACE_INDEX: {}}
        self._values: dict[str, dict[str, frozenset[str]]] = {NAMESPACE_INDEX: {}}
        """index name -> key -> the values the object was filed under."""

    def __len__(self) -> int:
        return len(self._objects)

    def __iter__(self) -> Iterator[Obj]:
        return iter(list(self._objects.values()))

    def list_keys(self) -> list[str]:
        return list(self._objects)

    def get(self, key: str) -> Obj | None:
        return self._objects.get(key)

    def add_indexer(self, name: str, func: IndexFunc) -> None:
        """Register an index (e.g. "pods referencing ConfigMap X"); built from current objects."""
        self._index_funcs[name] = func
        self._indexes[name] = {}
        self._values[name] = {}
        for key, obj in self._objects.items():
            self._index(name, key, obj)

    def by_index(self, name: str, value: str) -> list[Obj]:
        keys = self._indexes[name].get(value, ())
        return [self._objects[k] for k in keys]

    def index_keys(self, name: str, value: str) -> list[str]:
        return list(self._indexes[name].get(value, ()))

    def upsert(self, obj: Obj) -> Obj | None:
        """Insert or replace; return the previous object."""
        key = object_key(obj)
        old = self._objects.get(key)
        self._objects[key] = obj
        for name in self._index_funcs:
            self._index(name, key, obj)
        return old

    def reindex(self, key: str) -> None:
        """File the object under ``key`` again under its current index values (if stored)."""
        obj = self._objects.get(key)
        if obj is not None:
            for name in self._index_funcs:
                self._index(name, key, obj)

    def delete(self, key: str) -> Obj | None:
        """Remove; return the removed object (None if absent)."""
        old = self._objects.pop(key, None)
        if old is not None:
            for name in self._index_funcs:
                self._index(name, key, None)
        return old

    def replace(self, items: Iterable[Obj]) -> list[Change]:
        """Make the store equal ``items`` (a fresh LIST); return what changed.

        Unchanged objects (same resourceVersion) produce no change, so a
        re-list after a broken watch does not re-queue the whole world.
        """
        seen: set[str] = set()
        changes: list[Change] = []
        for obj in items:
            key = object_key(obj)
            seen.add(key)
            old = self._objects.get(key)
            if old is None or _version(old) != _version(obj):
                self.upsert(obj)
                changes.append(Change(key, old, obj))
        for key in [k for k in self._objects if k not in seen]:
            changes.append(Change(key, self.delete(key), None))
        return changes

    def _index(self, name: str, key: str, new: Obj | None) -> None:
        """Move ``key`` from the values it was filed under to those of ``new``."""
        values = self._values[name]
        before = values.pop(key, frozenset())
        after = frozenset(self._index_funcs[name](new)) if new is not None else frozenset()
        if after:
            values[key] = after
        index = self._indexes[name]
        for value in before - after:
            keys = index.get(value)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del index[value]
        for value in after - before:
            index.setdefault(value, set()).add(key)


def _version(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("resourceVersion", ""))

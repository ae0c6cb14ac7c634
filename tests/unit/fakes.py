"""In-memory stand-ins for what translators read (pure unit tests need no server)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

from contract import resources
from contract.resources import Obj, Resource
from contract.translator import Index, Side


class FakeLookup:
    """In-memory caches: objects by (side, resource, key); indexes by applying ``funcs``.

    Indexes that were never declared raise KeyError, so a translator that reads
    an index it did not register fails its tests.
    """

    def __init__(self, pods: list[Obj] | None = None, funcs: list[Index] | None = None) -> None:
        self.objects: dict[tuple[Side, Resource], dict[str, Obj]] = {}
        self.funcs = {(i.side, i.resource, i.name): i.func for i in funcs or ()}
        self.queries: list[tuple[Side, Resource, str, str]] = []
        for pod in pods or ():
            self.add(Side.VIRTUAL, resources.PODS, pod)

    def add(self, side: Side, resource: Resource, obj: Obj) -> None:
        meta = obj["metadata"]
        key = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
        self.objects.setdefault((side, resource), {})[key] = obj

    def get(self, side: Side, resource: Resource, key: str) -> Obj | None:
        return self.objects.get((side, resource), {}).get(key)

    def by_index(self, side: Side, resource: Resource, index: str, value: str) -> list[Obj]:
        self.queries.append((side, resource, index, value))
        func = self.funcs[(side, resource, index)]
        return [o for o in self.objects.get((side, resource), {}).values() if value in func(o)]

    def in_namespace(self, side: Side, resource: Resource, namespace: str) -> list[Obj]:
        return [
            o for o in self.objects.get((side, resource), {}).values()
            if o["metadata"].get("namespace") == namespace
        ]


class NoLookup:
    """For code that must not read any cache: every read fails the test."""

    def get(self, side: Side, resource: Resource, key: str) -> Obj | None:
        raise AssertionError("unexpected cache read")

    def by_index(self, side: Side, resource: Resource, index: str, value: str) -> list[Obj]:
        raise AssertionError("unexpected cache read")

    def in_namespace(self, side: Side, resource: Resource, namespace: str) -> list[Obj]:
        raise AssertionError("unexpected cache read")


@contextmanager
def unchanged(*objs: Obj) -> Iterator[None]:
    """Fail if any of ``objs`` (cached objects, shared) is mutated inside the block."""
    before = copy.deepcopy(objs)
    yield
    assert objs == before, "a translator mutated its input"

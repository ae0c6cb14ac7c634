"""The write path's view of an API server, and an in-memory stand-in for unit tests.

Why a protocol: :class:`syncer.writer.Writer`, :class:`syncer.writer.StatusBatcher`
and :class:`syncer.writer.EventRecorder` need six calls of
:class:`syncer.kube.client.KubeClient`, not HTTP; typing them with :class:`Api`
lets their own logic (guards, coalescing, retries, deduplication) be unit-tested
against :class:`MemoryApi` instead of a ``cast`` fake.

:class:`MemoryApi` is a dictionary with the answers of an API server's
storage for those calls (uids, resourceVersions, AlreadyExists, NotFound, uid
preconditions, JSON merge patches, replacing PUTs) and a log of what was asked. It is not an
API server: no admission, defaulting, validation, watches or strategic
merge. Behaviour tests keep running against real control planes.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any, Protocol

from contract.resources import Obj, Resource
from syncer.kube.client import PatchType
from syncer.kube.errors import AlreadyExists, Conflict, NotFound


class Api(Protocol):
    """The calls the write path makes (signatures as in ``KubeClient``)."""

    async def get(self, res: Resource, name: str, namespace: str | None = None) -> Obj: ...

    async def create(
        self, res: Resource, obj: Obj | bytes, namespace: str | None = None, *,
        retry_throttled: bool = True,
    ) -> Obj: ...

    async def create_subresource(
        self, res: Resource, name: str, subresource: str, body: Obj, namespace: str | None = None
    ) -> Obj: ...

    async def patch(
        self, res: Resource, name: str, patch: Obj | bytes, namespace: str | None = None, *,
        subresource: str | None = None, patch_type: PatchType = "merge", force: bool = False,
    ) -> Obj: ...

    async def replace(
        self, res: Resource, name: str, obj: Obj, namespace: str | None = None,
        *, subresource: str | None = None,
    ) -> Obj: ...

    async def delete(
        self, res: Resource, name: str, namespace: str | None = None, *,
        grace_period: int | None = None, uid: str | None = None,
        resource_version: str | None = None, propagation: str | None = None,
    ) -> Obj: ...


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, ``None`` removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


class MemoryApi:
    """An in-memory :class:`Api` (see the module docstring for what it is not)."""

    def __init__(self) -> None:
        self.objects: dict[str, Obj] = {}
        """Stored objects by path (``Resource.path(namespace, name)``)."""
        self.calls: list[str] = []
        """``VERB path`` of every call, in order."""
        self._versions = itertools.count(1)

    def _stored(self, verb: str, path: str) -> Obj:
        self.calls.append(f"{verb} {path}")
        found = self.objects.get(path)
        if found is None:
            raise NotFound(404, {"reason": "NotFound", "message": f"{path} not found"},
                           verb, path)
        return found

    def _version(self, obj: Obj) -> Obj:
        meta = obj.setdefault("metadata", {})
        meta["resourceVersion"] = str(next(self._versions))
        return obj

    async def get(self, res: Resource, name: str, namespace: str | None = None) -> Obj:
        return copy.deepcopy(self._stored("GET", res.path(namespace, name)))

    async def create(
        self, res: Resource, obj: Obj | bytes, namespace: str | None = None, *,
        retry_throttled: bool = True,
    ) -> Obj:
        if not isinstance(obj, dict):
            raise TypeError("MemoryApi stores decoded objects only")
        stored = self._version(copy.deepcopy(obj))
        meta = stored["metadata"]
        meta.setdefault("name", f"{meta.get('generateName', '')}{meta['resourceVersion']}")
        path = res.path(namespace, meta["name"])
        self.calls.append(f"POST {path}")
        if path in self.objects:
            raise AlreadyExists(409, {"reason": "AlreadyExists"}, "POST", path)
        stored["metadata"].setdefault("uid", f"uid-{stored['metadata']['resourceVersion']}")
        self.objects[path] = stored
        return copy.deepcopy(stored)

    async def create_subresource(
        self, res: Resource, name: str, subresource: str, body: Obj, namespace: str | None = None
    ) -> Obj:
        self._stored("POST", res.path(namespace, name))
        self.calls[-1] += f"/{subresource}"
        return copy.deepcopy(body)

    async def patch(
        self, res: Resource, name: str, patch: Obj | bytes, namespace: str | None = None, *,
        subresource: str | None = None, patch_type: PatchType = "merge", force: bool = False,
    ) -> Obj:
        if patch_type != "merge" or not isinstance(patch, dict):
            raise TypeError("MemoryApi applies JSON merge patches only")
        path = res.path(namespace, name)
        self._stored("PATCH", path)
        self.calls[-1] = f"PATCH {res.path(namespace, name, subresource)}"
        self.objects[path] = self._version(merge_patch(self.objects[path], patch))
        return copy.deepcopy(self.objects[path])

    async def replace(
        self, res: Resource, name: str, obj: Obj, namespace: str | None = None,
        *, subresource: str | None = None,
    ) -> Obj:
        path = res.path(namespace, name)
        stored = self._stored("PUT", path)
        self.calls[-1] = f"PUT {res.path(namespace, name, subresource)}"
        uid = stored["metadata"].get("uid")
        self.objects[path] = self._version(copy.deepcopy(obj))
        self.objects[path]["metadata"]["uid"] = uid
        return copy.deepcopy(self.objects[path])

    async def delete(
        self, res: Resource, name: str, namespace: str | None = None, *,
        grace_period: int | None = None, uid: str | None = None,
        resource_version: str | None = None, propagation: str | None = None,
    ) -> Obj:
        path = res.path(namespace, name)
        stored = self._stored("DELETE", path)
        if uid is not None and stored["metadata"].get("uid") != uid:
            raise Conflict(409, {"reason": "Conflict", "message": "uid precondition failed"},
                           "DELETE", path)
        return self.objects.pop(path)

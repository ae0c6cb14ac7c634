"""The shared shape of ConfigMaps and Secrets: synced while a pod references them.

vCluster's default: a ConfigMap or Secret reaches the host only while some
virtual pod uses it (volumes, env, envFrom, image pull secrets, CSI secret
refs), because most of them (tenants' controllers' state, Helm release
secrets) mean nothing to the host and would only leak data and load. With
``all: true`` every object of the kind is synced.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Sequence
from typing import ClassVar

from contract import naming, resources
from contract.options import Referenced
from contract.resources import Obj, Resource
from contract.translator import (
    Action,
    Context,
    Create,
    Index,
    IndexFunc,
    Patch,
    Side,
    Translator,
    Trigger,
    Warn,
)
from translators.objects import host_metadata, update_patch

NAME_CONFLICT = "NameConflict"


def ambiguous_names(names: Iterable[str], namespace: str, ctx: Context) -> list[str]:
    """Those of ``names`` (objects of virtual ``namespace``) whose host name is also that of
    an object another existing virtual namespace may hold (``naming.colliding_names``).

    Why refuse them: a host pod mounts whatever sits under the host name, so a
    pod in ``b-x-c`` naming ConfigMap ``a`` would read ConfigMap ``a-x-b`` of
    namespace ``c`` (and the other way round), even when its own object does
    not exist yet. Refusing both sides whenever the other namespace exists
    closes that for every order of events; it costs only names containing ``-x-``.
    """
    return sorted(
        name for name in set(names)
        if any(ctx.lookup.get(Side.VIRTUAL, resources.NAMESPACES, other) is not None
               for _, other in naming.colliding_names(name, namespace))
    )


def name_conflict(kind: str, names: Sequence[str]) -> Warn:
    """The Warning for ``ambiguous_names`` (virtual names only)."""
    return Warn(NAME_CONFLICT, (
        f"not synced: in the host cluster, {kind} {', '.join(names)} would have the name of "
        "an object of another namespace (names and namespaces containing '-x-' can "
        "collide); rename it"))


class ReferencedTranslator(Translator):
    """Subclasses set ``kind``, ``resource``, ``index``, ``data_fields`` and ``references``."""

    enabled_by_default = True
    options_type = Referenced
    index: ClassVar[str]
    data_fields: ClassVar[tuple[str, ...]]

    @abstractmethod
    def references(self, pod: Obj) -> list[str]:
        """Keys (``namespace/name``) of the objects of this kind that ``pod`` uses."""

    @property
    def sync_all(self) -> bool:
        return bool(self.options.get("all", False))

    def referrers(self) -> Sequence[tuple[Resource, str, IndexFunc]]:
        """Virtual kinds whose objects make one of ours needed: (kind, index name, keys)."""
        return ((resources.PODS, self.index, self.references),)

    def indexes(self) -> Sequence[Index]:
        return tuple(Index(Side.VIRTUAL, res, name, keys) for res, name, keys in self.referrers())

    def reads(self) -> Sequence[tuple[Side, Resource]]:
        return ((Side.VIRTUAL, resources.NAMESPACES),)

    def triggers(self) -> Sequence[Trigger]:
        return tuple(Trigger(Side.VIRTUAL, res, keys) for res, _, keys in self.referrers())

    def wants(self, virtual: Obj, ctx: Context) -> bool:
        if self.sync_all:
            return True
        meta = virtual["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        return any(
            ctx.lookup.by_index(Side.VIRTUAL, res, name, key) for res, name, _ in self.referrers()
        )

    def desired(self, virtual: Obj, ctx: Context) -> Obj:
        """The host copy: translated metadata plus the data fields, verbatim."""
        obj: Obj = {
            "apiVersion": "v1",
            "kind": self.resource.kind,
            "metadata": host_metadata(virtual, ctx, self.resource.kind),
        }
        obj.update({f: virtual[f] for f in self.data_fields if f in virtual})
        return obj

    def to_host(self, virtual: Obj, ctx: Context) -> list[Action]:
        """Create the host copy, unless its host name may be another namespace's object's."""
        meta = virtual["metadata"]
        if ambiguous_names((meta["name"],), meta["namespace"], ctx):
            return [name_conflict(self.resource.kind, (meta["name"],))]
        return [Create(Side.HOST, self.host, self.desired(virtual, ctx))]

    def sync(self, virtual: Obj, host: Obj, ctx: Context) -> list[Action]:
        """Virtual state wins: host-side edits of data or labels are overwritten."""
        patch = update_patch(host, self.desired(virtual, ctx), self.data_fields)
        if not patch:
            return []
        meta = host["metadata"]
        return [Patch(Side.HOST, self.host, meta["name"], meta["namespace"], patch)]

"""PriorityClasses: virtual -> host, cluster-scoped (``sync.toHost.priorityClasses``).

PriorityClasses are cluster-scoped on the host by nature, so the host copy
of class ``name`` is ``vcsync-<name>-x-<hostns>-x-<vc>`` (the host namespace
makes it unique among all tenants); ``translators.podspec`` gives host pods
the same name. What a tenant may not do through it:

- outrank the host's system classes: ``value`` is capped at
  :data:`MAX_VALUE` (the API server already refuses more for classes not
  named ``system-``; the virtual cluster's own ``system-*`` classes are not
  synced at all, and pods naming them get no host class). A tenant can still
  outrank other tenants' user classes: quota per PriorityClass on the host
  is the host admin's tool for that;
- change the host's default priority: ``globalDefault`` is never set on the
  host (a default class inside the virtual cluster still works there, since
  its admission names the class on every pod).

Ownership: host informers for cluster-scoped kinds see every namespace's
objects with our managed-by label, and another virtual cluster of the same
name in another host namespace writes the same label value. So a host class
is ours only if its name is the one we would give its recorded identity
(:meth:`PriorityClassTranslator.virtual_key`), which spells our host namespace.
"""

from __future__ import annotations

from typing import Any

from syncer.kube.resources import PRIORITYCLASSES
from translators import naming
from translators.base import Action, Context, Create, Patch, Side, Translator, register
from translators.objects import host_metadata, update_patch

Obj = dict[str, Any]
MAX_VALUE = 1_000_000_000
"""The highest user-definable priority; system classes sit at 2e9 and above."""
_MUTABLE = ("description", "globalDefault")
"""``value`` and ``preemptionPolicy`` are immutable on the API server, on both sides."""


def _host_name(name: str, ctx: Context) -> str:
    return naming.host_cluster_scoped_name(name, ctx.host_namespace, ctx.vcluster)


def host_priority_class(virtual: Obj, ctx: Context) -> Obj:
    """The host copy: capped value, no globalDefault (absent = false, as the server stores it)."""
    metadata = host_metadata(virtual, ctx, PRIORITYCLASSES.kind)
    del metadata["namespace"]
    metadata["name"] = _host_name(virtual["metadata"]["name"], ctx)
    obj: Obj = {
        "apiVersion": PRIORITYCLASSES.api_version,
        "kind": PRIORITYCLASSES.kind,
        "metadata": metadata,
        "value": min(int(virtual.get("value", 0)), MAX_VALUE),
    }
    obj.update({f: virtual[f] for f in ("preemptionPolicy", "description") if virtual.get(f)})
    return obj


@register
class PriorityClassTranslator(Translator):
    kind = "priorityClasses"
    resource = PRIORITYCLASSES

    def wants(self, source: Obj, ctx: Context) -> bool:
        """The virtual API server's own ``system-*`` classes stay inside."""
        return not str(source["metadata"]["name"]).startswith("system-")

    def virtual_key(self, host: Obj, ctx: Context) -> str | None:
        """The virtual class's name, if ``host`` is this virtual cluster's copy of it."""
        identity = naming.identity_of(host)
        if identity is None or identity.kind != self.resource.kind or identity.namespace:
            return None
        if host["metadata"].get("name") != _host_name(identity.name, ctx):
            return None  # a same-named virtual cluster's, in another host namespace
        return identity.name

    def to_host(self, virtual: Obj, ctx: Context) -> list[Action]:
        return [Create(Side.HOST, self.host, host_priority_class(virtual, ctx))]

    def sync(self, virtual: Obj, host: Obj, ctx: Context) -> list[Action]:
        """Metadata, description, and globalDefault back to unset if someone set it."""
        patch = update_patch(host, host_priority_class(virtual, ctx), _MUTABLE)
        if not patch:
            return []
        return [Patch(Side.HOST, self.host, host["metadata"]["name"], None, patch)]

"""PriorityClasses: virtual -> host, cluster-scoped (``sync.toHost.priorityClasses``).

PriorityClasses are cluster-scoped on the host by nature, so the host copy
of class ``name`` is ``vcsync-<name>-x-<hostns>-x-<vc>`` (the host namespace
makes it unique among all tenants); ``translators.podspec`` gives host pods
the same name. What a tenant may not do through it:

- outrank other tenants, or the host's own classes: ``value`` is capped at
  ``policies.priorityClasses.maxValue`` (default 0: never above a pod without
  a class; the highest cap allowed is the API server's limit for classes not
  named ``system-``, so never near the host's system classes; the virtual
  cluster's own ``system-*`` classes are not synced at all, and pods naming
  them get no host class);
- preempt: every copy gets ``preemptionPolicy: Never`` unless
  ``policies.priorityClasses.allowPreemption``, because whoever a preempting
  pod evicts on a shared node may be another tenant's pod;
- change the host's default priority: ``globalDefault`` is never set on the
  host (a default class inside the virtual cluster still works there, since
  its admission names the class on every pod).

``value`` and ``preemptionPolicy`` are immutable, so a copy made under another
policy (an older syncer, a changed configuration) is deleted and made again;
pods already running keep the priority they were admitted with.

Ownership: host informers for cluster-scoped kinds see every namespace's
objects with our managed-by label, and another virtual cluster of the same
name in another host namespace writes the same label value. So a host class
is ours only if its name is the one we would give its recorded identity
(:meth:`PriorityClassTranslator.virtual_key`), which spells our host namespace.
"""

from __future__ import annotations

from contract import naming
from contract.resources import PRIORITYCLASSES, Obj
from contract.translator import Action, Context, Create, Delete, Patch, Side, Translator
from translators.objects import host_metadata, update_patch

_MUTABLE = ("description", "globalDefault")
_IMMUTABLE = ("value", "preemptionPolicy")
"""Immutable on the API server, on both sides: a difference re-creates the copy."""
_PREEMPTING = "PreemptLowerPriority"
"""What the API server stores when ``preemptionPolicy`` is left out."""


def _host_name(name: str, ctx: Context) -> str:
    return naming.host_cluster_scoped_name(name, ctx.host_namespace, ctx.vcluster)


def host_priority_class(virtual: Obj, ctx: Context) -> Obj:
    """The host copy: value capped and preemption as the policy says, no globalDefault
    (absent = false, as the server stores it)."""
    policy = ctx.facts.policy
    metadata = host_metadata(virtual, ctx, PRIORITYCLASSES.kind)
    del metadata["namespace"]
    metadata["name"] = _host_name(virtual["metadata"]["name"], ctx)
    preemption = virtual.get("preemptionPolicy") or _PREEMPTING
    obj: Obj = {
        "apiVersion": PRIORITYCLASSES.api_version,
        "kind": PRIORITYCLASSES.kind,
        "metadata": metadata,
        "value": min(int(virtual.get("value", 0)), policy.max_priority),
        "preemptionPolicy": preemption if policy.allow_preemption else "Never",
    }
    if virtual.get("description"):
        obj["description"] = virtual["description"]
    return obj


class PriorityClassTranslator(Translator):
    kind = "priorityClasses"
    summary = ("Sync PriorityClasses (cluster-scoped on the host: the one write permission "
               "outside the namespace).")
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
        """Metadata, description, and globalDefault back to unset if someone set it; a copy
        whose value or preemption the policy would not give it now is made again."""
        desired = host_priority_class(virtual, ctx)
        meta = host["metadata"]
        if any(host.get(f, _PREEMPTING if f == "preemptionPolicy" else 0) != desired[f]
               for f in _IMMUTABLE):
            return [Delete(Side.HOST, self.host, meta["name"], None, meta.get("uid"))]
        patch = update_patch(host, desired, _MUTABLE)
        if not patch:
            return []
        return [Patch(Side.HOST, self.host, meta["name"], None, patch)]

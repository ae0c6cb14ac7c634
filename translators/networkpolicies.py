"""NetworkPolicies: virtual -> host (``sync.toHost.networkPolicies``; docs/acceptance.md, 32).

All of a virtual cluster's pods share one host namespace, so a host policy
can only tell them apart by the labels the syncer puts on host pods
(managed-by, virtual namespace, and the virtual namespace's labels as
``ns-label`` keys). Every pod selector of the host policy is therefore
rewritten by ``contract.naming`` to require ``managed-by=<vc>``:

- ``podSelector`` (whom the policy applies to) is pinned to the policy's
  virtual namespace, even when empty ("every pod of this namespace");
- peers (``ingress[].from``, ``egress[].to``) keep their virtual meaning
  within this virtual cluster: a ``namespaceSelector`` becomes conditions
  on the ``ns-label`` pod labels; ``ipBlock`` peers are copied as they are;
- ``ports`` and ``policyTypes`` are copied.

So the host policy can never select another tenant's or the host's pods.
A rule without peers still means "from/to anywhere", as in the virtual
cluster: the tenant opens its own pods, no one else's. The virtual API
server's and DNS Service's addresses are the host's, so rules meant for them
need ``ipBlock`` peers on the host's addresses (or the DNS pods' labels).
"""

from __future__ import annotations

from contract import naming
from contract.resources import NETWORKPOLICIES, Obj
from contract.translator import Context
from translators.objects import SpecCopy, host_metadata

_PEERS = (("ingress", "from"), ("egress", "to"))
"""Rule lists and the peer list in each rule."""


def _host_rule(rule: Obj, peers: str, ctx: Context, namespace: str) -> Obj:
    if not rule.get(peers):
        return rule
    return {
        **rule,
        peers: [naming.host_network_policy_peer(p, ctx.vcluster, namespace) for p in rule[peers]],
    }


def host_network_policy(virtual: Obj, ctx: Context) -> Obj:
    """The host NetworkPolicy: translated metadata, every pod selector confined (module doc)."""
    namespace = virtual["metadata"]["namespace"]
    spec: Obj = dict(virtual.get("spec") or {})
    spec["podSelector"] = naming.host_label_selector(
        spec.get("podSelector") or {}, ctx.vcluster, namespace
    )
    for rules, peers in _PEERS:
        if spec.get(rules):
            spec[rules] = [_host_rule(rule, peers, ctx, namespace) for rule in spec[rules]]
    return {
        "apiVersion": NETWORKPOLICIES.api_version,
        "kind": NETWORKPOLICIES.kind,
        "metadata": host_metadata(virtual, ctx, NETWORKPOLICIES.kind),
        "spec": spec,
    }


class NetworkPolicyTranslator(SpecCopy):
    kind = "networkPolicies"
    summary = "Sync NetworkPolicies, confined to this virtual cluster's pods."
    resource = NETWORKPOLICIES

    def desired(self, virtual: Obj, ctx: Context) -> Obj:
        return host_network_policy(virtual, ctx)

"""ExternalName Services whose target could resolve inside the host cluster (issue 22).

The host copy of an ExternalName Service makes host DNS answer a CNAME, and ingress
controllers on the host proxy to the target themselves, resolving it with
their own cluster search domains. A target that resolves inside the host
cluster (another tenant's Service, the host API, the host's DNS, an internal
address) would reach it from there, past every NetworkPolicy of the tenant's.
Refused unless a ``policies.externalNames.allowed`` pattern matches
(:class:`contract.facts.HostPolicy`):

- names in the cluster DNS zone (``cluster.local``) or ``localhost``, and any
  ``<name>.<namespace>.svc`` / ``<ip>.<namespace>.pod`` form whatever the domain;
- relative names (no trailing dot) of one to three labels: resolvers complete
  them with the search domains ``<ns>.svc.<domain>``, ``svc.<domain>`` and
  ``<domain>`` first, which turns ``db.team``, ``web-0.db.team`` or
  ``10-0-0-1.team.pod`` into records of host namespace ``team``. A name the
  tenant means outside the cluster is written fully qualified, as Kubernetes
  allows: ``api.example.com.``;
- IP addresses in internal ranges (``translators.addresses``).
"""

from __future__ import annotations

import fnmatch

from contract.resources import Obj
from contract.translator import Action, Context, Warn
from translators import addresses

CLUSTER_DOMAIN = "cluster.local"
_CLUSTER_RECORD_TYPES = frozenset({"svc", "pod"})
_SEARCHED_LABELS = 3
"""Relative names of up to this many labels can be completed into any namespace's records."""


def refusal(service: Obj, ctx: Context) -> list[Action]:
    """A Warning if the ExternalName Service points inside the host cluster; [] if not
    (or if it is no ExternalName Service)."""
    spec = service.get("spec") or {}
    target = str(spec.get("externalName") or "")
    if spec.get("type") != "ExternalName" or not _inside_cluster(target):
        return []
    normalized = target.rstrip(".").lower()
    if any(fnmatch.fnmatchcase(normalized, pattern.rstrip(".").lower())
           for pattern in ctx.facts.policy.external_names):
        return []
    return [Warn("ExternalNameRefused", (
        f"spec.externalName {target!r} could resolve inside the host cluster (a cluster "
        "DNS name, a name of at most three labels without a trailing dot, which resolvers "
        "complete with the cluster's search domains, or an internal address), so the "
        "Service is not synced; write an external name fully qualified, with a trailing "
        "dot, or ask the platform team to allow it (policies.externalNames.allowed)"))]


def _inside_cluster(target: str) -> bool:
    """Whether a resolver in the host cluster could answer ``target`` from cluster records
    (module doc)."""
    name = target.rstrip(".").lower()
    labels = name.split(".")
    internal = addresses.internal(name)
    if internal is not None:
        return internal
    if name == CLUSTER_DOMAIN or name.endswith(f".{CLUSTER_DOMAIN}") or labels[-1] == "localhost":
        return True
    if _CLUSTER_RECORD_TYPES.intersection(labels[2:]):
        return True
    return not target.endswith(".") and len(labels) <= _SEARCHED_LABELS

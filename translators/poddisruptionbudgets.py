"""PodDisruptionBudgets: virtual -> host (``sync.toHost.podDisruptionBudgets``).

Evictions happen on the host (a node drained by the platform evicts host
pods), so a tenant's budget protects its workload only if the host holds a
copy. The host copy's ``selector`` is confined by ``contract.naming`` to the
budget's virtual namespace of this virtual cluster (managed-by and namespace
required, tenant keys under ``vcsync.dev/`` rewritten as on pods), so a
budget can never count, or hold back the eviction of, another tenant's or
the host's pods. ``minAvailable``, ``maxUnavailable`` and
``unhealthyPodEvictionPolicy`` are copied. A missing (null) selector selects
nothing in ``policy/v1`` and stays missing.

Status is not copied back: the virtual cluster's own disruption controller
computes it from the virtual pods, which mirror the host pods' readiness.
"""

from __future__ import annotations

from contract import naming
from contract.resources import Obj, Resource
from contract.translator import Context
from translators.objects import SpecCopy, host_metadata

PODDISRUPTIONBUDGETS = Resource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget")


def host_pod_disruption_budget(virtual: Obj, ctx: Context) -> Obj:
    """The host budget: translated metadata, the selector confined (module doc)."""
    spec: Obj = dict(virtual.get("spec") or {})
    if spec.get("selector") is not None:
        spec["selector"] = naming.host_label_selector(
            spec["selector"], ctx.vcluster, virtual["metadata"]["namespace"])
    return {
        "apiVersion": PODDISRUPTIONBUDGETS.api_version,
        "kind": PODDISRUPTIONBUDGETS.kind,
        "metadata": host_metadata(virtual, ctx, PODDISRUPTIONBUDGETS.kind),
        "spec": spec,
    }


class PodDisruptionBudgetTranslator(SpecCopy):
    kind = "podDisruptionBudgets"
    summary = ("Sync PodDisruptionBudgets, their selectors confined to this virtual cluster's "
               "pods of their namespace.")
    resource = PODDISRUPTIONBUDGETS

    def desired(self, virtual: Obj, ctx: Context) -> Obj:
        return host_pod_disruption_budget(virtual, ctx)

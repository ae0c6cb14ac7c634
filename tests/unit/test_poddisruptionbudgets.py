"""Unit tests of the PodDisruptionBudget translator (translators/poddisruptionbudgets.py)."""

from __future__ import annotations

from typing import Any

from contract import naming
from contract.resources import Obj
from contract.translator import Context, Create, Delete, Patch, Side
from syncer import config as config_mod
from syncer.app import select_translators
from syncer.planning import plan
from tests.unit.fakes import NoLookup, unchanged
from translators.poddisruptionbudgets import (
    PODDISRUPTIONBUDGETS,
    PodDisruptionBudgetTranslator,
    host_pod_disruption_budget,
)

HOST_NS = "vcluster-vc"
HOST_NAME = "web-x-team-x-vc"
T = PodDisruptionBudgetTranslator()
CTX = Context(vcluster="vc", host_namespace=HOST_NS, lookup=NoLookup())
OWNED = {naming.LABEL_MANAGED_BY: "vc", naming.LABEL_NAMESPACE: "team"}


def budget(**spec: Any) -> Obj:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "team", "uid": "uid-pdb",
                         "labels": {"tier": "front"}},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}}


def test_the_host_copy_selects_only_this_clusters_pods_of_its_namespace() -> None:
    virtual = budget(minAvailable=2, unhealthyPodEvictionPolicy="AlwaysAllow")
    with unchanged(virtual):
        (create,) = T.to_host(virtual, CTX)
    assert isinstance(create, Create)
    assert (create.side, create.resource) == (Side.HOST, PODDISRUPTIONBUDGETS)
    host = create.obj
    assert host["metadata"]["name"] == HOST_NAME
    assert host["metadata"]["namespace"] == HOST_NS
    assert host["metadata"]["labels"] == {"tier": "front", **OWNED}
    assert naming.identity_of(host) == naming.VirtualIdentity(
        "web", "team", "uid-pdb", "PodDisruptionBudget")
    assert host["spec"] == {"selector": {"matchLabels": {"app": "web", **OWNED}},
                            "minAvailable": 2, "unhealthyPodEvictionPolicy": "AlwaysAllow"}


def test_an_empty_selector_means_every_pod_of_the_namespace_and_a_missing_one_none() -> None:
    everything = host_pod_disruption_budget(budget(selector={}, maxUnavailable="10%"), CTX)
    assert everything["spec"] == {"selector": {"matchLabels": OWNED}, "maxUnavailable": "10%"}
    missing = budget(maxUnavailable=1)
    del missing["spec"]["selector"]
    assert "selector" not in host_pod_disruption_budget(missing, CTX)["spec"]


def test_tenant_keys_under_our_prefix_cannot_reach_ownership_labels() -> None:
    forged = budget(selector={"matchLabels": {naming.LABEL_MANAGED_BY: "other"},
                              "matchExpressions": [{"key": naming.LABEL_NAMESPACE,
                                                    "operator": "Exists"}]})
    selector = host_pod_disruption_budget(forged, CTX)["spec"]["selector"]
    assert selector["matchLabels"][naming.LABEL_MANAGED_BY] == "vc"
    assert selector["matchLabels"][naming.LABEL_NAMESPACE] == "team"
    assert selector["matchExpressions"][0]["key"] != naming.LABEL_NAMESPACE


def test_sync_patches_the_spec_only_when_it_changed() -> None:
    host = {**host_pod_disruption_budget(budget(minAvailable=1), CTX), "status": {"x": 1}}
    assert T.sync(budget(minAvailable=1), host, CTX) == []
    (patch,) = T.sync(budget(minAvailable=3), host, CTX)
    assert patch == Patch(Side.HOST, PODDISRUPTIONBUDGETS, HOST_NAME, HOST_NS,
                          {"spec": {"minAvailable": 3}})


def test_an_orphan_is_deleted_with_its_uid() -> None:
    host = host_pod_disruption_budget(budget(), CTX)
    host["metadata"]["uid"] = "host-uid"
    assert plan(T, CTX, None, host) == [
        Delete(Side.HOST, PODDISRUPTIONBUDGETS, HOST_NAME, HOST_NS, "host-uid")]


def test_off_by_default_and_switched_by_its_section() -> None:
    assert "podDisruptionBudgets" not in {t.kind for t in select_translators(
        config_mod.SyncerConfig())}
    cfg = config_mod.parse({"sync": {"toHost": {"podDisruptionBudgets": {"enabled": True}}}})
    assert any(isinstance(t, PodDisruptionBudgetTranslator) for t in select_translators(cfg))

"""Unit tests of the PriorityClass translator (cluster-scoped on the host)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from contract import naming
from contract.facts import Facts, HostPolicy
from contract.resources import PRIORITYCLASSES, Obj
from contract.translator import Context, Create, Delete, Patch, Side
from syncer.config import MAX_USER_PRIORITY
from tests.unit.fakes import NoLookup, unchanged
from translators.priorityclasses import PriorityClassTranslator, host_priority_class

HOST_NS = "vcluster-vc"
HOST_NAME = "vcsync-high-x-vcluster-vc-x-vc"
T = PriorityClassTranslator()
LENIENT = HostPolicy(max_priority=MAX_USER_PRIORITY, allow_preemption=True)
"""The most a platform may allow: values up to 1e9, the tenant's preemption policy."""
CTX = Context(vcluster="vc", host_namespace=HOST_NS, lookup=NoLookup(),
              facts=Facts(policy=LENIENT))
SAFE = Context(vcluster="vc", host_namespace=HOST_NS, lookup=NoLookup())
"""The defaults: no policy given."""



def virtual_class(name: str = "high", value: int = 1000, **fields: Any) -> Obj:
    return {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {
            "name": name,
            "uid": "uid-pc",
            "resourceVersion": "3",
            "labels": {"team": "a"},
            "annotations": {"note": "x"},
        },
        "value": value,
        "preemptionPolicy": "PreemptLowerPriority",
        "description": "important work",
        **fields,
    }


def stored(obj: Obj) -> Obj:
    """``obj`` as the host API server returns it."""
    out = copy.deepcopy(obj)
    out["metadata"].update({"uid": "host-uid", "resourceVersion": "9"})
    return out


def test_to_host_creates_a_cluster_scoped_class_with_the_host_namespace_in_its_name() -> None:
    virtual = virtual_class(globalDefault=True)
    with unchanged(virtual):
        (action,) = T.to_host(virtual, CTX)
    assert action == Create(Side.HOST, PRIORITYCLASSES, {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {
            "name": HOST_NAME,
            "labels": {"team": "a", naming.LABEL_MANAGED_BY: "vc"},
            "annotations": {
                "note": "x",
                naming.ANNOTATION_OBJECT_NAME: "high",
                naming.ANNOTATION_OBJECT_UID: "uid-pc",
                naming.ANNOTATION_OBJECT_KIND: "PriorityClass",
                naming.ANNOTATION_MANAGED_ANNOTATIONS: "note",
            },
        },
        "value": 1000,
        "preemptionPolicy": "PreemptLowerPriority",
        "description": "important work",
    })
    assert not PRIORITYCLASSES.namespaced


@pytest.mark.parametrize(
    ("value", "expected"),
    [(2_000_000_000, MAX_USER_PRIORITY), (MAX_USER_PRIORITY + 1, MAX_USER_PRIORITY),
     (MAX_USER_PRIORITY, MAX_USER_PRIORITY), (-5, -5)],
)
def test_value_is_capped_below_the_system_classes(value: int, expected: int) -> None:
    assert host_priority_class(virtual_class(value=value), CTX)["value"] == expected


@pytest.mark.parametrize(("value", "expected"), [(MAX_USER_PRIORITY, 0), (1000, 0), (0, 0),
                                                 (-5, -5)])
def test_by_default_no_class_outranks_pods_without_one_nor_preempts(
    value: int, expected: int,
) -> None:
    """Issue 22: on a shared host a preempting class evicts other tenants' pods."""
    host = host_priority_class(virtual_class(value=value), SAFE)
    assert host["value"] == expected
    assert host["preemptionPolicy"] == "Never"


@pytest.mark.parametrize(("allowed", "tenant", "expected"), [
    (False, "PreemptLowerPriority", "Never"), (False, "Never", "Never"),
    (True, "PreemptLowerPriority", "PreemptLowerPriority"), (True, "Never", "Never"),
    (True, None, "PreemptLowerPriority"),
])
def test_preemption_only_where_the_policy_allows_it(
    allowed: bool, tenant: str | None, expected: str,
) -> None:
    ctx = Context("vc", HOST_NS, NoLookup(), facts=Facts(
        policy=HostPolicy(max_priority=50, allow_preemption=allowed)))
    virtual = virtual_class(value=10, preemptionPolicy=tenant)
    assert host_priority_class(virtual, ctx)["preemptionPolicy"] == expected


@pytest.mark.parametrize("field", ["value", "preemptionPolicy"])
def test_a_copy_made_under_another_policy_is_made_again(field: str) -> None:
    """Both fields are immutable: a copy from an older syncer (value 1e9, preempting) is
    deleted, and the next reconcile creates it under the policy in force."""
    virtual = virtual_class(value=MAX_USER_PRIORITY)
    host = stored(host_priority_class(virtual, SAFE))
    host[field] = host_priority_class(virtual, CTX)[field]
    with unchanged(virtual, host):
        assert T.sync(virtual, host, SAFE) == [
            Delete(Side.HOST, PRIORITYCLASSES, HOST_NAME, None, "host-uid")]
    unset = {k: v for k, v in stored(host_priority_class(virtual, CTX)).items()
             if k != "preemptionPolicy"}
    assert T.sync(virtual, unset, CTX) == [], "unset is what the API server defaults to"


def test_long_names_fit_the_name_limit() -> None:
    name = host_priority_class(virtual_class(name="p" * 60), CTX)["metadata"]["name"]
    assert len(name) <= naming.MAX_NAME_LENGTH


def test_system_classes_of_the_virtual_cluster_are_not_synced() -> None:
    assert not T.wants(virtual_class(name="system-cluster-critical"), CTX)
    assert T.wants(virtual_class(), CTX)


def test_virtual_key_claims_only_our_copies() -> None:
    ours = stored(host_priority_class(virtual_class(), CTX))
    assert T.virtual_key(ours, CTX) == "high"
    other_ctx = Context(vcluster="vc", host_namespace="elsewhere", lookup=NoLookup())
    twin = stored(host_priority_class(virtual_class(), other_ctx))
    assert twin["metadata"]["labels"][naming.LABEL_MANAGED_BY] == "vc"
    assert T.virtual_key(twin, CTX) is None
    namespaced = copy.deepcopy(ours)
    namespaced["metadata"]["annotations"][naming.ANNOTATION_OBJECT_NAMESPACE] = "team"
    assert T.virtual_key(namespaced, CTX) is None
    other_kind = copy.deepcopy(ours)
    other_kind["metadata"]["annotations"][naming.ANNOTATION_OBJECT_KIND] = "Pod"
    assert T.virtual_key(other_kind, CTX) is None


def test_sync_is_idle_when_the_host_copy_matches() -> None:
    virtual = virtual_class(globalDefault=True)
    host = stored(host_priority_class(virtual, CTX))
    with unchanged(virtual, host):
        assert T.sync(virtual, host, CTX) == []


def test_sync_resets_a_host_global_default_and_follows_description_and_labels() -> None:
    virtual = virtual_class()
    host = stored(host_priority_class(virtual, CTX))
    host["globalDefault"] = True
    virtual["description"] = "new"
    virtual["metadata"]["labels"]["tier"] = "1"
    with unchanged(virtual, host):
        (action,) = T.sync(virtual, host, CTX)
    assert action == Patch(Side.HOST, PRIORITYCLASSES, HOST_NAME, None, {
        "metadata": {"labels": {"tier": "1"}},
        "description": "new",
        "globalDefault": None,
    })


def test_orphan_is_deleted_without_a_namespace() -> None:
    host = stored(host_priority_class(virtual_class(), CTX))
    assert T.to_virtual(host, CTX) == [
        Delete(Side.HOST, PRIORITYCLASSES, HOST_NAME, None, "host-uid")
    ]

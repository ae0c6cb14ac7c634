"""Unit and property tests of the NetworkPolicy translator (scenario 32).

The property tests judge the host policy with :func:`matches`, a label
selector evaluator written from the Kubernetes API reference (not from the
product code), against host pods built to satisfy a selector in every
respect but ownership: such a pod must never be selected.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from contract import naming
from contract.resources import NETWORKPOLICIES, Obj
from contract.translator import Context, Create, Delete, Patch, Side
from tests.unit.fakes import NoLookup, unchanged
from translators.networkpolicies import (
    NetworkPolicyTranslator,
    host_network_policy,
)

HOST_NS = "vcluster-vc"
HOST_NAME = "deny-x-team-x-vc"
T = NetworkPolicyTranslator()
CTX = Context(vcluster="vc", host_namespace=HOST_NS, lookup=NoLookup())
OWNED = {naming.LABEL_MANAGED_BY: "vc", naming.LABEL_NAMESPACE: "team"}




def virtual_policy(**spec: Any) -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "deny", "namespace": "team", "uid": "uid-np", "generation": 1},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"], **spec},
    }


def stored(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    out["metadata"].update({"uid": "host-uid", "resourceVersion": "4", "generation": 1})
    return out


# --- the oracle ------------------------------------------------------------------------------


def _requirement(expression: Obj, labels: dict[str, str]) -> bool:
    key, operator = expression["key"], expression["operator"]
    values = expression.get("values") or []
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    assert operator == "DoesNotExist"
    return key not in labels


def matches(selector: Obj, labels: dict[str, str]) -> bool:
    """metav1.LabelSelector semantics: all matchLabels and all matchExpressions hold."""
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items()) and all(
        _requirement(e, labels) for e in selector.get("matchExpressions") or ()
    )


def satisfying(selector: Obj) -> dict[str, str]:
    """Labels meant to satisfy ``selector`` (may fail when its terms contradict)."""
    labels = dict(selector.get("matchLabels") or {})
    for expression in selector.get("matchExpressions") or ():
        if expression["operator"] == "In":
            labels.setdefault(expression["key"], expression["values"][0])
        elif expression["operator"] == "Exists":
            labels.setdefault(expression["key"], "x")
    return labels


def host_pod_selectors(policy: Obj) -> list[Obj]:
    """Every pod selector of a host policy: the subject and each non-ipBlock peer."""
    spec = policy["spec"]
    selectors = [spec["podSelector"]]
    for rules, peers in (("ingress", "from"), ("egress", "to")):
        for rule in spec.get(rules) or ():
            for peer in rule.get(peers) or ():
                if "ipBlock" not in peer:
                    assert set(peer) == {"podSelector"}, "a host peer must not leave the namespace"
                    selectors.append(peer["podSelector"])
    return selectors


# --- examples --------------------------------------------------------------------------------


def test_to_host_confines_the_subject_and_peers_and_keeps_ports_and_ip_blocks() -> None:
    ip_block = {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}
    ports = [{"protocol": "TCP", "port": 5432}, {"protocol": "UDP", "port": 53, "endPort": 60}]
    virtual = virtual_policy(
        podSelector={"matchLabels": {"app": "db"}},
        policyTypes=["Ingress", "Egress"],
        ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}, ip_block],
                  "ports": ports}],
        egress=[{"to": [{"namespaceSelector": {"matchLabels": {"env": "prod"}}}]}, {}],
    )
    with unchanged(virtual):
        (action,) = T.to_host(virtual, CTX)
    assert isinstance(action, Create)
    assert (action.side, action.resource) == (Side.HOST, NETWORKPOLICIES)
    meta, spec = action.obj["metadata"], action.obj["spec"]
    assert (meta["name"], meta["namespace"]) == (HOST_NAME, HOST_NS)
    assert meta["labels"] == OWNED
    assert spec["podSelector"] == {"matchLabels": {"app": "db", **OWNED}}
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["ingress"] == [{
        "from": [{"podSelector": {"matchLabels": {"app": "web", **OWNED}}}, ip_block],
        "ports": ports,
    }]
    env = naming.namespace_label_key("env", "vc")
    assert spec["egress"] == [
        {"to": [{"podSelector": {"matchLabels": {env: "prod", naming.LABEL_MANAGED_BY: "vc"}}}]},
        {},
    ]


def test_an_empty_pod_selector_selects_only_this_namespace_of_this_cluster() -> None:
    spec = host_network_policy(virtual_policy(), CTX)["spec"]
    assert spec["podSelector"] == {"matchLabels": OWNED}


def test_tenant_keys_under_our_prefix_cannot_reach_ownership_labels() -> None:
    forged = {naming.LABEL_MANAGED_BY: "other", naming.LABEL_NAMESPACE: "kube-system"}
    spec = host_network_policy(virtual_policy(podSelector={"matchLabels": forged}), CTX)["spec"]
    labels = spec["podSelector"]["matchLabels"]
    assert labels[naming.LABEL_MANAGED_BY] == "vc"
    assert labels[naming.LABEL_NAMESPACE] == "team"


def test_sync_is_idle_when_nothing_differs_and_patches_changes() -> None:
    virtual = virtual_policy(ingress=[{"from": [{"podSelector": {}}]}])
    host = stored(host_network_policy(virtual, CTX))
    with unchanged(virtual, host):
        assert T.sync(virtual, host, CTX) == []
    virtual["spec"]["ingress"] = []
    with unchanged(virtual, host):
        (action,) = T.sync(virtual, host, CTX)
    assert action == Patch(Side.HOST, NETWORKPOLICIES, HOST_NAME, HOST_NS,
                           {"spec": {"ingress": []}})


def test_orphan_is_deleted() -> None:
    host = stored(host_network_policy(virtual_policy(), CTX))
    assert T.to_virtual(host, CTX) == [
        Delete(Side.HOST, NETWORKPOLICIES, HOST_NAME, HOST_NS, "host-uid")
    ]


# --- properties: nothing outside this virtual cluster is ever selected -------------------------

_KEYS = st.sampled_from([
    "app", "tier", "example.com/role", naming.LABEL_MANAGED_BY, naming.LABEL_NAMESPACE,
    naming.PREFIX + "x", naming.namespace_label_key("env", "vc"),
])
_VALUES = st.sampled_from(["a", "b", "vc", "team", "other", ""])


@st.composite
def _expression(draw: st.DrawFn) -> Obj:
    operator = draw(st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]))
    expression: Obj = {"key": draw(_KEYS), "operator": operator}
    if operator in ("In", "NotIn"):
        expression["values"] = draw(st.lists(_VALUES, min_size=1, max_size=3))
    return expression


_SELECTORS = st.builds(
    lambda labels, expressions: {
        k: v for k, v in (("matchLabels", labels), ("matchExpressions", expressions)) if v
    },
    st.dictionaries(_KEYS, _VALUES, max_size=3),
    st.lists(_expression(), max_size=3),
)
_PEERS = st.one_of(
    st.builds(lambda s: {"podSelector": s}, _SELECTORS),
    st.builds(lambda s: {"namespaceSelector": s}, _SELECTORS),
    st.builds(lambda p, n: {"podSelector": p, "namespaceSelector": n}, _SELECTORS, _SELECTORS),
    st.just({"ipBlock": {"cidr": "0.0.0.0/0"}}),
)
_RULES = st.lists(st.lists(_PEERS, max_size=3), max_size=3)


@st.composite
def _policies(draw: st.DrawFn) -> Obj:
    spec: Obj = {"podSelector": draw(_SELECTORS)}
    spec["ingress"] = [{"from": peers} if peers else {} for peers in draw(_RULES)]
    spec["egress"] = [{"to": peers} if peers else {} for peers in draw(_RULES)]
    return virtual_policy(**spec)


_FOREIGN_OWNERS = st.sampled_from([None, "other", "", "vc2", "VC"])


def _foreign(labels: dict[str, str], owner: str | None) -> dict[str, str]:
    pod = {k: v for k, v in labels.items() if k != naming.LABEL_MANAGED_BY}
    if owner is not None:
        pod[naming.LABEL_MANAGED_BY] = owner
    return pod


@settings(max_examples=300, deadline=None)
@given(_policies(), _FOREIGN_OWNERS)
def test_no_host_selector_ever_matches_a_pod_that_is_not_ours(
    virtual: Obj, owner: str | None
) -> None:
    with unchanged(virtual):
        policy = host_network_policy(virtual, CTX)
    for selector in host_pod_selectors(policy):
        labels = satisfying(selector)
        assert not matches(selector, _foreign(labels, owner))


@settings(max_examples=300, deadline=None)
@given(_policies(), st.dictionaries(_KEYS, _VALUES, max_size=5), _FOREIGN_OWNERS)
def test_no_host_selector_matches_random_foreign_pods(
    virtual: Obj, labels: dict[str, str], owner: str | None
) -> None:
    policy = host_network_policy(virtual, CTX)
    pod = _foreign(labels, owner)
    assert not any(matches(selector, pod) for selector in host_pod_selectors(policy))


@settings(max_examples=300, deadline=None)
@given(_SELECTORS, st.sampled_from(["other", "kube-system", ""]))
def test_the_subject_is_always_pinned_to_the_policy_namespace(
    selector: Obj, namespace: str
) -> None:
    spec = host_network_policy(virtual_policy(podSelector=selector), CTX)["spec"]
    pod = {**satisfying(spec["podSelector"]), naming.LABEL_NAMESPACE: namespace}
    assert not matches(spec["podSelector"], pod)


def test_the_oracle_does_select_our_own_matching_pods() -> None:
    """The properties are not vacuous: ``satisfying`` does find our own pods."""
    virtual = virtual_policy(
        podSelector={"matchExpressions": [{"key": "app", "operator": "In", "values": ["db"]}]},
        ingress=[{"from": [{"namespaceSelector": {}}]}],
    )
    for selector in host_pod_selectors(host_network_policy(virtual, CTX)):
        labels = satisfying(selector)
        assert labels[naming.LABEL_MANAGED_BY] == "vc"
        assert matches(selector, labels)

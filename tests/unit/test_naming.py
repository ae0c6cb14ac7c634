"""Tests for contract/naming.py: examples from NAMING.md, edge cases, properties.

The property tests check the promises the rest of the syncer relies on: host
names are valid and distinct, tenant labels survive the trip to the host and
back, a tenant cannot forge ownership, and rewritten selectors select exactly
the pods the virtual cluster would have selected, never another tenant's.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.naming import (
    ANNOTATION_MANAGED_ANNOTATIONS,
    ANNOTATION_OBJECT_KIND,
    ANNOTATION_OBJECT_NAME,
    ANNOTATION_OBJECT_NAMESPACE,
    ANNOTATION_OBJECT_UID,
    ANNOTATION_REWRITTEN_LABELS,
    LABEL_CONTROLLED_BY,
    LABEL_MANAGED_BY,
    LABEL_NAMESPACE,
    PREFIX,
    VirtualIdentity,
    annotation_patch,
    colliding_names,
    host_annotations,
    host_cluster_scoped_name,
    host_label_key,
    host_label_selector,
    host_labels,
    host_name,
    host_namespace_labels,
    host_network_policy_peer,
    host_pod_affinity_term,
    host_selector,
    host_topology_spread_constraint,
    identity_of,
    is_controlled_elsewhere,
    is_managed,
    namespace_label_key,
    rewritten_labels_annotation,
    safe_name,
    virtual_annotations,
    virtual_labels,
)
from contract.resources import Obj
from tests.unit.oracles import is_dns_label, is_dns_subdomain, is_label_key, is_label_value

FAST = settings(max_examples=60, deadline=None)
THOROUGH = settings(max_examples=150, deadline=None)  # cheap tests with many cases to cover

# --- independent validators (written from the Kubernetes rules, not from the module) ---







def hash10(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def assert_not_mutated(call: Callable[..., Any], *args: Any) -> None:
    """Call, check the arguments are unchanged, then wreck the result and check again.

    Wrecking the result catches outputs that share containers with the input.
    """
    before = copy.deepcopy(args)
    result = call(*args)
    assert args == before
    _wreck(result)
    assert args == before


def _wreck(value: Any) -> None:
    if isinstance(value, dict):
        for item in value.values():
            _wreck(item)
        value.clear()
    elif isinstance(value, list):
        for item in value:
            _wreck(item)
        value.clear()


# --- strategies ----------------------------------------------------------------------

dns_labels = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True)
dns_subdomains = (
    st.lists(dns_labels, min_size=1, max_size=4).map(".".join).filter(lambda s: len(s) <= 253)
)
label_names = st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?", fullmatch=True)
label_values = st.one_of(st.just(""), label_names)
key_prefixes = st.one_of(
    st.sampled_from(["vcsync.dev", "example.com", "app.vcsync.dev", "kubernetes.io"]),
    dns_labels,
)
forged_keys = st.sampled_from(
    [
        LABEL_MANAGED_BY,
        LABEL_NAMESPACE,
        LABEL_CONTROLLED_BY,
        ANNOTATION_OBJECT_NAME,
        ANNOTATION_OBJECT_UID,
        ANNOTATION_MANAGED_ANNOTATIONS,
        ANNOTATION_REWRITTEN_LABELS,
        PREFIX + "label-vc-x-0123456789",
        PREFIX + "ns-label-vc-x-0123456789",
    ]
)
label_keys = st.one_of(
    label_names,
    st.tuples(key_prefixes, label_names).map("/".join),
    forged_keys,
)
label_maps = st.dictionaries(label_keys, label_values, max_size=6)
foreign_annotations = st.dictionaries(
    label_keys.filter(lambda key: not key.startswith(PREFIX)), st.text(max_size=12), max_size=4
)
tenant_annotations = st.dictionaries(label_keys, st.text(max_size=12), max_size=6)
namespaces_or_none = st.one_of(st.none(), dns_labels)
identities = st.builds(
    VirtualIdentity,
    name=dns_subdomains,
    namespace=namespaces_or_none,
    uid=st.uuids().map(str),
    kind=st.sampled_from(["Pod", "ConfigMap", "Secret", "Service", "PriorityClass"]),
)


# --- names -------------------------------------------------------------------------


def test_naming_md_examples() -> None:
    assert host_name("app-cfg", "team", "vc") == "app-cfg-x-team-x-vc"
    assert host_cluster_scoped_name("high", "vc-host", "vc") == "vcsync-high-x-vc-host-x-vc"


def test_prefix_builds_every_key() -> None:
    assert PREFIX == "vcsync.dev/"
    assert LABEL_MANAGED_BY == "vcsync.dev/managed-by"
    assert LABEL_NAMESPACE == "vcsync.dev/namespace"
    assert LABEL_CONTROLLED_BY == "vcsync.dev/controlled-by"
    assert ANNOTATION_OBJECT_NAME == "vcsync.dev/object-name"
    assert ANNOTATION_OBJECT_NAMESPACE == "vcsync.dev/object-namespace"
    assert ANNOTATION_OBJECT_UID == "vcsync.dev/object-uid"
    assert ANNOTATION_OBJECT_KIND == "vcsync.dev/object-kind"
    assert ANNOTATION_MANAGED_ANNOTATIONS == "vcsync.dev/managed-annotations"


def test_exactly_63_characters_is_unchanged() -> None:
    name = "a" * 63
    assert safe_name(name) == name


def test_64_characters_becomes_52_plus_hash() -> None:
    name = "a" * 64
    assert safe_name(name) == "a" * 52 + "-" + hash10(name)
    assert len(safe_name(name)) == 63


def test_dot_as_last_kept_character_is_dropped() -> None:
    name = "a" * 51 + "." + "b" * 20
    result = safe_name(name)
    assert result == "a" * 51 + "-" + hash10(name)
    assert len(result) == 62
    assert is_dns_label(result)


def test_short_dotted_names_are_unchanged() -> None:
    assert safe_name("my.config.v1") == "my.config.v1"
    assert host_name("my.config.v1", "team", "vc") == "my.config.v1-x-team-x-vc"


def test_long_dotted_name_keeps_its_dots_and_stays_a_subdomain() -> None:
    name = "settings.example.com-" + "c" * 50
    result = safe_name(name)
    assert result.startswith("settings.example.com-")
    assert len(result) == 63
    assert is_dns_subdomain(result)
    assert not is_dns_label(result)


def test_hyphen_as_last_kept_character_gives_a_valid_double_hyphen() -> None:
    name = "a" * 51 + "-" + "b" * 20
    assert safe_name(name) == "a" * 51 + "--" + hash10(name)


def test_long_host_name_hashes_the_full_untruncated_name() -> None:
    name, namespace, vcluster = "x" * 60, "team", "vc"
    full = f"{name}-x-{namespace}-x-{vcluster}"
    assert host_name(name, namespace, vcluster) == full[:52] + "-" + hash10(full)


def test_names_sharing_their_first_52_characters_stay_apart() -> None:
    names = {host_name("p" * 60 + suffix, "team", "vc") for suffix in ("a", "b", "c", "ab")}
    assert len(names) == 4


def test_unescaped_separator_can_collide_so_identity_comes_from_annotations() -> None:
    """A known limit of the spec's format; translators must compare identities."""
    assert host_name("a-x-b", "c", "vc") == host_name("a", "b-x-c", "vc")
    first = VirtualIdentity(name="a-x-b", namespace="c", uid="1", kind="ConfigMap")
    second = VirtualIdentity(name="a", namespace="b-x-c", uid="2", kind="ConfigMap")
    assert host_annotations({}, first) != host_annotations({}, second)


def _unambiguous(name: str, namespace: str) -> bool:
    """No `-x-` can be read at another place of `<name>-x-<namespace>`."""
    return (
        "-x-" not in name
        and not name.endswith("-x")
        and not namespace.startswith("x-")
        and ("-x-" not in namespace)
    )


@FAST
@given(st.lists(st.tuples(dns_subdomains, dns_labels), unique=True, max_size=25), dns_labels)
def test_host_name_is_injective(pairs: list[tuple[str, str]], vcluster: str) -> None:
    pairs = [pair for pair in pairs if _unambiguous(*pair)]
    assert len({host_name(name, namespace, vcluster) for name, namespace in pairs}) == len(pairs)


@FAST
@given(dns_subdomains, dns_labels, dns_labels)
def test_host_names_are_valid(name: str, namespace: str, vcluster: str) -> None:
    for result in (
        host_name(name, namespace, vcluster),
        host_cluster_scoped_name(name, namespace, vcluster),
    ):
        assert len(result) <= 63
        assert is_dns_subdomain(result)
        if "." not in name:
            assert is_dns_label(result)


@FAST
@given(dns_subdomains)
def test_safe_name_changes_only_long_names(name: str) -> None:
    result = safe_name(name)
    if len(name) <= 63:
        assert result == name
    else:
        assert len(result) in (62, 63)
        assert result.endswith("-" + hash10(name))


# --- labels ----------------------------------------------------------------------------


def test_tenant_labels_are_copied_and_ownership_added() -> None:
    labels = {"app": "web", "example.com/tier": "front"}
    assert host_labels(labels, "vc", "team") == {
        "app": "web",
        "example.com/tier": "front",
        LABEL_MANAGED_BY: "vc",
        LABEL_NAMESPACE: "team",
    }
    assert host_labels(None, "vc", None) == {LABEL_MANAGED_BY: "vc"}
    assert rewritten_labels_annotation(labels, "vc") == {}


def test_tenant_label_under_our_prefix_is_rewritten_and_read_back() -> None:
    labels = {LABEL_MANAGED_BY: "other-vc", "app": "web"}
    rewritten = PREFIX + "label-vc-x-" + hash10(LABEL_MANAGED_BY)
    host = host_labels(labels, "vc", "team")
    assert host[rewritten] == "other-vc"
    assert host[LABEL_MANAGED_BY] == "vc"
    annotations = rewritten_labels_annotation(labels, "vc")
    assert annotations == {ANNOTATION_REWRITTEN_LABELS: f'{{"{rewritten}":"{LABEL_MANAGED_BY}"}}'}
    assert virtual_labels(host, annotations, "vc") == labels


def test_tampered_rewritten_labels_annotation_cannot_expose_our_labels() -> None:
    host = {LABEL_MANAGED_BY: "vc", "app": "web"}
    forged = {ANNOTATION_REWRITTEN_LABELS: f'{{"{LABEL_MANAGED_BY}":"owner"}}'}
    assert virtual_labels(host, forged, "vc") == {"app": "web"}
    broken = {ANNOTATION_REWRITTEN_LABELS: "{not json"}
    assert virtual_labels(host, broken, "vc") == {"app": "web"}
    assert virtual_labels(host, {ANNOTATION_REWRITTEN_LABELS: "[1]"}, "vc") == {"app": "web"}


def test_label_keys_stay_valid_for_long_vcluster_names() -> None:
    vcluster = "v" * 63
    for key in (host_label_key(LABEL_NAMESPACE, vcluster), namespace_label_key("a", vcluster)):
        assert is_label_key(key)
        assert len(key.partition("/")[2]) == 63


def test_namespace_labels_for_host_pods() -> None:
    assert host_namespace_labels({"env": "prod"}, "vc", "team") == {
        PREFIX + "ns-label-vc-x-" + hash10("env"): "prod",
        LABEL_NAMESPACE: "team",
    }


@FAST
@given(label_maps, label_maps, dns_labels, namespaces_or_none, foreign_annotations)
def test_labels_round_trip(
    labels: dict[str, str],
    namespace_labels: dict[str, str],
    vcluster: str,
    namespace: str | None,
    foreign: dict[str, str],
) -> None:
    assert_not_mutated(host_labels, labels, vcluster, namespace)
    host = host_labels(labels, vcluster, namespace)
    if namespace is not None:
        host |= host_namespace_labels(namespace_labels, vcluster, namespace)
    annotations = foreign | rewritten_labels_annotation(labels, vcluster)
    assert_not_mutated(virtual_labels, host, annotations, vcluster)
    assert virtual_labels(host, annotations, vcluster) == labels


@FAST
@given(label_maps, label_maps, dns_labels, dns_labels)
def test_host_label_keys_and_values_are_valid(
    labels: dict[str, str], namespace_labels: dict[str, str], vcluster: str, namespace: str
) -> None:
    produced = (
        host_labels(labels, vcluster, namespace)
        | host_namespace_labels(namespace_labels, vcluster, namespace)
        | host_selector(labels, vcluster, namespace)
    )
    for key, value in produced.items():
        assert is_label_key(key), key
        assert is_label_value(value), value


def _assert_no_forgery(host: Mapping[str, str], vcluster: str, namespace: str | None) -> None:
    assert host[LABEL_MANAGED_BY] == vcluster
    assert host.get(LABEL_NAMESPACE) == namespace
    assert LABEL_CONTROLLED_BY not in host
    ours = {LABEL_MANAGED_BY, LABEL_NAMESPACE}
    for key in host:
        if key.startswith(PREFIX) and key not in ours:
            assert key.startswith(PREFIX + "label-")


@FAST
@given(label_maps, dns_labels, namespaces_or_none)
def test_tenant_cannot_forge_ownership_labels(
    labels: dict[str, str], vcluster: str, namespace: str | None
) -> None:
    _assert_no_forgery(host_labels(labels, vcluster, namespace), vcluster, namespace)
    if labels and namespace is not None:
        _assert_no_forgery(host_selector(labels, vcluster, namespace), vcluster, namespace)


# --- annotations and identity ----------------------------------------------------------

IDENTITY = VirtualIdentity(name="app-cfg", namespace="team", uid="u-1", kind="ConfigMap")


def test_host_annotations_drop_forged_keys_and_list_tenant_keys() -> None:
    tenant = {"b": "2", "a": "1", ANNOTATION_OBJECT_UID: "forged"}
    assert host_annotations(tenant, IDENTITY) == {
        "a": "1",
        "b": "2",
        ANNOTATION_OBJECT_NAME: "app-cfg",
        ANNOTATION_OBJECT_NAMESPACE: "team",
        ANNOTATION_OBJECT_UID: "u-1",
        ANNOTATION_OBJECT_KIND: "ConfigMap",
        ANNOTATION_MANAGED_ANNOTATIONS: "a,b",
    }
    assert host_annotations(None, IDENTITY)[ANNOTATION_MANAGED_ANNOTATIONS] == ""


def test_annotation_patch_keeps_foreign_keys_and_removes_dropped_tenant_keys() -> None:
    current = host_annotations({"a": "1", "b": "2"}, IDENTITY) | {"host.io/x": "keep"}
    desired = host_annotations({"a": "9"}, IDENTITY)
    assert annotation_patch(desired, current) == {
        "a": "9",
        "b": None,
        ANNOTATION_MANAGED_ANNOTATIONS: "a",
    }
    assert annotation_patch(desired, desired | {"host.io/x": "keep"}) == {}


def test_annotation_patch_removes_our_stale_keys() -> None:
    current = {ANNOTATION_REWRITTEN_LABELS: "{}", "host.io/x": "keep"}
    assert annotation_patch({}, current) == {ANNOTATION_REWRITTEN_LABELS: None}
    assert annotation_patch({"a": "1"}, None) == {"a": "1"}


def test_identity_of_needs_name_uid_and_kind() -> None:
    assert identity_of({}) is None
    assert identity_of({"metadata": {"annotations": None}}) is None
    complete = host_annotations({}, IDENTITY)
    for key in (ANNOTATION_OBJECT_NAME, ANNOTATION_OBJECT_UID, ANNOTATION_OBJECT_KIND):
        partial = {k: v for k, v in complete.items() if k != key}
        assert identity_of({"metadata": {"annotations": partial}}) is None
    cluster_scoped = VirtualIdentity(name="high", namespace=None, uid="u-2", kind="PriorityClass")
    annotations = host_annotations({}, cluster_scoped)
    assert ANNOTATION_OBJECT_NAMESPACE not in annotations
    assert identity_of({"metadata": {"annotations": annotations}}) == cluster_scoped


def test_ownership_checks() -> None:
    mine = {"metadata": {"labels": {LABEL_MANAGED_BY: "vc"}}}
    assert is_managed(mine, "vc")
    assert not is_managed(mine, "other")
    assert not is_managed({"metadata": {"labels": None}}, "vc")
    assert not is_managed({}, "vc")
    assert is_controlled_elsewhere({"metadata": {"labels": {LABEL_CONTROLLED_BY: "x"}}})
    assert not is_controlled_elsewhere(mine)
    assert not is_controlled_elsewhere({})


@FAST
@given(tenant_annotations, identities)
def test_identity_and_tenant_annotations_round_trip(
    annotations: dict[str, str], identity: VirtualIdentity
) -> None:
    assert_not_mutated(host_annotations, annotations, identity)
    host = host_annotations(annotations, identity)
    assert identity_of({"metadata": {"annotations": host}}) == identity
    tenant = {k: v for k, v in annotations.items() if not k.startswith(PREFIX)}
    assert virtual_annotations(host) == tenant


@FAST
@given(tenant_annotations, tenant_annotations, foreign_annotations, identities)
def test_annotation_patch_reaches_desired_and_spares_foreign(
    before: dict[str, str],
    after: dict[str, str],
    foreign: dict[str, str],
    identity: VirtualIdentity,
) -> None:
    current = foreign | host_annotations(before, identity)
    desired = host_annotations(after, identity)
    assert_not_mutated(annotation_patch, desired, current)
    patch = annotation_patch(desired, current)
    result = dict(current)
    for key, value in patch.items():
        if value is None:
            del result[key]
        else:
            result[key] = value
    spared = {k: v for k, v in foreign.items() if k not in virtual_annotations(current)}
    assert result == spared | desired
    assert annotation_patch(desired, result) == {}


# --- selectors: examples ---------------------------------------------------------------


def test_service_selector_is_pinned_to_namespace_and_cluster() -> None:
    assert host_selector({"app": "x"}, "vc", "team") == {
        "app": "x",
        LABEL_MANAGED_BY: "vc",
        LABEL_NAMESPACE: "team",
    }
    assert host_selector({}, "vc", "team") == {}
    assert host_selector(None, "vc", "team") == {}


def test_label_selector_translates_keys_and_keeps_value_shapes() -> None:
    selector: Obj = {
        "matchLabels": {"app": "x"},
        "matchExpressions": [
            {"key": PREFIX + "tier", "operator": "In", "values": ["a"]},
            {"key": "debug", "operator": "DoesNotExist"},
        ],
    }
    assert host_label_selector(selector, "vc", "team") == {
        "matchLabels": {"app": "x", LABEL_NAMESPACE: "team", LABEL_MANAGED_BY: "vc"},
        "matchExpressions": [
            {"key": host_label_key(PREFIX + "tier", "vc"), "operator": "In", "values": ["a"]},
            {"key": "debug", "operator": "DoesNotExist"},
        ],
    }


def _term(**fields: Any) -> Obj:
    return {"labelSelector": {"matchLabels": {"app": "x"}}, "topologyKey": "zone", **fields}


def test_affinity_term_without_namespaces_means_own_namespace() -> None:
    assert host_pod_affinity_term(_term(), "vc", "team") == {
        "topologyKey": "zone",
        "labelSelector": {
            "matchLabels": {"app": "x", LABEL_NAMESPACE: "team", LABEL_MANAGED_BY: "vc"}
        },
    }


def test_affinity_term_namespaces_list_becomes_in_expression() -> None:
    host = host_pod_affinity_term(_term(namespaces=["a", "b"]), "vc", "team")
    assert host["labelSelector"] == {
        "matchLabels": {"app": "x", LABEL_MANAGED_BY: "vc"},
        "matchExpressions": [{"key": LABEL_NAMESPACE, "operator": "In", "values": ["a", "b"]}],
    }
    assert "namespaces" not in host


def test_affinity_term_empty_namespace_selector_means_whole_virtual_cluster() -> None:
    host = host_pod_affinity_term(_term(namespaceSelector={}), "vc", "team")
    assert host["labelSelector"] == {"matchLabels": {"app": "x", LABEL_MANAGED_BY: "vc"}}
    assert "namespaceSelector" not in host


def test_affinity_term_namespace_selector_uses_namespace_labels() -> None:
    namespace_selector = {
        "matchLabels": {"env": "prod"},
        "matchExpressions": [{"key": "team", "operator": "Exists"}],
    }
    host = host_pod_affinity_term(_term(namespaceSelector=namespace_selector), "vc", "team")
    assert host["labelSelector"] == {
        "matchLabels": {
            "app": "x",
            namespace_label_key("env", "vc"): "prod",
            LABEL_MANAGED_BY: "vc",
        },
        "matchExpressions": [{"key": namespace_label_key("team", "vc"), "operator": "Exists"}],
    }


def test_affinity_term_with_namespaces_and_selector_widens_to_virtual_cluster() -> None:
    term = _term(namespaces=["a"], namespaceSelector={"matchLabels": {"env": "prod"}})
    host = host_pod_affinity_term(term, "vc", "team")
    assert host["labelSelector"] == {"matchLabels": {"app": "x", LABEL_MANAGED_BY: "vc"}}


def test_affinity_term_null_selector_still_matches_nothing() -> None:
    term: Obj = {"topologyKey": "zone", "namespaces": ["a"]}
    assert host_pod_affinity_term(term, "vc", "team") == {"topologyKey": "zone"}


def test_affinity_and_spread_translate_match_label_keys() -> None:
    keys = ["pod-template-hash", PREFIX + "rev"]
    translated = ["pod-template-hash", host_label_key(PREFIX + "rev", "vc")]
    term = host_pod_affinity_term(_term(matchLabelKeys=keys, mismatchLabelKeys=keys), "vc", "t")
    assert term["matchLabelKeys"] == translated
    assert term["mismatchLabelKeys"] == translated
    constraint: Obj = {
        "maxSkew": 1,
        "topologyKey": "zone",
        "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"app": "x"}},
        "matchLabelKeys": keys,
    }
    assert host_topology_spread_constraint(constraint, "vc", "team") == {
        "maxSkew": 1,
        "topologyKey": "zone",
        "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {
            "matchLabels": {"app": "x", LABEL_NAMESPACE: "team", LABEL_MANAGED_BY: "vc"}
        },
        "matchLabelKeys": translated,
    }


def test_network_policy_peers() -> None:
    ip_block: Obj = {"ipBlock": {"cidr": "10.0.0.0/8"}}
    assert host_network_policy_peer(ip_block, "vc", "team") == ip_block
    only_namespaces = host_network_policy_peer({"namespaceSelector": {}}, "vc", "team")
    assert only_namespaces == {"podSelector": {"matchLabels": {LABEL_MANAGED_BY: "vc"}}}
    only_pods = host_network_policy_peer({"podSelector": {}}, "vc", "team")
    assert only_pods == {
        "podSelector": {"matchLabels": {LABEL_NAMESPACE: "team", LABEL_MANAGED_BY: "vc"}}
    }


# --- selectors: semantics against a simulated cluster ------------------------------------
#
# A small world of namespaces and pods is generated; each rewritten selector must
# select on the host exactly the host copies of the pods the original selects in
# the virtual cluster, and nothing of another virtual cluster or the host.

VC = "vc"
OTHER_VC = "other"
NAMESPACES = ["team", "ops", "dev"]

pool_keys = st.sampled_from(["app", "tier", PREFIX + "tier", "example.com/x"])
pool_values = st.sampled_from(["a", "b"])
pool_labels = st.dictionaries(pool_keys, pool_values, max_size=3)
operators = st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"])


@st.composite
def expressions(draw: st.DrawFn) -> Obj:
    expression: Obj = {"key": draw(pool_keys), "operator": draw(operators)}
    if expression["operator"] in ("In", "NotIn"):
        expression["values"] = draw(st.lists(pool_values, min_size=1, max_size=2))
    return expression


selectors = st.fixed_dictionaries(
    {},
    optional={
        "matchLabels": pool_labels,
        "matchExpressions": st.lists(expressions(), max_size=2),
    },
)
namespace_lists = st.lists(st.sampled_from([*NAMESPACES, "missing"]), max_size=2)
affinity_terms = st.fixed_dictionaries(
    {"topologyKey": st.just("zone")},
    optional={
        "labelSelector": selectors,
        "namespaces": namespace_lists,
        "namespaceSelector": selectors,
        "matchLabelKeys": st.lists(pool_keys, max_size=2),
    },
)
peers = st.fixed_dictionaries(
    {}, optional={"podSelector": selectors, "namespaceSelector": selectors}
)
Pod = tuple[str, dict[str, str]]
# Every namespace holds a few fixed pods, so each selector has candidates everywhere.
FIXED_PODS: list[Pod] = [
    (namespace, labels)
    for namespace in NAMESPACES
    for labels in ({}, {"app": "a"}, {"app": "b", PREFIX + "tier": "a"})
]
pods = st.lists(st.tuples(st.sampled_from(NAMESPACES), pool_labels), max_size=6).map(
    lambda drawn: FIXED_PODS + drawn
)


@dataclass(frozen=True)
class World:
    """Virtual pods, the labels of their namespaces, and host pods that are not ours."""

    pods: list[Pod]
    namespace_labels: dict[str, dict[str, str]]
    foreign: list[dict[str, str]]

    def host_pod_labels(self, pod: Pod, vcluster: str = VC) -> dict[str, str]:
        """Labels of the host copy of `pod`, as the pod translator will write them."""
        namespace, labels = pod
        return host_labels(labels, vcluster, namespace) | host_namespace_labels(
            self.namespace_labels[namespace], vcluster, namespace
        )


worlds = st.builds(
    World,
    pods=pods,
    namespace_labels=st.fixed_dictionaries({ns: pool_labels for ns in NAMESPACES}),
    foreign=st.lists(
        st.dictionaries(
            st.one_of(pool_keys, st.just(LABEL_NAMESPACE)), st.sampled_from(["a", *NAMESPACES])
        ),
        max_size=3,
    ),
)


def matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector semantics, written from the API documentation."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        present = key in labels
        ok = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]
        if not ok:
            return False
    return True


def affinity_selects(term: Obj, pod: Pod, world: World) -> bool:
    """PodAffinityTerm semantics in the virtual cluster, for a pod of namespace "team"."""
    namespace, labels = pod
    selector, namespace_selector = term.get("labelSelector"), term.get("namespaceSelector")
    listed = term.get("namespaces") or []
    if selector is None:
        return False
    if namespace_selector is None and not listed:
        in_scope = namespace == "team"
    else:
        in_scope = namespace in listed or (
            namespace_selector is not None
            and matches(namespace_selector, world.namespace_labels[namespace])
        )
    return in_scope and matches(selector, labels)


def peer_selects(peer: Obj, pod: Pod, world: World) -> bool:
    """NetworkPolicyPeer semantics in the virtual cluster, for a policy in "team"."""
    namespace, labels = pod
    namespace_selector = peer.get("namespaceSelector")
    if namespace_selector is None:
        in_scope = namespace == "team"
    else:
        in_scope = matches(namespace_selector, world.namespace_labels[namespace])
    return in_scope and matches(peer.get("podSelector") or {}, labels)


def _assert_isolated(selector: Obj | None, world: World) -> None:
    """Nothing outside this virtual cluster is ever selected."""
    if selector is None:
        return
    assert selector["matchLabels"][LABEL_MANAGED_BY] == VC
    for expression in selector.get("matchExpressions") or []:
        assert expression["key"] != LABEL_MANAGED_BY
        assert is_label_key(expression["key"])
    assert all(is_label_key(key) for key in selector["matchLabels"])
    for pod in world.pods:
        assert not matches(selector, world.host_pod_labels(pod, OTHER_VC))
    for labels in world.foreign:
        assert not matches(selector, labels)


@THOROUGH
@given(affinity_terms, worlds)
def test_affinity_term_selects_the_same_pods_on_the_host(term: Obj, world: World) -> None:
    assert_not_mutated(host_pod_affinity_term, term, VC, "team")
    host = host_pod_affinity_term(term, VC, "team")
    assert "namespaces" not in host
    assert "namespaceSelector" not in host
    _assert_isolated(host.get("labelSelector"), world)
    widened = bool(term.get("namespaces")) and bool(
        (term.get("namespaceSelector") or {}).get("matchLabels")
        or (term.get("namespaceSelector") or {}).get("matchExpressions")
    )
    for pod in world.pods:
        virtual = affinity_selects(term, pod, world)
        selector = host.get("labelSelector")
        on_host = selector is not None and matches(selector, world.host_pod_labels(pod))
        assert on_host == virtual or (widened and on_host and not virtual)


@THOROUGH
@given(peers, worlds)
def test_network_policy_peer_selects_the_same_pods_on_the_host(peer: Obj, world: World) -> None:
    assert_not_mutated(host_network_policy_peer, peer, VC, "team")
    host = host_network_policy_peer(peer, VC, "team")
    if not peer:
        assert host == {}
        return
    _assert_isolated(host["podSelector"], world)
    for pod in world.pods:
        on_host = matches(host["podSelector"], world.host_pod_labels(pod))
        assert on_host == peer_selects(peer, pod, world)


@THOROUGH
@given(selectors, worlds)
def test_label_selector_and_spread_select_the_same_pods_on_the_host(
    selector: Obj, world: World
) -> None:
    assert_not_mutated(host_label_selector, selector, VC, "team")
    host = host_label_selector(selector, VC, "team")
    constraint = {"maxSkew": 1, "labelSelector": selector}
    assert_not_mutated(host_topology_spread_constraint, constraint, VC, "team")
    spread = host_topology_spread_constraint(constraint, VC, "team")
    assert spread == {"maxSkew": 1, "labelSelector": host}
    _assert_isolated(host, world)
    for pod in world.pods:
        namespace, labels = pod
        virtual = namespace == "team" and matches(selector, labels)
        assert matches(host, world.host_pod_labels(pod)) == virtual


@THOROUGH
@given(pool_labels, worlds)
def test_service_selector_selects_the_same_pods_on_the_host(
    selector: dict[str, str], world: World
) -> None:
    assert_not_mutated(host_selector, selector, VC, "team")
    host = host_selector(selector, VC, "team")
    if not selector:
        assert host == {}
        return
    as_label_selector = {"matchLabels": host}
    _assert_isolated(as_label_selector, world)
    for pod in world.pods:
        namespace, labels = pod
        virtual = namespace == "team" and matches({"matchLabels": selector}, labels)
        assert matches(as_label_selector, world.host_pod_labels(pod)) == virtual


@pytest.mark.parametrize("vcluster", ["vc", "a" * 63])
def test_rewritten_keys_of_different_kinds_never_collide(vcluster: str) -> None:
    keys = {host_label_key(PREFIX + "k", vcluster), namespace_label_key(PREFIX + "k", vcluster)}
    keys |= {LABEL_MANAGED_BY, LABEL_NAMESPACE, LABEL_CONTROLLED_BY}
    assert len(keys) == 5


def test_colliding_names_are_every_other_split_at_the_separator() -> None:
    """The pairs that share a host name: a reference to one may mount the other."""
    assert colliding_names("a", "b-x-c") == [("a-x-b", "c")]
    assert colliding_names("a-x-b", "c") == [("a", "b-x-c")]
    assert colliding_names("a-x-x-b", "c") == [("a", "x-b-x-c"), ("a-x", "b-x-c")]
    assert colliding_names("plain", "team") == []
    for name, namespace in colliding_names("p-x-q-x-r", "s-x-t"):
        assert host_name(name, namespace, "vc") == host_name(
            "p-x-q-x-r", "s-x-t", "vc")

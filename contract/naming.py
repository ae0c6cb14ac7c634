"""Names, labels, annotations and selectors of host objects (docs/naming.md).

Every host object the syncer creates must fit Kubernetes' name and label limits,
prove who owns it without anyone parsing its name, and never let a tenant reach
another tenant's or the host's objects through labels or selectors. This module
is the only place that knows the `vcsync.dev/` keys and how tenant metadata is
bent around them. Everything here is a pure function: inputs are never mutated,
and every dict or list a function changes is a new one; parts passed through
untouched may be shared with the input, which is immutable by convention.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from contract.resources import Obj

PREFIX = "vcsync.dev/"

LABEL_MANAGED_BY = PREFIX + "managed-by"
LABEL_NAMESPACE = PREFIX + "namespace"
LABEL_CONTROLLED_BY = PREFIX + "controlled-by"

ANNOTATION_OBJECT_NAME = PREFIX + "object-name"
ANNOTATION_OBJECT_NAMESPACE = PREFIX + "object-namespace"
ANNOTATION_OBJECT_UID = PREFIX + "object-uid"
ANNOTATION_OBJECT_KIND = PREFIX + "object-kind"
ANNOTATION_MANAGED_ANNOTATIONS = PREFIX + "managed-annotations"
ANNOTATION_REWRITTEN_LABELS = PREFIX + "rewritten-labels"

DNS_SERVICE = ("kube-dns", "kube-system")
"""(name, namespace) of the virtual cluster DNS Service: its host copy's ClusterIP is
every synced pod's nameserver (the pod translator and ``vcsync translate`` both need it)."""
METRICS_API_SERVICE = ("vcsync-metrics", "kube-system")
"""(name, namespace) of the virtual Service in front of the syncer's metrics API: the
engine registers it, the services translator never syncs it."""

MAX_NAME_LENGTH = 63
_SEPARATOR = "-x-"
_KEPT_CHARS = 52
_HASH_CHARS = 10

_Scope: TypeAlias = tuple[dict[str, str], list[Obj]]
"""Extra (matchLabels, matchExpressions) that pin a host pod selector to namespaces."""


# --- names -------------------------------------------------------------------


def _hash10(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:_HASH_CHARS]


def safe_name(name: str) -> str:
    """Shorten `name` to at most 63 characters, deterministically.

    Some kinds need DNS-1123 labels (Services; Pods, whose name becomes the
    hostname), so every kind gets that limit and one function serves all.
    Hashing the *full* name keeps long names with a common 52-character start
    apart. Inputs are DNS-1123 subdomains (ASCII), so edge cases are:

    - 63 characters or fewer: unchanged, dots and all.
    - 64 or more: the first 52 characters, "-", 10 hex digits: 63 characters.
    - character 52 (index 51, the last one kept) is a dot: "x.-<hash>" would
      end a DNS segment with a dot, so ".-" becomes "-": 62 characters.
    - other dots in the kept part stay: the result is a DNS-1123 subdomain,
      and a DNS-1123 label only when the kept part had no dots.
    """
    if len(name) <= MAX_NAME_LENGTH:
        return name
    return f"{name[:_KEPT_CHARS]}-{_hash10(name)}".replace(".-", "-")


def host_name(name: str, namespace: str, vcluster: str) -> str:
    """Host name of a namespaced virtual object: `<name>-x-<namespace>-x-<vcluster>`.

    The separator is not escaped (the spec keeps short names readable and never
    changes them), so the mapping is not injective: ("a-x-b", "c") and
    ("a", "b-x-c") both give "a-x-b-x-c-x-vc". This is why host-to-virtual
    mapping reads `identity_of()` instead of parsing names, and why a
    translator must compare that identity with the virtual object before it
    touches an existing host object of the same name.
    """
    return safe_name(f"{name}-x-{namespace}-x-{vcluster}")


def colliding_names(name: str, namespace: str) -> list[tuple[str, str]]:
    """The other (name, namespace) pairs whose host name equals that of (name, namespace).

    Every other place where `-x-` splits `<name>-x-<namespace>` is one (`host_name`
    does not escape the separator). Long names hash the same full string, so
    no other pair collides (barring sha256 collisions). Used to refuse
    references whose host object could belong to another virtual namespace.
    """
    joined = f"{name}{_SEPARATOR}{namespace}"
    pairs = []
    at = joined.find(_SEPARATOR)
    while at != -1:
        pair = (joined[:at], joined[at + len(_SEPARATOR):])
        if pair != (name, namespace) and all(pair):
            pairs.append(pair)
        at = joined.find(_SEPARATOR, at + 1)
    return pairs


def host_cluster_scoped_name(name: str, host_namespace: str, vcluster: str) -> str:
    """Host name of a cluster-scoped virtual object synced to the host (PriorityClass, ...).

    Cluster-scoped host names are shared by every tenant on the host, so the
    host namespace (unique per virtual cluster) is part of the name.
    """
    return safe_name(f"vcsync-{name}-x-{host_namespace}-x-{vcluster}")


def lease_name(vcluster: str) -> str:
    """The syncer replicas' Lease in the host namespace (the chart's ``vcsync.leaseName``)."""
    return f"vcsync-{vcluster}"


def token_secret_name(pod_uid: str) -> str:
    """Host name of a pod's token Secret.

    Derived from the virtual uid and free of ``-x-``, so no tenant object's
    host name (``<name>-x-<ns>-x-<vc>``, or a 52-character cut plus hash) can
    ever be the same.
    """
    return f"vcsync-token-{hashlib.sha256(pod_uid.encode()).hexdigest()[:16]}"


def virtual_text(text: str, vcluster: str, host_namespace: str, namespace: str | None) -> str:
    """``text`` (a host error message) with the host names this module makes turned back
    into the virtual names of namespace ``namespace`` (None: a cluster-scoped object's).

    Not exact (names are not escaped, see :func:`host_name`): it serves messages
    shown to the tenant, which must not reveal host names, not lookups.
    """
    if namespace:
        # Objects of the namespace named in the error (a pod's ConfigMap that the host
        # refused): their host names lose the suffix the syncer added.
        text = text.replace(f"{_SEPARATOR}{namespace}{_SEPARATOR}{vcluster}", "")
    # Cluster-scoped copies (PriorityClasses) spell the host namespace in their names.
    text = re.sub(rf"vcsync-(\S+?){_SEPARATOR}{re.escape(host_namespace)}"
                  rf"{_SEPARATOR}{re.escape(vcluster)}", r"\1", text)
    if namespace:
        text = text.replace(host_namespace, namespace)
    return text


# --- labels --------------------------------------------------------------------


def _owned_key(kind: str, key: str, vcluster: str) -> str:
    """A key under our prefix standing for `key`, private to `vcluster`.

    The name part goes through `safe_name` because a long vcluster name (over
    44 characters) would push it past the 63-character limit of label keys.
    """
    return PREFIX + safe_name(f"{kind}-{vcluster}-x-{_hash10(key)}")


def host_label_key(key: str, vcluster: str) -> str:
    """Host key of a tenant label key: unchanged unless it is under `vcsync.dev/`.

    Tenant keys under our prefix are hashed to `vcsync.dev/label-<vc>-x-<hash>`,
    so no tenant label can become managed-by, namespace or controlled-by on the
    host, nor collide with the ns-label keys.
    """
    if not key.startswith(PREFIX):
        return key
    return _owned_key("label", key, vcluster)


def namespace_label_key(key: str, vcluster: str) -> str:
    """Host pod label key carrying the label `key` of the pod's virtual namespace.

    Host pods all live in one host namespace, so namespace selectors of the
    virtual cluster can only be expressed on labels of the pods themselves.
    """
    return _owned_key("ns-label", key, vcluster)


def _ownership_labels(vcluster: str, namespace: str | None) -> dict[str, str]:
    if namespace is None:
        return {LABEL_MANAGED_BY: vcluster}
    return {LABEL_MANAGED_BY: vcluster, LABEL_NAMESPACE: namespace}


def _translate_keys(labels: Mapping[str, str] | None, vcluster: str) -> dict[str, str]:
    return {host_label_key(key, vcluster): value for key, value in (labels or {}).items()}


def host_labels(
    virtual_labels: Mapping[str, str] | None, vcluster: str, namespace: str | None
) -> dict[str, str]:
    """Labels of the host object: tenant labels (keys translated) plus ownership.

    `namespace` is the virtual namespace, None for cluster-scoped objects. The
    ownership labels are written last, but translated tenant keys can never
    equal them anyway. Pair with `rewritten_labels_annotation` so the
    translated keys can be read back.
    """
    labels = _translate_keys(virtual_labels, vcluster)
    labels.update(_ownership_labels(vcluster, namespace))
    return labels


def rewritten_labels_annotation(
    virtual_labels: Mapping[str, str] | None, vcluster: str
) -> dict[str, str]:
    """The annotation mapping hashed host label keys back to tenant keys.

    A hash cannot be reversed, so the original keys travel in
    `vcsync.dev/rewritten-labels` (a JSON object, sorted for stable patches).
    Returns {} when no key was rewritten, so most objects carry nothing extra.
    """
    mapping = {
        host_label_key(key, vcluster): key
        for key in (virtual_labels or {})
        if key.startswith(PREFIX)
    }
    if not mapping:
        return {}
    return {ANNOTATION_REWRITTEN_LABELS: json.dumps(mapping, sort_keys=True, separators=(",", ":"))}


def _rewritten_originals(annotations: Mapping[str, str] | None, vcluster: str) -> dict[str, str]:
    """Hashed key -> tenant key, keeping only entries that hash correctly.

    Checking the hash means a damaged or hand-edited annotation can at worst
    drop a tenant label; it can never make a host key such as managed-by show
    up as a tenant label.
    """
    raw = (annotations or {}).get(ANNOTATION_REWRITTEN_LABELS)
    if not raw:
        return {}
    try:
        mapping = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(mapping, dict):
        return {}
    return {
        hashed: original
        for hashed, original in mapping.items()
        if isinstance(original, str) and host_label_key(original, vcluster) == hashed
    }


def virtual_labels(
    host_labels: Mapping[str, str] | None,
    host_annotations: Mapping[str, str] | None,
    vcluster: str,
) -> dict[str, str]:
    """The tenant's labels of a host object: inverse of `host_labels`.

    Our own keys (managed-by, namespace, ns-label-*, ...) are dropped; rewritten
    tenant keys are mapped back through `vcsync.dev/rewritten-labels`.
    """
    originals = _rewritten_originals(host_annotations, vcluster)
    labels: dict[str, str] = {}
    for key, value in (host_labels or {}).items():
        if not key.startswith(PREFIX):
            labels[key] = value
        elif key in originals:
            labels[originals[key]] = value
    return labels


def host_namespace_labels(
    virtual_namespace_labels: Mapping[str, str] | None, vcluster: str, namespace: str
) -> dict[str, str]:
    """Labels a host pod carries for its virtual namespace, so selectors can see it.

    Merge them into the pod's `host_labels`. When the virtual namespace's labels
    change, the host pods of that namespace must be relabelled, or namespace
    selectors go stale.
    """
    labels = {
        namespace_label_key(key, vcluster): value
        for key, value in (virtual_namespace_labels or {}).items()
    }
    labels[LABEL_NAMESPACE] = namespace
    return labels


# --- annotations and identity ------------------------------------------------------


@dataclass(frozen=True)
class VirtualIdentity:
    """Who a host object stands for in the virtual cluster (namespace None: cluster-scoped)."""

    name: str
    namespace: str | None
    uid: str
    kind: str


def _identity_annotations(identity: VirtualIdentity) -> dict[str, str]:
    annotations = {
        ANNOTATION_OBJECT_NAME: identity.name,
        ANNOTATION_OBJECT_UID: identity.uid,
        ANNOTATION_OBJECT_KIND: identity.kind,
    }
    if identity.namespace is not None:
        annotations[ANNOTATION_OBJECT_NAMESPACE] = identity.namespace
    return annotations


def host_annotations(
    virtual_annotations: Mapping[str, str] | None, identity: VirtualIdentity
) -> dict[str, str]:
    """Annotations of the host object: tenant annotations plus our bookkeeping.

    Tenant annotations under `vcsync.dev/` are dropped, not rewritten: no
    selector reads annotations, so nothing is lost that a workload could
    observe, and the identity and managed-annotations keys cannot be forged.
    `vcsync.dev/managed-annotations` (sorted keys, comma-separated; annotation
    keys cannot contain commas) is always written, even empty, so the next
    sync knows which host annotations are the tenant's to remove.
    """
    tenant = {
        key: value
        for key, value in (virtual_annotations or {}).items()
        if not key.startswith(PREFIX)
    }
    annotations = {**tenant, **_identity_annotations(identity)}
    annotations[ANNOTATION_MANAGED_ANNOTATIONS] = ",".join(sorted(tenant))
    return annotations


def _managed_annotation_keys(annotations: Mapping[str, str]) -> list[str]:
    listed = annotations.get(ANNOTATION_MANAGED_ANNOTATIONS) or ""
    return [key for key in listed.split(",") if key and not key.startswith(PREFIX)]


def virtual_annotations(host_annotations: Mapping[str, str] | None) -> dict[str, str]:
    """The tenant's annotations of a host object: those listed in managed-annotations."""
    annotations = host_annotations or {}
    return {
        key: annotations[key] for key in _managed_annotation_keys(annotations) if key in annotations
    }


def annotation_patch(
    desired: Mapping[str, str], current: Mapping[str, str] | None
) -> dict[str, str | None]:
    """Merge-patch fragment for `metadata.annotations` (None = remove the key).

    `desired` is a `host_annotations` result (plus any of our own keys). Keys we
    own on the host (ours under `vcsync.dev/`, and the tenant keys listed in the
    current managed-annotations) are removed when no longer desired; every other
    key belongs to some host controller and is left alone. An empty result
    means no write is needed.
    """
    present = current or {}
    patch: dict[str, str | None] = {
        key: value for key, value in desired.items() if present.get(key) != value
    }
    owned = [key for key in present if key.startswith(PREFIX)]
    owned += _managed_annotation_keys(present)
    for key in owned:
        if key in present and key not in desired:
            patch[key] = None
    return patch


def _metadata_map(obj: Obj, field: str) -> Mapping[str, Any]:
    metadata = obj.get("metadata") or {}
    found: Mapping[str, Any] = metadata.get(field) or {}
    return found


def _text(annotations: Mapping[str, Any], key: str) -> str | None:
    value = annotations.get(key)
    return value if isinstance(value, str) and value else None


def identity_of(host_obj: Obj) -> VirtualIdentity | None:
    """The virtual identity recorded on a host object, or None if it has none.

    Name, uid and kind must all be present: a half-annotated object cannot be
    tied to a virtual object, and guessing would risk touching a foreign one.
    """
    annotations = _metadata_map(host_obj, "annotations")
    name = _text(annotations, ANNOTATION_OBJECT_NAME)
    uid = _text(annotations, ANNOTATION_OBJECT_UID)
    kind = _text(annotations, ANNOTATION_OBJECT_KIND)
    if name is None or uid is None or kind is None:
        return None
    namespace = _text(annotations, ANNOTATION_OBJECT_NAMESPACE)
    return VirtualIdentity(name=name, namespace=namespace, uid=uid, kind=kind)


def is_managed(host_obj: Obj, vcluster: str) -> bool:
    """True if the host object is owned by `vcluster`: the only proof of ownership."""
    return bool(_metadata_map(host_obj, "labels").get(LABEL_MANAGED_BY) == vcluster)


def is_controlled_elsewhere(obj: Obj) -> bool:
    """True if the object (on either side) is claimed by another controller: leave it alone."""
    return LABEL_CONTROLLED_BY in _metadata_map(obj, "labels")


# --- selectors ---------------------------------------------------------------------


def host_selector(
    match_labels: Mapping[str, str] | None, vcluster: str, namespace: str
) -> dict[str, str]:
    """Host Service selector: the tenant's, pinned to its virtual namespace and cluster.

    An empty or missing selector stays empty: such a Service has hand-made
    endpoints, and pinning it would make it select every pod of the namespace.
    """
    if not match_labels:
        return {}
    selector = _translate_keys(match_labels, vcluster)
    selector.update(_ownership_labels(vcluster, namespace))
    return selector


def _in(key: str, values: Iterable[str]) -> Obj:
    return {"key": key, "operator": "In", "values": list(values)}


def _translate_expression(expression: Obj, key_of: Callable[[str], str]) -> Obj:
    """A copy of one matchExpression with its key translated.

    `values` stays absent when it was (Exists, DoesNotExist): the API server
    drops an empty list, and a shape that differs from what it stores would
    look like a change on every sync.
    """
    translated: Obj = {"key": key_of(expression["key"]), "operator": expression["operator"]}
    if expression.get("values") is not None:
        translated["values"] = list(expression["values"])
    return translated


def _translate_expressions(
    expressions: Iterable[Obj] | None, key_of: Callable[[str], str]
) -> list[Obj]:
    return [_translate_expression(expression, key_of) for expression in expressions or []]


def _label_selector(match_labels: dict[str, str], expressions: list[Obj]) -> Obj:
    selector: Obj = {"matchLabels": match_labels}
    if expressions:
        selector["matchExpressions"] = expressions
    return selector


def _scoped_selector(selector: Obj, vcluster: str, scope: _Scope) -> Obj:
    """The tenant selector with keys translated, managed-by and the namespace scope added."""
    scope_labels, scope_expressions = scope
    labels = _translate_keys(selector.get("matchLabels"), vcluster)
    labels.update(scope_labels)
    labels[LABEL_MANAGED_BY] = vcluster
    expressions = _translate_expressions(
        selector.get("matchExpressions"), lambda key: host_label_key(key, vcluster)
    )
    return _label_selector(labels, expressions + scope_expressions)


def host_label_selector(label_selector: Obj, vcluster: str, namespace: str) -> Obj:
    """Host form of a metav1.LabelSelector that selects pods of one virtual namespace.

    An empty tenant selector ({} = everything) becomes "every pod of this
    virtual namespace". A missing (null) selector means "nothing" in most APIs:
    callers keep it missing rather than call this.
    """
    return _scoped_selector(label_selector, vcluster, ({LABEL_NAMESPACE: namespace}, []))


def _is_empty_selector(selector: Obj) -> bool:
    return not selector.get("matchLabels") and not selector.get("matchExpressions")


def _namespace_selector_scope(namespace_selector: Obj, vcluster: str) -> _Scope:
    """Scope for a virtual namespaceSelector, as conditions on the ns-label pod labels."""
    labels = {
        namespace_label_key(key, vcluster): value
        for key, value in (namespace_selector.get("matchLabels") or {}).items()
    }
    expressions = _translate_expressions(
        namespace_selector.get("matchExpressions"),
        lambda key: namespace_label_key(key, vcluster),
    )
    return labels, expressions


def _affinity_scope(term: Obj, vcluster: str, pod_namespace: str) -> _Scope:
    """Namespace scope of a PodAffinityTerm (the union of `namespaces` and `namespaceSelector`).

    A label selector cannot express a union, so when a term has both a
    `namespaces` list and a non-empty namespaceSelector the scope widens to
    every namespace of this virtual cluster: never beyond the tenant, but
    looser than asked (affinity more permissive, anti-affinity stricter).
    """
    namespaces = term.get("namespaces") or []
    namespace_selector = term.get("namespaceSelector")
    if namespace_selector is None:
        if namespaces:
            return {}, [_in(LABEL_NAMESPACE, namespaces)]
        return {LABEL_NAMESPACE: pod_namespace}, []
    if namespaces and not _is_empty_selector(namespace_selector):
        return {}, []
    return _namespace_selector_scope(namespace_selector, vcluster)


def _translate_key_lists(obj: Obj, fields: Iterable[str], vcluster: str) -> Obj:
    """The label-key lists (matchLabelKeys, ...) of `obj` with keys translated."""
    return {
        field: [host_label_key(key, vcluster) for key in obj[field]]
        for field in fields
        if obj.get(field) is not None
    }


_AFFINITY_REWRITTEN = ("labelSelector", "namespaces", "namespaceSelector")
_AFFINITY_KEY_LISTS = ("matchLabelKeys", "mismatchLabelKeys")


def host_pod_affinity_term(term: Obj, vcluster: str, pod_namespace: str) -> Obj:
    """Host form of a PodAffinityTerm of a pod in virtual namespace `pod_namespace`.

    The namespace scope (see `_affinity_scope`) becomes conditions on the
    namespace labels every host pod carries, and managed-by is always required,
    so the term can only ever match this virtual cluster's pods. `namespaces`
    and `namespaceSelector` are dropped: on the host every pod is in one
    namespace, the term's own. A null labelSelector matches nothing and stays
    null. matchLabelKeys/mismatchLabelKeys get the label key translation.
    """
    host_term = {
        key: value
        for key, value in term.items()
        if key not in _AFFINITY_REWRITTEN and key not in _AFFINITY_KEY_LISTS
    }
    host_term.update(_translate_key_lists(term, _AFFINITY_KEY_LISTS, vcluster))
    selector = term.get("labelSelector")
    if selector is not None:
        scope = _affinity_scope(term, vcluster, pod_namespace)
        host_term["labelSelector"] = _scoped_selector(selector, vcluster, scope)
    return host_term


def host_topology_spread_constraint(constraint: Obj, vcluster: str, pod_namespace: str) -> Obj:
    """Host form of a TopologySpreadConstraint of a pod in virtual namespace `pod_namespace`.

    Spread constraints only count pods of the pod's own namespace, so the
    selector is pinned to it. matchLabelKeys are passed through with the
    label key translation (tenant keys outside `vcsync.dev/` are unchanged).
    """
    host_constraint = {
        key: value
        for key, value in constraint.items()
        if key not in ("labelSelector", "matchLabelKeys")
    }
    host_constraint.update(_translate_key_lists(constraint, ("matchLabelKeys",), vcluster))
    selector = constraint.get("labelSelector")
    if selector is not None:
        host_constraint["labelSelector"] = host_label_selector(selector, vcluster, pod_namespace)
    return host_constraint


def host_network_policy_peer(peer: Obj, vcluster: str, policy_namespace: str) -> Obj:
    """Host form of a NetworkPolicyPeer of a policy in virtual namespace `policy_namespace`.

    Peer semantics differ from affinity: a missing podSelector next to a
    namespaceSelector means "all pods", and a missing namespaceSelector means
    the policy's namespace. The host peer is a podSelector only (managed-by
    always required), which on the host selects within the policy's host
    namespace, where all of this cluster's pods live. ipBlock peers are copied.
    """
    pod_selector = peer.get("podSelector")
    namespace_selector = peer.get("namespaceSelector")
    if pod_selector is None and namespace_selector is None:
        return dict(peer)
    if namespace_selector is None:
        scope: _Scope = ({LABEL_NAMESPACE: policy_namespace}, [])
    else:
        scope = _namespace_selector_scope(namespace_selector, vcluster)
    return {"podSelector": _scoped_selector(pod_selector or {}, vcluster, scope)}

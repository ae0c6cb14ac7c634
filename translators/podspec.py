"""The pure core of pod translation: virtual Pod -> host Pod, and the patches between them.

A host pod runs on the host's nodes but must behave as if it ran in the
virtual cluster: it must reach the virtual API server and DNS, see virtual
names through the downward API, mount the host copies of its ConfigMaps,
Secrets and PVCs, and never select or be selected by another tenant's pods.
Everything the translation needs from outside comes in a :class:`PodWorld`,
so these functions are pure: plain dicts in, new dicts out, inputs never
mutated (they are shared cache objects). New dicts are built only along the
paths that change; untouched sub-objects are shared with the input.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contract import naming
from contract.resources import Obj
from contract.translator import DEFAULT_TOKEN_EXPIRATION, TokenSpec
from translators import references
from translators.objects import merge_patch, metadata_patch

ANNOTATION_VIRTUAL_LABELS = naming.PREFIX + "virtual-labels"
"""The virtual labels, rendered as the downward API renders ``metadata.labels``."""
ANNOTATION_SERVICE_ACCOUNT_NAME = naming.PREFIX + "service-account-name"
"""The virtual service account (the host pod runs as the host namespace's ``default``)."""

CA_CERT_KEY = "ca.crt"
"""Key of the virtual API server's CA bundle in the pod's token Secret."""

_KUBERNETES_HOSTNAMES = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
_API_PORTS = ({"name": "https", "port": 443, "protocol": "TCP"},)
_MAX_NAMESERVERS = 3
_MAX_SEARCHES = 32
_MAX_SEARCH_CHARS = 2048
_MAX_HOSTNAME = 63

# Computed by host admission from host objects, or impossible on create (see host_pod).
_DROPPED_SPEC = frozenset(
    {
        "serviceAccountName",
        "serviceAccount",
        "priority",
        "preemptionPolicy",
        "priorityClassName",
        "overhead",
        "ephemeralContainers",
        "nodeName",
    }
)
_CONTAINER_FIELDS = ("initContainers", "containers")

# (volume source, nested reference or None, field holding the name)
_VOLUME_REFERENCES: tuple[tuple[str, str | None, str], ...] = (
    ("configMap", None, "name"),
    ("secret", None, "secretName"),
    ("persistentVolumeClaim", None, "claimName"),
    ("azureFile", None, "secretName"),
    ("csi", "nodePublishSecretRef", "name"),
    *(
        (driver, "secretRef", "name")
        for driver in ("cephfs", "cinder", "flexVolume", "iscsi", "rbd", "scaleIO", "storageos")
    ),
)
_REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
_PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"
_LABEL_PATH = re.compile(r"metadata\.labels\['(.*)'\]")
_GO_ESCAPES = {
    "\a": r"\a",
    "\b": r"\b",
    "\f": r"\f",
    "\n": r"\n",
    "\r": r"\r",
    "\t": r"\t",
    "\v": r"\v",
    "\\": r"\\",
    '"': r"\"",
}


@dataclass(frozen=True)
class PodWorld:
    """What translating one pod needs from outside (from caches; passed explicitly)."""

    vcluster: str
    host_namespace: str
    api_service_ip: str
    """Host ClusterIP of the Service fronting the virtual API server."""
    dns_ip: str
    """Host ClusterIP of the virtual cluster's DNS Service."""
    services: tuple[Obj, ...]
    """Virtual Services of the pod's namespace (their clusterIP already is the host's)."""
    namespace_labels: Mapping[str, str]
    """Labels of the pod's virtual namespace."""
    priority_class: str
    """The host PriorityClass the pod gets ("": none), see ``policy.host_priority_class``."""
    runtime_class: str
    """Host RuntimeClass for a pod that names none ("": the host's default)."""
    token_secret: str
    """Host name of the Secret holding the pod's service-account tokens and CA."""


@dataclass(frozen=True)
class _Scope:
    """The world plus the pod's virtual namespace: what every nested rewrite needs."""

    world: PodWorld
    namespace: str
    pod: Obj
    """The virtual pod (generic ephemeral volumes are named after it)."""

    def name(self, virtual_name: str) -> str:
        return naming.host_name(virtual_name, self.namespace, self.world.vcluster)


# --- public API ------------------------------------------------------------------


def host_pod(virtual: Obj, world: PodWorld) -> Obj:
    """The host Pod to create for ``virtual`` (no status, no ownership by virtual objects).

    ``spec.ephemeralContainers`` is left out: the API rejects a pod created
    with them; they go through the ephemeralcontainers subresource
    (:func:`ephemeral_containers_patch`).
    """
    meta = virtual["metadata"]
    scope = _Scope(world, meta["namespace"], virtual)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _host_metadata(virtual, world),
        "spec": _host_spec(virtual.get("spec") or {}, meta["name"], scope),
    }


def spec_patch(virtual: Obj, host: Obj, world: PodWorld) -> Obj:
    """Strategic merge patch bringing the host pod's mutable fields in line ({}: no write).

    Only what pod update validation accepts is sent (images, a set or lowered
    activeDeadlineSeconds, added tolerations, removed scheduling gates), so a
    tenant's change the API would reject never turns into an error loop; the
    virtual API server already enforced the same rules on the virtual pod.
    """
    patch = metadata_patch(host, {"metadata": _host_metadata(virtual, world)})
    changes = _spec_changes(virtual.get("spec") or {}, host.get("spec") or {})
    if changes:
        patch["spec"] = changes
    return patch


def ephemeral_containers_patch(virtual: Obj, host: Obj, world: PodWorld) -> Obj:
    """Strategic merge patch for the host pod's ``ephemeralcontainers`` subresource ({}: none).

    Ephemeral containers can only be added (``kubectl debug``), never changed,
    so the patch lists the translated virtual ones the host pod lacks.
    """
    spec = virtual.get("spec") or {}
    if not spec.get("ephemeralContainers"):
        return {}  # the common case: no need to build the injected environment
    scope = _Scope(world, virtual["metadata"]["namespace"], virtual)
    present = {c["name"] for c in (host.get("spec") or {}).get("ephemeralContainers") or []}
    injected = _injected_env(spec, world)
    added = [
        _container(container, injected, scope)
        for container in spec.get("ephemeralContainers") or []
        if container["name"] not in present
    ]
    return {"spec": {"ephemeralContainers": added}} if added else {}


def status_patch(virtual: Obj, host: Obj) -> Obj:
    """``{"status": <merge patch>}`` making the virtual status mirror the host's ({}: equal).

    Three exceptions keep the mirror honest: ``observedGeneration`` counts the
    host pod's generations, not the virtual pod's, so it is not copied;
    ``qosClass`` stays the virtual API server's (immutable; host defaults such
    as a LimitRange's requests may give the copy another class); and
    conditions of the virtual pod's readiness gates, which controllers of the
    virtual cluster set and the host never has, are kept (erasing them would
    fight those controllers forever).
    """
    patch = merge_patch(virtual.get("status") or {}, _mirrored_status(virtual, host))
    return {"status": patch} if patch else {}


def token_key(audience: str | None) -> str:
    """Key of a token in the token Secret: ``token``, or ``token-<hash>`` per audience."""
    if not audience:
        return "token"
    return "token-" + hashlib.sha256(audience.encode()).hexdigest()[:10]


def token_requests(virtual: Obj) -> tuple[TokenSpec, ...]:
    """The distinct tokens the pod's projected volumes need, sorted by key.

    The engine issues each with a TokenRequest against the virtual API server
    (bound to the virtual pod) and writes it into ``PodWorld.token_secret``.
    When two sources ask for the same audience, the shorter lifetime wins: a
    token valid for less time than asked is safe, one valid for longer is not.
    """
    shortest: dict[str, TokenSpec] = {}
    for source in _token_sources(virtual):
        audience = source.get("audience") or None
        expiration = source.get("expirationSeconds") or DEFAULT_TOKEN_EXPIRATION
        token = TokenSpec(token_key(audience), audience, expiration)
        known = shortest.get(token.key)
        if known is None or token.expiration_seconds < known.expiration_seconds:
            shortest[token.key] = token
    return tuple(shortest[key] for key in sorted(shortest))


def downward_labels(labels: Mapping[str, str]) -> str:
    """``labels`` as the kubelet renders ``metadata.labels`` in a downwardAPI file.

    Sorted ``key="value"`` lines, values quoted like Go's ``%q``, so a
    container reading the redirected annotation sees byte-identical content.
    """
    return "\n".join(f"{key}={_go_quote(labels[key])}" for key in sorted(labels))


# --- metadata --------------------------------------------------------------------


def _host_metadata(virtual: Obj, world: PodWorld) -> Obj:
    """Host name, labels (tenant + ownership + namespace labels) and annotations."""
    meta = virtual["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    labels = meta.get("labels") or {}
    identity = naming.VirtualIdentity(name, namespace, meta.get("uid", ""), "Pod")
    annotations = naming.host_annotations(meta.get("annotations"), identity)
    annotations.update(naming.rewritten_labels_annotation(labels, world.vcluster))
    annotations[ANNOTATION_VIRTUAL_LABELS] = downward_labels(labels)
    annotations[ANNOTATION_SERVICE_ACCOUNT_NAME] = _service_account(virtual.get("spec") or {})
    return {
        "name": naming.host_name(name, namespace, world.vcluster),
        "namespace": world.host_namespace,
        "labels": {
            **naming.host_labels(labels, world.vcluster, namespace),
            **naming.host_namespace_labels(world.namespace_labels, world.vcluster, namespace),
        },
        "annotations": annotations,
    }


def _service_account(spec: Obj) -> str:
    return str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")


def _go_quote(text: str) -> str:
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'  # nothing to escape: the common case, without a loop per character
    return '"' + "".join(_go_escaped(char) for char in text) + '"'


def _go_escaped(char: str) -> str:
    """One character as Go's strconv.Quote writes it."""
    if char in _GO_ESCAPES:
        return _GO_ESCAPES[char]
    if char.isprintable():
        return char
    code = ord(char)
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if 0xD800 <= code <= 0xDFFF:  # a lone surrogate is no valid rune: Go writes U+FFFD
        code = 0xFFFD
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


# --- spec ------------------------------------------------------------------------


def _host_spec(spec: Obj, pod_name: str, scope: _Scope) -> Obj:
    """The host spec: kept fields plus every rewrite, each computed by its own helper.

    Dropped: the service account (the host pod runs as ``default``; tokens
    come from the token Secret), and priority, preemption policy and overhead,
    which host admission computes from host classes and rejects when they
    disagree with the values the virtual admission computed.
    """
    host = {key: value for key, value in spec.items() if key not in _DROPPED_SPEC}
    host.update(automountServiceAccountToken=False, enableServiceLinks=False)
    injected = _injected_env(spec, scope.world)
    for field in _CONTAINER_FIELDS:
        if spec.get(field) is not None:
            host[field] = [_container(c, injected, scope) for c in spec[field]]
    if spec.get("volumes") is not None:
        host["volumes"] = [_volume(volume, scope) for volume in spec["volumes"]]
    if spec.get("imagePullSecrets") is not None:
        host["imagePullSecrets"] = [_renamed(r, "name", scope) for r in spec["imagePullSecrets"]]
    host["hostAliases"] = [*(spec.get("hostAliases") or []), _api_alias(scope.world)]
    host.update(_dns_fields(spec, scope))
    host.update(_hostname_fields(spec, pod_name))
    host.update(_priority_fields(scope.world))
    host.update(_runtime_fields(spec, scope.world))
    host.update(_scheduling_fields(spec, scope))
    return host


def _api_alias(world: PodWorld) -> Obj:
    """/etc/hosts entry for the in-cluster API names; after the user's, which win."""
    return {"ip": world.api_service_ip, "hostnames": list(_KUBERNETES_HOSTNAMES)}


def _hostname_fields(spec: Obj, pod_name: str) -> Obj:
    """The virtual pod name as hostname (the kubelet would use the host name otherwise)."""
    if spec.get("hostname"):
        return {}
    return {"hostname": pod_name.replace(".", "-")[:_MAX_HOSTNAME].rstrip("-")}


def _priority_fields(world: PodWorld) -> Obj:
    """The host PriorityClass the policy chose (never a system class: a tenant must not
    get the host's system-critical priorities)."""
    return {"priorityClassName": world.priority_class} if world.priority_class else {}


def _runtime_fields(spec: Obj, world: PodWorld) -> Obj:
    """The platform's runtime class for a pod that names none (a named one was checked)."""
    if spec.get("runtimeClassName") or not world.runtime_class:
        return {}
    return {"runtimeClassName": world.runtime_class}


# --- DNS ---------------------------------------------------------------------------


def _dns_fields(spec: Obj, scope: _Scope) -> Obj:
    """Send cluster DNS queries to the virtual cluster's DNS Service instead of the host's.

    Only where the kubelet would use cluster DNS: ClusterFirst (or unset)
    without hostNetwork, and ClusterFirstWithHostNetwork with or without it.
    """
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    cluster_dns = policy == "ClusterFirstWithHostNetwork" or (
        policy == "ClusterFirst" and not spec.get("hostNetwork")
    )
    if not cluster_dns:
        return {}
    return {"dnsPolicy": "None", "dnsConfig": _dns_config(spec.get("dnsConfig") or {}, scope)}


def _dns_config(user: Obj, scope: _Scope) -> Obj:
    """Ours merged with the user's dnsConfig the way the kubelet merges them for ClusterFirst.

    Duplicates are dropped and the lists cut to the resolver limits (the
    kubelet does the same), as ``dnsPolicy: None`` validation would reject more.
    """
    nameservers = [scope.world.dns_ip, *(user.get("nameservers") or [])]
    searches = [f"{scope.namespace}.svc.cluster.local", "svc.cluster.local", "cluster.local"]
    searches += user.get("searches") or []
    return {
        "nameservers": _unique(nameservers)[:_MAX_NAMESERVERS],
        "searches": _fitting_searches(_unique(searches)),
        "options": _merged_options([{"name": "ndots", "value": "5"}], user.get("options") or []),
    }


def _fitting_searches(searches: list[str]) -> list[str]:
    """The longest prefix of ``searches`` that validation accepts: at most 32 domains of
    at most 2048 characters joined by spaces (as the kubelet cuts the list).

    The tenant's list met both limits in the virtual cluster, but our three
    cluster domains come first, so its last entries may have to go.
    """
    kept: list[str] = []
    length = -1
    for search in searches[:_MAX_SEARCHES]:
        length += len(search) + 1
        if length > _MAX_SEARCH_CHARS:
            break
        kept.append(search)
    return kept


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _merged_options(ours: list[Obj], user: list[Obj]) -> list[Obj]:
    """Options by name; the user's override ours in place, new ones follow."""
    merged = {option.get("name"): option for option in ours}
    merged.update((option.get("name"), option) for option in user)
    return list(merged.values())


# --- scheduling --------------------------------------------------------------------


def _scheduling_fields(spec: Obj, scope: _Scope) -> Obj:
    """Pod (anti-)affinity and spread constraints confined to this virtual cluster's pods;
    a ``nodeName`` the tenant set becomes a required node affinity (see :func:`_on_node`)."""
    vcluster, namespace = scope.world.vcluster, scope.namespace
    fields: Obj = {}
    affinity = spec.get("affinity")
    if affinity:
        fields["affinity"] = _host_affinity(affinity, scope)
    if spec.get("nodeName"):
        fields["affinity"] = _on_node(fields.get("affinity") or {}, spec["nodeName"])
    constraints = spec.get("topologySpreadConstraints")
    if constraints is not None:
        fields["topologySpreadConstraints"] = [
            naming.host_topology_spread_constraint(c, vcluster, namespace) for c in constraints
        ]
    return fields


def _on_node(affinity: Obj, node: str) -> Obj:
    """``affinity`` that also requires node ``node`` (every term, as terms are ORed).

    A host pod created with ``nodeName`` skips the host scheduler: taints,
    node selection the platform enforces, capacity. Asking for the node by
    name (as DaemonSets do) lets the scheduler place the pod there, or leave
    it Pending when the node does not exist or does not admit it.
    """
    wanted = {"key": "metadata.name", "operator": "In", "values": [node]}
    node_affinity = dict(affinity.get("nodeAffinity") or {})
    required = dict(node_affinity.get(_REQUIRED) or {})
    terms = required.get("nodeSelectorTerms") or [{}]
    required["nodeSelectorTerms"] = [
        {**term, "matchFields": [*(term.get("matchFields") or []), wanted]} for term in terms
    ]
    node_affinity[_REQUIRED] = required
    return {**affinity, "nodeAffinity": node_affinity}


def _host_affinity(affinity: Obj, scope: _Scope) -> Obj:
    host = dict(affinity)
    for kind in ("podAffinity", "podAntiAffinity"):
        if affinity.get(kind):
            host[kind] = _host_pod_affinity(affinity[kind], scope)
    return host


def _host_pod_affinity(pod_affinity: Obj, scope: _Scope) -> Obj:
    def term(virtual_term: Obj) -> Obj:
        return naming.host_pod_affinity_term(virtual_term, scope.world.vcluster, scope.namespace)

    host = dict(pod_affinity)
    if pod_affinity.get(_REQUIRED) is not None:
        host[_REQUIRED] = [term(t) for t in pod_affinity[_REQUIRED]]
    if pod_affinity.get(_PREFERRED) is not None:
        host[_PREFERRED] = [
            {**weighted, "podAffinityTerm": term(weighted["podAffinityTerm"])}
            for weighted in pod_affinity[_PREFERRED]
        ]
    return host


# --- containers and env ------------------------------------------------------------


def _container(container: Obj, injected: list[Obj], scope: _Scope) -> Obj:
    """Container with our env first (the user's same-named variables win) and refs renamed.

    Ours come first, as the kubelet's service variables are visible to
    ``$(VAR)`` expansion in the user's values.
    """
    host = dict(container)
    user_env = [_env_var(var, scope) for var in container.get("env") or []]
    user_names = {var.get("name") for var in user_env}
    host["env"] = [var for var in injected if var["name"] not in user_names] + user_env
    if container.get("envFrom") is not None:
        host["envFrom"] = [_env_from(source, scope) for source in container["envFrom"]]
    return host


def _env_var(var: Obj, scope: _Scope) -> Obj:
    value_from = var.get("valueFrom")
    if not value_from:
        return var
    host = _with_field_ref(value_from, scope)
    for ref in ("configMapKeyRef", "secretKeyRef"):
        if value_from.get(ref):
            host = {**host, ref: _renamed(value_from[ref], "name", scope)}
    return {**var, "valueFrom": host}


def _env_from(source: Obj, scope: _Scope) -> Obj:
    host = source
    for ref in ("configMapRef", "secretRef"):
        if source.get(ref):
            host = {**host, ref: _renamed(source[ref], "name", scope)}
    return host


def _injected_env(spec: Obj, world: PodWorld) -> list[Obj]:
    """KUBERNETES_* for the virtual API Service, then service links (unless disabled).

    The Service named ``kubernetes`` is skipped: the fixed variables stand
    for it. First of each name wins, so results never repeat a name.
    """
    env = _service_env("kubernetes", world.api_service_ip, _API_PORTS)
    if spec.get("enableServiceLinks") is not False:
        env += _service_links(world.services)
    first: dict[str, Obj] = {}
    for var in env:
        first.setdefault(var["name"], var)
    return list(first.values())


def _service_links(services: Iterable[Obj]) -> list[Obj]:
    """Service-link variables of the linked Services, sorted by Service name."""
    linked = sorted((s for s in services if _links(s)), key=lambda s: str(s["metadata"]["name"]))
    return [
        var
        for service in linked
        for var in _service_env(
            service["metadata"]["name"], service["spec"]["clusterIP"], service["spec"]["ports"]
        )
    ]


def _links(service: Obj) -> bool:
    """Whether the kubelet would make variables for the Service (it has a real ClusterIP)."""
    spec = service.get("spec") or {}
    return (
        service["metadata"]["name"] != "kubernetes"
        and spec.get("clusterIP") not in (None, "", "None")
        and bool(spec.get("ports"))
    )


def _service_env(name: str, ip: str, ports: Sequence[Obj]) -> list[Obj]:
    """The variables kubelet's envvars.FromServices makes for one Service, in its order."""
    prefix = _env_name(name)
    first = str(ports[0]["port"])
    env = [_var(f"{prefix}_SERVICE_HOST", ip), _var(f"{prefix}_SERVICE_PORT", first)]
    env += [
        _var(f"{prefix}_SERVICE_PORT_{_env_name(port['name'])}", str(port["port"]))
        for port in ports
        if port.get("name")
    ]
    env.append(_var(f"{prefix}_PORT", _port_url(ip, ports[0])))
    for port in ports:
        env += _port_env(prefix, ip, port)
    return env


def _port_env(prefix: str, ip: str, port: Obj) -> list[Obj]:
    protocol = port.get("protocol") or "TCP"
    number = str(port["port"])
    base = f"{prefix}_PORT_{number}_{protocol.upper()}"
    return [
        _var(base, _port_url(ip, port)),
        _var(f"{base}_PROTO", protocol.lower()),
        _var(f"{base}_PORT", number),
        _var(f"{base}_ADDR", ip),
    ]


def _port_url(ip: str, port: Obj) -> str:
    """``proto://ip:port``, IPv6 addresses bracketed as Go's net.JoinHostPort does."""
    protocol = (port.get("protocol") or "TCP").lower()
    host = f"[{ip}]" if ":" in ip else ip
    return f"{protocol}://{host}:{port['port']}"


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def _var(name: str, value: str) -> Obj:
    return {"name": name, "value": value}


# --- references and downward API ---------------------------------------------------


def _renamed(ref: Obj, field: str, scope: _Scope) -> Obj:
    """A copy of ``ref`` naming the host copy of the referenced object."""
    if not ref.get(field):
        return ref
    return {**ref, field: scope.name(ref[field])}


def _volume(volume: Obj, scope: _Scope) -> Obj:
    if volume.get("ephemeral"):
        return _ephemeral_claim(volume, scope)
    host = dict(volume)
    for source, ref, field in _VOLUME_REFERENCES:
        if volume.get(source):
            host[source] = _source_renamed(volume[source], ref, field, scope)
    if volume.get("downwardAPI"):
        host["downwardAPI"] = _downward(volume["downwardAPI"], scope)
    if volume.get("projected"):
        host["projected"] = _projected(volume, scope)
    return host


def _ephemeral_claim(volume: Obj, scope: _Scope) -> Obj:
    """A generic ephemeral volume mounts the host copy of the claim the virtual cluster's
    ephemeral-volume controller made for it: a claim the PVC translator checks and syncs
    (its StorageClass included), and the only one, where the host's controller would
    provision a second volume from the template, of any class."""
    claim = references.ephemeral_claim_name(scope.pod, volume)
    return {"name": volume["name"], "persistentVolumeClaim": {"claimName": scope.name(claim)}}


def _source_renamed(source: Obj, ref: str | None, field: str, scope: _Scope) -> Obj:
    if ref is None:
        return _renamed(source, field, scope)
    if not source.get(ref):
        return source
    return {**source, ref: _renamed(source[ref], field, scope)}


def _projected(volume: Obj, scope: _Scope) -> Obj:
    projected: Obj = volume["projected"]
    if projected.get("sources") is None:
        return projected
    api_access = str(volume.get("name", "")).startswith(references.API_ACCESS_PREFIX)
    sources = [_projection(source, api_access, scope) for source in projected["sources"]]
    return {**projected, "sources": sources}


def _projection(source: Obj, api_access: bool, scope: _Scope) -> Obj:
    """One projected source; tokens (and the injected CA) come from the token Secret.

    The host's own token or CA would be useless (the virtual API server does
    not trust them) and a leak of host credentials, so every serviceAccountToken
    source, and the kube-root-ca.crt of the injected kube-api-access volume,
    are served from ``PodWorld.token_secret``, which the engine fills.
    """
    secret = scope.world.token_secret
    if source.get("serviceAccountToken") is not None:
        token = source["serviceAccountToken"]
        return _secret_item(secret, token_key(token.get("audience")), token.get("path", ""))
    config_map = source.get("configMap")
    if config_map and api_access and config_map.get("name") == references.ROOT_CA_CONFIGMAP:
        return _secret_item(secret, CA_CERT_KEY, CA_CERT_KEY)
    if config_map:
        return {**source, "configMap": _renamed(config_map, "name", scope)}
    if source.get("secret"):
        return {**source, "secret": _renamed(source["secret"], "name", scope)}
    if source.get("downwardAPI"):
        return {**source, "downwardAPI": _downward(source["downwardAPI"], scope)}
    return source


def _secret_item(name: str, key: str, path: str) -> Obj:
    return {"secret": {"name": name, "items": [{"key": key, "path": path}]}}


def _downward(downward: Obj, scope: _Scope) -> Obj:
    if downward.get("items") is None:
        return downward
    return {**downward, "items": [_with_field_ref(item, scope) for item in downward["items"]]}


def _with_field_ref(holder: Obj, scope: _Scope) -> Obj:
    """``holder`` (an env valueFrom or a downwardAPI item) reading virtual values."""
    ref = holder.get("fieldRef")
    if not ref or "fieldPath" not in ref:
        return holder
    path = _virtual_field_path(ref["fieldPath"], scope.world.vcluster)
    return {**holder, "fieldRef": {**ref, "fieldPath": path}}


def _annotation_path(key: str) -> str:
    return f"metadata.annotations['{key}']"


_REDIRECTED_PATHS = {
    "metadata.name": _annotation_path(naming.ANNOTATION_OBJECT_NAME),
    "metadata.namespace": _annotation_path(naming.ANNOTATION_OBJECT_NAMESPACE),
    "metadata.uid": _annotation_path(naming.ANNOTATION_OBJECT_UID),
    "spec.serviceAccountName": _annotation_path(ANNOTATION_SERVICE_ACCOUNT_NAME),
    "metadata.labels": _annotation_path(ANNOTATION_VIRTUAL_LABELS),
}


def _virtual_field_path(path: str, vcluster: str) -> str:
    """Where on the host pod the virtual value of downward API field ``path`` is found."""
    if path in _REDIRECTED_PATHS:
        return _REDIRECTED_PATHS[path]
    label = _LABEL_PATH.fullmatch(path)
    if label:
        return f"metadata.labels['{naming.host_label_key(label.group(1), vcluster)}']"
    return path


def _token_sources(virtual: Obj) -> Iterable[Obj]:
    for volume in (virtual.get("spec") or {}).get("volumes") or []:
        for source in (volume.get("projected") or {}).get("sources") or []:
            if source.get("serviceAccountToken") is not None:
                yield source["serviceAccountToken"]


# --- update patches --------------------------------------------------------------


def _spec_changes(virtual: Obj, host: Obj) -> Obj:
    changes: Obj = {}
    for field in _CONTAINER_FIELDS:
        images = _image_changes(virtual.get(field) or [], host.get(field) or [])
        if images:
            changes[field] = images
    for change in (_deadline_change, _toleration_change, _gate_change):
        changes.update(change(virtual, host))
    return changes


def _image_changes(virtual: list[Obj], host: list[Obj]) -> list[Obj]:
    """Images that differ, by container name (containers are merged by name)."""
    images = {container["name"]: container.get("image") for container in host}
    return [
        {"name": name, "image": image}
        for name, image in ((c["name"], c.get("image")) for c in virtual)
        if name in images and image is not None and image != images[name]
    ]


def _deadline_change(virtual: Obj, host: Obj) -> Obj:
    """activeDeadlineSeconds may only be set or lowered, never raised or removed."""
    want, have = virtual.get("activeDeadlineSeconds"), host.get("activeDeadlineSeconds")
    if want is None or want == have or (have is not None and want > have):
        return {}
    return {"activeDeadlineSeconds": want}


def _toleration_change(virtual: Obj, host: Obj) -> Obj:
    """The host's tolerations with the virtual additions (and tolerationSeconds changes).

    Existing host tolerations are never dropped: the API forbids it, and some
    were added by host admission. Tolerations have no merge key, so the
    strategic patch sends the whole list.
    """
    have: list[Obj] = host.get("tolerations") or []
    pending = list(virtual.get("tolerations") or [])
    updated = []
    for old in have:
        index = next((i for i, new in enumerate(pending) if _same_toleration(new, old)), None)
        updated.append(old if index is None else pending.pop(index))
    updated += pending
    return {"tolerations": updated} if updated != have else {}


def _same_toleration(new: Obj, old: Obj) -> bool:
    """Equal but for tolerationSeconds, the one field an update may change."""

    def key(toleration: Obj) -> Obj:
        return {k: v for k, v in toleration.items() if k != "tolerationSeconds"}

    return key(new) == key(old)


def _gate_change(virtual: Obj, host: Obj) -> Obj:
    """Delete directives for host scheduling gates the virtual pod no longer has.

    Gates can only be removed, so gates only the virtual pod has are ignored.
    """
    kept = {gate["name"] for gate in virtual.get("schedulingGates") or []}
    removed = [g["name"] for g in host.get("schedulingGates") or [] if g["name"] not in kept]
    if not removed:
        return {}
    return {"schedulingGates": [{"name": name, "$patch": "delete"} for name in removed]}


def _mirrored_status(virtual: Obj, host: Obj) -> Obj:
    host_status: Obj = host.get("status") or {}
    # A pod named its node may be waiting for the host scheduler to preempt on it: the
    # host copy then shows a nominated node, which the API refuses on a bound pod.
    bound = bool((virtual.get("spec") or {}).get("nodeName"))
    left_out = ("observedGeneration", "qosClass", *(("nominatedNodeName",) if bound else ()))
    status = {key: value for key, value in host_status.items() if key not in left_out}
    # qosClass is the virtual API server's to set, once (it is immutable): a
    # host LimitRange that adds requests makes the host copy Burstable while
    # the tenant's pod stays BestEffort, and copying it would fail every patch.
    qos_class = (virtual.get("status") or {}).get("qosClass")
    if qos_class is not None:
        status["qosClass"] = qos_class
    conditions = [_without_generation(c) for c in host_status.get("conditions") or []]
    conditions += _gate_conditions(virtual, {c.get("type") for c in conditions})
    if conditions or "conditions" in host_status:
        status["conditions"] = conditions
    return status


def _without_generation(condition: Obj) -> Obj:
    if "observedGeneration" not in condition:
        return condition
    return {key: value for key, value in condition.items() if key != "observedGeneration"}


def _gate_conditions(virtual: Obj, host_types: set[Any]) -> list[Obj]:
    """Virtual conditions of readiness-gate types the host status lacks."""
    readiness_gates = (virtual.get("spec") or {}).get("readinessGates") or []
    gates = {gate.get("conditionType") for gate in readiness_gates}
    return [
        condition
        for condition in (virtual.get("status") or {}).get("conditions") or []
        if condition.get("type") in gates and condition.get("type") not in host_types
    ]

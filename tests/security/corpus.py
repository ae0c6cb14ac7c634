"""The bad-input corpus: hostile or odd virtual objects, each with the outcome it must have.

Why a corpus: a tenant controls every byte of its objects, and a syncer that
crashes, loops, leaks into another namespace or silently drops an object on
one odd input hurts every tenant of the host. Each :class:`Case` is data
(objects to write, in stages, and the outcome of each stage), so that adding
an input is one entry and the runner in ``test_bad_input.py`` stays the only
code. Outcomes:

- :class:`Synced` -- the host copy exists under the expected host name, with
  the ownership labels, the identity of the virtual object, and the listed
  labels, annotations and fields;
- :class:`Warned` -- a Warning event on the virtual object with the reason and
  a message containing the given text (never a host name);
- :class:`Rejected` -- the virtual API server refused the object at create
  time (the syncer never sees it);
- :class:`Absent` -- no host copy (and, if asked, no virtual object either).

Sizes that matter (Kubernetes 1.35): names of namespaced objects become
``<name>-x-<ns>-x-vc1`` and are hashed past 63 characters; ConfigMap and
Secret data may hold 1 MiB; annotations may hold 256 KiB in total, and host
copies add the identity annotations to the tenant's; the host's etcd takes
requests of at most 1.5 MiB, and the syncer bakes service-link variables into
host pod specs (the kubelet would compute them at run time).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from contract.resources import Obj
from tests.cluster.conftest import VC
from tests.suite_size import pick

NS = "corpus"
LONG_NS = "ns-" + "l" * 59 + "g"
"""A namespace name at the 63-character limit (also the value of the namespace label)."""
FLOOD_NS = "flood"
COLLIDE_NS = "collide"
COLLIDE_TWIN_NS = "team-x-collide"
"""``cfg`` here and ``cfg-x-team`` in :data:`COLLIDE_NS` have the same host name."""
NAMESPACES = (NS, LONG_NS, FLOOD_NS, COLLIDE_NS, COLLIDE_TWIN_NS)
NAMESPACE_LABELS: Mapping[str, Mapping[str, str]] = {
    LONG_NS: {"example.com/tier": "v" * 63},
}
HOST_SUFFIX = len(f"-x-{NS}-x-{VC}")
"""What the host name adds to a name in :data:`NS`."""
STORAGE_CLASS = "corpus-selected"
"""Base name of the host StorageClass the syncer shows (the runner makes it unique)."""
MiB = 1024 * 1024
ANNOTATIONS_LIMIT = 256 * 1024
FLOOD_SERVICES = pick(ci=100, full=300)
FLOOD_PORTS = pick(ci=2, full=3)
CHURN_ROUNDS = pick(ci=10, full=50)


# -- outcomes ---------------------------------------------------------------------


class _Marker:
    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


ABSENT = _Marker("ABSENT")
"""Expected value of a path that must not exist."""
SAME = _Marker("SAME")
"""Host fields: equal to the virtual object's value at the same path (and vice versa)."""


@dataclass(frozen=True)
class Length:
    """The value at the path is a list or string of exactly ``n`` items."""

    n: int


@dataclass(frozen=True)
class AtLeast:
    """The value at the path is a list or string of at least ``n`` items."""

    n: int


@dataclass(frozen=True)
class Includes:
    """The value at the path is a list containing ``item``."""

    item: Any


@dataclass(frozen=True)
class Synced:
    """The host copy of ``kind`` ``name`` exists and carries what is listed.

    ``fields`` are dotted paths (list indices as numbers) on the host object;
    ``virtual_fields`` on the virtual one, where :data:`SAME` means "as on the
    host" (ClusterIPs and NodePorts flow up). ``host_name_length`` pins the
    naming edge a case is about.
    """

    kind: str
    name: str
    namespace: str | None = None
    labels: Mapping[str, Any] = field(default_factory=dict)
    annotations: Mapping[str, Any] = field(default_factory=dict)
    fields: Mapping[str, Any] = field(default_factory=dict)
    virtual_fields: Mapping[str, Any] = field(default_factory=dict)
    host_name_length: int | None = None


@dataclass(frozen=True)
class Warned:
    """A Warning event about virtual ``kind`` ``name``: ``reason``, and ``message`` in its text."""

    kind: str
    name: str
    reason: str
    message: str
    namespace: str | None = None


@dataclass(frozen=True)
class Rejected:
    """The virtual API server answered a write of this case with ``status`` and ``message``."""

    status: int
    message: str


@dataclass(frozen=True)
class Absent:
    """No host copy; ``virtual`` True/False: the virtual object must exist/be gone."""

    kind: str
    name: str
    namespace: str | None = None
    virtual: bool | None = None
    terminating: bool = False
    """With ``virtual=True``: the virtual object must be being deleted (finalizers hold it)."""


Outcome = Synced | Warned | Rejected | Absent


# -- steps ------------------------------------------------------------------------


@dataclass(frozen=True)
class Apply:
    """Create ``obj`` in the virtual cluster."""

    obj: Obj


@dataclass(frozen=True)
class HostApply:
    """Create ``obj`` (unmanaged) in the host namespace: a decoy the syncer must not touch."""

    obj: Obj


@dataclass(frozen=True)
class Remove:
    """Delete a virtual object (grace period 0)."""

    kind: str
    name: str
    namespace: str = NS


@dataclass(frozen=True)
class Unfinalize:
    """Clear a virtual object's finalizers."""

    kind: str
    name: str
    namespace: str = NS


@dataclass(frozen=True)
class Churn:
    """Create and delete ``obj`` ``rounds`` times as fast as possible; create it once more
    at the end if ``end_created``."""

    obj: Obj
    rounds: int
    end_created: bool


Step = Apply | HostApply | Remove | Unfinalize | Churn


@dataclass(frozen=True)
class Stage:
    steps: tuple[Step, ...]
    expect: tuple[Outcome, ...]


@dataclass(frozen=True)
class Case:
    """One corpus entry. Stage ``i`` of every case runs after stage ``i-1`` of every case
    was checked (so a later stage can rely on the syncer having seen the earlier one)."""

    id: str
    stages: tuple[Stage, ...]


def case(case_id: str, *objs: Obj, expect: Outcome | Sequence[Outcome]) -> Case:
    """A one-stage case: create ``objs`` in order, then expect."""
    expected = (expect,) if not isinstance(expect, Sequence) else tuple(expect)
    return Case(case_id, (Stage(tuple(Apply(o) for o in objs), expected),))


# -- object builders ------------------------------------------------------------------


def _meta(name: str, namespace: str | None, **meta: Any) -> Obj:
    out: Obj = {"name": name, **meta}
    if namespace is not None:
        out["namespace"] = namespace
    return out


def pod(name: str, namespace: str = NS, meta: Obj | None = None, **spec: Any) -> Obj:
    containers = spec.pop("containers", [{"name": "main", "image": "busybox"}])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": _meta(name, namespace, **(meta or {})),
            "spec": {"containers": containers, **spec}}


def container(name: str = "main", **fields: Any) -> Obj:
    return {"name": name, "image": "busybox", **fields}


def configmap(name: str, namespace: str = NS, meta: Obj | None = None, **body: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": _meta(name, namespace, **(meta or {})), **body}


def secret(name: str, namespace: str = NS, meta: Obj | None = None, **body: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": _meta(name, namespace, **(meta or {})), **body}


def service(name: str, namespace: str = NS, meta: Obj | None = None, **spec: Any) -> Obj:
    spec.setdefault("ports", [{"port": 80}])
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": _meta(name, namespace, **(meta or {})), "spec": spec}


PUBLIC_IP = "93.184.216.34"
"""An address outside every internal range: Endpoints may carry it to the host (never dialed)."""


def endpoints(name: str, namespace: str = NS, ip: str = PUBLIC_IP) -> Obj:
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": _meta(name, namespace),
            "subsets": [{"addresses": [{"ip": ip}], "ports": [{"port": 80}]}]}


def claim(name: str, namespace: str = NS, meta: Obj | None = None, **spec: Any) -> Obj:
    spec.setdefault("accessModes", ["ReadWriteOnce"])
    spec.setdefault("resources", {"requests": {"storage": "1Gi"}})
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": _meta(name, namespace, **(meta or {})), "spec": spec}


def ingress(name: str, namespace: str = NS, meta: Obj | None = None, **spec: Any) -> Obj:
    if not spec:
        spec = {"defaultBackend": backend("web")}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": _meta(name, namespace, **(meta or {})), "spec": spec}


def backend(service_name: str, port: int | str = 80) -> Obj:
    number = {"name": port} if isinstance(port, str) else {"number": port}
    return {"service": {"name": service_name, "port": number}}


def http_rule(host: str | None, *paths: tuple[str, str, Obj]) -> Obj:
    rule: Obj = {"http": {"paths": [
        {"path": path, "pathType": path_type, "backend": target}
        for path, path_type, target in paths]}}
    if host:
        rule["host"] = host
    return rule


def netpol(name: str, namespace: str = NS, meta: Obj | None = None, **spec: Any) -> Obj:
    spec.setdefault("podSelector", {})
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": _meta(name, namespace, **(meta or {})), "spec": spec}


def priority_class(name: str, value: int = 100) -> Obj:
    return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": name}, "value": value}


def sized(prefix: str, length: int) -> str:
    """A valid name of exactly ``length`` characters starting with ``prefix``."""
    return (prefix + "-" + "a" * length)[:length]


def mounting(name: str, *, configmaps: Sequence[str] = (), secrets: Sequence[str] = (),
             claims: Sequence[str] = (), namespace: str = NS) -> Obj:
    """A pod mounting the given ConfigMaps, Secrets and claims (what makes them sync)."""
    volumes = [{"name": f"cm{i}", "configMap": {"name": n}} for i, n in enumerate(configmaps)]
    volumes += [{"name": f"s{i}", "secret": {"secretName": n}} for i, n in enumerate(secrets)]
    volumes += [{"name": f"c{i}", "persistentVolumeClaim": {"claimName": n}}
                for i, n in enumerate(claims)]
    return pod(name, namespace, volumes=volumes)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- the entries ----------------------------------------------------------------------

EDGES: tuple[tuple[str, int, int], ...] = (
    # (label, virtual name length, expected host name length)
    ("h62", 62 - HOST_SUFFIX, 62),
    ("h63", 63 - HOST_SUFFIX, 63),
    ("h64", 64 - HOST_SUFFIX, 63),
    ("v62", 62, 63),
    ("v63", 63, 63),
    ("v64", 64, 63),
    ("v253", 253, 63),
)
"""Name lengths around the 63-character host limit, and the DNS subdomain maximum."""


def _name_edges() -> list[Case]:
    cases: list[Case] = []
    cm_names, secret_names = [], []
    for label, length, host_length in EDGES:
        cm_name, secret_name = sized(f"cm-{label}", length), sized(f"secret-{label}", length)
        cm_names.append(cm_name)
        secret_names.append(secret_name)
        cases += [
            case(f"name-configmap-{label}", configmap(cm_name, data={"k": "v"}),
                 expect=Synced("ConfigMap", cm_name, host_name_length=host_length,
                               fields={"data": SAME})),
            case(f"name-secret-{label}", secret(secret_name, data={"k": _b64(b"v")}),
                 expect=Synced("Secret", secret_name, host_name_length=host_length,
                               fields={"data": SAME, "type": "Opaque"})),
            case(f"name-pod-{label}", pod(sized(f"pod-{label}", length)),
                 expect=Synced("Pod", sized(f"pod-{label}", length), host_name_length=host_length,
                               fields={"spec.hostname": sized(f"pod-{label}", length)[:63]})),
            case(f"name-pvc-{label}", claim(sized(f"pvc-{label}", length)),
                 expect=Synced("PersistentVolumeClaim", sized(f"pvc-{label}", length),
                               host_name_length=host_length)),
            case(f"name-netpol-{label}", netpol(sized(f"np-{label}", length)),
                 expect=Synced("NetworkPolicy", sized(f"np-{label}", length),
                               host_name_length=host_length)),
            case(f"name-ingress-{label}", ingress(sized(f"ing-{label}", length)),
                 expect=Synced("Ingress", sized(f"ing-{label}", length),
                               host_name_length=host_length,
                               fields={"spec.defaultBackend.service.name":
                                       f"web-x-{NS}-x-{VC}"})),
        ]
        svc_name = sized(f"svc-{label}", length)
        if length <= 63:
            # Manual Endpoints follow once the Service carries the host's ClusterIP (its
            # re-creation makes the virtual endpoints controller delete them: README).
            cases.append(Case(f"name-service-{label}", (
                Stage((Apply(service(svc_name)),),
                      (Synced("Service", svc_name, host_name_length=host_length,
                              virtual_fields={"spec.clusterIP": SAME}),)),
                Stage((Apply(endpoints(svc_name)),),
                      (Synced("Endpoints", svc_name, host_name_length=host_length,
                              fields={"subsets": SAME}),)))))
        else:
            cases.append(case(f"name-service-{label}", service(svc_name),
                              expect=Rejected(422, "must be no more than 63 characters")))
    # The consumer is what makes the name-edge ConfigMaps and Secrets sync at all.
    cases.append(case("name-consumer", mounting("names-consumer", configmaps=cm_names,
                                                secrets=secret_names),
                      expect=Synced("Pod", "names-consumer")))
    return cases


def _priority_classes() -> list[Case]:
    """Cluster-scoped host names: ``vcsync-<name>-x-<host namespace>-x-vc1``; values capped
    and preemption off, as ``policies.priorityClasses`` says by default."""
    cases = []
    capped = {"value": 0, "preemptionPolicy": "Never"}
    for length in (29, 30, 31, 62, 63, 253):
        name = sized(f"pc{length}", length)
        cases.append(case(f"name-priorityclass-{length}", priority_class(name),
                          expect=Synced("PriorityClass", name, fields=capped)))
    # The pod waits a stage: the virtual API server's priority admission learns of new
    # classes through an informer, and refuses the pod until it has.
    cases.append(Case("pod-priorityclass-synced", (
        Stage((Apply(priority_class("corpus-high", 1000)),),
              (Synced("PriorityClass", "corpus-high"),)),
        Stage((Apply(pod("prio-user", priorityClassName="corpus-high")),),
              (Synced("Pod", "prio-user", fields={"spec.priority": 0,
                                                  "spec.preemptionPolicy": "Never"}),)))))
    return cases


_DOT_AT_CUT = "d" * 51 + "." + "e" * 10
"""Character 52 of the host name (the last one kept before the hash) is a dot."""


def _dots() -> list[Case]:
    return [
        case("dots-configmap", configmap("app.config.v1", data={"a.b": "c"}),
             mounting("dots-consumer", configmaps=["app.config.v1", _DOT_AT_CUT]),
             expect=(Synced("ConfigMap", "app.config.v1"), Synced("Pod", "dots-consumer"))),
        case("dots-at-hash-cut", configmap(_DOT_AT_CUT, data={"k": "v"}),
             expect=Synced("ConfigMap", _DOT_AT_CUT, host_name_length=62)),
        case("dots-pod-hostname", pod("web.v1.example"),
             expect=Synced("Pod", "web.v1.example", fields={"spec.hostname": "web-v1-example"})),
        case("dots-pod-253", pod(("a" * 60 + ".") * 4 + "b" * 9),
             expect=Synced("Pod", ("a" * 60 + ".") * 4 + "b" * 9, host_name_length=63,
                           fields={"spec.hostname": "a" * 60 + "-aa"})),
    ]


def _long_namespace() -> list[Case]:
    return [
        case("namespace-63-pod", configmap("cfg", LONG_NS, data={"k": "v"}),
             mounting("app", namespace=LONG_NS, configmaps=["cfg"]),
             expect=(
                 Synced("Pod", "app", LONG_NS, host_name_length=63, labels={
                     "vcsync.dev/namespace": LONG_NS,
                     _hashed_label("example.com/tier", "ns-label"): "v" * 63}),
                 Synced("ConfigMap", "cfg", LONG_NS, host_name_length=63))),
    ]


_FORGED_LABELS = {
    "vcsync.dev/managed-by": "someone-else",
    "vcsync.dev/namespace": "kube-system",
    "vcsync.dev/label-vc1-x-0123456789": "x",
}
_UNICODE = {
    "example.com/emoji": "\U0001f680 rocket \u2728",
    "example.com/rtl": "\u202eevil\u202c",
    "example.com/zero-width": "a\u200bb\u200dc",
    "example.com/cjk": "\u8a2d\u5b9a \u5024",
    "example.com/combining": "e\u0301",
    "example.com/nul": "a\u0000b",
    "example.com/newlines": "line1\nline2\r\n\ttab",
    "example.com/label-like": "app=web,tier=front",
    "example.com/json": '{"a": [1, 2]}',
    "example.com/quotes": 'he said "hi" \\ ok',
    "example.com/bom": "\ufeffbom",
    "example.com/astral": "\U0001d518\U0001d52b\U0001d526",
    "example.com/empty": "",
}


def _metadata() -> list[Case]:
    long_value = "v" * 63
    long_key = "a" * 240 + ".example.com/" + "k" * 63
    return [
        case("label-value-63", pod("label-63", meta={"labels": {"app": long_value}}),
             expect=Synced("Pod", "label-63", labels={"app": long_value},
                           annotations={"vcsync.dev/virtual-labels": f'app="{long_value}"'})),
        case("label-key-max", pod("label-key", meta={"labels": {long_key: "x"}}),
             expect=Synced("Pod", "label-key", labels={long_key: "x"})),
        case("label-forged-ownership", pod("forger", meta={"labels": _FORGED_LABELS}),
             expect=Synced("Pod", "forger", labels={
                 "vcsync.dev/managed-by": VC, "vcsync.dev/namespace": NS,
                 _hashed_label("vcsync.dev/managed-by"): "someone-else",
                 _hashed_label("vcsync.dev/namespace"): "kube-system"},
                 virtual_fields={"metadata.labels": _FORGED_LABELS})),
        case("annotation-forged-identity", configmap(
            "forged-identity", meta={"annotations": {
                "vcsync.dev/object-uid": "forged", "vcsync.dev/object-name": "kube-root-ca.crt",
                "vcsync.dev/managed-annotations": "a,b"}}, data={"k": "v"}),
             mounting("forged-consumer", configmaps=["forged-identity"]),
             expect=Synced("ConfigMap", "forged-identity", annotations={
                 "vcsync.dev/object-name": "forged-identity",
                 "vcsync.dev/managed-annotations": ""})),
        case("label-controlled-by", pod("escape", meta={
            "labels": {"vcsync.dev/controlled-by": "other-controller"}}),
             expect=Absent("Pod", "escape", virtual=True)),
        case("annotation-unicode-configmap",
             configmap("unicode", meta={"annotations": _UNICODE},
                       data={"k": "\U0001f680\u0000\u202e"}),
             mounting("unicode-consumer", configmaps=["unicode"]),
             expect=Synced("ConfigMap", "unicode", annotations={k: SAME for k in _UNICODE},
                           fields={"data": SAME})),
        case("annotation-unicode-pod", pod("unicode-pod", meta={"annotations": _UNICODE}),
             expect=Synced("Pod", "unicode-pod", annotations={k: SAME for k in _UNICODE})),
        case("label-many", pod("many-labels", meta={
            "labels": {f"example.com/l{i:03d}": f"v{i}" for i in range(300)}}),
             expect=Synced("Pod", "many-labels", labels={"example.com/l299": "v299"})),
        case("annotations-at-limit-configmap", configmap(
            "annotated-full", meta={"annotations": _filled_annotations(0)}, data={"k": "v"}),
             mounting("annotated-full-consumer", configmaps=["annotated-full"]),
             expect=(Warned("ConfigMap", "annotated-full", "SyncError", "262144 bytes"),
                     Warned("Pod", "annotated-full-consumer", "SyncError", "262144 bytes"),
                     Absent("Pod", "annotated-full-consumer"))),
        case("annotations-near-limit-configmap", configmap(
            "annotated-room", meta={"annotations": _filled_annotations(1024)}, data={"k": "v"}),
             mounting("annotated-room-consumer", configmaps=["annotated-room"]),
             expect=Synced("ConfigMap", "annotated-room",
                           annotations={"example.com/filler": SAME})),
        case("annotations-at-limit-pod", pod(
            "annotated-pod", meta={"annotations": _filled_annotations(0)}),
             expect=(Warned("Pod", "annotated-pod", "SyncError", "262144 bytes"),
                     Absent("Pod", "annotated-pod"))),
        case("annotations-over-limit", configmap(
            "annotated-over", meta={"annotations": _filled_annotations(-1)}),
             expect=Rejected(422, "262144 bytes")),
        case("label-value-64", pod("label-64", meta={"labels": {"app": "v" * 64}}),
             expect=Rejected(422, "must be no more than 63")),
        case("label-value-unicode", pod("label-unicode", meta={"labels": {"app": "\u00e9t\u00e9"}}),
             expect=Rejected(422, "a valid label must be")),
    ]


def _filled_annotations(room: int) -> dict[str, str]:
    """Annotations totalling the 256 KiB limit minus ``room`` bytes (negative: over it)."""
    key = "example.com/filler"
    return {key: "f" * (ANNOTATIONS_LIMIT - len(key) - room)}


def _huge_data() -> list[Case]:
    full = "x" * MiB
    return [
        case("data-configmap-1mib", configmap("huge-cm", data={"blob": full}),
             expect=Synced("ConfigMap", "huge-cm", fields={"data": SAME})),
        case("data-configmap-binary-1mib",
             configmap("huge-bin", binaryData={"blob": _b64(b"\x00\xff" * (MiB // 2))}),
             expect=Synced("ConfigMap", "huge-bin", fields={"binaryData": SAME})),
        case("data-secret-1mib", secret("huge-secret", data={"blob": _b64(b"s" * MiB)}),
             expect=Synced("Secret", "huge-secret", fields={"data": SAME})),
        case("data-configmap-1mib-annotated", configmap(
            "huge-annotated", meta={"annotations": _filled_annotations(1024)},
            data={"blob": "y" * (MiB - 16)}),
             expect=Synced("ConfigMap", "huge-annotated", fields={"data": SAME})),
        case("data-huge-consumer", mounting(
            "huge-consumer", configmaps=["huge-cm", "huge-bin", "huge-annotated"],
            secrets=["huge-secret"]),
             expect=Synced("Pod", "huge-consumer")),
        case("data-configmap-over-1mib", configmap("too-huge-cm", data={"blob": full + "x"}),
             expect=Rejected(422, "1048576 bytes")),
        case("data-secret-over-1mib",
             secret("too-huge-secret", data={"blob": _b64(b"s" * (MiB + 1))}),
             expect=Rejected(422, "1048576 bytes")),
    ]


def _missing_references() -> list[Case]:
    env_ref = {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}}
    return [
        case("missing-configmap-volume", mounting("miss-cm", configmaps=["nope-cm"]),
             expect=Synced("Pod", "miss-cm", fields={
                 "spec.volumes.0.configMap.name": f"nope-cm-x-{NS}-x-{VC}"})),
        case("missing-configmap-optional", pod("miss-cm-opt", volumes=[
            {"name": "v", "configMap": {"name": "nope-opt", "optional": True}}]),
             expect=Synced("Pod", "miss-cm-opt", fields={
                 "spec.volumes.0.configMap.optional": True})),
        case("missing-configmap-env", pod("miss-cm-env", containers=[container(env=[env_ref])]),
             expect=Synced("Pod", "miss-cm-env", fields={
                 "spec.containers.0.env": Includes({**env_ref, "valueFrom": {"configMapKeyRef": {
                     "name": f"nope-x-{NS}-x-{VC}", "key": "k"}}})})),
        case("missing-secret-volume", mounting("miss-secret", secrets=["nope-secret"]),
             expect=Synced("Pod", "miss-secret")),
        case("missing-secret-envfrom", pod("miss-envfrom", containers=[container(
            envFrom=[{"secretRef": {"name": "nope-env", "optional": True}}])]),
             expect=Synced("Pod", "miss-envfrom", fields={
                 "spec.containers.0.envFrom.0.secretRef.name": f"nope-env-x-{NS}-x-{VC}"})),
        case("missing-image-pull-secret", pod("miss-pull", imagePullSecrets=[{"name": "regcred"}]),
             expect=Synced("Pod", "miss-pull", fields={
                 "spec.imagePullSecrets": [{"name": f"regcred-x-{NS}-x-{VC}"}]})),
        case("missing-pvc", mounting("miss-pvc", claims=["nope-claim"]),
             expect=Synced("Pod", "miss-pvc", fields={
                 "spec.volumes.0.persistentVolumeClaim.claimName": f"nope-claim-x-{NS}-x-{VC}"})),
        case("missing-csi-secret", pod("miss-csi", volumes=[{"name": "v", "csi": {
            "driver": "csi.example.com", "nodePublishSecretRef": {"name": "csi-creds"}}}]),
             expect=Synced("Pod", "miss-csi", fields={
                 "spec.volumes.0.csi.nodePublishSecretRef.name": f"csi-creds-x-{NS}-x-{VC}"})),
        case("missing-service-account", pod("miss-sa", serviceAccountName="ghost-robot"),
             expect=Rejected(403, "ghost-robot")),
        Case("configmap-created-after-pod", (
            Stage((Apply(mounting("early-pod", configmaps=["late-cm"])),),
                  (Synced("Pod", "early-pod"), Absent("ConfigMap", "late-cm"))),
            Stage((Apply(configmap("late-cm", data={"k": "late"})),),
                  (Synced("ConfigMap", "late-cm", fields={"data": SAME}),)),
        )),
    ]


def _flood() -> list[Case]:
    """Many Services in one namespace: their service-link variables land in host pod specs."""
    ports = [{"name": f"port-{i}", "port": 8000 + i} for i in range(FLOOD_PORTS)]
    services = [service(f"svc-{i:03d}", FLOOD_NS, ports=ports) for i in range(FLOOD_SERVICES)]
    per_service = 3 + FLOOD_PORTS * 5
    per_container = FLOOD_SERVICES * per_service
    # Enough containers that the variables alone are ~3 MB: past etcd's 1.5 MiB and
    # the API server's 3 MiB request limit, whatever the IP lengths.
    overflow = 3 * MiB // (per_container * 50) + 1
    user_env = [{"name": f"USER_VAR_{i}", "value": str(i)} for i in range(500)]
    last = f"svc-{FLOOD_SERVICES - 1:03d}"
    return [
        Case("flood-service-links", (
            Stage(tuple(Apply(s) for s in services),
                  tuple(Synced("Service", s["metadata"]["name"], FLOOD_NS,
                               virtual_fields={"spec.clusterIP": SAME}) for s in services)),
            Stage((
                Apply(pod("env-500", FLOOD_NS, containers=[container(env=user_env)])),
                Apply(pod("no-links", FLOOD_NS, enableServiceLinks=False)),
                Apply(pod("links-overflow", FLOOD_NS, containers=[
                    container(f"c{i}") for i in range(overflow)])),
            ), (
                Synced("Pod", "env-500", FLOOD_NS, fields={
                    "spec.containers.0.env": AtLeast(500 + per_container),
                    "spec.containers.0.env.-1": user_env[-1]}),
                Synced("Pod", "no-links", FLOOD_NS, fields={"spec.containers.0.env": Length(8)}),
                Warned("Pod", "links-overflow", "PodTooLarge", "spec.enableServiceLinks",
                       FLOOD_NS),
                Absent("Pod", "links-overflow", FLOOD_NS),
                Synced("Service", last, FLOOD_NS),
            )),
        )),
    ]


def _env() -> list[Case]:
    return [
        case("env-duplicate-names", pod("dup-env", containers=[container(env=[
            {"name": "A", "value": "1"}, {"name": "A", "value": "2"}])]),
             expect=Synced("Pod", "dup-env")),
        case("env-odd-names", pod("odd-env", containers=[container(env=[
            {"name": "my.var", "value": "1"}, {"name": "KUBERNETES_SERVICE_HOST",
                                                  "value": "mine"}])]),
             expect=Synced("Pod", "odd-env", fields={"spec.containers.0.env": Includes(
                 {"name": "KUBERNETES_SERVICE_HOST", "value": "mine"})})),
    ]


def _selectors() -> list[Case]:
    return [
        case("selector-invalid-value", service("bad-selector", selector={"app": "a b"}),
             expect=Rejected(422, "spec.selector")),
        case("selector-empty", service("empty-selector", selector={}),
             expect=Synced("Service", "empty-selector", fields={"spec.selector": ABSENT})),
        case("selector-forged", service("forged-selector", selector={
            "vcsync.dev/managed-by": "someone-else", "app": "x"}),
             expect=Synced("Service", "forged-selector", fields={"spec.selector": {
                 "app": "x", _hashed_label("vcsync.dev/managed-by"): "someone-else",
                 "vcsync.dev/managed-by": VC, "vcsync.dev/namespace": NS}})),
        case("selector-netpol-no-values", netpol("bad-expression", podSelector={
            "matchExpressions": [{"key": "app", "operator": "In"}]}),
             expect=Rejected(422, "values")),
        case("selector-netpol-forged", netpol("forged-np", podSelector={"matchExpressions": [
            {"key": "vcsync.dev/namespace", "operator": "NotIn", "values": ["x"]}]}),
             expect=Synced("NetworkPolicy", "forged-np", fields={
                 "spec.podSelector.matchLabels": {
                     "vcsync.dev/managed-by": VC, "vcsync.dev/namespace": NS}})),
        case("selector-affinity-bad-operator", pod("bad-affinity", affinity={"podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{
                "topologyKey": "kubernetes.io/hostname",
                "labelSelector": {"matchExpressions": [
                    {"key": "app", "operator": "Sometimes", "values": ["x"]}]}}]}}),
             expect=Rejected(422, "Sometimes")),
        case("selector-anti-affinity-all-namespaces", pod("anti-all", affinity={
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                "weight": 1, "podAffinityTerm": {
                    "topologyKey": "kubernetes.io/hostname", "namespaceSelector": {},
                    "labelSelector": {"matchLabels": {"app": "x"}}}}]}}),
             expect=Synced("Pod", "anti-all", fields={
                 "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution"
                 ".0.podAffinityTerm.labelSelector.matchLabels":
                     {"app": "x", "vcsync.dev/managed-by": VC}})),
        case("selector-spread-match-label-keys", pod(
            "spread", meta={"labels": {"app": "spread"}}, topologySpreadConstraints=[{
                "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"app": "spread"}},
                "matchLabelKeys": ["pod-template-hash"]}]),
             expect=Synced("Pod", "spread")),
    ]


def _ports() -> list[Case]:
    return [
        case("ports-duplicate", service("dup-ports", ports=[{"name": "a", "port": 80},
                                                            {"name": "b", "port": 80}]),
             expect=Rejected(422, "Duplicate value")),
        case("ports-duplicate-names", service("dup-port-names", ports=[
            {"name": "a", "port": 80}, {"name": "a", "port": 81}]),
             expect=Rejected(422, "Duplicate value")),
        case("ports-same-number-two-protocols", service("tcp-udp", ports=[
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            {"name": "dns-udp", "port": 53, "protocol": "UDP"}]),
             expect=Synced("Service", "tcp-udp", fields={"spec.ports": Length(2)})),
        case("ports-hundred", service("many-ports", ports=[
            {"name": f"p{i}", "port": 1000 + i} for i in range(100)]),
             expect=Synced("Service", "many-ports", fields={"spec.ports": Length(100)})),
        case("ports-duplicate-container-ports", pod("dup-cports", containers=[container(
            ports=[{"containerPort": 80}, {"containerPort": 80}])]),
             expect=Synced("Pod", "dup-cports")),
        case("ports-duplicate-host-ports", pod("dup-hports", containers=[container(
            ports=[{"containerPort": 80, "hostPort": 8080},
                   {"containerPort": 81, "hostPort": 8080}])]),
             expect=Rejected(422, "Duplicate value")),
    ]


def _service_types() -> list[Case]:
    node_port = {"name": "http", "port": 80, "nodePort": 30999}
    return [
        case("service-externalname", service("ext", type="ExternalName",
                                              externalName="db.example.com.", ports=[]),
             expect=Synced("Service", "ext", fields={
                 "spec.type": "ExternalName", "spec.externalName": "db.example.com."})),
        case("service-externalname-searched", service(
            "ext-short", type="ExternalName", externalName="db.example.com", ports=[]),
             expect=(Warned("Service", "ext-short", "ExternalNameRefused", "'db.example.com'"),
                     Absent("Service", "ext-short", virtual=True))),
        case("service-headless", service("headless", clusterIP="None", selector={"app": "h"}),
             expect=Synced("Service", "headless", fields={"spec.clusterIP": "None"})),
        case("service-endpoints-internal-address", service("internal-ep", clusterIP="None"),
             endpoints("internal-ep", ip="10.96.0.1"),
             expect=(Warned("Endpoints", "internal-ep", "EndpointAddressRefused",
                            "10.96.0.1"),
                     Synced("Endpoints", "internal-ep", fields={"subsets": ABSENT}))),
        case("service-headless-selectorless", service("headless-manual", clusterIP="None"),
             endpoints("headless-manual"),
             expect=(Synced("Service", "headless-manual", fields={"spec.clusterIP": "None"}),
                     Synced("Endpoints", "headless-manual", fields={"subsets": SAME}))),
        case("service-nodeport-explicit", service("np", type="NodePort", ports=[node_port]),
             expect=Synced("Service", "np", fields={"spec.type": "NodePort"},
                           virtual_fields={"spec.ports.0.nodePort": SAME,
                                           "spec.clusterIP": SAME})),
        case("service-loadbalancer", service("lb", type="LoadBalancer", selector={"app": "lb"}),
             expect=Synced("Service", "lb", fields={"spec.type": "LoadBalancer"},
                           virtual_fields={"spec.ports.0.nodePort": SAME})),
        case("service-loadbalancer-no-nodeports", service(
            "lb-no-np", type="LoadBalancer", allocateLoadBalancerNodePorts=False),
             expect=Synced("Service", "lb-no-np", fields={
                 "spec.allocateLoadBalancerNodePorts": False, "spec.ports.0.nodePort": ABSENT})),
        case("service-external-ips", service("ext-ips", externalIPs=["203.0.113.7"]),
             expect=Synced("Service", "ext-ips", fields={"spec.externalIPs": ABSENT})),
        case("service-explicit-cluster-ip", service("pinned-ip", clusterIP="10.96.250.250"),
             expect=Synced("Service", "pinned-ip", virtual_fields={"spec.clusterIP": SAME})),
        case("service-session-affinity", service(
            "sticky", sessionAffinity="ClientIP",
            sessionAffinityConfig={"clientIP": {"timeoutSeconds": 86400}}),
             expect=Synced("Service", "sticky", fields={"spec.sessionAffinityConfig": SAME})),
        case("service-named-kubernetes", service("kubernetes"),
             expect=Synced("Service", "kubernetes")),
        case("service-dual-stack-required", service("dual", ipFamilyPolicy="RequireDualStack"),
             expect=Rejected(422, "ipFamilyPolicy")),
        case("service-externalname-invalid", service(
            "bad-ext", type="ExternalName", externalName="not a host", ports=[]),
             expect=Rejected(422, "externalName")),
    ]


def _ingresses() -> list[Case]:
    resource = {"resource": {"apiGroup": "example.com", "kind": "Bucket", "name": "assets"}}
    return [
        case("ingress-resource-backend", ingress("res-backend", rules=[http_rule(
            "shop.example", ("/", "Prefix", backend("web")), ("/assets", "Prefix", resource))]),
             expect=(Warned("Ingress", "res-backend", "ResourceBackendNotSynced", "Bucket/assets"),
                     Synced("Ingress", "res-backend", fields={
                         "spec.rules.0.http.paths": Length(1)}))),
        case("ingress-only-resource-default", ingress("res-default", defaultBackend=resource),
             expect=(Warned("Ingress", "res-default", "ResourceBackendNotSynced",
                            "Bucket/assets"),
                     Absent("Ingress", "res-default"))),
        case("ingress-missing-service-named-port", ingress("named-port", rules=[http_rule(
            None, ("/", "Prefix", backend("nowhere", "http")))]),
             expect=Synced("Ingress", "named-port", fields={
                 "spec.rules.0.http.paths.0.backend.service": {
                     "name": f"nowhere-x-{NS}-x-{VC}", "port": {"name": "http"}}})),
        case("ingress-host-only-rule", ingress("host-only", rules=[{"host": "a.example"}]),
             expect=Synced("Ingress", "host-only", fields={"spec.rules": SAME})),
        case("ingress-tls-missing-secret", ingress("tls-missing", tls=[
            {"hosts": ["a.example"], "secretName": "no-cert"}, {"hosts": ["b.example"]}],
            defaultBackend=backend("web")),
             expect=Synced("Ingress", "tls-missing", fields={
                 "spec.tls": [{"hosts": ["a.example"], "secretName": f"no-cert-x-{NS}-x-{VC}"},
                              {"hosts": ["b.example"]}]})),
        case("ingress-unknown-class", ingress("unknown-class", ingressClassName="nope",
                                              defaultBackend=backend("web")),
             expect=Synced("Ingress", "unknown-class", fields={"spec.ingressClassName": "nope"})),
        case("ingress-regex-paths", ingress("regex", rules=[http_rule(
            "*.example.com", ("/(api|v1)/.*", "ImplementationSpecific", backend("web")))]),
             expect=Synced("Ingress", "regex")),
        case("ingress-invalid-path", ingress("bad-path", rules=[http_rule(
            None, ("no-slash", "Exact", backend("web")))]),
             expect=Rejected(422, "must be an absolute path")),
        case("ingress-backend-externalname", service(
            "to-ext", type="ExternalName", externalName="ext.example.com.", ports=[]),
             ingress("via-ext", defaultBackend=backend("to-ext")),
             expect=Synced("Ingress", "via-ext")),
    ]


def _network_policies() -> list[Case]:
    return [
        case("netpol-empty", netpol("empty"),
             expect=Synced("NetworkPolicy", "empty", fields={"spec.podSelector.matchLabels": {
                 "vcsync.dev/managed-by": VC, "vcsync.dev/namespace": NS}})),
        case("netpol-allow-all-rule", netpol("allow-all", ingress=[{}]),
             expect=Synced("NetworkPolicy", "allow-all", fields={"spec.ingress": [{}]})),
        case("netpol-empty-peer-list", netpol("empty-from", ingress=[{"from": []}]),
             expect=Synced("NetworkPolicy", "empty-from")),
        case("netpol-all-namespaces", netpol("all-ns", policyTypes=["Egress"], egress=[
            {"to": [{"namespaceSelector": {}}]}]),
             expect=Synced("NetworkPolicy", "all-ns", fields={
                 "spec.egress.0.to.0.podSelector.matchLabels": {"vcsync.dev/managed-by": VC},
                 "spec.egress.0.to.0.namespaceSelector": ABSENT})),
        case("netpol-namespace-expressions", netpol("ns-expr", ingress=[{"from": [{
            "namespaceSelector": {"matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "Exists"}]},
            "podSelector": {"matchLabels": {"app": "x"}}}]}]),
             expect=Synced("NetworkPolicy", "ns-expr", fields={
                 "spec.ingress.0.from.0.podSelector.matchLabels.app": "x"})),
        case("netpol-ipblocks", netpol("ipblocks", policyTypes=["Egress"], egress=[{"to": [
            {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}},
            {"ipBlock": {"cidr": "2001:db8::/32"}}],
            "ports": [{"protocol": "TCP", "port": 32000, "endPort": 32768}]}]),
             expect=Synced("NetworkPolicy", "ipblocks", fields={
                 "spec.egress.0.to": SAME, "spec.egress.0.ports": SAME})),
        case("netpol-deny-all-egress", netpol("deny-egress", policyTypes=["Egress"]),
             expect=Synced("NetworkPolicy", "deny-egress", fields={
                 "spec.policyTypes": ["Egress"], "spec.egress": ABSENT})),
        case("netpol-bad-cidr", netpol("bad-cidr", ingress=[{"from": [
            {"ipBlock": {"cidr": "10.0.0.0/33"}}]}]),
             expect=Rejected(422, "cidr")),
    ]


def _claims() -> list[Case]:
    return [
        case("pvc-empty-class", claim("no-class", storageClassName=""),
             expect=Synced("PersistentVolumeClaim", "no-class",
                           fields={"spec.storageClassName": ""})),
        case("pvc-default-class", claim("default-class"),
             expect=Synced("PersistentVolumeClaim", "default-class")),
        case("pvc-unsynced-class", claim("unsynced-class", storageClassName="no-such-class"),
             expect=(Warned("PersistentVolumeClaim", "unsynced-class", "StorageClassNotSynced",
                            "no-such-class"),
                     Absent("PersistentVolumeClaim", "unsynced-class"))),
        case("pvc-selected-class", claim("selected-class", storageClassName=STORAGE_CLASS),
             expect=Synced("PersistentVolumeClaim", "selected-class",
                           fields={"spec.storageClassName": STORAGE_CLASS})),
        case("pvc-volume-name", claim("prebound", volumeName="some-volume",
                                      storageClassName=""),
             expect=(Warned("PersistentVolumeClaim", "prebound", "VolumeNotOnHost",
                            "spec.volumeName"),
                     Absent("PersistentVolumeClaim", "prebound"))),
        case("pvc-data-source-missing", claim("cloned", storageClassName="", dataSource={
            "kind": "PersistentVolumeClaim", "name": "origin"}),
             expect=Synced("PersistentVolumeClaim", "cloned", fields={
                 "spec.dataSource.name": f"origin-x-{NS}-x-{VC}"})),
        case("pvc-block-rwop", claim("block", storageClassName="", volumeMode="Block",
                                     accessModes=["ReadWriteOncePod"]),
             expect=Synced("PersistentVolumeClaim", "block", fields={
                 "spec.volumeMode": "Block"})),
        case("pvc-huge-request", claim("exabyte", storageClassName="", resources={
            "requests": {"storage": "8Ei"}}),
             expect=Synced("PersistentVolumeClaim", "exabyte")),
        case("pvc-selector", claim("selecting", storageClassName="", selector={
            "matchLabels": {"tier": "gold"}}),
             expect=Synced("PersistentVolumeClaim", "selecting", fields={"spec.selector": SAME})),
        case("pvc-no-resources", {**claim("no-size"), "spec": {"accessModes": ["ReadWriteOnce"]}},
             expect=Rejected(422, "storage")),
    ]


def _odd_pods() -> list[Case]:
    long_searches = [sized(f"s{i}.example", 253) for i in range(8)]
    return [
        case("pod-node-name-host-node", pod("pinned", nodeName="kwok-node-0"),
             expect=Synced("Pod", "pinned", fields={"spec.nodeName": "kwok-node-0"})),
        case("pod-host-network", pod("hostnet", hostNetwork=True),
             expect=Synced("Pod", "hostnet", fields={"spec.dnsPolicy": "ClusterFirst",
                                                     "spec.dnsConfig": ABSENT})),
        case("pod-dns-searches-at-limit", pod("long-searches", dnsConfig={
            "searches": long_searches}),
             expect=Synced("Pod", "long-searches", fields={"spec.dnsPolicy": "None"})),
        case("pod-dns-three-nameservers", pod("nameservers", dnsConfig={
            "nameservers": ["192.0.2.1", "192.0.2.2", "192.0.2.3"]}),
             expect=Synced("Pod", "nameservers", fields={
                 "spec.dnsConfig.nameservers": Length(3)})),
        case("pod-system-priority", pod("sys-prio", priorityClassName="system-node-critical"),
             expect=Synced("Pod", "sys-prio", fields={"spec.priorityClassName": ABSENT})),
        case("pod-scheduling-gates", pod("gated", schedulingGates=[{"name": "example.com/wait"}]),
             expect=Synced("Pod", "gated", fields={"spec.schedulingGates": SAME})),
        case("pod-kubernetes-host-alias", pod("aliased", hostAliases=[
            {"ip": "192.0.2.9", "hostnames": ["kubernetes", "kubernetes.default"]}]),
             expect=Synced("Pod", "aliased", fields={"spec.hostAliases": Length(2),
                                                     "spec.hostAliases.0.ip": "192.0.2.9"})),
        case("pod-sidecar", pod("sidecar", initContainers=[container(
            "proxy", restartPolicy="Always")]),
             expect=Synced("Pod", "sidecar", fields={
                 "spec.initContainers.0.restartPolicy": "Always"})),
        case("pod-privileged", pod("privileged", hostPID=True, containers=[container(
            securityContext={"privileged": True})]),
             expect=Synced("Pod", "privileged")),
        case("pod-explicit-hostname", pod("named-host", hostname="h" * 63, subdomain="sub"),
             expect=Synced("Pod", "named-host", fields={"spec.hostname": "h" * 63,
                                                        "spec.subdomain": "sub"})),
        case("pod-downward-forged-label", pod("downward", containers=[container(env=[
            {"name": "OWNER", "valueFrom": {"fieldRef": {
                "fieldPath": "metadata.labels['vcsync.dev/managed-by']"}}}])]),
             expect=Synced("Pod", "downward", fields={
                 "spec.containers.0.env.-1.valueFrom.fieldRef.fieldPath":
                     f"metadata.labels['{_hashed_label('vcsync.dev/managed-by')}']"})),
        case("pod-projected-everything", pod("projected", volumes=[{"name": "all", "projected": {
            "sources": [
                {"configMap": {"name": "proj-cm"}}, {"secret": {"name": "proj-secret"}},
                {"downwardAPI": {"items": [{"path": "name", "fieldRef": {
                    "fieldPath": "metadata.name"}}]}},
                {"serviceAccountToken": {"path": "t", "audience": "vault",
                                         "expirationSeconds": 600}}]}}]),
             expect=Synced("Pod", "projected")),
        case("pod-image-garbage", pod("garbage-image", containers=[container(
            image="this/is::not@an:image")]),
             expect=Synced("Pod", "garbage-image")),
        case("pod-no-containers", pod("empty", containers=[]),
             expect=Rejected(422, "containers")),
        case("pod-missing-runtime-class", pod("no-runtime", runtimeClassName="gvisor"),
             expect=Rejected(403, "gvisor")),
        case("pod-ephemeral-at-create", pod("ephemeral", ephemeralContainers=[
            {"name": "dbg", "image": "busybox"}]),
             expect=Rejected(422, "ephemeralContainers")),
        case("pod-dangling-owner", pod("orphaned", meta={"ownerReferences": [{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "gone",
            "uid": "00000000-0000-0000-0000-000000000000"}]}),
             expect=Absent("Pod", "orphaned", virtual=False)),
    ]



def _hashed_label(key: str, kind: str = "label") -> str:
    """NAMING.md: a tenant label key under ``vcsync.dev/`` on the host (``label``), or the
    host pod label carrying a label of its virtual namespace (``ns-label``)."""
    return f"vcsync.dev/{kind}-{VC}-x-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


_HOLD = ["example.com/hold"]


def _finalized(obj: Obj, during: Sequence[Outcome]) -> Case:
    """Create ``obj`` with a finalizer; delete it (``during`` must hold while the finalizer
    keeps it); then clear the finalizer: it and its host copy must be gone."""
    meta = obj["metadata"]
    kind, name = obj["kind"], meta["name"]
    held = {**obj, "metadata": {**meta, "finalizers": _HOLD}}
    steps: list[Step] = [Apply(held)]
    if kind == "ConfigMap":
        steps.append(Apply(mounting(f"{name}-user", configmaps=[name])))
    if kind == "Secret":
        steps.append(Apply(mounting(f"{name}-user", secrets=[name])))
    return Case(f"finalizer-{kind.lower()}", (
        Stage(tuple(steps), (Synced(kind, name),)),
        Stage((Remove(kind, name),), tuple(during)),
        Stage((Unfinalize(kind, name),), (Absent(kind, name, virtual=False),)),
    ))


def _finalizers() -> list[Case]:
    return [
        _finalized(pod("held-pod"), [Absent("Pod", "held-pod", virtual=True, terminating=True)]),
        _finalized(configmap("held-cm", data={"k": "v"}), [Synced("ConfigMap", "held-cm")]),
        _finalized(secret("held-secret", data={"k": _b64(b"v")}),
                   [Synced("Secret", "held-secret")]),
        _finalized(ingress("held-ingress"), [Synced("Ingress", "held-ingress")]),
        _finalized(netpol("held-np"), [Synced("NetworkPolicy", "held-np")]),
        _finalized(claim("held-pvc", storageClassName=""),
                   [Synced("PersistentVolumeClaim", "held-pvc")]),
        Case("finalizer-service", (
            Stage((Apply(service("held-svc", meta={"finalizers": _HOLD})),),
                  (Synced("Service", "held-svc"),
                   Warned("Service", "held-svc", "ClusterIPNotSynced", "finalizers"))),
            Stage((Remove("Service", "held-svc"),), (Synced("Service", "held-svc"),)),
            Stage((Unfinalize("Service", "held-svc"),),
                  (Absent("Service", "held-svc", virtual=False),)),
        )),
    ]


def _churned(obj: Obj, end_created: bool, *extra: Obj) -> Case:
    """Create and delete ``obj`` in a tight loop while the syncer is syncing it."""
    kind, name = obj["kind"], obj["metadata"]["name"]
    outcome: Outcome = Synced(kind, name) if end_created else Absent(kind, name, virtual=False)
    ending = "created" if end_created else "deleted"
    steps: tuple[Step, ...] = (*(Apply(o) for o in extra), Churn(obj, CHURN_ROUNDS, end_created))
    return Case(f"churn-{kind.lower()}-{ending}", (Stage(steps, (outcome,)),))


def _churn() -> list[Case]:
    return [
        _churned(pod("churn-pod-a"), False),
        _churned(pod("churn-pod-b"), True),
        _churned(service("churn-svc-a"), False),
        _churned(service("churn-svc-b"), True),
        _churned(configmap("churn-cm-a", data={"k": "v"}), False,
                 mounting("churn-cm-a-user", configmaps=["churn-cm-a"])),
        _churned(configmap("churn-cm-b", data={"k": "v"}), True,
                 mounting("churn-cm-b-user", configmaps=["churn-cm-b"])),
        _churned(netpol("churn-np"), True),
        _churned(claim("churn-pvc", storageClassName=""), True),
    ]


def _collisions() -> list[Case]:
    """Host names are not injective: ``cfg-x-team`` in ``collide`` and ``cfg`` in
    ``team-x-collide`` both become ``cfg-x-team-x-collide-x-vc1``. With both namespaces
    there, a pod of either could read the other's data: both are refused. A Service
    that finds its host name taken by the other namespace's gets a Warning."""
    first = f"cfg-x-{COLLIDE_TWIN_NS.split('-x-')[0]}"
    return [
        case("collision-configmap",
             configmap(first, COLLIDE_NS, data={"owner": "first"}),
             mounting("first", namespace=COLLIDE_NS, configmaps=[first]),
             configmap("cfg", COLLIDE_TWIN_NS, data={"owner": "second"}),
             mounting("second", namespace=COLLIDE_TWIN_NS, configmaps=["cfg"]),
             expect=(Warned("Pod", "first", "NameConflict", first, COLLIDE_NS),
                     Warned("Pod", "second", "NameConflict", "cfg", COLLIDE_TWIN_NS),
                     Absent("ConfigMap", first, COLLIDE_NS),
                     Absent("Pod", "first", COLLIDE_NS),
                     Absent("Pod", "second", COLLIDE_TWIN_NS))),
        Case("collision-service", (
            Stage((Apply(service(first, COLLIDE_NS)),),
                  (Synced("Service", first, COLLIDE_NS),)),
            Stage((Apply(service("cfg", COLLIDE_TWIN_NS)),),
                  (Synced("Service", first, COLLIDE_NS),
                   Warned("Service", "cfg", "SyncError", "already exists", COLLIDE_TWIN_NS))),
        )),
    ]


def _decoys() -> list[Case]:
    """Unmanaged host objects already holding a host name: never adopted, patched, or used."""
    decoy = configmap(f"decoy-x-{NS}-x-{VC}", data={"owner": "host"})
    del decoy["metadata"]["namespace"]
    service_decoy = service(f"decoy-svc-x-{NS}-x-{VC}")
    del service_decoy["metadata"]["namespace"]
    return [
        Case("decoy-configmap", (Stage((
            HostApply(decoy),
            Apply(configmap("decoy", data={"owner": "tenant"})),
            Apply(mounting("decoy-user", configmaps=["decoy"]))),
            (Warned("ConfigMap", "decoy", "SyncError", "already exists"),
             Warned("Pod", "decoy-user", "NameConflict", "decoy"),
             Absent("Pod", "decoy-user"))),)),
        Case("decoy-service", (Stage((
            HostApply(service_decoy), Apply(service("decoy-svc"))),
            (Warned("Service", "decoy-svc", "SyncError", "already exists"),)),)),
    ]


def corpus() -> list[Case]:
    """Every entry, in a stable order (ids are unique)."""
    cases = [
        *_name_edges(), *_priority_classes(), *_dots(), *_long_namespace(), *_metadata(),
        *_huge_data(), *_missing_references(), *_flood(), *_env(), *_selectors(), *_ports(),
        *_service_types(), *_ingresses(), *_network_policies(), *_claims(), *_odd_pods(),
        *_finalizers(), *_churn(), *_collisions(), *_decoys(),
    ]
    ids = [c.id for c in cases]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise ValueError(f"duplicate corpus ids: {sorted(duplicates)}")
    return cases

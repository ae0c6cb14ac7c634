"""Tests for translators/podspec.py: virtual Pod -> host Pod, and the patches between them.

The fixture is what a Deployment leaves in a virtual cluster after admission
(ServiceAccount admission's kube-api-access volume, default tolerations,
priority 0), extended with one of every reference the translation renames.
Expected values are written out in full; where the module delegates to
contract/naming.py the test compares with that function's result.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import naming
from contract.resources import Obj
from contract.translator import TokenSpec
from tests.unit.oracles import is_dns_label, is_dns_subdomain, is_label_key, is_label_value
from translators import references
from translators.podspec import (
    ANNOTATION_SERVICE_ACCOUNT_NAME,
    ANNOTATION_VIRTUAL_LABELS,
    PodWorld,
    downward_labels,
    ephemeral_containers_patch,
    host_pod,
    spec_patch,
    status_patch,
    token_key,
    token_requests,
)

NAME = "web-5d8f7c9b6d-qx7zt"
HOST = f"{NAME}-x-team-x-vc"
UID = "6f1c2a9e-3b4d-4c5e-8f70-1a2b3c4d5e6f"
API_IP = "10.96.100.1"
DNS_IP = "10.96.100.10"
TOKEN_SECRET = "vcsync-token-3f2a9c0d1e"
VAULT_KEY = "token-" + hashlib.sha256(b"vault").hexdigest()[:10]


def service(name: str, cluster_ip: str | None, ports: list[Obj]) -> Obj:
    spec: Obj = {"ports": ports}
    if cluster_ip is not None:
        spec["clusterIP"] = cluster_ip
    return {"metadata": {"name": name, "namespace": "team"}, "spec": spec}


SERVICES = (
    service("web-api", "10.96.200.6", [{"name": "http", "port": 80, "protocol": "TCP"}]),
    service("db", "10.96.200.5", [{"port": 5432, "protocol": "TCP"}]),
    service("db-headless", "None", [{"port": 5432, "protocol": "TCP"}]),
    service("ext", None, []),
    service("kubernetes", "10.96.250.1", [{"name": "https", "port": 443, "protocol": "TCP"}]),
)
WORLD = PodWorld(
    vcluster="vc",
    host_namespace="vcluster-vc",
    api_service_ip=API_IP,
    dns_ip=DNS_IP,
    services=SERVICES,
    namespace_labels={"kubernetes.io/metadata.name": "team", "env": "prod"},
    priority_class="",
    runtime_class="",
    token_secret=TOKEN_SECRET,
)


def field_ref(path: str) -> Obj:
    return {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}


def annotation_ref(key: str) -> Obj:
    return field_ref(f"metadata.annotations['{key}']")


def env_field(name: str, path: str) -> Obj:
    return {"name": name, "valueFrom": field_ref(path)}


NOT_READY = {
    "key": "node.kubernetes.io/not-ready",
    "operator": "Exists",
    "effect": "NoExecute",
    "tolerationSeconds": 300,
}
UNREACHABLE = {**NOT_READY, "key": "node.kubernetes.io/unreachable"}
API_ACCESS = {
    "name": "kube-api-access-8xk2p",
    "projected": {
        "defaultMode": 420,
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {
                "configMap": {
                    "name": "kube-root-ca.crt",
                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                }
            },
            {"downwardAPI": {"items": [{"path": "namespace", **field_ref("metadata.namespace")}]}},
        ],
    },
}


def virtual_pod() -> Obj:
    """A Deployment's pod as the virtual API server stores it, with every kind of reference."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": NAME,
            "generateName": "web-5d8f7c9b6d-",
            "namespace": "team",
            "uid": UID,
            "resourceVersion": "4711",
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "labels": {"app": "web", "pod-template-hash": "5d8f7c9b6d", "vcsync.dev/tier": "front"},
            "annotations": {
                "kubectl.kubernetes.io/restartedAt": "2024-05-01T09:59:00Z",
                "vcsync.dev/object-name": "forged",
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "web-5d8f7c9b6d",
                    "uid": "rs-uid",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "finalizers": ["example.com/keep"],
            "managedFields": [{"manager": "kube-controller-manager", "operation": "Update"}],
        },
        "spec": {
            "initContainers": [
                {
                    "name": "migrate",
                    "image": "registry.example.com/web-migrate:1.4",
                    "command": ["/migrate"],
                    "envFrom": [{"secretRef": {"name": "db-credentials"}}],
                }
            ],
            "containers": [
                {
                    "name": "web",
                    "image": "registry.example.com/web:1.4",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "env": [
                        {"name": "DB_SERVICE_HOST", "value": "db.internal"},
                        env_field("POD_NAME", "metadata.name"),
                        env_field("POD_NAMESPACE", "metadata.namespace"),
                        env_field("POD_UID", "metadata.uid"),
                        env_field("SA", "spec.serviceAccountName"),
                        env_field("APP", "metadata.labels['app']"),
                        env_field("TIER", "metadata.labels['vcsync.dev/tier']"),
                        env_field("POD_IP", "status.podIP"),
                        env_field("NODE", "spec.nodeName"),
                        env_field("NOTE", "metadata.annotations['note']"),
                        {
                            "name": "LOG_LEVEL",
                            "valueFrom": {"configMapKeyRef": {"name": "web-config", "key": "log"}},
                        },
                        {
                            "name": "DB_PASSWORD",
                            "valueFrom": {
                                "secretKeyRef": {"name": "db-credentials", "key": "password"}
                            },
                        },
                        {
                            "name": "CPU",
                            "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}},
                        },
                        {"name": "URL", "value": "http://$(WEB_API_SERVICE_HOST)"},
                    ],
                    "envFrom": [
                        {"configMapRef": {"name": "web-env"}},
                        {"prefix": "S_", "secretRef": {"name": "web-secrets", "optional": True}},
                    ],
                    "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "1"}},
                    "volumeMounts": [
                        {"name": "config", "mountPath": "/etc/web"},
                        {
                            "name": "kube-api-access-8xk2p",
                            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                            "readOnly": True,
                        },
                    ],
                    "imagePullPolicy": "IfNotPresent",
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                },
                {"name": "proxy", "image": "registry.example.com/proxy:2.0"},
            ],
            "volumes": [
                {"name": "config", "configMap": {"name": "web-config", "defaultMode": 420}},
                {"name": "tls", "secret": {"secretName": "web-tls", "defaultMode": 420}},
                {"name": "data", "persistentVolumeClaim": {"claimName": "web-data"}},
                {
                    "name": "podinfo",
                    "downwardAPI": {
                        "items": [
                            {"path": "labels", **field_ref("metadata.labels")},
                            {"path": "name", **field_ref("metadata.name")},
                            {"path": "annotations", **field_ref("metadata.annotations")},
                            {"path": "cpu", "resourceFieldRef": {"resource": "limits.cpu"}},
                        ]
                    },
                },
                {
                    "name": "bundle",
                    "projected": {
                        "sources": [
                            {"configMap": {"name": "bundle-cm"}},
                            {"secret": {"name": "bundle-secret"}},
                            {
                                "serviceAccountToken": {
                                    "audience": "vault",
                                    "expirationSeconds": 7200,
                                    "path": "vault-token",
                                }
                            },
                            {
                                "downwardAPI": {
                                    "items": [{"path": "uid", **field_ref("metadata.uid")}]
                                }
                            },
                            {
                                "clusterTrustBundle": {
                                    "signerName": "example.com/s",
                                    "path": "b.pem",
                                }
                            },
                        ]
                    },
                },
                {
                    "name": "store",
                    "csi": {
                        "driver": "secrets-store.csi.k8s.io",
                        "readOnly": True,
                        "nodePublishSecretRef": {"name": "csi-creds"},
                    },
                },
                {"name": "share", "azureFile": {"secretName": "azure-creds", "shareName": "s"}},
                {
                    "name": "ceph",
                    "cephfs": {"monitors": ["10.0.0.1:6789"], "secretRef": {"name": "ceph"}},
                },
                {
                    "name": "flex",
                    "flexVolume": {"driver": "x/y", "secretRef": {"name": "flex-creds"}},
                },
                {"name": "scratch", "emptyDir": {}},
                API_ACCESS,
            ],
            "imagePullSecrets": [{"name": "regcred"}],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "web",
            "serviceAccount": "web",
            "securityContext": {"runAsNonRoot": True},
            "schedulerName": "default-scheduler",
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [NOT_READY, UNREACHABLE],
            "priority": 0,
            "preemptionPolicy": "PreemptLowerPriority",
            "enableServiceLinks": True,
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": "disk", "operator": "In", "values": ["ssd"]}
                                ]
                            }
                        ]
                    }
                },
                "podAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "labelSelector": {"matchLabels": {"app": "cache"}},
                            "topologyKey": "kubernetes.io/hostname",
                        }
                    ]
                },
                "podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "weight": 100,
                            "podAffinityTerm": {
                                "labelSelector": {"matchLabels": {"app": "web"}},
                                "namespaces": ["team", "other"],
                                "topologyKey": "kubernetes.io/hostname",
                            },
                        }
                    ]
                },
            },
            "topologySpreadConstraints": [
                {
                    "maxSkew": 1,
                    "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": {"app": "web"}},
                    "matchLabelKeys": ["pod-template-hash"],
                }
            ],
        },
        "status": {"phase": "Pending", "qosClass": "Burstable"},
    }


def with_spec(**fields: Any) -> Obj:
    pod = virtual_pod()
    pod["spec"].update(fields)
    return pod


def without_spec(*fields: str) -> Obj:
    pod = virtual_pod()
    for field in fields:
        pod["spec"].pop(field)
    return pod


def container(pod: Obj, name: str, field: str = "containers") -> Obj:
    found: Obj = next(c for c in pod["spec"][field] if c["name"] == name)
    return found


def volume(pod: Obj, name: str) -> Obj:
    found: Obj = next(v for v in pod["spec"]["volumes"] if v["name"] == name)
    return found


def env_dict(c: Obj) -> dict[str, Obj]:
    return {var["name"]: var for var in c["env"]}


def assert_pure(call: Callable[..., Any], *args: Any) -> Any:
    """Call with deep copies kept aside and check that no argument changed.

    Untouched sub-objects may be shared between input and output (caches are
    immutable by convention), so only mutation is checked, not sharing.
    """
    before = copy.deepcopy(args)
    result = call(*args)
    assert args == before
    return result


# --- metadata ------------------------------------------------------------------------


def test_metadata_is_translated_and_carries_the_virtual_identity() -> None:
    meta = host_pod(virtual_pod(), WORLD)["metadata"]
    tier_key = naming.host_label_key("vcsync.dev/tier", "vc")
    assert meta == {
        "name": HOST,
        "namespace": "vcluster-vc",
        "labels": {
            "app": "web",
            "pod-template-hash": "5d8f7c9b6d",
            tier_key: "front",
            naming.LABEL_MANAGED_BY: "vc",
            naming.LABEL_NAMESPACE: "team",
            naming.namespace_label_key("kubernetes.io/metadata.name", "vc"): "team",
            naming.namespace_label_key("env", "vc"): "prod",
        },
        "annotations": {
            "kubectl.kubernetes.io/restartedAt": "2024-05-01T09:59:00Z",
            naming.ANNOTATION_OBJECT_NAME: NAME,
            naming.ANNOTATION_OBJECT_NAMESPACE: "team",
            naming.ANNOTATION_OBJECT_UID: UID,
            naming.ANNOTATION_OBJECT_KIND: "Pod",
            naming.ANNOTATION_MANAGED_ANNOTATIONS: "kubectl.kubernetes.io/restartedAt",
            naming.ANNOTATION_REWRITTEN_LABELS: f'{{"{tier_key}":"vcsync.dev/tier"}}',
            ANNOTATION_VIRTUAL_LABELS: (
                'app="web"\npod-template-hash="5d8f7c9b6d"\nvcsync.dev/tier="front"'
            ),
            ANNOTATION_SERVICE_ACCOUNT_NAME: "web",
        },
    }


def test_annotation_keys_use_the_project_prefix() -> None:
    assert ANNOTATION_VIRTUAL_LABELS == "vcsync.dev/virtual-labels"
    assert ANNOTATION_SERVICE_ACCOUNT_NAME == "vcsync.dev/service-account-name"


def test_service_account_defaults_to_default() -> None:
    pod = without_spec("serviceAccountName", "serviceAccount")
    meta = host_pod(pod, WORLD)["metadata"]
    assert meta["annotations"][ANNOTATION_SERVICE_ACCOUNT_NAME] == "default"


def test_downward_labels_render_like_the_kubelet() -> None:
    assert downward_labels({}) == ""
    assert downward_labels({"b": "2", "a": ""}) == 'a=""\nb="2"'
    # Go %q: escapes, non-printables as \x / \u / \U, printable unicode kept
    text = 'q"\\\n\t\x01\x7fé\u00a0\U0001f600\U000e0001'
    assert downward_labels({"k": text}) == (
        'k="q\\"\\\\\\n\\t\\x01\\x7fé\\u00a0\U0001f600\\U000e0001"'
    )


# --- spec basics -----------------------------------------------------------------------


def test_pod_shape_flags_and_dropped_fields() -> None:
    host = host_pod(virtual_pod(), WORLD)
    spec = host["spec"]
    assert set(host) == {"apiVersion", "kind", "metadata", "spec"}
    assert host["apiVersion"] == "v1"
    assert host["kind"] == "Pod"
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    dropped = {"serviceAccountName", "serviceAccount", "priority", "preemptionPolicy"}
    assert not dropped & set(spec)
    assert "priorityClassName" not in spec


def test_untouched_fields_are_kept() -> None:
    virtual = with_spec(
        runtimeClassName="gvisor",
        schedulingGates=[{"name": "example.com/quota"}],
        readinessGates=[{"conditionType": "example.com/ready"}],
        subdomain="web",
    )
    spec = host_pod(virtual, WORLD)["spec"]
    for field in (
        "runtimeClassName",
        "schedulingGates",
        "readinessGates",
        "securityContext",
        "nodeSelector",
        "tolerations",
        "restartPolicy",
        "terminationGracePeriodSeconds",
        "schedulerName",
        "subdomain",
    ):
        assert spec[field] == virtual["spec"][field], field
    web = container({"spec": spec}, "web")
    original = container(virtual, "web")
    for field in ("image", "ports", "resources", "volumeMounts", "imagePullPolicy"):
        assert web[field] == original[field]
    assert spec["affinity"]["nodeAffinity"] == virtual["spec"]["affinity"]["nodeAffinity"]


def test_node_name_becomes_a_required_node_affinity() -> None:
    """A tenant's nodeName must not skip the host scheduler (taints, capacity, the
    platform's node selection): the host pod asks for the node by name in every term."""
    virtual = with_spec(nodeName="node-1")
    spec = host_pod(virtual, WORLD)["spec"]
    assert "nodeName" not in spec
    terms = spec["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{
        "matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}],
        "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-1"]}],
    }]
    assert spec["affinity"]["podAffinity"] == host_pod(virtual_pod(), WORLD)["spec"][
        "affinity"]["podAffinity"]
    bare = without_spec("affinity")
    bare["spec"]["nodeName"] = "node-2"
    assert host_pod(bare, WORLD)["spec"]["affinity"] == {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{
            "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-2"]}],
        }]}}}


def test_overhead_and_ephemeral_containers_are_left_to_the_host() -> None:
    virtual = with_spec(
        overhead={"cpu": "250m"},
        ephemeralContainers=[{"name": "debugger", "image": "busybox"}],
    )
    spec = host_pod(virtual, WORLD)["spec"]
    assert "overhead" not in spec
    assert "ephemeralContainers" not in spec


# --- environment -------------------------------------------------------------------------

API_ENV = [
    {"name": "KUBERNETES_SERVICE_HOST", "value": API_IP},
    {"name": "KUBERNETES_SERVICE_PORT", "value": "443"},
    {"name": "KUBERNETES_SERVICE_PORT_HTTPS", "value": "443"},
    {"name": "KUBERNETES_PORT", "value": f"tcp://{API_IP}:443"},
    {"name": "KUBERNETES_PORT_443_TCP", "value": f"tcp://{API_IP}:443"},
    {"name": "KUBERNETES_PORT_443_TCP_PROTO", "value": "tcp"},
    {"name": "KUBERNETES_PORT_443_TCP_PORT", "value": "443"},
    {"name": "KUBERNETES_PORT_443_TCP_ADDR", "value": API_IP},
]
DB_ENV = [
    {"name": "DB_SERVICE_HOST", "value": "10.96.200.5"},
    {"name": "DB_SERVICE_PORT", "value": "5432"},
    {"name": "DB_PORT", "value": "tcp://10.96.200.5:5432"},
    {"name": "DB_PORT_5432_TCP", "value": "tcp://10.96.200.5:5432"},
    {"name": "DB_PORT_5432_TCP_PROTO", "value": "tcp"},
    {"name": "DB_PORT_5432_TCP_PORT", "value": "5432"},
    {"name": "DB_PORT_5432_TCP_ADDR", "value": "10.96.200.5"},
]
WEB_API_ENV = [
    {"name": "WEB_API_SERVICE_HOST", "value": "10.96.200.6"},
    {"name": "WEB_API_SERVICE_PORT", "value": "80"},
    {"name": "WEB_API_SERVICE_PORT_HTTP", "value": "80"},
    {"name": "WEB_API_PORT", "value": "tcp://10.96.200.6:80"},
    {"name": "WEB_API_PORT_80_TCP", "value": "tcp://10.96.200.6:80"},
    {"name": "WEB_API_PORT_80_TCP_PROTO", "value": "tcp"},
    {"name": "WEB_API_PORT_80_TCP_PORT", "value": "80"},
    {"name": "WEB_API_PORT_80_TCP_ADDR", "value": "10.96.200.6"},
]


def test_container_without_env_gets_api_and_service_link_variables_in_order() -> None:
    """Headless, ExternalName and the tenant's `kubernetes` Service make no variables."""
    proxy = container(host_pod(virtual_pod(), WORLD), "proxy")
    assert proxy["env"] == API_ENV + DB_ENV + WEB_API_ENV


def test_user_env_wins_and_follows_ours() -> None:
    web = container(host_pod(virtual_pod(), WORLD), "web")
    ours = [var for var in API_ENV + DB_ENV + WEB_API_ENV if var["name"] != "DB_SERVICE_HOST"]
    assert web["env"][: len(ours)] == ours
    user = web["env"][len(ours) :]
    assert [var["name"] for var in user] == [
        var["name"] for var in container(virtual_pod(), "web")["env"]
    ]
    assert user[0] == {"name": "DB_SERVICE_HOST", "value": "db.internal"}
    assert [var["name"] for var in web["env"]].count("DB_SERVICE_HOST") == 1


def test_service_links_follow_the_kubelet_for_several_ports() -> None:
    multi = service(
        "metrics-gw",
        "10.96.200.9",
        [{"port": 8080}, {"name": "dns-udp", "port": 53, "protocol": "UDP"}],
    )
    world = replace(WORLD, services=(multi,))
    proxy = container(host_pod(virtual_pod(), world), "proxy")
    assert proxy["env"][len(API_ENV) :] == [
        {"name": "METRICS_GW_SERVICE_HOST", "value": "10.96.200.9"},
        {"name": "METRICS_GW_SERVICE_PORT", "value": "8080"},
        {"name": "METRICS_GW_SERVICE_PORT_DNS_UDP", "value": "53"},
        {"name": "METRICS_GW_PORT", "value": "tcp://10.96.200.9:8080"},
        {"name": "METRICS_GW_PORT_8080_TCP", "value": "tcp://10.96.200.9:8080"},
        {"name": "METRICS_GW_PORT_8080_TCP_PROTO", "value": "tcp"},
        {"name": "METRICS_GW_PORT_8080_TCP_PORT", "value": "8080"},
        {"name": "METRICS_GW_PORT_8080_TCP_ADDR", "value": "10.96.200.9"},
        {"name": "METRICS_GW_PORT_53_UDP", "value": "udp://10.96.200.9:53"},
        {"name": "METRICS_GW_PORT_53_UDP_PROTO", "value": "udp"},
        {"name": "METRICS_GW_PORT_53_UDP_PORT", "value": "53"},
        {"name": "METRICS_GW_PORT_53_UDP_ADDR", "value": "10.96.200.9"},
    ]


def test_ipv6_addresses_are_bracketed_in_urls() -> None:
    world = replace(WORLD, api_service_ip="fd00::1", services=())
    env = env_dict(container(host_pod(virtual_pod(), world), "proxy"))
    assert env["KUBERNETES_PORT"]["value"] == "tcp://[fd00::1]:443"
    assert env["KUBERNETES_PORT_443_TCP_ADDR"]["value"] == "fd00::1"
    assert env["KUBERNETES_SERVICE_HOST"]["value"] == "fd00::1"


def test_enable_service_links_false_gives_only_the_api_variables() -> None:
    host = host_pod(with_spec(enableServiceLinks=False), WORLD)
    assert container(host, "proxy")["env"] == API_ENV


def test_init_containers_get_the_variables_too() -> None:
    migrate = container(host_pod(virtual_pod(), WORLD), "migrate", "initContainers")
    assert migrate["env"] == API_ENV + DB_ENV + WEB_API_ENV
    assert migrate["command"] == ["/migrate"]


def test_ephemeral_containers_patch_adds_only_new_translated_containers() -> None:
    debugger = {
        "name": "debugger",
        "image": "busybox",
        "targetContainerName": "web",
        "envFrom": [{"configMapRef": {"name": "web-env"}}],
    }
    old = {"name": "old-debugger", "image": "busybox"}
    virtual = with_spec(ephemeralContainers=[old, debugger])
    host = host_pod(virtual_pod(), WORLD)
    host["spec"]["ephemeralContainers"] = [{**old, "env": API_ENV}]
    patch = assert_pure(ephemeral_containers_patch, virtual, host, WORLD)
    assert patch == {
        "spec": {
            "ephemeralContainers": [
                {
                    **debugger,
                    "env": API_ENV + DB_ENV + WEB_API_ENV,
                    "envFrom": [{"configMapRef": {"name": "web-env-x-team-x-vc"}}],
                }
            ]
        }
    }
    host["spec"]["ephemeralContainers"].append(patch["spec"]["ephemeralContainers"][0])
    assert ephemeral_containers_patch(virtual, host, WORLD) == {}


# --- hostAliases, DNS and hostname ---------------------------------------------------------

API_ALIAS = {
    "ip": API_IP,
    "hostnames": [
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ],
}
CLUSTER_DNS = {
    "nameservers": [DNS_IP],
    "searches": ["team.svc.cluster.local", "svc.cluster.local", "cluster.local"],
    "options": [{"name": "ndots", "value": "5"}],
}


def test_host_aliases_add_the_api_names_after_the_users() -> None:
    assert host_pod(virtual_pod(), WORLD)["spec"]["hostAliases"] == [API_ALIAS]
    user = {"ip": "10.0.0.7", "hostnames": ["legacy.example.com"]}
    spec = host_pod(with_spec(hostAliases=[user]), WORLD)["spec"]
    assert spec["hostAliases"] == [user, API_ALIAS]


@pytest.mark.parametrize(
    ("fields", "rewritten"),
    [
        ({"dnsPolicy": "ClusterFirst"}, True),
        ({}, True),
        ({"dnsPolicy": "ClusterFirstWithHostNetwork", "hostNetwork": True}, True),
        ({"dnsPolicy": "ClusterFirstWithHostNetwork"}, True),
        ({"dnsPolicy": "ClusterFirst", "hostNetwork": True}, False),
        ({"hostNetwork": True}, False),
        ({"dnsPolicy": "Default"}, False),
        ({"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.1.1.1"]}}, False),
    ],
)
def test_dns_policy(fields: Obj, rewritten: bool) -> None:
    virtual = without_spec("dnsPolicy")
    virtual["spec"].update(fields)
    spec = host_pod(virtual, WORLD)["spec"]
    if rewritten:
        assert (spec["dnsPolicy"], spec["dnsConfig"]) == ("None", CLUSTER_DNS)
    else:
        assert spec.get("dnsPolicy") == fields.get("dnsPolicy")
        assert spec.get("dnsConfig") == fields.get("dnsConfig")
        assert spec.get("hostNetwork") == fields.get("hostNetwork")


def test_user_dns_config_is_merged_after_ours() -> None:
    user = {
        "nameservers": ["1.1.1.1", DNS_IP],
        "searches": ["example.com", "cluster.local"],
        "options": [{"name": "edns0"}, {"name": "ndots", "value": "2"}],
    }
    spec = host_pod(with_spec(dnsConfig=user), WORLD)["spec"]
    assert spec["dnsConfig"] == {
        "nameservers": [DNS_IP, "1.1.1.1"],
        "searches": ["team.svc.cluster.local", "svc.cluster.local", "cluster.local", "example.com"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}],
    }


def test_dns_lists_are_cut_to_resolver_limits() -> None:
    user = {
        "nameservers": ["1.1.1.1", "8.8.8.8", "9.9.9.9"],
        "searches": [f"s{i}.example.com" for i in range(40)],
    }
    config = host_pod(with_spec(dnsConfig=user), WORLD)["spec"]["dnsConfig"]
    assert config["nameservers"] == [DNS_IP, "1.1.1.1", "8.8.8.8"]
    assert len(config["searches"]) == 32
    assert config["searches"][3] == "s0.example.com"


def test_hostname_is_the_virtual_name_unless_set() -> None:
    assert host_pod(virtual_pod(), WORLD)["spec"]["hostname"] == NAME
    spec = host_pod(with_spec(hostname="db-0", subdomain="db"), WORLD)["spec"]
    assert (spec["hostname"], spec["subdomain"]) == ("db-0", "db")


@pytest.mark.parametrize(
    ("name", "hostname"),
    [
        ("a" * 63, "a" * 63),
        ("a" * 64, "a" * 63),
        ("a" * 62 + "-b", "a" * 62),
        ("web.v1.example", "web-v1-example"),
        ("a" * 62 + ".b", "a" * 62),
        ("a" * 30 + "." + "b" * 40, "a" * 30 + "-" + "b" * 32),
        ("a" * 250, "a" * 63),
    ],
)
def test_long_or_dotted_names_give_valid_hostnames(name: str, hostname: str) -> None:
    virtual = virtual_pod()
    virtual["metadata"]["name"] = name
    host = host_pod(virtual, WORLD)
    assert host["spec"]["hostname"] == hostname
    assert is_dns_label(host["spec"]["hostname"])
    assert is_dns_subdomain(host["metadata"]["name"])
    assert len(host["metadata"]["name"]) <= 63


# --- references --------------------------------------------------------------------------


def test_every_reference_is_renamed() -> None:
    spec = host_pod(virtual_pod(), WORLD)["spec"]
    pod = {"spec": spec}
    assert volume(pod, "config")["configMap"] == {
        "name": "web-config-x-team-x-vc",
        "defaultMode": 420,
    }
    assert volume(pod, "tls")["secret"] == {"secretName": "web-tls-x-team-x-vc", "defaultMode": 420}
    assert volume(pod, "data")["persistentVolumeClaim"] == {"claimName": "web-data-x-team-x-vc"}
    assert volume(pod, "store")["csi"] == {
        "driver": "secrets-store.csi.k8s.io",
        "readOnly": True,
        "nodePublishSecretRef": {"name": "csi-creds-x-team-x-vc"},
    }
    assert volume(pod, "share")["azureFile"] == {
        "secretName": "azure-creds-x-team-x-vc",
        "shareName": "s",
    }
    assert volume(pod, "ceph")["cephfs"]["secretRef"] == {"name": "ceph-x-team-x-vc"}
    assert volume(pod, "flex")["flexVolume"]["secretRef"] == {"name": "flex-creds-x-team-x-vc"}
    assert volume(pod, "scratch") == {"name": "scratch", "emptyDir": {}}
    sources = volume(pod, "bundle")["projected"]["sources"]
    assert sources[0] == {"configMap": {"name": "bundle-cm-x-team-x-vc"}}
    assert sources[1] == {"secret": {"name": "bundle-secret-x-team-x-vc"}}
    assert sources[4] == {"clusterTrustBundle": {"signerName": "example.com/s", "path": "b.pem"}}
    assert spec["imagePullSecrets"] == [{"name": "regcred-x-team-x-vc"}]
    web = container(pod, "web")
    assert env_dict(web)["LOG_LEVEL"]["valueFrom"] == {
        "configMapKeyRef": {"name": "web-config-x-team-x-vc", "key": "log"}
    }
    assert env_dict(web)["DB_PASSWORD"]["valueFrom"] == {
        "secretKeyRef": {"name": "db-credentials-x-team-x-vc", "key": "password"}
    }
    assert web["envFrom"] == [
        {"configMapRef": {"name": "web-env-x-team-x-vc"}},
        {"prefix": "S_", "secretRef": {"name": "web-secrets-x-team-x-vc", "optional": True}},
    ]
    assert container(pod, "migrate", "initContainers")["envFrom"] == [
        {"secretRef": {"name": "db-credentials-x-team-x-vc"}}
    ]


@pytest.mark.parametrize("driver", ["cinder", "iscsi", "rbd", "scaleIO", "storageos"])
def test_legacy_secret_ref_volumes_are_renamed(driver: str) -> None:
    virtual = with_spec(volumes=[{"name": "v", driver: {"secretRef": {"name": "creds"}}}])
    spec = host_pod(virtual, WORLD)["spec"]
    assert spec["volumes"] == [{"name": "v", driver: {"secretRef": {"name": "creds-x-team-x-vc"}}}]


def test_generic_ephemeral_volumes_mount_the_host_copy_of_their_claim() -> None:
    """Issue 22: the virtual cluster's ephemeral-volume controller makes claim
    ``<pod>-<volume>``; the host pod mounts its host copy (synced and class-checked by the
    PVC translator), so the host's controller never provisions a second, unchecked one."""
    template = {"spec": {"storageClassName": "premium", "accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "1Gi"}}}}
    virtual = with_spec(volumes=[{"name": "scratch", "ephemeral": {
        "volumeClaimTemplate": template}}])
    spec = host_pod(virtual, WORLD)["spec"]
    claim = f"{NAME}-scratch"
    assert spec["volumes"] == [
        {"name": "scratch", "persistentVolumeClaim": {"claimName": f"{claim}-x-team-x-vc"}}]
    assert references.claim_names(virtual) == {claim}


def test_references_cross_check_with_the_references_module() -> None:
    """Every name the virtual pod references is there translated; no untranslated one is left.

    The kube-root-ca.crt of the injected kube-api-access volume is the one
    reference served from the token Secret instead.
    """
    virtual = virtual_pod()
    host = host_pod(virtual, WORLD)
    configmaps = references.configmap_names(virtual) - {"kube-root-ca.crt"}
    assert references.configmap_names(host) == {f"{n}-x-team-x-vc" for n in configmaps}
    secrets = references.secret_names(virtual)
    assert references.secret_names(host) == {f"{n}-x-team-x-vc" for n in secrets} | {TOKEN_SECRET}
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in host["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert claims == ["web-data-x-team-x-vc"]


# --- downward API ----------------------------------------------------------------------------


def test_env_field_refs_read_virtual_values() -> None:
    env = env_dict(container(host_pod(virtual_pod(), WORLD), "web"))
    tier_key = naming.host_label_key("vcsync.dev/tier", "vc")
    expected = {
        "POD_NAME": annotation_ref("vcsync.dev/object-name"),
        "POD_NAMESPACE": annotation_ref("vcsync.dev/object-namespace"),
        "POD_UID": annotation_ref("vcsync.dev/object-uid"),
        "SA": annotation_ref("vcsync.dev/service-account-name"),
        "APP": field_ref("metadata.labels['app']"),
        "TIER": field_ref(f"metadata.labels['{tier_key}']"),
        "POD_IP": field_ref("status.podIP"),
        "NODE": field_ref("spec.nodeName"),
        "NOTE": field_ref("metadata.annotations['note']"),
        "CPU": {"resourceFieldRef": {"resource": "limits.cpu"}},
    }
    for name, value_from in expected.items():
        assert env[name]["valueFrom"] == value_from, name
    assert env["URL"] == {"name": "URL", "value": "http://$(WEB_API_SERVICE_HOST)"}


def test_downward_volumes_read_virtual_values() -> None:
    pod = host_pod(virtual_pod(), WORLD)
    assert volume(pod, "podinfo")["downwardAPI"] == {
        "items": [
            {"path": "labels", **annotation_ref("vcsync.dev/virtual-labels")},
            {"path": "name", **annotation_ref("vcsync.dev/object-name")},
            {"path": "annotations", **field_ref("metadata.annotations")},
            {"path": "cpu", "resourceFieldRef": {"resource": "limits.cpu"}},
        ]
    }
    assert volume(pod, "bundle")["projected"]["sources"][3] == {
        "downwardAPI": {"items": [{"path": "uid", **annotation_ref("vcsync.dev/object-uid")}]}
    }


# --- service-account tokens -----------------------------------------------------------------


def test_kube_api_access_volume_is_served_from_the_token_secret() -> None:
    pod = host_pod(virtual_pod(), WORLD)
    assert volume(pod, "kube-api-access-8xk2p") == {
        "name": "kube-api-access-8xk2p",
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"secret": {"name": TOKEN_SECRET, "items": [{"key": "token", "path": "token"}]}},
                {"secret": {"name": TOKEN_SECRET, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {
                    "downwardAPI": {
                        "items": [
                            {"path": "namespace", **annotation_ref("vcsync.dev/object-namespace")}
                        ]
                    }
                },
            ],
        },
    }


def test_audience_tokens_in_other_volumes_are_served_from_the_token_secret() -> None:
    sources = volume(host_pod(virtual_pod(), WORLD), "bundle")["projected"]["sources"]
    assert sources[2] == {
        "secret": {"name": TOKEN_SECRET, "items": [{"key": VAULT_KEY, "path": "vault-token"}]}
    }


def test_root_ca_outside_kube_api_access_is_an_ordinary_reference() -> None:
    own = {"name": "ca", "projected": {"sources": [{"configMap": {"name": "kube-root-ca.crt"}}]}}
    spec = host_pod(with_spec(volumes=[own]), WORLD)["spec"]
    assert spec["volumes"][0]["projected"]["sources"] == [
        {"configMap": {"name": "kube-root-ca.crt-x-team-x-vc"}}
    ]


def test_token_keys() -> None:
    assert token_key(None) == "token"
    assert token_key("") == "token"
    assert token_key("vault") == VAULT_KEY
    assert re.fullmatch(r"token-[0-9a-f]{10}", token_key("https://sts.example.com"))


def test_token_requests_list_distinct_tokens_with_the_shortest_lifetime() -> None:
    assert assert_pure(token_requests, virtual_pod()) == (
        TokenSpec(key="token", audience=None, expiration_seconds=3607),
        TokenSpec(key=VAULT_KEY, audience="vault", expiration_seconds=7200),
    )
    extra = {
        "name": "more",
        "projected": {
            "sources": [
                {
                    "serviceAccountToken": {
                        "audience": "vault",
                        "expirationSeconds": 600,
                        "path": "a",
                    }
                },
                {"serviceAccountToken": {"path": "b"}},
            ]
        },
    }
    virtual = virtual_pod()
    virtual["spec"]["volumes"].append(extra)
    assert token_requests(virtual) == (
        TokenSpec(key="token", audience=None, expiration_seconds=3600),
        TokenSpec(key=VAULT_KEY, audience="vault", expiration_seconds=600),
    )
    assert token_requests(without_spec("volumes")) == ()


# --- priority and scheduling ----------------------------------------------------------------


@pytest.mark.parametrize(("chosen", "expected"), [("", None), ("host-high", "host-high")])
def test_priority_class_is_the_one_the_policy_chose(chosen: str, expected: str | None) -> None:
    """``translators.policy.host_priority_class`` chooses (tests/unit/test_policy.py);
    priority and preemption are left to host admission, which derives them from it."""
    world = replace(WORLD, priority_class=chosen)
    spec = host_pod(with_spec(priorityClassName="high", priority=1000,
                              preemptionPolicy="PreemptLowerPriority"), world)["spec"]
    assert spec.get("priorityClassName") == expected
    assert "priority" not in spec
    assert "preemptionPolicy" not in spec


@pytest.mark.parametrize(
    ("named", "default", "expected"),
    [(None, "", None), (None, "gvisor", "gvisor"), ("kata", "gvisor", "kata"),
     ("kata", "", "kata")],
)
def test_runtime_class_is_the_pods_or_the_platforms_default(
    named: str | None, default: str, expected: str | None,
) -> None:
    """A runtime class the pod names reaches the host as it is (``translators.policy``
    refused the pod if it may not); a pod naming none gets sync.toHost.pods.runtimeClassName."""
    virtual = with_spec(runtimeClassName=named) if named else virtual_pod()
    spec = host_pod(virtual, replace(WORLD, runtime_class=default))["spec"]
    assert spec.get("runtimeClassName") == expected


def test_pod_affinity_and_spread_constraints_are_confined_to_the_tenant() -> None:
    virtual = virtual_pod()
    affinity = virtual["spec"]["affinity"]
    spec = host_pod(virtual, WORLD)["spec"]
    required = affinity["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    preferred = affinity["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert spec["affinity"] == {
        "nodeAffinity": affinity["nodeAffinity"],
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                naming.host_pod_affinity_term(required, "vc", "team")
            ]
        },
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": naming.host_pod_affinity_term(
                        preferred["podAffinityTerm"], "vc", "team"
                    ),
                }
            ]
        },
    }
    assert spec["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0][
        "labelSelector"
    ]["matchLabels"] == {
        "app": "cache",
        naming.LABEL_NAMESPACE: "team",
        naming.LABEL_MANAGED_BY: "vc",
    }
    assert spec["topologySpreadConstraints"] == [
        naming.host_topology_spread_constraint(c, "vc", "team")
        for c in virtual["spec"]["topologySpreadConstraints"]
    ]


# --- spec_patch --------------------------------------------------------------------------------


def stored_host(virtual: Obj) -> Obj:
    """The host pod as the host API server returns it after creation and admission."""
    host = host_pod(virtual, WORLD)
    host["metadata"].update(uid="host-uid", resourceVersion="99")
    host["metadata"]["annotations"]["kubernetes.io/psp"] = "host-added"
    host["spec"].update(serviceAccountName="default", serviceAccount="default", priority=0)
    host["spec"]["preemptionPolicy"] = "PreemptLowerPriority"
    host["status"] = {"phase": "Running"}
    return host


def test_spec_patch_is_empty_for_an_identical_pair() -> None:
    virtual = virtual_pod()
    assert assert_pure(spec_patch, virtual, stored_host(virtual), WORLD) == {}


def test_spec_patch_changes_images_by_container_name() -> None:
    host = stored_host(virtual_pod())
    virtual = virtual_pod()
    container(virtual, "web")["image"] = "registry.example.com/web:1.5"
    container(virtual, "migrate", "initContainers")["image"] = "registry.example.com/m:1.5"
    assert assert_pure(spec_patch, virtual, host, WORLD) == {
        "spec": {
            "initContainers": [{"name": "migrate", "image": "registry.example.com/m:1.5"}],
            "containers": [{"name": "web", "image": "registry.example.com/web:1.5"}],
        }
    }


def test_spec_patch_adds_tolerations() -> None:
    host = stored_host(virtual_pod())
    gpu = {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}
    virtual = with_spec(tolerations=[NOT_READY, UNREACHABLE, gpu])
    assert spec_patch(virtual, host, WORLD) == {
        "spec": {"tolerations": [NOT_READY, UNREACHABLE, gpu]}
    }


def test_spec_patch_keeps_host_only_tolerations_and_updates_toleration_seconds() -> None:
    host = stored_host(virtual_pod())
    host_only = {
        "key": "host/pool",
        "operator": "Equal",
        "value": "tenants",
        "effect": "NoSchedule",
    }
    host["spec"]["tolerations"] = [NOT_READY, host_only, UNREACHABLE]
    shorter = {**UNREACHABLE, "tolerationSeconds": 60}
    virtual = with_spec(tolerations=[NOT_READY, shorter])
    assert spec_patch(virtual, host, WORLD) == {
        "spec": {"tolerations": [NOT_READY, host_only, shorter]}
    }
    virtual = with_spec(tolerations=[NOT_READY, UNREACHABLE])
    assert spec_patch(virtual, host, WORLD) == {}


def test_spec_patch_removes_scheduling_gates_only() -> None:
    gates = [{"name": "example.com/quota"}, {"name": "example.com/image"}]
    host = stored_host(with_spec(schedulingGates=gates))
    virtual = with_spec(schedulingGates=gates[1:])
    assert spec_patch(virtual, host, WORLD) == {
        "spec": {"schedulingGates": [{"name": "example.com/quota", "$patch": "delete"}]}
    }
    assert spec_patch(without_spec(), host, WORLD) == {
        "spec": {
            "schedulingGates": [
                {"name": "example.com/quota", "$patch": "delete"},
                {"name": "example.com/image", "$patch": "delete"},
            ]
        }
    }
    added = with_spec(schedulingGates=[*gates, {"name": "example.com/new"}])
    assert spec_patch(added, host, WORLD) == {}


@pytest.mark.parametrize(
    ("host_value", "virtual_value", "expected"),
    [(None, 600, 600), (600, 300, 300), (300, 600, None), (600, None, None), (600, 600, None)],
)
def test_spec_patch_active_deadline_may_only_be_set_or_lowered(
    host_value: int | None, virtual_value: int | None, expected: int | None
) -> None:
    host = stored_host(virtual_pod())
    if host_value is not None:
        host["spec"]["activeDeadlineSeconds"] = host_value
    virtual = with_spec(activeDeadlineSeconds=virtual_value)
    patch = spec_patch(virtual, host, WORLD)
    assert patch == ({} if expected is None else {"spec": {"activeDeadlineSeconds": expected}})


def test_spec_patch_never_sends_immutable_changes() -> None:
    host = stored_host(virtual_pod())
    virtual = virtual_pod()
    container(virtual, "web")["command"] = ["/bin/other"]
    container(virtual, "web")["resources"] = {"limits": {"cpu": "2"}}
    virtual["spec"]["containers"].append({"name": "new", "image": "busybox"})
    virtual["spec"]["volumes"] = virtual["spec"]["volumes"][:2]
    virtual["spec"].update(restartPolicy="Never", nodeSelector={"zone": "b"}, hostname="other")
    virtual["spec"]["terminationGracePeriodSeconds"] = 5
    assert spec_patch(virtual, host, WORLD) == {}


def test_spec_patch_updates_labels_and_annotations() -> None:
    host = stored_host(virtual_pod())
    virtual = virtual_pod()
    virtual["metadata"]["labels"]["version"] = "v2"
    del virtual["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
    assert spec_patch(virtual, host, WORLD) == {
        "metadata": {
            "labels": {"version": "v2"},
            "annotations": {
                naming.ANNOTATION_MANAGED_ANNOTATIONS: "",
                ANNOTATION_VIRTUAL_LABELS: (
                    'app="web"\npod-template-hash="5d8f7c9b6d"\n'
                    'vcsync.dev/tier="front"\nversion="v2"'
                ),
                "kubectl.kubernetes.io/restartedAt": None,
            },
        }
    }


def test_spec_patch_relabels_when_namespace_labels_change() -> None:
    virtual = virtual_pod()
    host = stored_host(virtual)
    world = replace(WORLD, namespace_labels={"kubernetes.io/metadata.name": "team"})
    assert spec_patch(virtual, host, world) == {
        "metadata": {"labels": {naming.namespace_label_key("env", "vc"): None}}
    }


# --- status_patch --------------------------------------------------------------------------------

RUNNING: Obj = {
    "phase": "Running",
    "conditions": [
        {"type": "Initialized", "status": "True", "lastTransitionTime": "2024-05-01T10:00:02Z"},
        {"type": "Ready", "status": "True", "lastTransitionTime": "2024-05-01T10:00:09Z"},
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2024-05-01T10:00:01Z"},
    ],
    "hostIP": "172.18.0.3",
    "hostIPs": [{"ip": "172.18.0.3"}],
    "podIP": "10.244.1.17",
    "podIPs": [{"ip": "10.244.1.17"}],
    "startTime": "2024-05-01T10:00:01Z",
    "qosClass": "Burstable",
    "containerStatuses": [
        {
            "name": "web",
            "ready": True,
            "restartCount": 0,
            "image": "registry.example.com/web:1.4",
            "imageID": "registry.example.com/web@sha256:abc",
            "containerID": "containerd://123",
            "started": True,
            "state": {"running": {"startedAt": "2024-05-01T10:00:05Z"}},
        }
    ],
}


def test_status_patch_copies_the_host_status() -> None:
    virtual = virtual_pod()
    host = {**stored_host(virtual), "status": RUNNING}
    patch = assert_pure(status_patch, virtual, host)
    assert patch == {"status": {key: value for key, value in RUNNING.items() if key != "qosClass"}}
    assert status_patch({**virtual, "status": RUNNING}, host) == {}


def test_status_patch_removes_what_the_host_no_longer_has() -> None:
    virtual = {**virtual_pod(), "status": {**RUNNING, "nominatedNodeName": "n1", "reason": "X"}}
    host = {**stored_host(virtual), "status": RUNNING}
    assert status_patch(virtual, host) == {"status": {"nominatedNodeName": None, "reason": None}}


def test_status_patch_keeps_virtual_readiness_gate_conditions() -> None:
    gate = {"type": "example.com/lb-ready", "status": "True"}
    virtual = with_spec(readinessGates=[{"conditionType": "example.com/lb-ready"}])
    virtual["status"] = {**RUNNING, "conditions": [*RUNNING["conditions"], gate]}
    host = {**stored_host(virtual), "status": RUNNING}
    assert status_patch(virtual, host) == {}


def test_status_patch_does_not_copy_host_generations() -> None:
    virtual = {**virtual_pod(), "status": RUNNING}
    condition = {**RUNNING["conditions"][0], "observedGeneration": 3}
    host_status = {**RUNNING, "observedGeneration": 3, "conditions": [condition]}
    host = {**stored_host(virtual), "status": host_status}
    assert status_patch(virtual, host) == {"status": {"conditions": [RUNNING["conditions"][0]]}}


def test_status_patch_leaves_a_nominated_node_off_a_bound_pod() -> None:
    """Found by issue 22's preemption test: a virtual pod named its node, the host copy
    waits for a preemption there; the API refuses ``nominatedNodeName`` on a bound pod,
    and every status patch carrying it failed (422) again and again."""
    bound = with_spec(nodeName="kwok-node-0")
    host = {**stored_host(bound), "status": {"phase": "Pending", "nominatedNodeName": "n1"}}
    assert "nominatedNodeName" not in status_patch(bound, host).get("status", {})
    unbound = virtual_pod()
    assert status_patch(unbound, host)["status"]["nominatedNodeName"] == "n1"


def test_status_patch_keeps_the_virtual_qos_class() -> None:
    """A host LimitRange's default requests make the copy Burstable; the virtual pod's
    qosClass is immutable, so copying it would make every status patch fail (422)."""
    virtual = {**virtual_pod(), "status": {**RUNNING, "qosClass": "BestEffort"}}
    host = {**stored_host(virtual), "status": {**RUNNING, "qosClass": "Burstable"}}
    assert status_patch(virtual, host) == {}
    pending = {**virtual_pod(), "status": {"phase": "Pending", "qosClass": "BestEffort"}}
    patch = status_patch(pending, host)
    assert "qosClass" not in patch["status"]
    assert patch["status"]["phase"] == "Running"


# --- purity ---------------------------------------------------------------------------------------


def test_host_pod_never_mutates_its_input() -> None:
    virtual = with_spec(
        hostAliases=[{"ip": "10.0.0.7", "hostnames": ["a"]}],
        dnsConfig={"options": [{"name": "edns0"}]},
        priorityClassName="high",
        ephemeralContainers=[{"name": "d", "image": "busybox"}],
    )
    world = replace(WORLD, priority_class="vcsync-high-x-vcluster-vc-x-vc", runtime_class="gv")
    assert_pure(host_pod, virtual, world)
    assert_pure(ephemeral_containers_patch, virtual, host_pod(virtual_pod(), world), world)


def test_patches_never_mutate_their_inputs() -> None:
    host = stored_host(with_spec(schedulingGates=[{"name": "g"}], activeDeadlineSeconds=60))
    virtual = with_spec(tolerations=[NOT_READY], activeDeadlineSeconds=30)
    virtual["metadata"]["labels"]["x"] = "y"
    container(virtual, "web")["image"] = "new"
    assert assert_pure(spec_patch, virtual, host, WORLD) != {}
    assert assert_pure(status_patch, virtual, {**host, "status": RUNNING}) != {}


# --- properties -----------------------------------------------------------------------------------







dns_labels = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True)
pod_names = st.lists(dns_labels, min_size=1, max_size=4).map(".".join)
label_names = st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?", fullmatch=True)
label_keys = st.one_of(
    label_names,
    st.tuples(st.sampled_from(["vcsync.dev", "example.com", "app.kubernetes.io"]), label_names).map(
        "/".join
    ),
    st.sampled_from([naming.LABEL_MANAGED_BY, naming.LABEL_NAMESPACE, naming.LABEL_CONTROLLED_BY]),
)
labels = st.dictionaries(label_keys, st.one_of(st.just(""), label_names), max_size=4)


@settings(max_examples=60, deadline=None)
@given(pod_names, dns_labels, dns_labels, labels, labels)
def test_host_pod_names_and_labels_are_valid_and_owned(
    name: str, namespace: str, vcluster: str, pod_labels: dict[str, str], ns_labels: dict[str, str]
) -> None:
    virtual = virtual_pod()
    virtual["metadata"].update(name=name, namespace=namespace, labels=pod_labels)
    world = replace(WORLD, vcluster=vcluster, namespace_labels=ns_labels)
    host = host_pod(virtual, world)
    meta = host["metadata"]
    assert is_dns_subdomain(meta["name"])
    assert len(meta["name"]) <= 63
    assert is_dns_label(host["spec"]["hostname"])
    assert all(is_label_key(key) and is_label_value(value) for key, value in meta["labels"].items())
    assert meta["labels"][naming.LABEL_MANAGED_BY] == vcluster
    assert meta["labels"][naming.LABEL_NAMESPACE] == namespace
    assert all(is_label_key(key) for key in meta["annotations"])

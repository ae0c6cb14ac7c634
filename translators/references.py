"""Which ConfigMaps, Secrets (and claims) a pod references (pure functions on pod dicts).

Why: referenced objects are synced to the host only while a pod needs them,
and must exist there before the pod is created. These functions serve as
store indexes (pods by referenced object) and as triggers (a pod event
re-reconciles the objects it references).
"""

from __future__ import annotations

from collections.abc import Iterator

from contract.resources import Obj

API_ACCESS_PREFIX = "kube-api-access-"
"""Volumes the ServiceAccount admission injects; the syncer serves them from a token Secret."""
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
_CONTAINER_FIELDS = ("initContainers", "containers", "ephemeralContainers")
# Volume sources that name a Secret through ``secretRef`` (legacy in-tree drivers).
_SECRET_REF_VOLUMES = ("cephfs", "cinder", "flexVolume", "iscsi", "rbd", "scaleIO", "storageos")


def _containers(pod: Obj) -> Iterator[Obj]:
    spec = pod.get("spec") or {}
    for field in _CONTAINER_FIELDS:
        yield from spec.get(field) or ()


def _volumes(pod: Obj) -> Iterator[Obj]:
    yield from (pod.get("spec") or {}).get("volumes") or ()


def _projections(pod: Obj) -> Iterator[Obj]:
    for volume in _volumes(pod):
        yield from (volume.get("projected") or {}).get("sources") or ()


def _name(ref: Obj | None, field: str = "name") -> tuple[str, ...]:
    """The referenced name, if any (a tuple, not a generator: this runs per store update)."""
    if ref and ref.get(field):
        return (str(ref[field]),)
    return ()


def _served_by_token_secret(volume: Obj, source: Obj) -> bool:
    """The CA bundle of an injected API-access volume comes with the token, not a ConfigMap."""
    config_map = source.get("configMap") or {}
    return str(volume.get("name", "")).startswith(API_ACCESS_PREFIX) and (
        config_map.get("name") == ROOT_CA_CONFIGMAP
    )


def configmap_names(pod: Obj) -> set[str]:
    """Names of ConfigMaps in the pod's namespace that the host pod will read."""
    names: set[str] = set()
    for volume in _volumes(pod):
        names.update(_name(volume.get("configMap")))
        for source in (volume.get("projected") or {}).get("sources") or ():
            if not _served_by_token_secret(volume, source):
                names.update(_name(source.get("configMap")))
    for container in _containers(pod):
        for env in container.get("env") or ():
            names.update(_name((env.get("valueFrom") or {}).get("configMapKeyRef")))
        for env_from in container.get("envFrom") or ():
            names.update(_name(env_from.get("configMapRef")))
    return names


def secret_names(pod: Obj) -> set[str]:
    """Names of Secrets in the pod's namespace that the pod (or its kubelet) reads."""
    names: set[str] = set()
    spec = pod.get("spec") or {}
    for ref in spec.get("imagePullSecrets") or ():
        names.update(_name(ref))
    for volume in _volumes(pod):
        names.update(_name(volume.get("secret"), "secretName"))
        names.update(_name((volume.get("csi") or {}).get("nodePublishSecretRef")))
        names.update(_name(volume.get("azureFile"), "secretName"))
        for driver in _SECRET_REF_VOLUMES:
            names.update(_name((volume.get(driver) or {}).get("secretRef")))
    for source in _projections(pod):
        names.update(_name(source.get("secret")))
    for container in _containers(pod):
        for env in container.get("env") or ():
            names.update(_name((env.get("valueFrom") or {}).get("secretKeyRef")))
        for env_from in container.get("envFrom") or ():
            names.update(_name(env_from.get("secretRef")))
    return names


def ephemeral_claim_name(pod: Obj, volume: Obj) -> str:
    """The claim the ephemeral-volume controller makes for a generic ephemeral volume."""
    return f"{pod['metadata']['name']}-{volume.get('name', '')}"


def claim_names(pod: Obj) -> set[str]:
    """Names of PersistentVolumeClaims in the pod's namespace that the pod mounts, the
    claims made for its generic ephemeral volumes included."""
    names = {str(v["persistentVolumeClaim"]["claimName"]) for v in _volumes(pod)
             if (v.get("persistentVolumeClaim") or {}).get("claimName")}
    return names | {ephemeral_claim_name(pod, v) for v in _volumes(pod) if v.get("ephemeral")}


def _keys(pod: Obj, names: set[str]) -> list[str]:
    namespace = (pod.get("metadata") or {}).get("namespace", "")
    return [f"{namespace}/{name}" for name in sorted(names)]


def configmap_keys(pod: Obj) -> list[str]:
    """``namespace/name`` of every ConfigMap the pod references (index and trigger)."""
    return _keys(pod, configmap_names(pod))


def secret_keys(pod: Obj) -> list[str]:
    """``namespace/name`` of every Secret the pod references (index and trigger)."""
    return _keys(pod, secret_names(pod))


def ingress_tls_secret_keys(ingress: Obj) -> list[str]:
    """``namespace/name`` of every TLS Secret an Ingress names (index and trigger)."""
    namespace = (ingress.get("metadata") or {}).get("namespace", "")
    spec = ingress.get("spec") or {}
    names = {t["secretName"] for t in spec.get("tls") or () if t.get("secretName")}
    return [f"{namespace}/{name}" for name in sorted(names)]

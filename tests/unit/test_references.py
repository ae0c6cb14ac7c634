"""Unit tests of :mod:`translators.references`: what a pod makes the syncer copy.

Every reference site Kubernetes' own ``VisitPodSecretNames`` /
``VisitPodConfigmapNames`` knows is exercised once alone (so a missing site
fails by name) and all together; ConfigMap sites never count as Secrets and
vice versa; missing or null parts of a pod never raise.
"""

from __future__ import annotations

import copy

import pytest

from contract.resources import Obj
from translators.references import configmap_keys, configmap_names, secret_keys, secret_names

CONTAINER_FIELDS = ("containers", "initContainers", "ephemeralContainers")
LEGACY_SECRET_REF_VOLUMES = (
    "cephfs", "cinder", "flexVolume", "iscsi", "rbd", "scaleIO", "storageos"
)


def pod(spec: Obj, namespace: str = "team-x") -> Obj:
    return {"metadata": {"name": "p", "namespace": namespace}, "spec": spec}


def with_volume(volume: Obj) -> Obj:
    return pod({"containers": [{"name": "c"}], "volumes": [{"name": "v", **volume}]})


def with_container(field: str, container: Obj) -> Obj:
    return pod({field: [{"name": "c", "image": "busybox", **container}]})


def env_ref(var: str, ref: str, name: str) -> Obj:
    """An env var read from key ``k`` of object ``name`` (``ref``: configMapKeyRef/secretKeyRef)."""
    return {"name": var, "valueFrom": {ref: {"name": name, "key": "k"}}}


# --- each site alone ------------------------------------------------------------------------

CONFIGMAP_SITES: dict[str, Obj] = {
    "volume": with_volume({"configMap": {"name": "cm"}}),
    "projected": with_volume({"projected": {"sources": [{"configMap": {"name": "cm"}}]}}),
    **{
        f"{field}.env.valueFrom": with_container(
            field, {"env": [env_ref("E", "configMapKeyRef", "cm")]}
        )
        for field in CONTAINER_FIELDS
    },
    **{
        f"{field}.envFrom": with_container(field, {"envFrom": [{"configMapRef": {"name": "cm"}}]})
        for field in CONTAINER_FIELDS
    },
}

SECRET_SITES: dict[str, Obj] = {
    "imagePullSecrets": pod({"containers": [{"name": "c"}], "imagePullSecrets": [{"name": "cm"}]}),
    "volume": with_volume({"secret": {"secretName": "cm"}}),
    "projected": with_volume({"projected": {"sources": [{"secret": {"name": "cm"}}]}}),
    "csi": with_volume({"csi": {"driver": "d", "nodePublishSecretRef": {"name": "cm"}}}),
    "azureFile": with_volume({"azureFile": {"secretName": "cm", "shareName": "s"}}),
    **{
        f"{driver}.secretRef": with_volume({driver: {"secretRef": {"name": "cm"}}})
        for driver in LEGACY_SECRET_REF_VOLUMES
    },
    **{
        f"{field}.env.valueFrom": with_container(
            field, {"env": [env_ref("E", "secretKeyRef", "cm")]}
        )
        for field in CONTAINER_FIELDS
    },
    **{
        f"{field}.envFrom": with_container(field, {"envFrom": [{"secretRef": {"name": "cm"}}]})
        for field in CONTAINER_FIELDS
    },
}


@pytest.mark.parametrize("site", sorted(CONFIGMAP_SITES))
def test_each_configmap_site_alone(site: str) -> None:
    p = CONFIGMAP_SITES[site]
    assert configmap_names(p) == {"cm"}
    assert configmap_keys(p) == ["team-x/cm"]
    assert secret_names(p) == set()
    assert secret_keys(p) == []


@pytest.mark.parametrize("site", sorted(SECRET_SITES))
def test_each_secret_site_alone(site: str) -> None:
    p = SECRET_SITES[site]
    assert secret_names(p) == {"cm"}
    assert secret_keys(p) == ["team-x/cm"]
    assert configmap_names(p) == set()
    assert configmap_keys(p) == []


# --- a pod using every site at once -----------------------------------------------------


def full_pod() -> Obj:
    def container(n: str) -> Obj:
        return {
            "name": n,
            "env": [
                {"name": "PLAIN", "value": "x"},
                {"name": "FIELD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                env_ref("CM", "configMapKeyRef", f"cm-env-{n}"),
                env_ref("S", "secretKeyRef", f"s-env-{n}"),
            ],
            "envFrom": [
                {"configMapRef": {"name": f"cm-from-{n}"}, "prefix": "P_"},
                {"secretRef": {"name": f"s-from-{n}"}},
            ],
        }

    volumes: list[Obj] = [
        {"name": "cm", "configMap": {"name": "cm-vol", "items": [{"key": "a", "path": "a"}]}},
        {"name": "s", "secret": {"secretName": "s-vol"}},
        {
            "name": "proj",
            "projected": {
                "sources": [
                    {"configMap": {"name": "cm-proj"}},
                    {"secret": {"name": "s-proj"}},
                    {"serviceAccountToken": {"path": "token"}},
                    {"downwardAPI": {"items": []}},
                ]
            },
        },
        {"name": "csi", "csi": {"driver": "x", "nodePublishSecretRef": {"name": "s-csi"}}},
        {"name": "az", "azureFile": {"secretName": "s-azure", "shareName": "share"}},
        {"name": "empty", "emptyDir": {}},
        *(
            {"name": driver.lower(), driver: {"secretRef": {"name": f"s-{driver}"}}}
            for driver in LEGACY_SECRET_REF_VOLUMES
        ),
    ]
    return {
        "metadata": {"name": "all", "namespace": "team-x"},
        "spec": {
            "imagePullSecrets": [{"name": "s-pull"}],
            "volumes": volumes,
            "initContainers": [container("init")],
            "containers": [container("main"), container("side")],
            "ephemeralContainers": [container("debug")],
        },
    }


FULL_CONFIGMAPS = {
    "cm-vol", "cm-proj",
    *(f"cm-{kind}-{c}" for kind in ("env", "from") for c in ("init", "main", "side", "debug")),
}
FULL_SECRETS = {
    "s-pull", "s-vol", "s-proj", "s-csi", "s-azure",
    *(f"s-{driver}" for driver in LEGACY_SECRET_REF_VOLUMES),
    *(f"s-{kind}-{c}" for kind in ("env", "from") for c in ("init", "main", "side", "debug")),
}


def test_every_site_together() -> None:
    p = full_pod()
    assert configmap_names(p) == FULL_CONFIGMAPS
    assert secret_names(p) == FULL_SECRETS


def test_keys_carry_the_pod_namespace_sorted_and_unique() -> None:
    p = full_pod()
    assert configmap_keys(p) == sorted(f"team-x/{n}" for n in FULL_CONFIGMAPS)
    assert secret_keys(p) == sorted(f"team-x/{n}" for n in FULL_SECRETS)

    p["metadata"]["namespace"] = "other"
    assert configmap_keys(p) == sorted(f"other/{n}" for n in FULL_CONFIGMAPS)


def test_a_name_referenced_twice_is_one_key() -> None:
    p = pod(
        {
            "volumes": [{"name": "v", "configMap": {"name": "shared"}}],
            "containers": [
                {"name": "a", "envFrom": [{"configMapRef": {"name": "shared"}}]},
                {"name": "b", "envFrom": [{"configMapRef": {"name": "shared"}}]},
            ],
        }
    )
    assert configmap_keys(p) == ["team-x/shared"]


def test_functions_do_not_mutate_the_pod() -> None:
    p = full_pod()
    before = copy.deepcopy(p)
    configmap_keys(p)
    secret_keys(p)
    assert p == before


# --- pods without the parts ---------------------------------------------------------------


@pytest.mark.parametrize(
    "p",
    [
        {},
        {"metadata": {"name": "p", "namespace": "n"}},
        {"metadata": None, "spec": None},
        pod({}),
        pod({"volumes": None, "containers": None, "initContainers": None,
             "ephemeralContainers": None, "imagePullSecrets": None}),
        pod({"volumes": [], "containers": []}),
        pod({"volumes": [{"name": "v"}, {"name": "p", "projected": None},
                         {"name": "q", "projected": {"sources": None}},
                         {"name": "r", "projected": {"sources": [{}]}},
                         {"name": "c", "configMap": None, "secret": None, "csi": None,
                          "azureFile": None, "cephfs": None, "rbd": {}}]}),
        pod({"containers": [{"name": "c"}, {"name": "d", "env": None, "envFrom": None},
                            {"name": "e", "env": [{"name": "X"}, {"name": "Y", "valueFrom": None},
                                                  {"name": "Z", "valueFrom": {}}],
                             "envFrom": [{}, {"configMapRef": None, "secretRef": None}]}]}),
        # empty names are no reference (the API server rejects them; a cache may not)
        pod({"volumes": [{"name": "v", "configMap": {"name": ""}},
                         {"name": "w", "secret": {"secretName": ""}},
                         {"name": "x", "csi": {"nodePublishSecretRef": {}}}],
             "imagePullSecrets": [{}, {"name": ""}]}),
    ],
)
def test_pods_without_references_give_nothing(p: Obj) -> None:
    assert configmap_names(p) == set()
    assert secret_names(p) == set()
    assert configmap_keys(p) == []
    assert secret_keys(p) == []


def test_optional_references_still_count() -> None:
    """An ``optional: true`` reference is still read when the object exists."""
    p = pod(
        {
            "volumes": [{"name": "v", "configMap": {"name": "opt", "optional": True}}],
            "containers": [
                {"name": "c", "envFrom": [{"secretRef": {"name": "opt-s", "optional": True}}]}
            ],
        }
    )
    assert configmap_keys(p) == ["team-x/opt"]
    assert secret_keys(p) == ["team-x/opt-s"]

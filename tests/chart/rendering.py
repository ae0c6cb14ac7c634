"""Render the Helm chart with the pinned helm binary and pick objects out of the result.

Shared by the pure chart tests (tests/chart) and the cluster tests
(tests/cluster/test_chart.py).
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from contract.resources import Obj
from syncer.local import binaries

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "vcsync"
RELEASE = "vc1"
NAMESPACE = "tenant-a"

VALUE_SETS: dict[str, list[str]] = {
    "defaults": [],
    **{
        f"toHost.{kind}={not on}".lower(): [f"sync.toHost.{kind}.enabled={str(not on).lower()}"]
        for kind, on in {
            "pods": True, "services": True, "endpoints": True, "persistentVolumeClaims": True,
            "configMaps": True, "secrets": True, "ingresses": False, "networkPolicies": False,
            "priorityClasses": False,
        }.items()
    },
    "configmaps-secrets-all": ["sync.toHost.configMaps.all=true", "sync.toHost.secrets.all=true"],
    **{
        f"fromHost.{kind}={not on}".lower(): [f"sync.fromHost.{kind}.enabled={str(not on).lower()}"]
        for kind, on in {
            "nodes": True, "events": True, "storageClasses": False, "ingressClasses": False,
            "runtimeClasses": False, "priorityClasses": False,
        }.items()
    },
    "real-nodes": ["sync.fromHost.nodes.selector.all=true",
                   "sync.fromHost.nodes.selector.labels.type=kwok"],
    "class-selectors": ["sync.fromHost.storageClasses.enabled=true",
                        "sync.fromHost.storageClasses.selector.labels.tier=fast",
                        "sync.fromHost.ingressClasses.enabled=true"],
    "database-embedded": ["controlPlane.backingStore.database.embedded.enabled=true"],
    "database-external": ["controlPlane.backingStore.database.external.enabled=true",
                          "controlPlane.backingStore.database.external.existingSecret.name=db",
                          "controlPlane.backingStore.database.external.tls.existingSecret=db-tls"],
    "database-external-inline": [
        "controlPlane.backingStore.database.external.enabled=true",
        "controlPlane.backingStore.database.external.dataSource=postgres://vc@db:5432/vc"],
    "etcd-embedded": ["controlPlane.backingStore.etcd.embedded.enabled=true"],
    "etcd-embedded-ha": ["controlPlane.backingStore.etcd.embedded.enabled=true",
                         "controlPlane.statefulSet.highAvailability.replicas=3"],
    "etcd-external": ["controlPlane.backingStore.etcd.external.enabled=true",
                      "controlPlane.backingStore.etcd.external.endpoint=https://etcd:2379",
                      "controlPlane.backingStore.etcd.external.tls.existingSecret=etcd-client"],
    "policies-off": ["policies.resourceQuota.enabled=false", "policies.limitRange.enabled=false",
                     "policies.networkPolicy.enabled=false"],
    "pss-restricted": ["policies.podSecurityStandard=restricted"],
    "host-choices": ["policies.priorityClasses.maxValue=1000",
                     "policies.priorityClasses.allowPreemption=true",
                     'json:policies.runtimeClasses.allowed=["kata"]',
                     'json:policies.schedulers.allowed=["batch"]',
                     'json:policies.externalNames.allowed=["*.db.example.com"]',
                     "sync.toHost.pods.runtimeClassName=gvisor",
                     "sync.toHost.pods.priorityClassName=tenant-batch"],
    "no-coredns-no-persistence": ["controlPlane.coredns.enabled=false",
                                  "controlPlane.statefulSet.persistence.volumeClaim.enabled=false"],
    "leader-election": ["syncer.leaderElection.enabled=true", "syncer.shards=2"],
}
"""Named value sets (--set assignments) the chart must render and lint with."""


def helm(*args: str, check: bool = True, kubeconfig: Path | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the pinned helm binary (no repositories, no network)."""
    cmd = [str(binaries.binary_path("helm")), *args]
    if kubeconfig is not None:
        cmd.append(f"--kubeconfig={kubeconfig}")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def set_flags(assignments: Sequence[str]) -> list[str]:
    """``--set`` flags; ``json:k=v`` gives ``--set-json`` (helm's --set keeps 7.5 a string)."""
    return [
        flag for assignment in assignments
        for flag in (("--set-json", assignment[5:]) if assignment.startswith("json:")
                     else ("--set", assignment))
    ]


def template(assignments: Sequence[str] = (), release: str = RELEASE,
             namespace: str = NAMESPACE, values_file: Path | None = None) -> str:
    """``helm template`` output (YAML documents)."""
    if values_file is None:
        return _template(tuple(assignments), release, namespace)
    return helm("template", release, str(CHART), "-n", namespace, "-f", str(values_file),
                *set_flags(assignments)).stdout


@functools.lru_cache(maxsize=256)
def _template(assignments: tuple[str, ...], release: str, namespace: str) -> str:
    """Cached: many tests render the same value sets (certificates differ per render anyway)."""
    return helm("template", release, str(CHART), "-n", namespace,
                *set_flags(assignments)).stdout


def render(assignments: Sequence[str] = (), release: str = RELEASE,
           namespace: str = NAMESPACE, values_file: Path | None = None) -> list[Obj]:
    """The rendered objects, parsed."""
    text = template(assignments, release, namespace, values_file)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def template_error(assignments: Sequence[str], release: str = RELEASE) -> str:
    """stderr of a ``helm template`` that must fail."""
    proc = helm("template", release, str(CHART), "-n", NAMESPACE, *set_flags(assignments),
                check=False)
    assert proc.returncode != 0, f"helm template accepted {assignments}"
    return proc.stderr


def find(objects: Sequence[Obj], kind: str, name: str | None = None) -> Obj:
    matches = [o for o in objects if o["kind"] == kind
               and (name is None or o["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def kinds(objects: Sequence[Obj]) -> list[str]:
    return sorted(f"{o['kind']}/{o['metadata']['name']}" for o in objects)


def secret_data(secret: Obj) -> dict[str, bytes]:
    return {key: base64.b64decode(value) for key, value in secret.get("data", {}).items()}


def syncer_config(objects: Sequence[Obj], release: str = RELEASE) -> str:
    """The syncer's config file as the chart renders it."""
    return str(find(objects, "ConfigMap", f"{release}-config")["data"]["config.yaml"])


def pod_spec(objects: Sequence[Obj], release: str = RELEASE) -> Obj:
    spec: Obj = find(objects, "StatefulSet", release)["spec"]["template"]["spec"]
    return spec


def container(objects: Sequence[Obj], name: str, release: str = RELEASE) -> Obj:
    spec = pod_spec(objects, release)
    for item in [*spec.get("initContainers", []), *spec["containers"]]:
        if item["name"] == name:
            return dict(item)
    raise AssertionError(f"no container {name}")


def values_defaults() -> Obj:
    data: Obj = yaml.safe_load((CHART / "values.yaml").read_text())
    return data


def schema() -> Obj:
    data: Obj = yaml.safe_load((CHART / "values.schema.json").read_text())
    return data


def generator() -> ModuleType:
    """``helm/generate.py`` as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("helm_generate", ROOT / "helm" / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def chart_script(name: str) -> ModuleType:
    """A script of the chart's ``files/`` (pki.py, start.py) as a module."""
    path = CHART / "files" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"chart_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dig(tree: Mapping[str, Any], dotted: str) -> Any:
    node: Any = tree
    for key in dotted.split("."):
        node = node[key]
    return node

"""A tenant for end-to-end tests of what kubectl reaches through the syncer.

``kubectl logs``/``exec``/... (test_kubelet) and ``kubectl top`` (test_top) each
start whole tenants once per module: a virtual control plane, its host
namespace and a syncer, with the namespace :data:`NS` created.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from contract import resources as r
from contract.resources import Obj
from syncer.kube.client import KubeClient
from syncer.local import binaries
from syncer.local.cluster import HostCluster, VirtualControlPlane
from syncer.local.syncer_process import SyncerProcess
from tests.cluster.conftest import Stack, open_stack, sync_config
from tests.conftest import track, untrack
from tests.support import wait_until

NS = "demo"


@dataclass
class Tenant:
    stack: Stack
    syncer: SyncerProcess
    files: Path

    @property
    def plane(self) -> VirtualControlPlane:
        return self.stack.virtual_cluster

    def host_pod(self, name: str, namespace: str = NS) -> str:
        return self.stack.host_name(name, namespace)

    def kubectl(self, *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None,
                kubeconfig: Path | None = None) -> subprocess.CompletedProcess[bytes]:
        """kubectl against the virtual cluster (its exit code is not checked)."""
        return _kubectl(kubeconfig or self.plane.kubeconfig, args, env, stdin)

    def host_kubectl(self, *args: str, env: dict[str, str] | None = None,
                     stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        """kubectl against the host, in this tenant's host namespace."""
        return _kubectl(self.stack.host_cluster.kubeconfig,
                        ("-n", self.stack.host_namespace, *args), env, stdin)

    def popen(self, *args: str, env: dict[str, str] | None = None,
              out: Path | None = None) -> subprocess.Popen[bytes]:
        sink = out.open("wb") if out is not None else subprocess.PIPE
        return subprocess.Popen(
            [str(binaries.binary_path("kubectl")), f"--kubeconfig={self.plane.kubeconfig}",
             *args], stdout=sink, stderr=subprocess.PIPE, stdin=subprocess.PIPE,
            env={**os.environ, **(env or {})})

    def as_host(self, text: str, name: str, namespace: str = NS) -> str:
        """``text`` (a host answer) with the host pod's names replaced by the virtual ones."""
        host_ns = self.stack.host_namespace
        return (text.replace(f"{host_ns}/{self.host_pod(name, namespace)}", f"{namespace}/{name}")
                .replace(self.host_pod(name, namespace), name).replace(host_ns, namespace))


def _kubectl(kubeconfig: Path, args: tuple[str, ...], env: dict[str, str] | None,
             stdin: bytes | None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(binaries.binary_path("kubectl")), f"--kubeconfig={kubeconfig}", *args],
        capture_output=True, input=stdin, timeout=120, env={**os.environ, **(env or {})})


def pod(name: str, *containers: str, labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None) -> Obj:
    """A pod labelled ``app: name`` (plus ``labels``) with the given containers."""
    return {"metadata": {"name": name, "labels": {"app": name, **(labels or {})},
                         "annotations": annotations or {}},
            "spec": {"containers": [{"name": c, "image": "busybox"} for c in containers]}}


async def running(client: KubeClient, name: str, namespace: str = NS) -> Obj:
    async def probe() -> Obj:
        found = await client.get(r.PODS, name, namespace)
        bound = found.get("spec", {}).get("nodeName")
        return found if bound and found.get("status", {}).get("phase") == "Running" else {}

    return await wait_until(probe, f"virtual pod {namespace}/{name} bound and Running", 90)


async def start_tenant(host_cluster: HostCluster, root: Path, name: str) -> Tenant:
    plane = VirtualControlPlane(name=name, root=root / "plane", store="memory")
    track(plane)
    await asyncio.to_thread(plane.start)
    host = await KubeClient.from_kubeconfig(str(host_cluster.kubeconfig), name="host")
    virtual = await KubeClient.from_kubeconfig(str(plane.kubeconfig), name=name)
    stack = await open_stack(host_cluster, plane, host, virtual, root, sync_config(), name=name)
    syncer = stack.syncer()
    await asyncio.to_thread(syncer.start)
    await virtual.create(r.NAMESPACES, {"metadata": {"name": NS}})
    files = root / "files"
    files.mkdir()
    return Tenant(stack, syncer, files)


async def stop_tenant(tenant: Tenant) -> None:
    for proc in tenant.stack.syncers:
        untrack(proc)
    untrack(tenant.plane)
    await tenant.stack.host.close()
    await tenant.stack.virtual.close()

"""The stack most behaviour tests need: host + virtual control planes + ``vcsync run``.

Per test: a fresh host namespace on the session's host cluster, a fresh
virtual control plane, the host Services a virtual cluster has in real
deployments (the API Service in front of the virtual kube-apiserver, and its
DNS Service), and syncer processes started on demand with a given config.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from contract import naming
from contract import resources as r
from contract.resources import Obj
from syncer.kube.client import KubeClient
from syncer.kube.errors import NotFound
from syncer.local import coredns, hostns
from syncer.local.cluster import HostCluster, VirtualControlPlane
from syncer.local.process import free_port
from syncer.local.syncer_process import SyncerProcess
from tests.conftest import ClientFactory, track, untrack
from tests.support import wait_until

VC = "vc1"
FAST_LEASE = {"leaseDuration": 4, "renewDeadline": 3, "retryPeriod": 0.5}


def sync_config(to_host: Obj | None = None, from_host: Obj | None = None, **extra: Any) -> Obj:
    """A syncer config: small queues, fast leases, and the given sync sections."""
    return {
        "sync": {"toHost": to_host or {}, "fromHost": from_host or {}},
        "syncer": {"shards": 2, "workersPerShard": 2, "leaderElection": FAST_LEASE},
        **extra,
    }


@dataclass
class Stack:
    """Host + virtual control planes, their clients, and syncer processes between them."""

    host_cluster: HostCluster
    virtual_cluster: VirtualControlPlane
    host: KubeClient
    virtual: KubeClient
    host_namespace: str
    root: Path
    config: Obj
    syncers: list[SyncerProcess] = field(default_factory=list)
    api_ip: str = ""
    name: str = VC
    """The virtual cluster's name (a second tenant on the same host needs another one)."""
    kubelet_port: int = field(default_factory=free_port)
    """Every syncer of the stack serves the kubelet endpoint virtual Nodes point at here."""
    metrics_api_port: int = field(default_factory=free_port)
    """... and the metrics API the virtual cluster's APIService routes to here."""

    async def dns_ip(self) -> str:
        """The host ClusterIP of the synced kube-dns Service (what pods get as nameserver)."""
        host = await wait_until(lambda: self.host_get(r.SERVICES, "kube-dns", "kube-system"),
                                "the kube-dns Service on the host")
        assert host is not None
        return str(host["spec"]["clusterIP"])

    def syncer(self, identity: str = "", *extra: str) -> SyncerProcess:
        path = self.root / "sync.yaml"
        path.write_text(yaml.safe_dump(self.config))
        proc = SyncerProcess(
            name=self.name, host=self.host_cluster, virtual=self.virtual_cluster,
            host_namespace=self.host_namespace, root=self.root, config=path,
            identity=identity, extra_args=list(extra), kubelet_port=self.kubelet_port,
            metrics_api_port=self.metrics_api_port,
        )
        self.syncers.append(proc)
        track(proc)
        return proc

    def host_name(self, name: str, namespace: str) -> str:
        return naming.host_name(name, namespace, self.name)

    async def host_get(self, res: r.Resource, name: str, namespace: str) -> Obj | None:
        """The host copy of virtual ``namespace/name``, or None."""
        try:
            return await self.host.get(res, self.host_name(name, namespace), self.host_namespace)
        except NotFound:
            return None

    async def host_list(self, res: r.Resource) -> list[Obj]:
        items, _ = await self.host.list(res, self.host_namespace)
        return items

    async def virtual_get(self, res: r.Resource, name: str, namespace: str) -> Obj | None:
        try:
            return await self.virtual.get(res, name, namespace)
        except NotFound:
            return None


async def open_stack(
    host_cluster: HostCluster, virtual_cluster: VirtualControlPlane, host: KubeClient,
    virtual: KubeClient, root: Path, config: Obj, name: str = VC,
) -> Stack:
    """A Stack on a fresh host namespace holding the API Service, with the DNS Service applied
    in the virtual cluster; the caller stops its syncers (fixtures of any scope share this)."""
    prepared = await asyncio.to_thread(
        hostns.prepare, host_cluster.client(), f"vcluster-{uuid.uuid4().hex[:8]}", name
    )
    await asyncio.to_thread(coredns.apply, virtual_cluster.client(), [coredns.dns_service()])
    return Stack(host_cluster, virtual_cluster, host, virtual, prepared.name, root, config,
                 api_ip=prepared.api_ip, name=name)


@pytest.fixture
def config() -> Obj:
    """Override in a test module to run the syncer with other sync rules."""
    return sync_config()


@pytest.fixture
async def stack(
    host_cluster: HostCluster, virtual_cluster: VirtualControlPlane, connect: ClientFactory,
    tmp_path: Path, config: Obj,
) -> AsyncIterator[Stack]:
    host, virtual = await connect(host_cluster), await connect(virtual_cluster)
    s = await open_stack(host_cluster, virtual_cluster, host, virtual, tmp_path, config)
    yield s
    for proc in s.syncers:
        untrack(proc)

"""The two ways a virtual cluster runs, behind one set of life-cycle calls.

- ``local``: :class:`syncer.local.vcluster.LocalVCluster`, control plane and
  syncer as processes on this machine;
- ``helm``: :class:`syncer.cli.chart.HelmRelease`, the chart installed into
  the host namespace.

The CLI's commands call only what :class:`VirtualCluster` names, so every
command works for both.
"""

from __future__ import annotations

from typing import Any, Protocol

from syncer.cli.chart import HelmRelease
from syncer.cli.state import VClusterRecord
from syncer.local.vcluster import LocalVCluster

DRIVERS = ("local", "helm")


class VirtualCluster(Protocol):
    def kill(self) -> None: ...

    def resume(self) -> None: ...

    def problems(self) -> list[str]: ...

    def delete_host_pods(self) -> None: ...

    def cleanup_host(self, keep_namespace: bool) -> None: ...

    def kubeconfig(self) -> dict[str, Any]: ...

    def record(self) -> dict[str, Any]: ...

    def upgrade(self, version: str, config_changed: bool) -> None: ...


def marker(record: VClusterRecord) -> str:
    """The ``VCSYNC_CLUSTER`` value of a local virtual cluster's processes."""
    return f"vcluster:{record.directory}"


def handle(record: VClusterRecord) -> VirtualCluster:
    if record.driver == "helm":
        return HelmRelease(record.name, record.namespace, record.directory,
                           int(record.plane.get("replicas", 1)))
    return local(record)


def local(record: VClusterRecord) -> LocalVCluster:
    """The handle of a local driver's cluster (snapshots need more than the protocol)."""
    return LocalVCluster.restore(
        record.name, record.namespace, record.directory, record.kubernetes_version,
        marker(record), record.plane, record.syncer)

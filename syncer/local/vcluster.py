"""A virtual cluster run by the ``local`` driver: control plane and syncer on this machine.

The pieces: the host namespace with the Service fronting the virtual API
(``syncer.local.hostns``), a :class:`VirtualControlPlane` (kine/SQLite, so
its state survives pause/resume), CoreDNS inside the virtual cluster, and
``vcsync run`` as a background process talking to the host through a
self-contained copy of the host context's kubeconfig.

Every process carries ``VCSYNC_CLUSTER=<marker>`` so that deletion finds
them even when the recorded pids are stale (see :meth:`LocalVCluster.kill`).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from syncer.kube.blocking import BlockingClient
from syncer.local import coredns, hostns
from syncer.local.cluster import ControlPlane, VirtualControlPlane
from syncer.local.process import (
    CLUSTER_ENV,
    Component,
    LaunchError,
    background_owner,
    free_port,
    kill_all,
    pids_with_env,
    port_free,
)
from syncer.local.syncer_process import run_argv
from syncer.snapshot import kine
from syncer.snapshot.archive import copy_tree

SYNCER_READY_TIMEOUT = 60.0


def host_client(kubeconfig: Path, timeout: float = 10.0) -> BlockingClient:
    return BlockingClient.from_kubeconfig(yaml.safe_load(kubeconfig.read_text()), timeout)


@dataclass
class LocalVCluster:
    """Handles on one local virtual cluster; :meth:`record`/:meth:`restore` persist them."""

    name: str
    namespace: str
    root: Path
    kubernetes_version: str
    marker: str
    plane: VirtualControlPlane | None = None
    syncer: Component | None = None
    syncer_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    """The virtual API server's port: chosen where the user is (a forwarder may listen on it
    there), before the plane starts in the host's network namespace."""
    kubelet_port: int = field(default_factory=free_port)
    """The syncer's kubelet endpoint (127.0.0.1): the virtual Nodes' kubelet port."""
    metrics_api_port: int = field(default_factory=free_port)
    """The syncer's metrics API (127.0.0.1), which it registers in the virtual cluster."""
    api_ip: str = ""
    """ClusterIP of the host Service in front of the API (host pods dial it; it is in the
    serving certificate)."""

    @property
    def host_kubeconfig(self) -> Path:
        return self.root / "host.kubeconfig"

    @property
    def config_file(self) -> Path:
        """The syncer's ``--config`` (the CLI writes what the chart renders from the values)."""
        return self.root / "syncer.yaml"

    @property
    def owner(self) -> str:
        return background_owner()

    # -- creation steps (the CLI shows each with its elapsed time) -------------

    def prepare_host(self) -> None:
        self.api_ip = hostns.prepare(
            host_client(self.host_kubeconfig), self.namespace, self.name).api_ip

    def start_plane(self, restored: bool = False) -> None:
        """Start the control plane; ``restored``: on the store and PKI that
        :meth:`install_snapshot` put in place, not on new ones."""
        self.plane = VirtualControlPlane(
            name=self.name, root=self.root / "virtual",
            kubernetes_version=self.kubernetes_version, die_with_parent=False,
            owner=self.owner, env={CLUSTER_ENV: self.marker},
            extra_ips=[self.api_ip] if self.api_ip else [], keep_pki=restored,
            ports={"apiserver": self.api_port},
        )
        self.plane.start()

    def apply_dns(self) -> None:
        coredns.apply(self._plane().client())

    def start_syncer(self) -> None:
        self.syncer = Component(
            name="vcsync", argv=self._syncer_argv(), log=self.root / "logs" / "vcsync.log",
            owner=self.owner, die_with_parent=False, env={CLUSTER_ENV: self.marker},
        )
        self.syncer.start()
        self.wait_syncer()

    def wait_syncer(self, timeout: float = SYNCER_READY_TIMEOUT) -> None:
        """Wait for ``/readyz``: every informer synced, leader (if elected) chosen."""
        self._syncer().wait_http(f"http://127.0.0.1:{self.syncer_port}/readyz", timeout)

    # -- life cycle ------------------------------------------------------------

    def stop(self) -> None:
        """Syncer first (it must not see a half-stopped API), then the control plane."""
        if self.syncer is not None:
            self.syncer.stop()
        if self.plane is not None:
            self.plane.stop()

    def resume(self) -> None:
        for port in (self.syncer_port, self.kubelet_port, self.metrics_api_port):
            if port and not port_free(port):
                raise LaunchError(f"port {port} of vcsync run (virtual cluster "
                                  f"{self.name!r}) is in use by another process")
        try:
            self._plane().resume()
            self._syncer().start()
            self.wait_syncer()
        except BaseException:
            self.stop()
            raise

    def upgrade(self, version: str, config_changed: bool) -> None:
        """Restart what changed, on the same store, certificates, tokens and ports: a new
        ``version`` restarts the control plane on its binaries (and the syncer, which must
        not see it half-stopped); a changed syncer config (already written) the syncer
        alone. Host pods keep running throughout."""
        if version != self.kubernetes_version:
            self.stop()
            self._plane().use_version(version)
            self.kubernetes_version = version
            self.resume()
        elif config_changed:
            self._syncer().stop()
            self._syncer().start()
            self.wait_syncer()

    def kill(self) -> None:
        """Stop whatever still runs, found by marker (recorded pids may be stale)."""
        self.stop()
        kill_all(pids_with_env(CLUSTER_ENV, self.marker))

    def problems(self) -> list[str]:
        """Components that should run but do not (empty: healthy)."""
        dead = self._plane().dead_components()
        if not self._syncer().running():
            dead.append("vcsync")
        return dead

    def delete_host_pods(self) -> None:
        hostns.delete_pods(host_client(self.host_kubeconfig), self.namespace, self.name)

    def cleanup_host(self, keep_namespace: bool) -> None:
        hostns.cleanup(host_client(self.host_kubeconfig), self.namespace, self.name,
                       keep_namespace)

    def kubeconfig(self) -> dict[str, Any]:
        """The virtual cluster's admin kubeconfig (one context, named by the launcher)."""
        return self._plane().kubeconfig_dict()

    # -- snapshots ----------------------------------------------------------------

    @property
    def store_file(self) -> Path:
        return self.root / "virtual" / "state.db"

    @property
    def pki_directory(self) -> Path:
        return self.root / "virtual" / "pki"

    def stage_snapshot(self, staging: Path) -> kine.StoreInfo:
        """Write a snapshot's parts under ``staging``: a consistent copy of the store (taken
        while the cluster runs), the PKI, the values and the rendered syncer config."""
        info = kine.backup(self.store_file, staging / kine.STORE_FILE)
        copy_tree(self.pki_directory, staging / "pki")
        (staging / "config").mkdir(parents=True, exist_ok=True)
        for name in ("values.yaml", "syncer.yaml"):
            if (self.root / name).is_file():
                shutil.copyfile(self.root / name, staging / "config" / name)
        return info

    def install_snapshot(self, store: Path, pki: Path) -> None:
        """Move a verified snapshot's store and PKI (staged under the root, so on this
        filesystem) to where the stopped control plane reads them.

        Idempotent from fresh staged files: a restore killed anywhere in here
        is completed by running it again.
        """
        self.store_file.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("-wal", "-shm", "-journal"):  # the old store's; they would corrupt it
            Path(f"{self.store_file}{suffix}").unlink(missing_ok=True)
        os.replace(store, self.store_file)
        old = self.pki_directory.with_name("pki.old")
        shutil.rmtree(old, ignore_errors=True)
        if self.pki_directory.exists():
            self.pki_directory.rename(old)
        pki.rename(self.pki_directory)
        shutil.rmtree(old, ignore_errors=True)

    def adopt_restored_pki(self) -> None:
        """A stopped plane takes the installed PKI (its serving certificate re-issued for
        this cluster's API Service) before :meth:`resume`."""
        plane = self._plane()
        plane.extra_ips = [hostns.api_ip(host_client(self.host_kubeconfig), self.namespace,
                                         self.name)]
        plane.adopt_pki()

    # -- persistence -------------------------------------------------------------

    def record(self) -> dict[str, Any]:
        syncer = self._syncer()
        return {
            "plane": self._plane().record(),
            "syncer": {"argv": syncer.argv, "log": str(syncer.log), "pid": syncer.pid,
                       "port": self.syncer_port, "kubeletPort": self.kubelet_port,
                       "metricsApiPort": self.metrics_api_port},
        }

    @classmethod
    def restore(cls, name: str, namespace: str, root: Path, version: str, marker: str,
                plane: dict[str, Any], syncer: dict[str, Any]) -> LocalVCluster:
        restored = ControlPlane.restore(plane)
        if not isinstance(restored, VirtualControlPlane):
            raise LaunchError(f"state of virtual cluster {name} names a {restored.kind} plane")
        argv = list(syncer["argv"])
        if not any(a.startswith("--kubelet-address=") for a in argv):
            argv.append("--kubelet-address=off")  # recorded before the endpoint existed
        if not any(a.startswith("--metrics-api-port=") for a in argv):
            argv.append("--metrics-api-port=0")  # recorded before the metrics API existed
        component = Component(
            name="vcsync", argv=argv, log=Path(syncer["log"]), owner=restored.owner,
            die_with_parent=False, env={CLUSTER_ENV: marker}, pid=int(syncer["pid"]),
        )
        return cls(name, namespace, root, version, marker, restored, component,
                   int(syncer["port"]), int(restored.ports.get("apiserver", 0)),
                   int(syncer.get("kubeletPort", 0)), int(syncer.get("metricsApiPort", 0)))

    # -- internals -----------------------------------------------------------------

    def _syncer_argv(self) -> list[str]:
        config = self.config_file if self.config_file.exists() else None
        return run_argv(self.name, self.namespace, self._plane(), self.host_kubeconfig,
                        self.syncer_port, config, self.kubelet_port, self.metrics_api_port)

    def _plane(self) -> VirtualControlPlane:
        if self.plane is None:
            raise LaunchError(f"virtual cluster {self.name} has no control plane yet")
        return self.plane

    def _syncer(self) -> Component:
        if self.syncer is None:
            raise LaunchError(f"virtual cluster {self.name} has no syncer yet")
        return self.syncer

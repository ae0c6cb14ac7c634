"""``vcsync run`` as a local child process, next to local control planes.

Why a real process and not an in-test coroutine: restarts, SIGKILL, SIGTERM
and leader hand-over are properties of the process, and the benchmarks
measure its CPU and memory from outside.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from syncer.local.cluster import ControlPlane
from syncer.local.pki import load_pki
from syncer.local.process import Component, LaunchError, free_port


def run_argv(name: str, host_namespace: str, virtual: ControlPlane, host_kubeconfig: Path,
             port: int, config: Path | None, kubelet_port: int,
             metrics_api_port: int) -> list[str]:
    """``vcsync run`` for one virtual cluster, health endpoints on 127.0.0.1:``port``, the
    kubelet endpoint on 127.0.0.1:``kubelet_port`` and the metrics API on
    127.0.0.1:``metrics_api_port`` (both trusting ``virtual``'s kubelet CA)."""
    pki = virtual.pki if virtual.pki is not None else load_pki(virtual.root / "pki")
    args = [
        sys.executable, "-m", "syncer.cli.main", "run",
        f"--name={name}",
        f"--host-namespace={host_namespace}",
        f"--virtual-kubeconfig={virtual.kubeconfig}",
        f"--host-kubeconfig={host_kubeconfig}",
        f"--health-address=127.0.0.1:{port}",
        f"--kubelet-address=127.0.0.1:{kubelet_port}",
        f"--kubelet-ca-cert={pki.kubelet_ca_cert}",
        f"--kubelet-ca-key={pki.kubelet_ca_key}",
        f"--metrics-api-port={metrics_api_port}",
    ]
    return args + ([f"--config={config}"] if config is not None else [])


@dataclass
class SyncerProcess:
    """One ``vcsync run`` for ``virtual`` on ``host`` in ``host_namespace``."""

    name: str
    host: ControlPlane
    virtual: ControlPlane
    host_namespace: str
    root: Path
    config: Path | None = None
    extra_args: list[str] = field(default_factory=list)
    identity: str = ""
    owner: str = ""
    die_with_parent: bool = True
    port: int = field(default_factory=free_port)
    kubelet_port: int = field(default_factory=free_port)
    """Replicas of one virtual cluster share it (the endpoint binds with SO_REUSEPORT), as
    replicas in pods of their own each have the same address."""
    metrics_api_port: int = field(default_factory=free_port)
    """The metrics API's port (shared by replicas like the kubelet port)."""
    component: Component | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        args = run_argv(self.name, self.host_namespace, self.virtual, self.host.kubeconfig,
                        self.port, self.config, self.kubelet_port, self.metrics_api_port)
        if self.identity:
            args.append(f"--identity={self.identity}")
        return args + self.extra_args

    def start(self, wait_ready: bool = True, timeout: float = 60.0) -> SyncerProcess:
        self.component = Component(
            name=f"vcsync-{self.identity or self.name}",
            argv=self.argv(),
            log=self.root / f"vcsync-{self.identity or self.name}.log",
            owner=self.owner or self.host.owner,
            die_with_parent=self.die_with_parent,
        )
        self.component.start()
        if wait_ready:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        self._component().wait_http(f"{self.url}/readyz", timeout)

    def _component(self) -> Component:
        if self.component is None:
            raise LaunchError(f"vcsync {self.name} was never started")
        return self.component

    def stop(self, timeout: float = 30.0) -> None:
        if self.component is not None:
            self.component.stop(timeout)

    def kill(self) -> None:
        self._component().kill()

    def logs(self, lines: int = 30) -> str:
        """The tail of the syncer's log, for failure reports."""
        if self.component is None:
            return f"--- vcsync {self.name}: never started ---"
        return f"--- vcsync {self.name} ({self.component.log}) ---\n{self.component.tail(lines)}"

    def exit_code(self) -> int | None:
        proc = self._component().proc
        return None if proc is None else proc.poll()

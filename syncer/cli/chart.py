"""The Helm chart from the CLI: render the syncer config, install and remove releases.

Why the local driver renders the chart too: values files and ``--set`` mean
the same for both drivers only if one piece of code turns values into the
syncer's config; that piece is the chart (``helm template``), which also
checks the values against ``values.schema.json``.

The ``helm`` driver's virtual cluster is a release named after it in its
host namespace; :class:`HelmRelease` offers the same life-cycle calls as
:class:`syncer.local.vcluster.LocalVCluster` (the CLI's commands take
either).
"""

from __future__ import annotations

import base64
import subprocess
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

import syncer
from contract.resources import SECRETS
from syncer.cli import output, portforward
from syncer.cli.errors import CliError
from syncer.kube.blocking import BlockingError
from syncer.local import binaries, hostns
from syncer.local.process import LaunchError, wait_for
from syncer.local.vcluster import host_client

INSTALL_TIMEOUT = "5m"
PROGRESS_EVERY = 5.0
"""Seconds between looks at the pods while ``helm install --wait`` runs."""
SNAPSHOT_PORT = 8081
"""The syncer's snapshot endpoint in the pod (templates/statefulset.yaml)."""
READY_TIMEOUT = 300.0


def chart_dir() -> Path:
    """The chart shipped in the wheel, else the one of this source checkout."""
    for candidate in (Path(syncer.__file__).parent / "_chart" / "vcsync",
                      Path(syncer.__file__).resolve().parents[1] / "helm" / "vcsync"):
        if (candidate / "Chart.yaml").is_file():
            return candidate
    raise CliError("the Helm chart helm/vcsync is not installed with this vcsync")


def helm(*args: str, timeout: float = 360, progress: Callable[[], str] | None = None) -> str:
    """Run the pinned helm; its own message becomes the error on failure.

    ``progress`` (for ``--wait``, silent up to its timeout): called every
    :data:`PROGRESS_EVERY` seconds while helm runs; what it says is printed when
    it changed, so a user sees pods being scheduled, pulled and started.
    """
    try:
        argv = [str(binaries.binary_path("helm")), *args]
    except binaries.BinaryMissing as exc:
        raise CliError(f"helm is missing: {exc}") from exc
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        out, err = _communicate(proc, timeout, progress or (lambda: ""))
    if proc.returncode != 0:
        detail = err.strip().replace("\n", " ")
        raise CliError(f"helm {args[0]} failed: {detail}")
    return out


def _communicate(proc: subprocess.Popen[str], timeout: float,
                 progress: Callable[[], str]) -> tuple[str, str]:
    start = time.monotonic()
    said = ""
    while True:
        left = timeout - (time.monotonic() - start)
        try:
            return proc.communicate(timeout=max(min(PROGRESS_EVERY, left), 0.1))
        except subprocess.TimeoutExpired:
            if time.monotonic() - start >= timeout:
                proc.kill()
                proc.communicate()
                raise CliError(f"helm did not finish within {timeout:g}s") from None
        try:
            now = progress()
        except (BlockingError, CliError) as exc:
            now = f"(cannot tell: {exc})"
        if now and now != said:
            output.info(f"    {time.monotonic() - start:5.0f}s: {now}")
            said = now


def render_syncer_config(name: str, namespace: str, values_file: Path) -> dict[str, Any]:
    """The ``vcsync run --config`` file the chart renders for these values."""
    out = helm("template", name, str(chart_dir()), "--namespace", namespace,
               "--values", str(values_file), "--show-only", "templates/configmaps.yaml")
    for doc in yaml.safe_load_all(out):
        if doc and doc.get("metadata", {}).get("name") == f"{name}-config":
            config: dict[str, Any] = yaml.safe_load(doc["data"]["config.yaml"])
            return config
    raise CliError(f"the chart rendered no ConfigMap {name}-config")


@dataclass
class HelmRelease:
    """A virtual cluster installed as a Helm release (driver ``helm``)."""

    name: str
    namespace: str
    root: Path
    replicas: int = 1
    """Control-plane replicas to restore on resume (remembered when pausing)."""

    @property
    def host_kubeconfig(self) -> Path:
        return self.root / "host.kubeconfig"

    @property
    def values_file(self) -> Path:
        return self.root / "values.yaml"

    def install(self) -> None:
        """``helm install --wait``: returns once the control-plane pods are Ready."""
        helm("install", self.name, str(chart_dir()), "--create-namespace",
             "--values", str(self.values_file), "--wait", "--timeout", INSTALL_TIMEOUT,
             *self._host_flags(), progress=self.pod_progress)

    def pod_progress(self) -> str:
        """The control-plane pods in a line: phase, why they wait, containers ready."""
        query = urllib.parse.urlencode(
            {"labelSelector": f"app.kubernetes.io/instance={self.name}"})
        pods = host_client(self.host_kubeconfig).json(
            "GET", f"/api/v1/namespaces/{self.namespace}/pods?{query}").get("items") or []
        if not pods:
            return "no control-plane pod yet"
        return "; ".join(_pod_line(p) for p in pods)

    def upgrade(self, version: str, config_changed: bool) -> None:
        """``helm upgrade --wait`` with the values already written: the StatefulSet rolls
        when its pod template changed (a new version, new flags or config), keeping its
        volume (the store) and the certificates the chart keeps across upgrades."""
        helm("upgrade", self.name, str(chart_dir()), "--values", str(self.values_file),
             "--wait", "--timeout", INSTALL_TIMEOUT, *self._host_flags(),
             progress=self.pod_progress)

    def kubeconfig(self) -> dict[str, Any]:
        """The kubeconfig the chart stored in Secret ``vc-NAME`` (key ``config``)."""
        secret = self._kubeconfig_secret()
        config: dict[str, Any] = yaml.safe_load(base64.b64decode(secret["data"]["config"]))
        return config

    def _kubeconfig_secret(self) -> dict[str, Any]:
        path = SECRETS.path(self.namespace, f"vc-{self.name}")
        try:
            secret: dict[str, Any] = host_client(self.host_kubeconfig).json("GET", path)
        except BlockingError as exc:
            raise CliError(f"cannot read the kubeconfig Secret vc-{self.name}: {exc}") from exc
        return secret

    # -- the life-cycle calls the CLI's commands make -------------------------------

    def kill(self) -> None:
        """Stop the control plane and syncer: the StatefulSet goes to 0 replicas."""
        current = self._scale(0)
        if current:
            self.replicas = current

    def resume(self) -> None:
        self._helm("status", self.name)  # the release must still exist
        self._scale(self.replicas)
        if not wait_for(lambda: not self.problems(), READY_TIMEOUT, interval=1.0):
            raise LaunchError(f"statefulset {self.namespace}/{self.name} not ready after "
                              f"{READY_TIMEOUT:.0f}s")

    def problems(self) -> list[str]:
        ready = self._statefulset().get("status", {}).get("readyReplicas") or 0
        return [] if ready >= 1 else [f"statefulset/{self.name}"]

    def delete_host_pods(self) -> None:
        hostns.delete_pods(host_client(self.host_kubeconfig), self.namespace, self.name)

    def cleanup_host(self, keep_namespace: bool) -> None:
        try:
            self._helm("uninstall", self.name, "--wait", "--ignore-not-found")
        except CliError as exc:
            raise BlockingError(str(exc)) from exc
        hostns.cleanup(host_client(self.host_kubeconfig), self.namespace, self.name,
                       keep_namespace)

    def record(self) -> dict[str, Any]:
        return {"plane": {"replicas": self.replicas}, "syncer": {}}

    def fetch_snapshot(self, out: Path) -> None:
        """The archive the syncer of pod ``NAME-0`` builds (``GET /snapshot`` on the pod's
        loopback, see syncer.snapshot.endpoint), through ``kubectl port-forward`` with the
        virtual cluster's admin token."""
        token = base64.b64decode(self._kubeconfig_secret()["data"]["token"]).decode()
        with portforward.forward(self.host_kubeconfig, self.namespace, f"{self.name}-0",
                                 SNAPSHOT_PORT) as port:
            portforward.download(f"http://127.0.0.1:{port}/snapshot", token, out)

    # -- internals ---------------------------------------------------------------------

    def _helm(self, *args: str) -> str:
        return helm(*args, *self._host_flags())

    def _host_flags(self) -> tuple[str, ...]:
        return "--namespace", self.namespace, "--kubeconfig", str(self.host_kubeconfig)

    def _statefulset(self) -> dict[str, Any]:
        status, body = host_client(self.host_kubeconfig).request("GET", self._sts_path())
        found: dict[str, Any] = orjson.loads(body) if status == 200 else {}
        return found

    def _sts_path(self, subresource: str = "") -> str:
        base = f"/apis/apps/v1/namespaces/{self.namespace}/statefulsets/{self.name}"
        return f"{base}/{subresource}" if subresource else base

    def _scale(self, replicas: int) -> int:
        """Set the replicas; return the previous count (0 when the StatefulSet is gone)."""
        client = host_client(self.host_kubeconfig)
        status, body = client.request("GET", self._sts_path("scale"))
        if status != 200:
            return 0
        scale = orjson.loads(body)
        previous = int(scale["spec"].get("replicas") or 0)
        scale["spec"]["replicas"] = replicas
        client.json("PUT", self._sts_path("scale"), scale)
        return previous


def _pod_line(pod: dict[str, Any]) -> str:
    status = pod.get("status") or {}
    containers = status.get("containerStatuses") or []
    ready = sum(1 for c in containers if c.get("ready"))
    waiting = sorted({str(c["state"]["waiting"].get("reason"))
                      for c in containers if (c.get("state") or {}).get("waiting")})
    line = f"pod {pod['metadata']['name']} {status.get('phase', 'Unknown')}"
    if containers:
        line += f", {ready}/{len(containers)} containers ready"
    return line + (f" ({', '.join(waiting)})" if waiting else "")

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

import syncer
from contract.resources import SECRETS
from syncer.cli import portforward
from syncer.cli.errors import CliError
from syncer.kube.blocking import BlockingError
from syncer.local import binaries, hostns
from syncer.local.process import LaunchError, wait_for
from syncer.local.vcluster import host_client

INSTALL_TIMEOUT = "5m"
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


def helm(*args: str, timeout: float = 360) -> str:
    """Run the pinned helm; its own message becomes the error on failure."""
    try:
        argv = [str(binaries.binary_path("helm")), *args]
    except binaries.BinaryMissing as exc:
        raise CliError(f"helm is missing: {exc}") from exc
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        detail = proc.stderr.strip().replace("\n", " ")
        raise CliError(f"helm {args[0]} failed: {detail}")
    return proc.stdout


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
        self._helm("install", self.name, str(chart_dir()), "--create-namespace",
                   "--values", str(self.values_file), "--wait", "--timeout", INSTALL_TIMEOUT)

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
        return helm(*args, "--namespace", self.namespace,
                    "--kubeconfig", str(self.host_kubeconfig))

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

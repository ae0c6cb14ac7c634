"""Run the chart's control-plane pod as local processes: a tiny kubelet for one rendered pod.

Why: on kwok nodes the StatefulSet's pod is only scheduled and marked
Running; no container runs. To show that what the chart renders really works
(flags, certificates, tokens, kubeconfigs, scripts, syncer config, RBAC), this
takes the pod spec *as rendered*, materialises its volumes from the rendered
Secrets and ConfigMaps into directories, rewrites container paths to those
directories, expands ``$(VAR)`` from the container's env as Kubernetes does,
moves every port to a free loopback port, and runs each container's command
with the locally built binary of the same component (kube-apiserver, kine,
...; the vcsync image's commands with this repository's Python).

Deliberate differences from a kubelet, all about addresses: everything binds
to 127.0.0.1 (the network rule), ``--in-cluster`` becomes a kubeconfig for the
pod's ServiceAccount token, and the Service's docker-link variable is set
from the installed Service.
"""

from __future__ import annotations

import base64
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from contract.resources import Obj
from syncer.kube.blocking import BlockingClient, probe
from syncer.local import binaries
from syncer.local.process import Component, LaunchError, free_port, wait_for

_BINARIES = ("kube-apiserver", "kube-controller-manager", "kine", "etcd")


@dataclass
class LocalPod:
    """One replica of the rendered StatefulSet, run locally."""

    objects: Sequence[Obj]
    release: str
    root: Path
    owner: str
    host_kubeconfig: Path
    """Replaces ``--in-cluster``: the host credentials the syncer gets (the pod's SA token)."""
    service_links: dict[str, str] = field(default_factory=dict)
    kubernetes_version: str = binaries.KUBERNETES_VERSION
    ports: dict[int, int] = field(default_factory=dict)
    components: list[Component] = field(default_factory=list)

    def __post_init__(self) -> None:
        for port in (6443, 2379, 2380, 10257, 8080, 8081, 10250, 9443):
            self.ports.setdefault(port, free_port())

    # -- what was rendered ------------------------------------------------

    @property
    def pod_name(self) -> str:
        return f"{self.release}-0"

    def spec(self) -> Obj:
        sts = next(o for o in self.objects
                   if o["kind"] == "StatefulSet" and o["metadata"]["name"] == self.release)
        spec: Obj = sts["spec"]["template"]["spec"]
        return spec

    def _object(self, kind: str, name: str) -> Obj:
        return next(o for o in self.objects
                    if o["kind"] == kind and o["metadata"]["name"] == name)

    @property
    def api_url(self) -> str:
        return f"https://127.0.0.1:{self.ports[6443]}"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.ports[8080]}"

    # -- volumes ----------------------------------------------------------

    def volume(self, name: str) -> Path:
        return self.root / "volumes" / name

    def materialise_volumes(self) -> None:
        """Secret and ConfigMap volumes become files; emptyDirs empty directories."""
        for vol in self.spec()["volumes"]:
            target = self.volume(vol["name"])
            target.mkdir(parents=True, exist_ok=True)
            if "secret" in vol:
                data = {k: base64.b64decode(v) for k, v in
                        self._object("Secret", vol["secret"]["secretName"])["data"].items()}
            elif "configMap" in vol:
                data = {k: v.encode() for k, v in
                        self._object("ConfigMap", vol["configMap"]["name"])["data"].items()}
            else:
                continue
            for key, content in data.items():
                if key.endswith(".kubeconfig"):
                    content = self._rewrite(content.decode()).encode()
                (target / key).write_bytes(content)
        # A persistent volume claim of the StatefulSet: a directory as well.
        self.volume("data").mkdir(parents=True, exist_ok=True)

    # -- commands ---------------------------------------------------------

    def _rewrite(self, text: str) -> str:
        """Container ports to free loopback ports; every listen address to 127.0.0.1."""
        for port, local in sorted(self.ports.items(), reverse=True):
            text = re.sub(rf"(?<=:){port}\b|(?<=-port=){port}\b", str(local), text)
        return text.replace("0.0.0.0", "127.0.0.1")

    def argv(self, container: Obj) -> list[str]:
        command = list(container.get("command") or []) + list(container.get("args") or [])
        if not container.get("command"):  # the vcsync image's ENTRYPOINT: tini -- vcsync run
            command = ["vcsync", "run", *command]
        if command[:2] == ["tini", "--"]:
            command = command[2:]
        env = self.env(container)
        mounts = sorted((m["mountPath"] for m in container.get("volumeMounts", [])),
                        key=len, reverse=True)
        by_path = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        pattern = re.compile(r"(^|=|//)(" + "|".join(map(re.escape, mounts)) + r")(?=/|$|\?)")
        result = []
        for arg in command:
            arg = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), arg)
            if mounts:
                arg = pattern.sub(lambda m: m.group(1) + str(self.volume(by_path[m.group(2)])),
                                  arg)
            if arg == "--in-cluster":
                arg = f"--host-kubeconfig={self.host_kubeconfig}"
            result.append(self._rewrite(arg))
        head = Path(result[0]).name
        if head in _BINARIES:
            version = self.kubernetes_version if head.startswith("kube-") else None
            result[0] = str(binaries.binary_path(head, version))
        elif head == "python":
            result[0] = sys.executable
        elif head == "vcsync":
            result[:1] = [sys.executable, "-m", "syncer.cli.main"]
        return result

    def env(self, container: Obj) -> dict[str, str]:
        """The container's environment as a kubelet would give it (fieldRefs of this pod)."""
        fields = {"metadata.name": self.pod_name, "status.podIP": "127.0.0.1",
                  "metadata.namespace": "default"}
        env = dict(self.service_links)
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = item["value"]
            elif "fieldRef" in item.get("valueFrom", {}):
                env[item["name"]] = fields[item["valueFrom"]["fieldRef"]["fieldPath"]]
        # `vcsync` (exec'd by start.py) and `python` from this repository's environment.
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
        return env

    def container(self, name: str) -> Obj:
        spec = self.spec()
        return next(c for c in [*spec.get("initContainers", []), *spec["containers"]]
                    if c["name"] == name)

    # -- running ----------------------------------------------------------

    def run_init_containers(self) -> None:
        for container in self.spec().get("initContainers", []):
            proc = subprocess.run(self.argv(container), env={**os.environ,
                                  **self.env(container)}, capture_output=True, text=True,
                                  timeout=120, check=False)
            if proc.returncode != 0:
                raise LaunchError(f"init container {container['name']} failed:\n{proc.stderr}")

    def start(self, name: str, timeout: float = 90.0) -> Component:
        container = self.container(name)
        component = Component(name=f"{self.release}-{name}", argv=self.argv(container),
                              log=self.root / "logs" / f"{name}.log", owner=self.owner,
                              env=self.env(container))
        self.components.append(component)
        component.start()
        check = self._readiness(name)

        def ready() -> bool:
            component.ensure_running()  # a container that died fails at once, with its log
            return check()

        if not wait_for(ready, timeout, interval=0.2):
            raise LaunchError(f"container {name} not ready after {timeout:.0f}s:\n"
                              f"{component.tail(20)}")
        return component

    def _readiness(self, name: str) -> Callable[[], bool]:
        if name == "kube-apiserver":
            return lambda: probe(f"{self.api_url}/readyz") == 200
        if name == "kube-controller-manager":
            return lambda: probe(f"https://127.0.0.1:{self.ports[10257]}/healthz") == 200
        if name == "syncer":
            return lambda: probe(f"{self.health_url}/readyz") == 200
        port = self.ports[2379]
        return lambda: _tcp_open(port)

    def admin(self) -> BlockingClient:
        """The user's kubeconfig (the kubeconfig Secret) pointed at the local API server, as
        after ``kubectl port-forward`` with ``--server``."""
        import yaml

        secret = self._object("Secret", f"vc-{self.release}")
        config = yaml.safe_load(base64.b64decode(secret["data"]["config"]))
        config["clusters"][0]["cluster"]["server"] = self.api_url
        return BlockingClient.from_kubeconfig(config)

    # -- the Running protocol of tests.conftest ---------------------------

    def logs(self, lines: int = 30) -> str:
        return "\n".join(f"--- chart pod {c.name} ({c.log}) ---\n{c.tail(lines)}"
                         for c in self.components)

    def stop(self) -> None:
        for component in reversed(self.components):
            component.stop()


def _tcp_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0

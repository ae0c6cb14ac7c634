"""Real control planes as local processes: a host cluster and virtual control planes.

Shapes (see ``docs/control-planes.md``):

- :class:`HostCluster`: etcd + kube-apiserver + kube-controller-manager +
  kube-scheduler + kwok + metrics-server, with N fake nodes that go Ready and
  run pods, and ``metrics.k8s.io`` served from kwok's simulated figures.
- :class:`VirtualControlPlane`: kine (SQLite or memory) + kube-apiserver +
  kube-controller-manager. No scheduler and no kubelets: the syncer binds its
  pods after the host scheduled their copies.

Every component binds to 127.0.0.1 on a free port; nothing dials elsewhere.
Several clusters run side by side (each has its own directory and ports).

Invariant: after :meth:`ControlPlane.stop` returns (and also when ``start``
raised), no process of that control plane is alive.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml

from syncer.kube.blocking import BlockingClient, probe
from syncer.kubelet.tls import FRONT_PROXY_COMMON_NAME
from syncer.local import binaries, footprint, kwok, network
from syncer.local.pki import Pki, generate_pki, load_pki, reissue_serving
from syncer.local.process import Component, LaunchError, free_port, port_free, wait_for
from syncer.metricsapi import apiservice

DEFAULT_SERVICE_CIDR = "10.96.0.0/16"
# kine applies its defaults only to its default path; an explicit file needs them
# spelled out, or concurrent start-up queries fail with SQLITE_BUSY.
_SQLITE_PARAMS = (
    "_journal_mode=WAL&_busy_timeout=30000&_synchronous=NORMAL&_txlock=immediate"
    "&_stmt_cache_size=20&cache=shared"
)
_PORT_OF = {"etcd": "store", "kine": "store", "kube-apiserver": "apiserver",
            "kube-controller-manager": "controller-manager", "kube-scheduler": "scheduler"}
"""Which entry of ``ports`` each component listens on (kwok's key is its name)."""
_ADMIN = "vcsync-admin"
_MASTERS = ("system:masters",)
_METRICS_SERVER = "vcsync-metrics-server"
_RESOURCE_METRICS_PATH = "metrics.k8s.io/resource-metrics-path"
"""Node annotation metrics-server (>= 0.7) scrapes instead of ``/metrics/resource``."""


@dataclass
class ControlPlane:
    """What the two shapes share: a store, an API server and a controller-manager."""

    name: str
    root: Path
    kubernetes_version: str = binaries.KUBERNETES_VERSION
    service_cidr: str = DEFAULT_SERVICE_CIDR
    die_with_parent: bool = True
    owner: str = field(default_factory=lambda: os.environ.get("VCSYNC_OWNER", uuid.uuid4().hex))
    ready_timeout: float = 90.0
    apiserver_args: list[str] = field(default_factory=list)
    """Extra kube-apiserver flags (e.g. ``--watch-cache=false`` to force 410s in tests)."""
    store_args: list[str] = field(default_factory=list)
    """Extra flags of the store (etcd or kine), e.g. kine's ``--compact-min-retain=0``."""
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment of every component (the CLI marks its clusters' processes)."""
    extra_ips: list[str] = field(default_factory=list)
    """More IPs for the serving certificate (the host API Service of a virtual cluster)."""
    keep_pki: bool = False
    """The root already holds a PKI (a restored snapshot's): keep its CA, keys and tokens,
    so every credential issued before the snapshot stays valid; see :meth:`adopt_pki`."""
    components: dict[str, Component] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    pki: Pki | None = None

    kind = "cluster"

    # -- public surface -------------------------------------------------

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def context(self) -> str:
        return f"vcsync-{self.kind}-{self.name}"

    def admin_token(self) -> str:
        return self._pki().identities[_ADMIN].token

    def client(self) -> BlockingClient:
        return BlockingClient(self.server, self._pki().ca_cert, self.admin_token())

    def start(self) -> Self:
        """Start every component in order and wait until each is ready."""
        try:
            self._prepare()
            for name, argv in self._plan():
                self._launch(name, argv)
            self._after_start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop components in reverse start order (API clients before the store)."""
        for component in reversed(list(self.components.values())):
            component.stop()

    def restart(self, name: str) -> None:
        """Stop one component and start it again with the same flags and ports."""
        component = self.components[name]
        component.stop()
        component.start()
        self._wait_ready(name)

    def record(self) -> dict[str, Any]:
        """What :meth:`restore` needs to manage this control plane from another process."""
        return {
            "kind": self.kind, "name": self.name, "root": str(self.root),
            "kubernetesVersion": self.kubernetes_version, "serviceCIDR": self.service_cidr,
            "owner": self.owner, "env": self.env, "ports": self.ports,
            "components": [
                {"name": c.name, "argv": c.argv, "log": str(c.log), "pid": c.pid, "env": c.env}
                for c in self.components.values()
            ],
        }

    @staticmethod
    def restore(record: dict[str, Any]) -> ControlPlane:
        """A handle on a control plane that :meth:`start` launched in the background.

        Its components keep their recorded pids (for :meth:`stop` and
        :meth:`running`), flags, ports and certificates (for :meth:`resume`).
        """
        shape: type[ControlPlane] = HostCluster if record["kind"] == "host" else (
            VirtualControlPlane)
        plane = shape(
            name=record["name"], root=Path(record["root"]),
            kubernetes_version=record["kubernetesVersion"], service_cidr=record["serviceCIDR"],
            die_with_parent=False, owner=record["owner"], env=dict(record["env"]),
            ports=dict(record["ports"]), pki=load_pki(Path(record["root"]) / "pki"),
        )
        for c in record["components"]:
            plane.components[c["name"]] = Component(
                name=c["name"], argv=list(c["argv"]), log=Path(c["log"]), owner=plane.owner,
                die_with_parent=False, env=dict(c.get("env", plane.env)), pid=int(c["pid"]),
            )
        return plane

    def use_version(self, version: str) -> None:
        """Run Kubernetes ``version`` from the next :meth:`resume` on: the stopped
        kube-* components get that version's binaries, with the same flags, store,
        certificates and ports (an in-place control plane upgrade)."""
        self.kubernetes_version = version
        for name, component in self.components.items():
            if name.startswith("kube"):
                component.argv = [self._bin(name), *component.argv[1:]]

    def resume(self) -> None:
        """Start the recorded components again, in order, with the same flags and ports.

        The ports are checked first: a readiness probe that finds *another*
        process listening on a component's port would pass and blame the
        next component instead.
        """
        for name in self.components:
            port = self.ports.get(_PORT_OF.get(name, name))
            if port is not None and not port_free(port):
                raise LaunchError(f"port {port} of {name} ({self.kind} {self.name!r}) is in "
                                  "use by another process")
        try:
            for name, component in self.components.items():
                component.start()
                self._wait_ready(name)
        except BaseException:
            self.stop()
            raise

    def dead_components(self) -> list[str]:
        """Components whose process is not running (all of them for a stopped plane)."""
        return [name for name, c in self.components.items() if not c.running()]

    def logs(self, lines: int = 30) -> str:
        """The tail of every component's log, for failure reports."""
        return "\n".join(
            f"--- {self.kind} {self.name}: {c.name} ({c.log}) ---\n{c.tail(lines)}"
            for c in self.components.values()
        )

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- shape-specific hooks -------------------------------------------

    def _store_plan(self) -> tuple[str, list[str]]:
        raise NotImplementedError

    def _extra_plan(self) -> list[tuple[str, list[str]]]:
        return []

    def _controllers(self) -> str:
        return "*"

    def _small_cluster_flags(self) -> list[str]:
        """kube-apiserver flags that keep an idle cluster cheap (virtual ones only)."""
        return []

    def _kubelet_flags(self) -> list[str]:
        """How kube-apiserver reaches kubelets: by InternalIP (kwok nodes' Hostname is
        their name, which nothing resolves)."""
        return ["--kubelet-preferred-address-types=InternalIP"]

    def _component_env(self, name: str) -> dict[str, str]:
        return self.env

    def _users(self) -> dict[str, tuple[str, ...]]:
        """Static-token users, each with a kubeconfig (the admin's is :attr:`kubeconfig`)."""
        return {
            _ADMIN: _MASTERS,
            "system:kube-controller-manager": _MASTERS,
            "system:kube-scheduler": _MASTERS,
            "vcsync-kwok": _MASTERS,
        }

    def _servers(self) -> dict[str, list[str]]:
        """Serving certificates of more components from the CA: file stem -> DNS names."""
        return {}

    def _after_start(self) -> None:
        """Wait for what a user's first command needs: the default ServiceAccount.

        Without it the ServiceAccount admission rejects every pod in
        ``default`` for the first second or two after start-up.
        """
        client = self.client()
        path = "/api/v1/namespaces/default/serviceaccounts/default"
        if not wait_for(lambda: client.request("GET", path)[0] == 200, self.ready_timeout):
            raise LaunchError(f"{self.kind} {self.name!r}: no default ServiceAccount after "
                              f"{self.ready_timeout:.0f}s; controller-manager log:\n"
                              f"{self.components['kube-controller-manager'].tail(15)}")

    # -- internals ------------------------------------------------------

    def _pki(self) -> Pki:
        if self.pki is None:
            raise LaunchError(f"{self.kind} {self.name} has not been started")
        return self.pki

    def _bin(self, component: str) -> str:
        version = self.kubernetes_version if component.startswith("kube") else None
        return str(binaries.binary_path(component, version))

    def _service_ip(self) -> str:
        return str(next(ipaddress.ip_network(self.service_cidr).hosts()))

    def adopt_pki(self) -> None:
        """Use the PKI under the root as it is (a restored snapshot's), with a serving
        certificate re-issued for this plane's IPs, and write the kubeconfigs from it."""
        self.pki = load_pki(self.root / "pki")
        reissue_serving(self.pki, [self._service_ip(), *self.extra_ips])
        self._write_kubeconfigs()

    def _prepare(self) -> None:
        for port in ("store", "peer", "apiserver", "controller-manager", "scheduler", "kwok"):
            self.ports.setdefault(port, free_port())
        if self.keep_pki:
            self.adopt_pki()
            return
        self.pki = generate_pki(self.root / "pki", self._service_ip(), self._users(),
                                self.extra_ips, self._servers())
        self._write_kubeconfigs()

    def _write_kubeconfigs(self) -> None:
        for user in self._pki().identities:
            path = self.kubeconfig if user == _ADMIN else (
                self.root / f"{user.split(':')[-1]}.kubeconfig")
            self._write_kubeconfig(path, user)

    def _write_kubeconfig(self, path: Path, user: str) -> None:
        path.write_text(yaml.safe_dump(self.kubeconfig_dict(user)))
        path.chmod(0o600)

    def kubeconfig_dict(self, user: str = _ADMIN) -> dict[str, Any]:
        """A kubeconfig with one cluster, user and context named :attr:`context`."""
        p = self._pki()
        ca = base64.b64encode(p.ca_pem()).decode()
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": self.context,
                 "cluster": {"server": self.server, "certificate-authority-data": ca}}
            ],
            "users": [{"name": self.context, "user": {"token": p.identities[user].token}}],
            "contexts": [
                {"name": self.context, "context": {"cluster": self.context, "user": self.context}}
            ],
            "current-context": self.context,
        }

    def _plan(self) -> list[tuple[str, list[str]]]:
        store, argv = self._store_plan()
        return [
            (store, [*argv, *self.store_args]),
            ("kube-apiserver", self._apiserver_argv()),
            ("kube-controller-manager", self._controller_manager_argv()),
            *self._extra_plan(),
        ]

    def _apiserver_argv(self) -> list[str]:
        p = self._pki()
        return [
            self._bin("kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{self.ports['store']}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.ports['apiserver']}",
            f"--tls-cert-file={p.serving_cert}",
            f"--tls-private-key-file={p.serving_key}",
            f"--client-ca-file={p.ca_cert}",
            # The aggregator's front proxy (metrics.k8s.io): its client certificate and the
            # CA that vouches for it, the kubelet CA (see syncer.local.pki).
            f"--proxy-client-cert-file={p.front_proxy_client_cert}",
            f"--proxy-client-key-file={p.front_proxy_client_key}",
            f"--requestheader-client-ca-file={p.kubelet_ca_cert}",
            f"--requestheader-allowed-names={FRONT_PROXY_COMMON_NAME}",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--token-auth-file={p.token_file}",
            "--authorization-mode=Node,RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={p.sa_pub}",
            f"--service-account-signing-key-file={p.sa_key}",
            f"--service-cluster-ip-range={self.service_cidr}",
            "--allow-privileged=true",
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            f"--cert-dir={self.root / 'pki'}",
            *self._kubelet_flags(),
            *self._small_cluster_flags(),
            *self.apiserver_args,
        ]

    def _component_flags(self, name: str, kubeconfig: Path) -> list[str]:
        return [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports[name]}",
            "--leader-elect=false",
            f"--cert-dir={self.root / name}",
        ]

    def _controller_manager_argv(self) -> list[str]:
        p = self._pki()
        flags = self._component_flags(
            "controller-manager", self.root / "kube-controller-manager.kubeconfig"
        )
        return [
            self._bin("kube-controller-manager"),
            *flags,
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={p.sa_key}",
            f"--root-ca-file={p.ca_cert}",
            f"--controllers={self._controllers()}",
            f"--service-cluster-ip-range={self.service_cidr}",
        ]

    def _launch(self, name: str, argv: list[str]) -> None:
        component = Component(
            name=name,
            argv=argv,
            log=self.root / "logs" / f"{name}.log",
            owner=self.owner,
            die_with_parent=self.die_with_parent,
            env=self._component_env(name),
        )
        self.components[name] = component
        component.start()
        self._wait_ready(name)

    def _wait_ready(self, name: str) -> None:
        component = self.components[name]
        check = self._readiness(name)

        def ready() -> bool:
            component.ensure_running()
            return check()

        if not wait_for(ready, self.ready_timeout, interval=0.2):
            raise LaunchError(
                f"{name} of {self.kind} {self.name!r} not ready after {self.ready_timeout:.0f}s;"
                f" last log lines:\n{component.tail(15)}"
            )

    def _readiness(self, name: str) -> Callable[[], bool]:
        if name == "kube-apiserver":
            client = self.client()
            return lambda: client.request("GET", "/readyz")[0] == 200
        if name in ("kube-controller-manager", "kube-scheduler"):
            port = self.ports[name.removeprefix("kube-")]
            return lambda: probe(f"https://127.0.0.1:{port}/healthz") == 200
        return self._store_ready

    def _store_ready(self) -> bool:
        return probe(f"http://127.0.0.1:{self.ports['store']}/health") is not None or _tcp_open(
            self.ports["store"]
        )


def _tcp_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class HostCluster(ControlPlane):
    """etcd, kube-apiserver, controller-manager, scheduler, kwok with fake nodes, and
    metrics-server (it scrapes kwok's simulated resource metrics; ``kubectl top`` works)."""

    nodes: int = 3
    metrics_server: bool = True
    """Off: the host serves no ``metrics.k8s.io`` (as many real clusters)."""
    _layout: network.Layout | None = None
    kind = "host"

    def _store_plan(self) -> tuple[str, list[str]]:
        client = f"http://127.0.0.1:{self.ports['store']}"
        peer = f"http://127.0.0.1:{self.ports['peer']}"
        return "etcd", [
            self._bin("etcd"),
            "--name=default",
            f"--data-dir={self.root / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}",
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ]

    def _extra_plan(self) -> list[tuple[str, list[str]]]:
        scheduler = self._component_flags("scheduler", self.root / "kube-scheduler.kubeconfig")
        plan = [
            ("kube-scheduler", [self._bin("kube-scheduler"), *scheduler]),
            ("kwok", self._kwok_argv()),
        ]
        if self.metrics_server:
            plan.append(("metrics-server", self._metrics_server_argv()))
        return plan

    def _users(self) -> dict[str, tuple[str, ...]]:
        return {**super()._users(), _METRICS_SERVER: _MASTERS}

    def _servers(self) -> dict[str, list[str]]:
        """metrics-server's certificate: the name the aggregator verifies, and localhost."""
        return {"metrics-server": [apiservice.server_name(apiservice.HOST_SERVICE),
                                   "localhost"]}

    def _prepare(self) -> None:
        super()._prepare()
        if self.metrics_server:
            self.ports.setdefault("metrics-server", free_port())

    def _metrics_server_argv(self) -> list[str]:
        """metrics-server scraping kwok's nodes: at their InternalIP and kubelet port
        (127.0.0.1 and kwok's port), over kwok's self-signed TLS, every 10 s (its
        minimum; a scrape must then end within 90% of it)."""
        kubeconfig = self.root / f"{_METRICS_SERVER}.kubeconfig"
        cert, key = self._pki().serving_pair("metrics-server")
        return [
            self._bin("metrics-server"),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports['metrics-server']}",
            f"--tls-cert-file={cert}",
            f"--tls-private-key-file={key}",
            "--kubelet-insecure-tls",
            "--kubelet-preferred-address-types=InternalIP",
            "--kubelet-use-node-status-port",
            "--metric-resolution=10s",
            "--kubelet-request-timeout=5s",
            "--profiling=false",
        ]

    def _kwok_argv(self) -> list[str]:
        """kwok with the kubelet simulation of :mod:`syncer.local.kwok`; its nodes point
        kube-apiserver at kwok's own server (``--node-port``)."""
        return [
            self._bin("kwok"),
            f"--kubeconfig={self.root / 'vcsync-kwok.kubeconfig'}",
            f"--config={kwok.prepare(self.root / 'kwok')}",
            f"--enable-crds={','.join(kwok.CRD_KINDS)}",
            "--manage-all-nodes=true",
            f"--node-ip={self.layout.node_ip(0)}",
            f"--node-port={self.ports['kwok']}",
            f"--cidr={self.layout.pod_cidr}",
            "--node-lease-duration-seconds=40",
            f"--server-address={self.layout.kubelet_bind}:{self.ports['kwok']}",
        ]

    @property
    def layout(self) -> network.Layout:
        """Realistic addresses inside a namespace of the project's, else loopback ones
        (:mod:`syncer.local.network`); decided by where this host is started."""
        if self._layout is None:
            self._layout = network.current()
        return self._layout

    def node(self, index: int, name: str | None = None) -> dict[str, Any]:
        """The ``index``-th fake node of this host: its own address and pod range."""
        return fake_node(name or f"kwok-node-{index}", self.layout.node_ip(index),
                         self.layout.node_pod_cidr(index))

    def _component_env(self, name: str) -> dict[str, str]:
        if name == "kwok":
            return {**self.env, **kwok.environment(self.root / "kwok")}
        return self.env

    def _launch(self, name: str, argv: list[str]) -> None:
        if name == "kwok":  # its CRD informers need the kinds before it starts
            client = self.client()
            for crd in kwok.crds():
                client.json("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                            crd)
        super()._launch(name, argv)

    def _readiness(self, name: str) -> Callable[[], bool]:
        if name == "kwok":
            return lambda: probe(f"http://127.0.0.1:{self.ports['kwok']}/healthz") == 200
        if name == "metrics-server":  # /readyz waits for a first scrape: nodes come later
            port = self.ports[name]
            return lambda: probe(f"https://127.0.0.1:{port}/livez") == 200
        return super()._readiness(name)

    def _after_start(self) -> None:
        super()._after_start()
        client = self.client()
        for i in range(self.nodes):
            client.json("POST", "/api/v1/nodes", self.node(i))

        def all_ready() -> bool:
            items = client.json("GET", "/api/v1/nodes")["items"]
            return sum(_node_ready(n) for n in items) >= self.nodes

        if not wait_for(all_ready, self.ready_timeout, interval=0.3):
            raise LaunchError(
                f"{self.nodes} kwok nodes of host {self.name!r} not Ready after"
                f" {self.ready_timeout:.0f}s; kwok log:\n{self.components['kwok'].tail(15)}"
            )
        if self.metrics_server:
            self._register_metrics_server(client)

    def _register_metrics_server(self, client: BlockingClient) -> None:
        """Route ``metrics.k8s.io`` to metrics-server (figures follow within two scrapes;
        nothing waits for them here)."""
        port = self.ports["metrics-server"]
        for res, obj in apiservice.objects(apiservice.HOST_SERVICE, port, self._pki().ca_pem()):
            client.json("POST", res.path(obj["metadata"].get("namespace")), obj)


def _node_ready(node: dict[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def fake_node(name: str, address: str | None = None,
              pod_cidr: str | None = None) -> dict[str, Any]:
    """A Node that kwok adopts (it manages all nodes of the host cluster); metrics-server
    reads its resource metrics where kwok serves them (the annotation).

    ``address``: its InternalIP (kwok keeps one that is set; without, it uses its
    ``--node-ip``); ``pod_cidr``: the range kwok gives its pods' IPs from.
    """
    resources = {"cpu": "32", "memory": "256Gi", "pods": "110"}
    status: dict[str, Any] = {"allocatable": resources, "capacity": resources}
    if address is not None:
        status["addresses"] = [{"type": "InternalIP", "address": address},
                               {"type": "Hostname", "address": name}]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {
                "kwok.x-k8s.io/node": "fake",
                "node.alpha.kubernetes.io/ttl": "0",
                _RESOURCE_METRICS_PATH: f"/metrics/nodes/{name}/metrics/resource",
            },
            "labels": {
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "node-role.kubernetes.io/agent": "",
                "type": "kwok",
            },
        },
        "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]} if pod_cidr else {},
        "status": status,
    }


@dataclass
class VirtualControlPlane(ControlPlane):
    """kine + kube-apiserver + controller-manager: the tenant's own API."""

    store: str = "sqlite"  # or "memory" (tests)
    kind = "virtual"

    def _store_plan(self) -> tuple[str, list[str]]:
        endpoint = (
            "memory://" if self.store == "memory"
            else f"sqlite://{self.root / 'state.db'}?{_SQLITE_PARAMS}"
        )
        return "kine", [
            self._bin("kine"),
            f"--listen-address=127.0.0.1:{self.ports['store']}",
            f"--endpoint={endpoint}",
            "--metrics-bind-address=0",
        ]

    def _controllers(self) -> str:
        return footprint.controllers()

    def _small_cluster_flags(self) -> list[str]:
        return list(footprint.APISERVER_FLAGS)

    def _component_env(self, name: str) -> dict[str, str]:
        """The Go runtime settings of :mod:`syncer.local.footprint`, under the caller's."""
        return {**footprint.GO_RUNTIME_ENV.get(name, {}), **self.env}

    def _kubelet_flags(self) -> list[str]:
        """Kubelets of a virtual cluster are the syncer's kubelet endpoint: kube-apiserver
        authenticates with a certificate from the kubelet CA and verifies the endpoint's."""
        p = self._pki()
        return [
            *super()._kubelet_flags(),
            f"--kubelet-client-certificate={p.kubelet_client_cert}",
            f"--kubelet-client-key={p.kubelet_client_key}",
            f"--kubelet-certificate-authority={p.kubelet_ca_cert}",
        ]

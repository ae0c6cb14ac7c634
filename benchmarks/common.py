"""What the benchmarks share: a local stack, the syncer's metrics, process accounting.

- :class:`LocalStack` starts real control planes (host with kwok nodes, a
  virtual control plane), prepares the host namespace as ``vcsync create``
  does, and starts ``vcsync run`` processes with a given configuration;
- :func:`scrape` / :func:`metric` read the syncer's Prometheus ``/metrics``,
  :func:`statistics` its ``/debug/statistics``;
- :func:`process_sample` reads CPU seconds and RSS of any process from
  ``/proc`` (the syncer is measured from outside, by the kernel's accounting);
- :func:`percentiles` summarises latency samples the way clusterloader2 does.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import yaml
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from contract.resources import Obj
from syncer.kube.blocking import BlockingClient
from syncer.local import coredns, hostns
from syncer.local.cluster import HostCluster, VirtualControlPlane, fake_node
from syncer.local.process import free_port, wait_for
from syncer.local.syncer_process import SyncerProcess

VC = "bench"
HOST_NAMESPACE = "vcluster-bench"
_PAGE = resource.getpagesize()
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- the syncer's own figures -------------------------------------------------------


def scrape(url: str, timeout: float = 10.0) -> list[Sample]:
    """Every sample of the syncer's ``/metrics``."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=timeout) as resp:
        text = resp.read().decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def metric(
    samples: Sequence[Sample], name: str, labels: dict[str, str] | None = None,
    where: Callable[[dict[str, str]], bool] | None = None,
) -> float:
    """Sum of the samples called ``name`` whose labels match ``labels`` (and ``where``)."""
    return sum(
        s.value for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in (labels or {}).items())
        and (where is None or where(s.labels))
    )


def writes(url: str, **labels: str) -> float:
    """``vcsync_writes_total`` (successful writes), summed over the matching labels."""
    return metric(scrape(url), "vcsync_writes_total", labels)


def statistics(url: str, timeout: float = 10.0) -> Obj:
    """The syncer's ``/debug/statistics`` (informers, queues, status writer)."""
    with urllib.request.urlopen(f"{url}/debug/statistics", timeout=timeout) as resp:
        body: Obj = orjson.loads(resp.read())
    return body


def syncer_busy(url: str) -> bool:
    """Whether any queue holds or processes a key, or status writes are pending.

    Keys waiting for a delayed requeue (token refresh in an hour) are not work.
    """
    stats = statistics(url)
    queues = stats.get("queues", {}).values()
    pending = stats.get("status_writes", {}).get("pending", 0)
    return bool(pending) or any(q["depth"] or q["processing"] for q in queues)


# -- process accounting ---------------------------------------------------------------


@dataclass(frozen=True)
class ProcessSample:
    """CPU seconds (user + system) and memory of one process at one moment."""

    cpu_seconds: float
    rss_kib: int
    hwm_kib: int
    """Peak RSS since the process started (VmHWM)."""


def process_sample(pid: int) -> ProcessSample:
    """Read ``/proc/<pid>/stat`` (utime + stime) and ``/proc/<pid>/status`` (VmRSS, VmHWM)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    memory: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            memory[key] = int(value.split()[0])
    return ProcessSample(ticks / _CLOCK_TICKS, memory.get("VmRSS", 0), memory.get("VmHWM", 0))


def pss_kib(pid: int) -> int:
    """Proportional set size of a process in KiB (``/proc/<pid>/smaps_rollup``): its
    private pages plus its share of every page it maps together with others."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def self_rss_kib() -> int:
    """RSS of this process in KiB (from ``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE // 1024


# -- statistics ---------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..100) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """clusterloader2's keys: ``Perc50``, ``Perc90``, ``Perc99`` (plus ``Max`` and ``Count``)."""
    return {
        "Perc50": percentile(values, 50),
        "Perc90": percentile(values, 90),
        "Perc99": percentile(values, 99),
        "Max": max(values) if values else math.nan,
        "Count": float(len(values)),
    }


# -- pods -----------------------------------------------------------------------------------


def pod_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def ready_pods(client: BlockingClient, namespace: str) -> int:
    pods = client.json("GET", f"/api/v1/namespaces/{namespace}/pods")["items"]
    return sum(pod_ready(p) for p in pods)


def bench_node(name: str, pods: int) -> Obj:
    """A kwok node like the launcher's, with room for ``pods`` pods."""
    node = fake_node(name)
    capacity = {**node["status"]["capacity"], "pods": str(pods), "cpu": "1000",
                "memory": "4Ti"}
    node["status"] = {"capacity": capacity, "allocatable": capacity}
    return node


# -- the stack ----------------------------------------------------------------------------


@dataclass
class LocalStack:
    """A host cluster, a virtual control plane and the host namespace between them.

    Start with :func:`local_stack`; :meth:`start_syncer` runs ``vcsync run``
    with a configuration (the Helm-style keys of ``--config``).
    """

    host: HostCluster
    virtual: VirtualControlPlane
    root: Path
    api_ip: str
    host_namespace: str = HOST_NAMESPACE
    syncers: list[SyncerProcess] = field(default_factory=list)
    kubelet_port: int = field(default_factory=free_port)
    metrics_api_port: int = field(default_factory=free_port)

    def start_syncer(self, config: Obj | None = None, wait_ready: bool = True,
                     timeout: float = 120.0) -> SyncerProcess:
        path = self.root / f"sync-{len(self.syncers)}.yaml"
        path.write_text(yaml.safe_dump(config or {}))
        syncer = SyncerProcess(VC, self.host, self.virtual, self.host_namespace, self.root,
                               config=path, identity=f"{VC}-{len(self.syncers)}",
                               kubelet_port=self.kubelet_port,
                               metrics_api_port=self.metrics_api_port)
        self.syncers.append(syncer)
        return syncer.start(wait_ready=wait_ready, timeout=timeout)

    def stop(self) -> None:
        for syncer in self.syncers:
            with contextlib.suppress(Exception):
                syncer.stop()


@contextlib.contextmanager
def local_stack(
    root: Path, *, nodes: int = 3, pods_per_node: int = 110,
    say: Callable[[str], None] = lambda _: None,
) -> Iterator[LocalStack]:
    """Host (``nodes`` kwok nodes for ``pods_per_node`` pods each) + virtual control plane.

    The host namespace gets the API Service (as ``vcsync create`` makes it)
    and the virtual cluster the ``kube-dns`` Service (synced down, every
    pod's nameserver). Everything stops when the block ends.
    """
    start = time.monotonic()
    with contextlib.ExitStack() as stack:
        say("starting the host cluster (etcd, kube-apiserver, controller-manager, scheduler, "
            "kwok)")
        host = stack.enter_context(HostCluster(name=VC, root=root / "host", nodes=0))
        client = host.client()
        for i in range(nodes):
            client.json("POST", "/api/v1/nodes", bench_node(f"kwok-node-{i}", pods_per_node))
        if not wait_for(lambda: _ready_nodes(client) >= nodes, 60, interval=0.2):
            raise RuntimeError(f"{nodes} kwok nodes not Ready within 60 s")
        say("starting the virtual control plane (kine, kube-apiserver, controller-manager)")
        virtual = stack.enter_context(VirtualControlPlane(name=VC, root=root / "virtual"))
        prepared = hostns.prepare(client, HOST_NAMESPACE, VC)
        coredns.apply(virtual.client(), [coredns.dns_service()])
        local = LocalStack(host, virtual, root, prepared.api_ip)
        stack.callback(local.stop)
        say(f"control planes ready in {time.monotonic() - start:.1f}s")
        yield local


def _ready_nodes(client: BlockingClient) -> int:
    items = client.json("GET", "/api/v1/nodes")["items"]
    return sum(
        any(c.get("type") == "Ready" and c.get("status") == "True"
            for c in (n.get("status") or {}).get("conditions") or [])
        for n in items
    )

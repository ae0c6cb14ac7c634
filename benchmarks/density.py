"""``vcsync bench density``: many idle tenants on one local host, what each one costs.

One local host (as ``vcsync host create`` makes it), then K virtual clusters made
one after another exactly as ``vcsync create`` makes them (``LocalVCluster``: host
namespace and API Service, kine/SQLite control plane, CoreDNS, ``vcsync run``).
Each is checked to answer (``GET /api/v1/namespaces``) and to sync one pod (host
copy and virtual pod Running), and its start time is taken: from the first step
to its syncer's ``/readyz``.

Then every queue drained, one idle window: each process's CPU over the window and
its RSS and PSS at the end, from ``/proc``, per tenant and per component, and the
host's own components measured the same way before the first tenant, with one idle
tenant (the baseline of the growth target) and after the last.

Why PSS beside RSS: RSS counts the pages of a Go binary's text (70-80 MiB for
kube-apiserver and kube-controller-manager) in full for every process that maps
them, although the kernel holds them once for all tenants running that binary
(the same holds for container images sharing a layer). PSS divides shared pages
among the processes that map them, so the sum of PSS over tenants is what the
host really pays. The targets are checked on RSS, as the issue states them; PSS
is reported next to it.

Targets (issue 23): per idle tenant, all its processes together, at most 256 MiB
RSS and 5 mCPU; the K-th tenant starts within 1.5x the first one's time; the
host's own components grow by at most 10% between 1 and K tenants.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from benchmarks.common import process_sample, pss_kib, syncer_busy
from contract import naming
from contract.resources import Obj
from syncer.kube.blocking import BlockingClient
from syncer.local import binaries
from syncer.local.cluster import HostCluster
from syncer.local.process import wait_for
from syncer.local.vcluster import LocalVCluster

Say = Callable[[str], None]
MIB = 1024
TARGET_RSS_MIB = 256.0
TARGET_MCPU = 5.0
TARGET_START_RATIO = 1.5
TARGET_HOST_GROWTH = 0.10


@dataclass(frozen=True)
class DensityOptions:
    tenants: int = 20
    idle_seconds: float = 60.0
    output: Path = Path("vcsync-bench")


@dataclass
class Usage:
    """One process over the idle window."""

    rss_mib: float
    mcpu: float
    pss_mib: float


@dataclass
class Tenant:
    name: str
    start_seconds: float
    sync_seconds: float
    components: dict[str, Usage] = field(default_factory=dict)

    @property
    def rss_mib(self) -> float:
        return sum(u.rss_mib for u in self.components.values())

    @property
    def mcpu(self) -> float:
        return sum(u.mcpu for u in self.components.values())

    @property
    def pss_mib(self) -> float:
        return sum(u.pss_mib for u in self.components.values())


@dataclass
class DensityResult:
    options: Obj
    host_before: dict[str, Usage]
    """The host's own components before the first tenant."""
    host_one: dict[str, Usage]
    """... with one idle tenant: the baseline of the growth target."""
    host_after: dict[str, Usage]
    tenants: list[Tenant]


def _idle_usage(pids: dict[str, int], seconds: float) -> dict[str, Usage]:
    """CPU (milli-cores) of each process over ``seconds``, its RSS and PSS at the end."""
    before = {name: process_sample(pid) for name, pid in pids.items()}
    time.sleep(seconds)  # the measurement window itself, not a wait for a condition
    after = {name: process_sample(pid) for name, pid in pids.items()}
    return {name: Usage(round(after[name].rss_kib / MIB, 1),
                        round((after[name].cpu_seconds - before[name].cpu_seconds)
                              / seconds * 1000, 2),
                        round(pss_kib(pid) / MIB, 1))
            for name, pid in pids.items()}


def _pids(components: dict[str, Any]) -> dict[str, int]:
    return {name: c.pid for name, c in components.items() if c.pid is not None}


def _tenant_pids(vc: LocalVCluster) -> dict[str, int]:
    if vc.plane is None or vc.syncer is None or vc.syncer.pid is None:
        raise RuntimeError(f"tenant {vc.name} is not running")
    return {**_pids(vc.plane.components), "vcsync": vc.syncer.pid}


def _start_tenant(host: HostCluster, root: Path, index: int) -> tuple[LocalVCluster, float]:
    name = f"t{index}"
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "host.kubeconfig").write_text(yaml.safe_dump(host.kubeconfig_dict()))
    vc = LocalVCluster(name, f"vcluster-{name}", directory, binaries.KUBERNETES_VERSION,
                       marker=f"vcluster:{directory}")
    start = time.monotonic()
    vc.prepare_host()
    vc.start_plane()
    vc.apply_dns()
    vc.start_syncer()
    return vc, time.monotonic() - start


def _check_tenant(host: HostCluster, vc: LocalVCluster) -> float:
    """It answers, and one pod syncs down and shows Running; the seconds the pod took."""
    if vc.plane is None:
        raise RuntimeError(f"tenant {vc.name} has no control plane")
    virtual = vc.plane.client()
    virtual.json("GET", "/api/v1/namespaces")
    start = time.monotonic()
    virtual.json("POST", "/api/v1/namespaces/default/pods", {
        "metadata": {"name": "probe"},
        "spec": {"containers": [{"name": "app", "image": "busybox"}]}})
    host_client = host.client()
    host_pod = (f"/api/v1/namespaces/{vc.namespace}/pods/"
                f"{naming.host_name('probe', 'default', vc.name)}")

    def running() -> bool:
        return _phase(host_client, host_pod) == "Running" and _phase(
            virtual, "/api/v1/namespaces/default/pods/probe") == "Running"

    if not wait_for(running, 120, interval=0.2):
        raise RuntimeError(f"tenant {vc.name}: its probe pod is not Running on both sides")
    return time.monotonic() - start


def _phase(client: BlockingClient, path: str) -> str:
    status, _ = client.request("GET", path)
    if status != 200:
        return ""
    return str(client.json("GET", path).get("status", {}).get("phase", ""))


@contextlib.contextmanager
def _tenants(started: list[LocalVCluster]) -> Iterator[None]:
    try:
        yield
    finally:
        for vc in started:
            vc.kill()


def run(options: DensityOptions, say: Say) -> DensityResult:
    with tempfile.TemporaryDirectory(prefix="vcsync-bench-density-") as tmp:
        return _run(options, Path(tmp), say)


def _run(options: DensityOptions, root: Path, say: Say) -> DensityResult:
    say("starting the host cluster")
    with HostCluster(name="density", root=root / "host") as host:
        say(f"host ready; idle {options.idle_seconds:.0f}s for its baseline")
        host_pids = _pids(host.components)
        host_before = _idle_usage(host_pids, options.idle_seconds)
        host_one: dict[str, Usage] = {}
        started: list[LocalVCluster] = []
        tenants: list[Tenant] = []
        with _tenants(started):
            for i in range(options.tenants):
                vc, seconds = _start_tenant(host, root / "tenants", i)
                started.append(vc)
                sync = _check_tenant(host, vc)
                tenants.append(Tenant(vc.name, round(seconds, 2), round(sync, 2)))
                say(f"tenant {i + 1}/{options.tenants} ready in {seconds:.1f}s, "
                    f"its pod synced in {sync:.1f}s")
                if i == 0:  # the baseline for the host's growth: one idle tenant
                    _wait_idle(started, say)
                    say(f"the host with one tenant: idle window of {options.idle_seconds:.0f}s")
                    host_one = _idle_usage(host_pids, options.idle_seconds)
            _wait_idle(started, say)
            say(f"idle window of {options.idle_seconds:.0f}s over every process")
            pids = {f"{vc.name}/{n}": p for vc in started for n, p in _tenant_pids(vc).items()}
            usage = _idle_usage({**pids, **{f"host/{n}": p for n, p in host_pids.items()}},
                                options.idle_seconds)
            for tenant in tenants:
                tenant.components = {key.split("/", 1)[1]: u for key, u in usage.items()
                                     if key.startswith(f"{tenant.name}/")}
            host_after = {key.split("/", 1)[1]: u for key, u in usage.items()
                          if key.startswith("host/")}
    return DensityResult(asdict(options) | {"output": str(options.output)}, host_before,
                         host_one, host_after, tenants)


def _wait_idle(started: list[LocalVCluster], say: Say) -> None:
    say("waiting until every syncer is idle")
    urls = [f"http://127.0.0.1:{vc.syncer_port}" for vc in started]
    if not wait_for(lambda: not any(syncer_busy(u) for u in urls), 300, interval=1.0):
        raise RuntimeError("the syncers did not become idle within 300 s")


# -- report ---------------------------------------------------------------------------------


def _total(usage: dict[str, Usage], attr: str) -> float:
    return float(sum(getattr(u, attr) for u in usage.values()))


def summary(result: DensityResult) -> Obj:
    tenants = result.tenants
    first, last = tenants[0].start_seconds, tenants[-1].start_seconds
    components = sorted({c for t in tenants for c in t.components})
    host_rss = (_total(result.host_one, "rss_mib"), _total(result.host_after, "rss_mib"))
    return {
        "tenants": len(tenants),
        "rss_mib_per_tenant": {"median": statistics.median(t.rss_mib for t in tenants),
                               "max": max(t.rss_mib for t in tenants)},
        "pss_mib_per_tenant": {"median": statistics.median(t.pss_mib for t in tenants),
                               "max": max(t.pss_mib for t in tenants)},
        "mcpu_per_tenant": {"median": statistics.median(t.mcpu for t in tenants),
                            "max": max(t.mcpu for t in tenants)},
        "rss_mib_per_component": {c: statistics.median(
            t.components[c].rss_mib for t in tenants if c in t.components) for c in components},
        "pss_mib_per_component": {c: statistics.median(
            t.components[c].pss_mib for t in tenants if c in t.components) for c in components},
        "mcpu_per_component": {c: statistics.median(
            t.components[c].mcpu for t in tenants if c in t.components) for c in components},
        "start_seconds": {"first": first, "last": last, "ratio": last / first},
        "host_rss_mib": {"before": _total(result.host_before, "rss_mib"),
                         "one": host_rss[0], "after": host_rss[1],
                         "growth": host_rss[1] / host_rss[0] - 1},
        "host_mcpu": {"before": _total(result.host_before, "mcpu"),
                      "one": _total(result.host_one, "mcpu"),
                      "after": _total(result.host_after, "mcpu")},
    }


def targets(s: Obj) -> list[tuple[str, str, bool]]:
    return [
        ("RSS per idle tenant <= 256 MiB", f"{s['rss_mib_per_tenant']['max']:.0f} MiB (max)",
         s["rss_mib_per_tenant"]["max"] <= TARGET_RSS_MIB),
        ("CPU per idle tenant <= 5 mCPU", f"{s['mcpu_per_tenant']['max']:.2f} mCPU (max)",
         s["mcpu_per_tenant"]["max"] <= TARGET_MCPU),
        ("K-th tenant starts within 1.5x the first",
         f"{s['start_seconds']['ratio']:.2f}x ({s['start_seconds']['last']:.1f} s / "
         f"{s['start_seconds']['first']:.1f} s)",
         s["start_seconds"]["ratio"] <= TARGET_START_RATIO),
        ("host components grow <= 10% from 1 to K tenants",
         f"{s['host_rss_mib']['growth'] * 100:+.1f}% RSS",
         s["host_rss_mib"]["growth"] <= TARGET_HOST_GROWTH),
    ]


def to_markdown(result: DensityResult, command: str) -> str:
    s = summary(result)
    lines = [
        "# Density: idle tenants on one local host", "",
        f"`{command}`: {s['tenants']} tenants, idle window "
        f"{result.options['idle_seconds']:.0f} s.", "",
        "| target | measured | |", "|---|---|---|",
        *(f"| {name} | {value} | {'met' if ok else 'missed'} |"
          for name, value, ok in targets(s)), "",
        f"PSS per idle tenant (shared binary pages divided among the processes mapping "
        f"them: what the host pays): {s['pss_mib_per_tenant']['median']:.0f} MiB median, "
        f"{s['pss_mib_per_tenant']['max']:.0f} MiB max.", "",
        "| component (median per tenant) | RSS MiB | PSS MiB | mCPU |", "|---|---|---|---|",
        *(f"| {c} | {s['rss_mib_per_component'][c]:.1f} | {s['pss_mib_per_component'][c]:.1f} "
          f"| {s['mcpu_per_component'][c]:.2f} |" for c in s["rss_mib_per_component"]), "",
        f"Host's own components: {s['host_rss_mib']['before']:.0f} MiB and "
        f"{s['host_mcpu']['before']:.1f} mCPU before the first tenant, "
        f"{s['host_rss_mib']['one']:.0f} MiB and {s['host_mcpu']['one']:.1f} mCPU with one, "
        f"{s['host_rss_mib']['after']:.0f} MiB and {s['host_mcpu']['after']:.1f} mCPU "
        f"with {s['tenants']}.", "",
        "| tenant | start s | pod synced s | RSS MiB | PSS MiB | mCPU |",
        "|---|---|---|---|---|---|",
        *(f"| {t.name} | {t.start_seconds:.1f} | {t.sync_seconds:.1f} | {t.rss_mib:.0f} | "
          f"{t.pss_mib:.0f} | {t.mcpu:.2f} |" for t in result.tenants),
    ]
    return "\n".join(lines) + "\n"


def plot(result: DensityResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [t.name for t in result.tenants]
    components = sorted({c for t in result.tenants for c in t.components})
    fig, (rss, start) = plt.subplots(1, 2, figsize=(12, 4.5))
    bottom = [0.0] * len(names)
    for component in components:
        values = [t.components[component].rss_mib if component in t.components else 0.0
                  for t in result.tenants]
        rss.bar(names, values, bottom=bottom, label=component)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    rss.axhline(TARGET_RSS_MIB, color="red", linestyle="--", label="target")
    rss.set_title("RSS per idle tenant (MiB)")
    rss.legend(fontsize="small")
    rss.tick_params(axis="x", labelrotation=90)
    start.plot(names, [t.start_seconds for t in result.tenants], marker="o")
    start.axhline(result.tenants[0].start_seconds * TARGET_START_RATIO, color="red",
                  linestyle="--", label="1.5x the first")
    start.set_title("start time of each tenant (s)")
    start.legend(fontsize="small")
    start.tick_params(axis="x", labelrotation=90)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(result: DensityResult, output: Path, command: str) -> list[Path]:
    output.mkdir(parents=True, exist_ok=True)
    paths = [output / "density.json", output / "density.md", output / "density.png"]
    document = {"options": result.options, "summary": summary(result),
                "targets": [{"name": n, "measured": v, "met": ok}
                            for n, v, ok in targets(summary(result))],
                "host_before": {k: asdict(v) for k, v in result.host_before.items()},
                "host_one": {k: asdict(v) for k, v in result.host_one.items()},
                "host_after": {k: asdict(v) for k, v in result.host_after.items()},
                "tenants": [asdict(t) for t in result.tenants]}
    paths[0].write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    paths[1].write_text(to_markdown(result, command))
    plot(result, paths[2])
    return paths

"""Load benchmark: the syncer against the host API server's own limit, in the same run.

Against real local control planes (host with kwok nodes, a virtual control
plane, ``vcsync run`` as its own process), two arms alternate A-B-B-A, each
in fresh namespaces:

- **direct** (A): N pods created straight on the host through the syncer's
  own client stack (:class:`~syncer.kube.client.KubeClient`, the same host
  QPS/burst, as many concurrent writers as the syncer has workers per kind),
  writing exactly what the syncer writes for each pod: the host pod made by
  the real pod translator from the virtual pod the virtual API server would
  store, then its token Secret;
- **syncer** (B): N pods created in the virtual cluster (pods directly, or a
  Deployment), synced by ``vcsync run``.

One host watch in this process (its own thread and event loop) stamps every
host pod's arrival with ``time.monotonic()``; creates are stamped by the same
clock. Each arm is timed from its first create to the moment all N host pods
exist, and to the moment all N are Running (for the syncer arm: all virtual
pods Ready). Phases:

1. **burst**: all N at once, with the syncer's default client limits;
2. **steady**: ``--rate`` pods/s for ``--steady-seconds``; client limits are
   raised for both arms so that the limiter is not what is measured (see
   :func:`steady_limits`);
3. **churn**: ConfigMaps/Secrets that pods reference are created, updated
   and released (deleted on the host when no pod references them);
4. **restart**: with enough pods synced for ``--restart-objects`` cached
   objects, the syncer is killed (SIGKILL) and started again: time to ready,
   time until its start-up resync is done, and its host writes (must be 0).

The syncer's CPU and memory come from the kernel's accounting of its process
(``/proc/<pid>``), its requests and writes from its ``/metrics``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
import uvloop

from benchmarks.common import (
    HOST_NAMESPACE,
    VC,
    LocalStack,
    ProcessSample,
    local_stack,
    metric,
    pod_ready,
    process_sample,
    scrape,
    syncer_busy,
)
from contract import naming
from contract import resources as r
from contract.resources import Obj
from contract.translator import Context, Create, IssueTokens, Side
from syncer import app
from syncer import config as config_mod
from syncer.informer import Informer
from syncer.kube.client import ClientSettings, KubeClient
from syncer.kube.errors import KubeError, NotFound
from syncer.local.process import LaunchError
from syncer.local.syncer_process import SyncerProcess
from syncer.metrics import RequestSample
from syncer.store import Store, strip
from syncer.writer import _token_secret
from translators.pods import PodTranslator, token_secret_name

Say = Callable[[str], None]
POD_SPEC: Obj = {"containers": [{"name": "app", "image": "nginx:1.27"}]}
"""What ``kubectl create deployment --image=nginx`` asks for; the virtual API server adds
the rest (defaults, the service-account token volume)."""
_CREATORS = 64
"""Concurrent virtual creates of the benchmark itself (the tenant); faster than the syncer."""
_POLL = 0.05


class BenchError(RuntimeError):
    """The benchmark could not finish; the message says what was awaited."""


# -- options ------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadOptions:
    pods: int = 2000
    """N, per arm of the burst phase."""
    shape: str = "pods"
    """``pods`` (created one by one) or ``deployment`` (one Deployment of N replicas)."""
    rates: tuple[float, ...] = (10.0, 50.0)
    """Pods per second of the steady phases, one phase per rate (empty: none); 50 is the
    target's rate, 10 one this 2-core machine sustains through the syncer arm."""
    steady_seconds: float = 30.0
    churn: int = 200
    """Pods of the churn phase, each referencing its own ConfigMap and Secret (0: none)."""
    churn_rounds: int = 3
    restart_objects: int = 10_000
    """Cached objects (both sides) the syncer holds when it is killed (0: no restart phase)."""
    nodes: int = 4
    output: Path = Path("vcsync-bench")
    progress: bool = True
    profile: bool = False
    """Record the syncer with py-spy during the burst phase's syncer arms (if installed)."""
    set_values: tuple[str, ...] = ()
    """Syncer configuration overrides (``--set``, Helm style) for every phase; the direct
    arm uses the resulting host client limits and concurrency too."""
    label: str = "default"
    arm_timeout: float = 0.0
    """Seconds an arm may take (0: derived from its size)."""
    work_dir: Path | None = None


QUICK = {"pods": 100, "rates": (20.0,), "steady_seconds": 5.0, "churn": 20, "churn_rounds": 2,
         "restart_objects": 300, "nodes": 2, "label": "quick"}
LARGE = {"pods": 10_000, "label": "large"}


def options_for(size: str, **overrides: Any) -> LoadOptions:
    """The options of a named size (``quick``, ``default``, ``large``) with overrides."""
    preset: dict[str, Any] = {"quick": QUICK, "large": LARGE}.get(size, {})
    return replace(LoadOptions(), **{**preset, **{k: v for k, v in overrides.items()
                                                  if v is not None}})


def steady_limits(rate: float, cfg: config_mod.SyncerConfig) -> tuple[float, int, float, int]:
    """Client limits of the steady phase: (host qps, burst, virtual qps, burst).

    A pod costs the syncer 2 host writes (pod, token Secret) and about 4
    virtual requests (TokenRequest, binding, status, ...). At the defaults
    (host 50 QPS) 25 pods/s is the ceiling of *both* arms, so a steady rate
    near it would measure the limiter's queue, not the syncer. The steady
    phase therefore gives both arms host QPS = 3 x rate and virtual QPS =
    6 x rate (burst twice that), never below the defaults.
    """
    host_qps = max(cfg.syncer.host.qps, 3 * rate)
    virtual_qps = max(cfg.syncer.virtual.qps, 6 * rate)
    return host_qps, max(cfg.syncer.host.burst, int(2 * host_qps)), virtual_qps, max(
        cfg.syncer.virtual.burst, int(2 * virtual_qps))


def base_config(set_values: tuple[str, ...]) -> Obj:
    """The syncer configuration of a run: the defaults with ``--set`` overrides (validated)."""
    data: Obj = {}
    for assignment in set_values:
        data = config_mod.apply_set(data, assignment)
    config_mod.parse(data)
    return data


def _with_limits(config: Obj, host: tuple[float, int], virtual: tuple[float, int]) -> Obj:
    syncer = {**config.get("syncer", {}), "host": {"qps": host[0], "burst": host[1]},
              "virtual": {"qps": virtual[0], "burst": virtual[1]}}
    return {**config, "syncer": syncer}


# -- the recorder: one watch, one clock ----------------------------------------------------


def _identity_key(obj: Obj) -> str | None:
    identity = naming.identity_of(obj)
    if identity is None:
        return None
    return f"{identity.namespace}/{identity.name}" if identity.namespace else identity.name


@dataclass
class Recorder:
    """Arrival times (``time.monotonic()``) of what the watches saw, by virtual key.

    Host objects are keyed by the virtual object they stand for (their
    identity annotations), so host pods of the direct arm, which carry the
    identity of the virtual pod they were translated from, are keyed alike.
    """

    host_added: dict[str, float] = field(default_factory=dict)
    host_running: dict[str, float] = field(default_factory=dict)
    host_gone: dict[str, float] = field(default_factory=dict)
    virtual_added: dict[str, float] = field(default_factory=dict)
    virtual_ready: dict[str, float] = field(default_factory=dict)
    refs: dict[tuple[str, str, str], float] = field(default_factory=dict)
    """(kind, virtual key, event) -> time; event: ``added``, ``deleted``, ``data=<value>``."""

    def host_pod(self, _: str, old: Obj | None, new: Obj | None) -> None:
        now = time.monotonic()
        key = _identity_key(new or old or {})
        if key is None:
            return
        if new is None:
            self.host_gone.setdefault(key, now)
            return
        self.host_added.setdefault(key, now)
        if (new.get("status") or {}).get("phase") == "Running":
            self.host_running.setdefault(key, now)

    def virtual_pod(self, key: str, old: Obj | None, new: Obj | None) -> None:
        now = time.monotonic()
        if new is None:
            return
        self.virtual_added.setdefault(key, now)
        if pod_ready(new):
            self.virtual_ready.setdefault(key, now)

    def host_ref(self, kind: str) -> Callable[[str, Obj | None, Obj | None], None]:
        def handler(_: str, old: Obj | None, new: Obj | None) -> None:
            now = time.monotonic()
            key = _identity_key(new or old or {})
            if key is None:
                return
            if new is None:
                self.refs.setdefault((kind, key, "deleted"), now)
                return
            self.refs.setdefault((kind, key, "added"), now)
            value = (new.get("data") or {}).get("round")
            if value is not None:
                self.refs.setdefault((kind, key, f"data={value}"), now)

        return handler


class Watcher:
    """Informers on both clusters in a thread of their own (so creates cannot delay them)."""

    def __init__(self, stack: LocalStack, recorder: Recorder) -> None:
        self._stack = stack
        self._recorder = recorder
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="bench-watch", daemon=True)

    def start(self, timeout: float = 60.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            raise BenchError(f"the benchmark's watches did not start: {self._error}")

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _main(self) -> None:
        try:
            uvloop.run(self._run())
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        rec = self._recorder
        host = await _client(self._stack.host.kubeconfig, "bench-host-watch")
        virtual = await _client(self._stack.virtual.kubeconfig, "bench-virtual-watch")
        managed = f"{naming.LABEL_MANAGED_BY}={VC}"
        informers = [
            Informer(host, r.PODS, rec.host_pod, label_selector=managed),
            Informer(virtual, r.PODS, rec.virtual_pod),
            Informer(host, r.CONFIGMAPS, rec.host_ref("ConfigMap"), namespace=HOST_NAMESPACE,
                     label_selector=managed),
            Informer(host, r.SECRETS, rec.host_ref("Secret"), namespace=HOST_NAMESPACE,
                     label_selector=managed),
        ]
        tasks = [asyncio.create_task(i.run()) for i in informers]
        try:
            await asyncio.wait_for(asyncio.gather(*(i.synced.wait() for i in informers)), 60)
            self._ready.set()
            await self._stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await host.close()
            await virtual.close()


async def _client(kubeconfig: Path, name: str, settings: ClientSettings | None = None,
                  observer: Callable[[RequestSample], None] | None = None) -> KubeClient:
    return await KubeClient.from_kubeconfig(
        str(kubeconfig), name=name, settings=settings or ClientSettings(qps=0, max_connections=256),
        observer=observer)


# -- results ----------------------------------------------------------------------------


@dataclass
class ArmResult:
    """One arm: what it created, when things arrived, and what it cost."""

    phase: str
    arm: str
    """``A1``, ``B1``, ``B2``, ``A2``."""
    kind: str
    """``direct`` or ``syncer``."""
    pods: int
    exist_s: float
    """First create -> all N host pods exist."""
    running_s: float
    """First create -> all N Running (direct) / all N virtual pods Ready (syncer)."""
    create_ms: list[float]
    """Per pod: wanted (create issued; virtual pod exists) -> host pod exists."""
    ready_ms: list[float]
    """Per pod: wanted -> Running on the host (direct) / Ready in the virtual cluster."""
    arrivals_s: list[float]
    """Host-pod arrival times since the first create, sorted."""
    host_requests: float
    virtual_requests: float
    codes: dict[str, float]
    """Answers of the host (and, for the syncer, virtual) API server by status code."""
    verbs: dict[str, float] = field(default_factory=dict)
    """Requests by ``cluster verb`` (watches left out)."""
    host_writes: float = 0.0
    cpu_s: float = 0.0
    rss_kib: int = 0
    hwm_kib: int = 0
    stack_cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds of every process of the stack during the arm (control planes, kwok, the
    syncer, this benchmark), by process."""
    machine_busy: float = 0.0
    """Share of all cores busy during the arm, whoever used them (a shared machine)."""

    @property
    def throughput(self) -> float:
        return self.pods / self.exist_s

    def as_dict(self) -> Obj:
        return {
            "phase": self.phase, "arm": self.arm, "kind": self.kind, "pods": self.pods,
            "exist_s": self.exist_s, "running_s": self.running_s,
            "throughput_pods_per_s": self.throughput, "host_requests": self.host_requests,
            "virtual_requests": self.virtual_requests, "codes": self.codes, "verbs": self.verbs,
            "host_writes": self.host_writes, "cpu_s": self.cpu_s, "rss_kib": self.rss_kib,
            "hwm_kib": self.hwm_kib, "stack_cpu_s": self.stack_cpu,
            "machine_busy": self.machine_busy,
        }


@dataclass
class PhaseResult:
    name: str
    rate: float | None
    limits: dict[str, float]
    arms: list[ArmResult]

    def of(self, kind: str) -> list[ArmResult]:
        return [a for a in self.arms if a.kind == kind]

    @property
    def efficiency(self) -> float:
        """Syncer-arm over direct-arm throughput to "all N host pods exist" (the target's)."""
        direct = sum(a.throughput for a in self.of("direct")) / len(self.of("direct"))
        syncer = sum(a.throughput for a in self.of("syncer")) / len(self.of("syncer"))
        return syncer / direct

    @property
    def ready_efficiency(self) -> float:
        """The same to "all N Running" (direct: and their Secrets written) / "all N virtual pods
        Ready" (syncer): every write done, not only the pods'."""
        def rate(kind: str) -> float:
            arms = self.of(kind)
            return sum(a.pods / a.running_s for a in arms) / len(arms)

        return rate("syncer") / rate("direct")


@dataclass
class ChurnResult:
    objects: int
    rounds: int
    reference_ms: list[float]
    """Pod created -> host copies of its ConfigMap and Secret exist."""
    update_ms: list[float]
    """Virtual ConfigMap/Secret updated -> the host copy has the new data."""
    release_ms: list[float]
    """Last referencing pod deleted -> host copy deleted."""
    host_writes: dict[str, float]
    seconds: float


@dataclass
class RestartResult:
    pods: int
    cached_objects: float
    ready_s: float
    """Process start -> ``/readyz`` 200 (every cache listed)."""
    resynced_s: float
    """Process start -> the start-up resync of every key is done (queues empty)."""
    host_writes: float
    all_writes: float
    writes: dict[str, float]
    """Successful writes of the restarted syncer by ``side verb kind``."""
    host_requests: dict[str, float]
    rss_before_kib: int
    rss_after_kib: int
    object_sizes: dict[str, tuple[int, int]] = field(default_factory=dict)
    """What one synced pod's cached objects weigh: (JSON bytes, Python heap bytes)."""


@dataclass
class LoadResult:
    options: LoadOptions
    phases: list[PhaseResult]
    churn: ChurnResult | None
    restart: RestartResult | None
    rest: ProcessSample
    """The syncer at rest: started, caches synced, nothing to sync."""
    peak_hwm_kib: int
    seconds: float
    started: str
    machine: dict[str, str]


# -- the run ------------------------------------------------------------------------------


class Run:
    """One benchmark run against one local stack."""

    def __init__(self, stack: LocalStack, options: LoadOptions, say: Say) -> None:
        self.stack = stack
        self.options = options
        self.say = say
        self.recorder = Recorder()
        self.config = base_config(options.set_values)
        self.cfg = config_mod.parse(self.config)
        self.concurrency = self.cfg.syncer.shards * self.cfg.syncer.workers_per_shard
        self.syncer: SyncerProcess | None = None
        self.syncer_config: Obj = {}
        self.host_limits = (self.cfg.syncer.host.qps, self.cfg.syncer.host.burst)
        self.virtual_limits = (self.cfg.syncer.virtual.qps, self.cfg.syncer.virtual.burst)
        self.host: KubeClient | None = None
        self.virtual: KubeClient | None = None
        self.direct_codes: Counter[str] = Counter()
        self._template: Obj | None = None
        self._token = ""
        self._ca = ""
        self._dns: Obj = {}
        self.peak_hwm = 0
        self.profiles: list[Path] = []

    # -- plumbing -------------------------------------------------------------------------

    @property
    def h(self) -> KubeClient:
        assert self.host is not None
        return self.host

    @property
    def v(self) -> KubeClient:
        assert self.virtual is not None
        return self.virtual

    def _syncer(self) -> SyncerProcess:
        if self.syncer is None:
            raise BenchError("no syncer running")
        return self.syncer

    def _sides(self) -> dict[str, str]:
        """The ``host`` label of each API server (client-go's) -> ``host`` / ``virtual``."""
        return {f"127.0.0.1:{self.stack.host.ports['apiserver']}": "host",
                f"127.0.0.1:{self.stack.virtual.ports['apiserver']}": "virtual"}

    def _pid(self) -> int:
        component = self._syncer().component
        if component is None:
            raise BenchError("syncer never started")
        return component.pid

    def _sample(self) -> ProcessSample:
        sample = process_sample(self._pid())
        self.peak_hwm = max(self.peak_hwm, sample.hwm_kib)
        return sample

    async def start_syncer(self, config: Obj) -> None:
        """(Re)start ``vcsync run`` with ``config`` (a clean SIGTERM of the previous one)."""
        if self.syncer is not None:
            self._sample()
            await asyncio.to_thread(self.syncer.stop)
        self.syncer_config = config
        try:
            self.syncer = await asyncio.to_thread(self.stack.start_syncer, config)
        except LaunchError as exc:
            raise BenchError(str(exc)) from exc
        await self.wait_idle()

    async def wait_idle(self, quiet: float = 1.0, timeout: float = 600.0) -> None:
        """Until the syncer has had nothing to do for ``quiet`` seconds."""
        url = self._syncer().url
        deadline = time.monotonic() + timeout
        since: float | None = None
        while time.monotonic() < deadline:
            busy = await asyncio.to_thread(syncer_busy, url)
            now = time.monotonic()
            if busy:
                since = None
            elif since is None:
                since = now
            elif now - since >= quiet:
                return
            await asyncio.sleep(0.1)
        raise BenchError(f"the syncer was still busy after {timeout:.0f}s")

    async def wait(self, what: str, done: Callable[[], int], total: int, timeout: float,
                   bar: str | None = None) -> None:
        """Poll ``done()`` until it reaches ``total``; a progress bar when asked."""
        deadline = time.monotonic() + timeout
        with _progress(bar, total, self.options.progress) as update:
            while True:
                count = done()
                update(count)
                if count >= total:
                    return
                if time.monotonic() > deadline:
                    raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}: "
                                     f"{count} of {total}")
                await asyncio.sleep(_POLL)

    def arm_timeout(self, pods: int, rate: float | None) -> float:
        if self.options.arm_timeout:
            return self.options.arm_timeout
        seconds = pods / rate if rate else 0.0
        return 120.0 + seconds + pods * 2 / max(1.0, self.host_limits[0]) * 3

    # -- set-up ---------------------------------------------------------------------------

    async def setup(self) -> None:
        """Clients, the direct arm's template pod, a token of realistic size, the CA."""
        self.host = await _client(self.stack.host.kubeconfig, "bench-host")
        self.virtual = await _client(self.stack.virtual.kubeconfig, "bench-virtual")
        issued = await self.v.create_subresource(
            r.SERVICEACCOUNTS, "default", "token", {"spec": {"expirationSeconds": 3607}},
            "default")
        self._token = str(issued["status"]["token"])
        root_ca = await self.v.get(r.CONFIGMAPS, "kube-root-ca.crt", "default")
        self._ca = str(root_ca.get("data", {}).get("ca.crt", ""))

    async def close(self) -> None:
        for client in (self.host, self.virtual):
            if client is not None:
                await client.close()

    async def _dns_service(self) -> Obj:
        """The host copy of the virtual kube-dns Service (synced at start-up)."""
        name = naming.host_name("kube-dns", "kube-system", VC)
        for _ in range(300):
            with contextlib.suppress(NotFound):
                return await self.h.get(r.SERVICES, name, HOST_NAMESPACE)
            await asyncio.sleep(0.1)
        raise BenchError("the kube-dns Service never reached the host")

    async def _virtual_template(self, labels: dict[str, str], owner: Obj | None) -> Obj:
        """A pod as the virtual API server stores it (a dry-run create: defaults, admission)."""
        meta: Obj = {"name": "template", "labels": labels}
        if owner:
            meta["ownerReferences"] = [owner]
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": POD_SPEC}
        return await self.v.request("POST", r.PODS.path("default"), params={"dryRun": "All"},
                                    body=pod)

    async def _namespace(self, client: KubeClient, name: str) -> Obj:
        created = await client.create(r.NAMESPACES, {"metadata": {"name": name}})
        if client is self.virtual:  # pods are refused until the default ServiceAccount exists
            for _ in range(600):
                with contextlib.suppress(NotFound):
                    await client.get(r.SERVICEACCOUNTS, "default", name)
                    return created
                await asyncio.sleep(0.05)
            raise BenchError(f"no default ServiceAccount in virtual namespace {name}")
        return created

    # -- arms -----------------------------------------------------------------------------

    def _pod_labels(self, arm: str) -> dict[str, str]:
        return {"app": f"load-{arm.lower()}"}

    async def direct_arm(self, phase: str, arm: str, pods: int, rate: float | None) -> ArmResult:
        """N pods straight onto the host, written as the syncer would write them."""
        vns, hns = f"{phase}-{arm.lower()}", f"direct-{phase}-{arm.lower()}"
        labels = self._pod_labels(arm)
        owner = None
        if self.options.shape == "deployment":
            labels = {**labels, "pod-template-hash": "5d8f7c9b6"}
            owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "controller": True,
                     "blockOwnerDeletion": True, "name": f"load-{arm.lower()}-5d8f7c9b6",
                     "uid": str(uuid.uuid4())}
        template = await self._virtual_template(labels, owner)
        await self._namespace(self.h, hns)
        namespace = await self._namespace(self.v, vns)
        await self.v.delete(r.NAMESPACES, vns)  # only its labels are needed (host labels)
        ctx = Context(VC, hns, _StaticLookup(namespace, hns, self._dns),
                      facts=app.translator_facts(self.cfg, self.stack.api_ip))
        translator = PodTranslator()
        virtual_pods = [_virtual_copy(template, vns, i, bool(owner)) for i in range(pods)]
        host_pods = [next(a.obj for a in translator.to_host(p, ctx) if isinstance(a, Create))
                     for p in virtual_pods]
        keys = [f"{vns}/{p['metadata']['name']}" for p in virtual_pods]
        settings = ClientSettings(qps=self.host_limits[0], burst=self.host_limits[1])
        counts: Counter[str] = Counter()

        verbs: Counter[str] = Counter()

        def observe(sample: RequestSample) -> None:
            counts[sample.code] += 1
            verbs[f"host {'WATCH' if sample.watch else sample.method}"] += 1

        client = await _client(self.stack.host.kubeconfig, "host", settings, observe)
        wanted: dict[str, float] = {}
        # Pods before Secrets: a pod's Secret is written after its pod (it names the pod as
        # owner), but no Secret delays a later pod; the best order for "all N pods exist".
        queue: asyncio.PriorityQueue[tuple[int, int, Obj]] = asyncio.PriorityQueue()
        data = {"token": _b64(self._token), "ca.crt": _b64(self._ca)}
        written: dict[str, float] = {}

        async def write(kind: int, i: int, created: Obj) -> None:
            if kind == 0:
                created = await client.create(r.PODS, host_pods[i], hns)
                queue.put_nowait((1, i, created))
                return
            issue = next(a for a in translator.sync(virtual_pods[i], created, ctx)
                         if isinstance(a, IssueTokens))
            secret = _token_secret(issue, {t.key: data["token"] for t in issue.tokens}
                                   | {"ca.crt": data["ca.crt"]}, time.time() + 2880)
            await client.create(r.SECRETS, secret, hns)
            written[keys[i]] = time.monotonic()

        async def worker() -> None:
            while True:
                kind, i, created = await queue.get()
                try:
                    await write(kind, i, created)
                finally:
                    queue.task_done()

        self.say(f"{phase} {arm}: direct, {pods} pods into host namespace {hns}")
        workers = [asyncio.create_task(worker()) for _ in range(self.concurrency)]
        cpu_before = self._stack_cpu()
        try:
            start = time.monotonic()
            for i in range(pods):
                if rate:
                    await _sleep_until(start + i / rate)
                wanted[keys[i]] = time.monotonic()
                queue.put_nowait((0, i, {}))
            await self._wait_arm(f"{phase} {arm} (direct)", keys, self.recorder.host_running,
                                 pods, rate)
            await self.wait(f"{phase} {arm} (direct): token Secrets", lambda: len(written), pods,
                            self.arm_timeout(pods, rate))
            await queue.join()
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await client.close()
        running = self.recorder.host_running
        done = {k: max(running[k], written[k]) for k in keys}
        result = self._arm(phase, arm, "direct", keys, wanted, start, done)
        result.stack_cpu, result.machine_busy = _cpu_delta(cpu_before, self._stack_cpu())
        result.host_requests = sum(counts.values())
        result.codes = {k: float(v) for k, v in counts.items()}
        result.verbs = {k: float(v) for k, v in verbs.items()}
        self.say(f"{phase} {arm}: {result.throughput:.1f} pods/s to exist, all Running after "
                 f"{result.running_s:.1f}s")
        await self._cleanup_direct(hns, keys)
        return result

    async def syncer_arm(self, phase: str, arm: str, pods: int, rate: float | None) -> ArmResult:
        """N pods in the virtual cluster; the syncer brings them to the host."""
        vns = f"{phase}-{arm.lower()}"
        await self._namespace(self.v, vns)
        await self.wait_idle()
        url = self._syncer().url
        before_metrics = await asyncio.to_thread(scrape, url)
        before = self._sample()
        cpu_before = self._stack_cpu()
        self.say(f"{phase} {arm}: syncer, {pods} {self.options.shape} into virtual namespace "
                 f"{vns}")
        with self._profiling(f"{phase}-{arm}"):
            if self.options.shape == "deployment":
                keys, wanted, start = await self._deployment(vns, arm, pods, rate)
            else:
                keys, wanted, start = await self._create_pods(vns, arm, pods, rate)
            await self._wait_arm(f"{phase} {arm} (syncer)", keys, self.recorder.virtual_ready,
                                 pods, rate)
        # The virtual pod exists from whichever saw it first: the create's answer (in this
        # loop) or the virtual watch (in the watch thread, the host watch's clock and thread).
        seen = self.recorder.virtual_added
        wanted = {k: min(t, seen.get(k, t)) for k, t in wanted.items()}
        await self.wait_idle()
        after = self._sample()
        after_metrics = await asyncio.to_thread(scrape, url)
        result = self._arm(phase, arm, "syncer", keys, wanted, start, self.recorder.virtual_ready)
        result.cpu_s = after.cpu_seconds - before.cpu_seconds
        result.stack_cpu, result.machine_busy = _cpu_delta(cpu_before, self._stack_cpu())
        result.rss_kib, result.hwm_kib = after.rss_kib, after.hwm_kib
        requests = _requests(after_metrics, before_metrics, self._sides())
        result.host_requests = sum(v for (cluster, verb, _), v in requests.items()
                                   if cluster == "host" and verb != "WATCH")
        result.virtual_requests = sum(v for (cluster, verb, _), v in requests.items()
                                      if cluster == "virtual" and verb != "WATCH")
        codes: dict[str, float] = {}
        for (cluster, verb, code), count in requests.items():
            codes[code] = codes.get(code, 0.0) + count
            if verb != "WATCH" and count:
                result.verbs[f"{cluster} {verb}"] = result.verbs.get(f"{cluster} {verb}", 0) + count
        result.codes = codes
        result.host_writes = sum(v for (side, _, _), v in _delta(
            after_metrics, before_metrics, "vcsync_writes_total").items() if side == "host")
        self.say(f"{phase} {arm}: {result.throughput:.1f} pods/s to exist, all Ready after "
                 f"{result.running_s:.1f}s; {result.host_requests / pods:.2f} host requests/pod")
        await self._cleanup_syncer(vns, keys)
        return result

    def _stack_cpu(self) -> dict[str, float]:
        """CPU seconds so far of every process of the stack, plus the machine's busy and
        total core-seconds (``/proc/stat``) under ``machine busy`` / ``machine total``."""
        pids = {f"host {n}": c.pid for n, c in self.stack.host.components.items()}
        pids |= {f"virtual {n}": c.pid for n, c in self.stack.virtual.components.items()}
        pids["vcsync run"] = self._pid()
        pids["benchmark"] = os.getpid()
        cpu = {}
        for name, pid in pids.items():
            with contextlib.suppress(OSError):
                cpu[name] = process_sample(pid).cpu_seconds
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        ticks = os.sysconf("SC_CLK_TCK")
        cpu["machine total"] = sum(fields[:8]) / ticks
        cpu["machine busy"] = (sum(fields[:8]) - fields[3] - fields[4]) / ticks  # not idle/iowait
        return cpu

    @contextlib.contextmanager
    def _profiling(self, name: str) -> Iterator[None]:
        """py-spy on the syncer while the block runs (``--profile``): raw collapsed stacks."""
        if not self.options.profile:
            yield
            return
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(spy).exists():
            raise BenchError("--profile needs py-spy (pip install py-spy)")
        path = self.options.output / f"profile-{name}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            [spy, "record", "--pid", str(self._pid()), "--rate", "100", "--format", "raw",
             "--nonblocking", "--output", str(path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            yield
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
            self.profiles.append(path)

    def _arm(self, phase: str, arm: str, kind: str, keys: list[str], wanted: dict[str, float],
             start: float, done: dict[str, float]) -> ArmResult:
        added = self.recorder.host_added
        arrivals = sorted(added[k] - start for k in keys)
        return ArmResult(
            phase=phase, arm=arm, kind=kind, pods=len(keys),
            exist_s=max(added[k] for k in keys) - start,
            running_s=max(done[k] for k in keys) - start,
            create_ms=[(added[k] - wanted[k]) * 1000 for k in keys],
            ready_ms=[(done[k] - wanted[k]) * 1000 for k in keys],
            arrivals_s=arrivals, host_requests=0.0, virtual_requests=0.0, codes={},
        )

    async def _wait_arm(self, what: str, keys: list[str], done: dict[str, float], pods: int,
                        rate: float | None) -> None:
        added = self.recorder.host_added
        timeout = self.arm_timeout(pods, rate)
        await self.wait(f"{what}: host pods", lambda: sum(k in added for k in keys), pods,
                        timeout, bar=f"{what} host pods")
        await self.wait(f"{what}: Running/Ready", lambda: sum(k in done for k in keys), pods,
                        timeout)

    async def _create_pods(self, vns: str, arm: str, pods: int, rate: float | None,
                           first: int = 0) -> tuple[list[str], dict[str, float], float]:
        names = [f"pod-{i:05d}" for i in range(first, first + pods)]
        keys = [f"{vns}/{n}" for n in names]
        wanted: dict[str, float] = {}
        labels = self._pod_labels(arm)

        async def create(i: int) -> None:
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": names[i], "labels": labels}, "spec": POD_SPEC}
            await self.v.create(r.PODS, pod, vns)
            wanted[keys[i]] = time.monotonic()

        start = time.monotonic()
        if rate:
            tasks = []
            for i in range(pods):
                await _sleep_until(start + i / rate)
                tasks.append(asyncio.create_task(create(i)))
            await asyncio.gather(*tasks)
        else:
            await _bounded(pods, _CREATORS, create)
        return keys, wanted, start

    async def _deployment(self, vns: str, arm: str, pods: int, rate: float | None
                          ) -> tuple[list[str], dict[str, float], float]:
        labels = self._pod_labels(arm)
        name = f"load-{arm.lower()}"
        deployment = {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 0 if rate else pods, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": POD_SPEC}},
        }
        start = time.monotonic()
        await self.v.create(r.DEPLOYMENTS, deployment, vns)
        if rate:  # scale up by rate/5 every 200 ms
            step = max(1, round(rate / 5))
            for replicas in range(step, pods + step, step):
                await self.v.patch(r.DEPLOYMENTS, name, {"spec": {"replicas": min(pods, replicas)}},
                                   vns)
                await _sleep_until(start + replicas / rate)
        prefix = f"{vns}/"
        virtual = self.recorder.virtual_added

        def mine() -> list[str]:
            return [k for k in list(virtual) if k.startswith(prefix)]

        await self.wait(f"{pods} virtual pods of {name}", lambda: len(mine()), pods,
                        self.arm_timeout(pods, rate))
        keys = mine()[:pods]
        return keys, {k: virtual[k] for k in keys}, start

    # -- cleanup --------------------------------------------------------------------------

    async def _delete_pods(self, client: KubeClient, namespace: str, selector: str = "") -> None:
        params = {"labelSelector": selector} if selector else None
        await client.request("DELETE", r.PODS.path(namespace), params=params,
                             body={"apiVersion": "v1", "kind": "DeleteOptions",
                                   "gracePeriodSeconds": 0})

    async def _cleanup_direct(self, hns: str, keys: list[str]) -> None:
        await self._delete_pods(self.h, hns)
        gone = self.recorder.host_gone
        await self.wait(f"deletion of the direct pods in {hns}",
                        lambda: sum(k in gone for k in keys), len(keys), 300)
        await self.h.delete(r.NAMESPACES, hns)

    async def _cleanup_syncer(self, vns: str, keys: list[str]) -> None:
        """Delete the arm's pods on both sides at once (the next arm must not wait for the
        syncer's rate-limited deletes), then wait until the syncer is idle again."""
        if self.options.shape == "deployment":
            orphan = {"propagationPolicy": "Orphan"}
            for res in (r.DEPLOYMENTS, r.REPLICASETS):
                await self.v.request("DELETE", res.path(vns), body={
                    "apiVersion": "v1", "kind": "DeleteOptions", **orphan})
        await self._delete_pods(self.v, vns)
        await self._delete_pods(self.h, HOST_NAMESPACE, f"{naming.LABEL_NAMESPACE}={vns}")
        gone = self.recorder.host_gone
        await self.wait(f"deletion of the pods of {vns}", lambda: sum(k in gone for k in keys),
                        len(keys), 300)
        await self.v.delete(r.NAMESPACES, vns)
        await self.wait_idle()

    # -- phases ---------------------------------------------------------------------------

    async def phase(self, name: str, pods: int, rate: float | None) -> PhaseResult:
        """A-B-B-A: direct, syncer, syncer, direct, each in fresh namespaces."""
        arms: list[ArmResult] = []
        for arm in ("A1", "B1", "B2", "A2"):
            run = self.direct_arm if arm.startswith("A") else self.syncer_arm
            arms.append(await run(name, arm, pods, rate))
            await asyncio.sleep(1.0)
        limits = {"host_qps": self.host_limits[0], "host_burst": self.host_limits[1],
                  "virtual_qps": self.virtual_limits[0], "virtual_burst": self.virtual_limits[1],
                  "concurrency": self.concurrency}
        result = PhaseResult(name, rate, limits, arms)
        self.say(f"{name}: efficiency {result.efficiency:.3f}")
        return result

    async def churn(self, count: int, rounds: int) -> ChurnResult:
        """Referenced ConfigMaps/Secrets: created with their pods, updated, released."""
        vns = "churn"
        await self._namespace(self.v, vns)
        await self.wait_idle()
        url = self._syncer().url
        before = await asyncio.to_thread(scrape, url)
        start = time.monotonic()
        self.say(f"churn: {count} pods, each with its own ConfigMap and Secret; {rounds} "
                 "update rounds")

        async def objects(i: int) -> None:
            await self.v.create(r.CONFIGMAPS, {"metadata": {"name": f"cm-{i}"},
                                               "data": {"round": "0", "app.conf": "x" * 256}},
                                vns)
            await self.v.create(r.SECRETS, {"metadata": {"name": f"secret-{i}"},
                                            "data": {"round": _b64("0"),
                                                     "password": _b64("y" * 32)}}, vns)

        await _bounded(count, _CREATORS, objects)
        created: dict[int, float] = {}

        async def pod(i: int) -> None:
            spec = copy.deepcopy(POD_SPEC)
            spec["containers"][0]["envFrom"] = [{"configMapRef": {"name": f"cm-{i}"}}]
            spec["volumes"] = [{"name": "secret", "secret": {"secretName": f"secret-{i}"}}]
            created[i] = time.monotonic()
            await self.v.create(r.PODS, {"metadata": {"name": f"user-{i}"}, "spec": spec}, vns)

        await _bounded(count, _CREATORS, pod)
        refs = self.recorder.refs

        def present(event: str) -> Callable[[int], bool]:
            return lambda i: all((kind, f"{vns}/{name}-{i}", event) in refs
                                 for kind, name in (("ConfigMap", "cm"), ("Secret", "secret")))

        def count_of(check: Callable[[int], bool]) -> Callable[[], int]:
            return lambda: sum(check(i) for i in range(count))

        await self.wait("host copies of the referenced objects", count_of(present("added")),
                        count, 300, bar="churn: referenced objects on the host")
        reference = [(max(refs[(k, f"{vns}/{n}-{i}", "added")]
                          for k, n in (("ConfigMap", "cm"), ("Secret", "secret")))
                      - created[i]) * 1000 for i in range(count)]
        updates: list[float] = []
        for round_ in range(1, rounds + 1):
            sent: dict[tuple[str, int], float] = {}

            async def update(i: int, round_: int = round_, sent: dict[tuple[str, int], float]
                             = sent) -> None:
                sent[("ConfigMap", i)] = time.monotonic()
                await self.v.patch(r.CONFIGMAPS, f"cm-{i}", {"data": {"round": str(round_)}}, vns)
                sent[("Secret", i)] = time.monotonic()
                await self.v.patch(r.SECRETS, f"secret-{i}",
                                   {"data": {"round": _b64(str(round_))}}, vns)

            await _bounded(count, _CREATORS, update)
            values = {"ConfigMap": f"data={round_}", "Secret": f"data={_b64(str(round_))}"}

            def updated(values: dict[str, str] = values) -> int:
                return sum((kind, f"{vns}/{name}-{i}", values[kind]) in refs
                           for i in range(count)
                           for kind, name in (("ConfigMap", "cm"), ("Secret", "secret")))

            await self.wait(f"update round {round_} on the host", updated, 2 * count, 300)
            updates += [(refs[(kind, f"{vns}/{name}-{i}", values[kind])] - sent[(kind, i)]) * 1000
                        for i in range(count)
                        for kind, name in (("ConfigMap", "cm"), ("Secret", "secret"))]
        released: dict[int, float] = {}

        async def release(i: int) -> None:
            released[i] = time.monotonic()
            await self.v.delete(r.PODS, f"user-{i}", vns, grace_period=0)

        await _bounded(count, _CREATORS, release)
        await self.wait("host copies deleted after their pods", count_of(present("deleted")),
                        count, 300, bar="churn: released objects gone from the host")
        release_ms = [(refs[(kind, f"{vns}/{name}-{i}", "deleted")] - released[i]) * 1000
                      for i in range(count)
                      for kind, name in (("ConfigMap", "cm"), ("Secret", "secret"))]
        await self.wait_idle()
        after = await asyncio.to_thread(scrape, url)
        host_writes: dict[str, float] = {}
        for (side, verb, kind), value in _delta(after, before, "vcsync_writes_total").items():
            if side == "host" and kind in ("ConfigMap", "Secret") and value:
                host_writes[f"{verb} {kind}"] = value
        seconds = time.monotonic() - start
        await self._delete_pods(self.h, HOST_NAMESPACE, f"{naming.LABEL_NAMESPACE}={vns}")
        await self.v.delete(r.NAMESPACES, vns)
        await self.wait_idle()
        return ChurnResult(count, rounds, reference, updates, release_ms, host_writes, seconds)

    async def restart(self, target_objects: int) -> RestartResult:
        """Kill the syncer holding ``target_objects`` cached objects; start it again."""
        vns = "restart"
        url = self._syncer().url
        # Host events of the earlier phases' pods (gone) would count as cached objects.
        await self.h.request("DELETE", r.EVENTS.path(HOST_NAMESPACE))
        await self._namespace(self.v, vns)
        await self.wait_idle()
        start_cached = cached = metric(await asyncio.to_thread(scrape, url),
                                       "vcsync_cached_objects")
        per_pod = 5.0  # virtual pod, host pod, token Secret, a host event and its copy
        keys: list[str] = []
        while cached < target_objects and len(keys) < 10 * target_objects:
            pods = max(1, math.ceil((target_objects - cached) / per_pod))
            self.say(f"restart: syncing {pods} more pods ({cached:.0f} of {target_objects} "
                     "cached objects)")
            batch, _, _ = await self._create_pods(vns, "restart", pods, None, first=len(keys))
            keys.extend(batch)
            await self.wait("restart pods Ready", self._counter(keys, self.recorder.virtual_ready),
                            len(keys), self.arm_timeout(pods, None), bar="restart: pods synced")
            await self.wait_idle(quiet=2.0)
            cached = metric(await asyncio.to_thread(scrape, url), "vcsync_cached_objects")
            per_pod = max(1.0, (cached - start_cached) / len(keys))
        pods = len(keys)
        sizes = await self._object_sizes(keys[0])
        cached = metric(await asyncio.to_thread(scrape, url), "vcsync_cached_objects")
        before = self._sample()
        old = self._syncer()
        self.say(f"restart: SIGKILL with {cached:.0f} cached objects")
        await asyncio.to_thread(old.kill)
        path = old.config
        start = time.monotonic()
        fresh = SyncerProcess(VC, self.stack.host, self.stack.virtual, HOST_NAMESPACE,
                              self.stack.root, config=path, identity=f"{VC}-restarted",
                              kubelet_port=self.stack.kubelet_port,
                              metrics_api_port=self.stack.metrics_api_port)
        self.stack.syncers.append(fresh)
        await asyncio.to_thread(fresh.start, False)
        self.syncer = fresh
        ready = await self._until(lambda: _status(f"{fresh.url}/readyz") == 200, 300,
                                  "the restarted syncer's /readyz")
        ready_s = ready - start
        resynced = await self._until(lambda: not syncer_busy(fresh.url), 600,
                                     "the restarted syncer's resync")
        resynced_s = resynced - start
        await asyncio.sleep(3.0)  # late writes would show up here
        await self.wait_idle()
        samples = await asyncio.to_thread(scrape, fresh.url)
        after = self._sample()
        requests: dict[str, float] = {}
        for (cluster, verb, code), value in _requests(samples, [], self._sides()).items():
            if cluster == "host" and value:
                requests[f"{verb} {code}"] = requests.get(f"{verb} {code}", 0) + value
        self.say(f"restart: ready after {ready_s:.2f}s, resync done after {resynced_s:.2f}s")
        return RestartResult(
            pods=pods, cached_objects=cached, ready_s=ready_s, resynced_s=resynced_s,
            host_writes=metric(samples, "vcsync_writes_total", {"side": "host"}),
            all_writes=metric(samples, "vcsync_writes_total"), host_requests=requests,
            writes={" ".join(k): v for k, v in _delta(samples, [], "vcsync_writes_total").items()
                    if v},
            rss_before_kib=before.rss_kib, rss_after_kib=after.rss_kib, object_sizes=sizes,
        )

    async def _object_sizes(self, key: str) -> dict[str, tuple[int, int]]:
        """JSON and Python sizes of the objects the syncer caches for the pod ``key``."""
        namespace, name = key.split("/")
        virtual = await self.v.get(r.PODS, name, namespace)
        host = await self.h.get(r.PODS, naming.host_name(name, namespace, VC), HOST_NAMESPACE)
        secret = await self.h.get(r.SECRETS, token_secret_name(virtual), HOST_NAMESPACE)
        return {what: _sizes(obj) for what, obj in (
            ("virtual pod", virtual), ("host pod", host), ("token Secret", secret))}

    @staticmethod
    def _counter(keys: list[str], seen: dict[str, float]) -> Callable[[], int]:
        return lambda: sum(k in seen for k in keys)

    async def _until(self, check: Callable[[], bool], timeout: float, what: str) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if await asyncio.to_thread(check):
                    return time.monotonic()
            component = self._syncer().component
            if component is not None:
                component.ensure_running()
            await asyncio.sleep(0.02)
        raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")


# -- helpers --------------------------------------------------------------------------------


class _StaticLookup:
    """The caches the pod translator reads, for the direct arm (a fresh namespace: no
    Services of its own; the host DNS Service; the virtual namespace's labels)."""

    def __init__(self, namespace: Obj, host_namespace: str, dns: Obj) -> None:
        self._stores = {(Side.VIRTUAL, r.NAMESPACES): Store(), (Side.HOST, r.SERVICES): Store(),
                        (Side.VIRTUAL, r.SERVICES): Store()}
        self._stores[(Side.VIRTUAL, r.NAMESPACES)].upsert(namespace)
        self._stores[(Side.HOST, r.SERVICES)].upsert(
            {**dns, "metadata": {**dns["metadata"], "namespace": host_namespace}})

    def _store(self, side: Side, resource: r.Resource) -> Store:
        return self._stores.get((side, resource)) or Store()

    def get(self, side: Side, resource: r.Resource, key: str) -> Obj | None:
        return self._store(side, resource).get(key)

    def by_index(self, side: Side, resource: r.Resource, index: str, value: str) -> list[Obj]:
        return self._store(side, resource).by_index(index, value)

    def in_namespace(self, side: Side, resource: r.Resource, namespace: str) -> list[Obj]:
        return self._store(side, resource).by_index("namespace", namespace)


def _virtual_copy(template: Obj, namespace: str, i: int, generated: bool) -> Obj:
    pod = copy.deepcopy(template)
    meta = pod["metadata"]
    name = f"pod-{i:05d}"
    if generated:
        meta["generateName"] = name[:-5]
    meta.update(name=name, namespace=namespace, uid=str(uuid.uuid4()))
    return pod


def _cpu_delta(before: dict[str, float], after: dict[str, float]) -> tuple[dict[str, float],
                                                                          float]:
    """Per-process CPU seconds between two :meth:`Run._stack_cpu` readings, and the share of
    the machine's cores that were busy meanwhile."""
    delta = {k: after[k] - before[k] for k in after if k in before}
    total, busy = delta.pop("machine total", 0.0), delta.pop("machine busy", 0.0)
    return delta, (busy / total if total else 0.0)


def _sizes(obj: Obj) -> tuple[int, int]:
    """(JSON bytes, bytes of the Python objects ``orjson.loads`` makes) of a cached object."""
    payload = orjson.dumps(strip(copy.deepcopy(obj)))
    tracemalloc.start()
    try:
        parsed = orjson.loads(payload)
        size = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del parsed
    return len(payload), size


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


_LABELS = {"rest_client_requests_total": ("host", "method", "code"),
           "vcsync_watch_requests_total": ("host", "code"),
           "vcsync_writes_total": ("side", "verb", "kind")}


def _requests(after: list[Any], before: list[Any], sides: dict[str, str]
              ) -> dict[tuple[str, ...], float]:
    """``rest_client_requests_total`` deltas keyed (side, verb, code): the ``host`` label
    (client-go's: the API server's host:port) told apart by ``sides``, and the watches
    (client-go counts them as GETs; ``vcsync_watch_requests_total`` says how many) under
    the verb ``WATCH``."""
    found: dict[tuple[str, ...], float] = {}
    for (host, method, code), value in _delta(after, before,
                                              "rest_client_requests_total").items():
        key = (sides.get(host, host), method, code)
        found[key] = found.get(key, 0.0) + value
    for (host, code), value in _delta(after, before, "vcsync_watch_requests_total").items():
        side = sides.get(host, host)
        found[(side, "GET", code)] = found.get((side, "GET", code), 0.0) - value
        found[(side, "WATCH", code)] = found.get((side, "WATCH", code), 0.0) + value
    return found


def _delta(after: list[Any], before: list[Any], name: str) -> dict[tuple[str, ...], float]:
    """Per label set, ``after - before`` of counter ``name``; keys are the label values in
    the order of :data:`_LABELS` (the exposition format does not keep declaration order)."""
    order = _LABELS[name]

    def values(samples: list[Any]) -> dict[tuple[str, ...], float]:
        return {tuple(s.labels.get(k, "") for k in order): s.value
                for s in samples if s.name == name}

    old = values(before)
    return {labels: value - old.get(labels, 0.0) for labels, value in values(after).items()}


def _status(url: str) -> int | None:
    from syncer.kube.blocking import probe

    return probe(url, timeout=1.0)


async def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def _bounded(count: int, limit: int, func: Callable[[int], Awaitable[None]]) -> None:
    """``func(0) .. func(count - 1)`` with at most ``limit`` running at once."""
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            i = next_index
            next_index += 1
            await func(i)

    await asyncio.gather(*(worker() for _ in range(min(limit, count))))


@contextlib.contextmanager
def _progress(title: str | None, total: int, enabled: bool) -> Iterator[Callable[[int], None]]:
    if not (title and enabled):
        yield lambda _: None
        return
    from tqdm import tqdm  # type: ignore[import-untyped]

    with tqdm(total=total, desc=title, unit="pod", leave=False, dynamic_ncols=True) as bar:
        def update(count: int) -> None:
            bar.update(count - bar.n)

        yield update


# -- entry point ------------------------------------------------------------------------------


async def _run(stack: LocalStack, options: LoadOptions, say: Say) -> LoadResult:
    from benchmarks.hotpath import machine

    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    start = time.monotonic()
    # The benchmark's own informers reconnect idle watches now and then: not news.
    logging.getLogger("syncer.informer").setLevel(logging.ERROR)
    run = Run(stack, options, say)
    watcher = Watcher(stack, run.recorder)
    await asyncio.to_thread(watcher.start)
    try:
        await run.setup()
        await run.start_syncer(run.config)
        run._dns = await run._dns_service()
        await asyncio.sleep(2.0)
        rest = run._sample()
        say(f"syncer at rest: RSS {rest.rss_kib / 1024:.1f} MiB")
        phases = [await run.phase("burst", options.pods, None)]
        for rate in sorted(r for r in options.rates if r > 0):
            limits = steady_limits(rate, run.cfg)
            if limits != (*run.host_limits, *run.virtual_limits):
                run.host_limits, run.virtual_limits = limits[:2], limits[2:]
                say(f"steady {rate:g}/s: restarting the syncer with host QPS {limits[0]:g}/burst "
                    f"{limits[1]}, virtual QPS {limits[2]:g}/burst {limits[3]} (both arms)")
                await run.start_syncer(_with_limits(run.config, limits[:2], limits[2:]))
            pods = max(1, round(rate * options.steady_seconds))
            phases.append(await run.phase(f"steady-{rate:g}", pods, rate))
        churn = await run.churn(options.churn, options.churn_rounds) if options.churn else None
        restart = await run.restart(options.restart_objects) if options.restart_objects else None
        run._sample()
        return LoadResult(options, phases, churn, restart, rest, run.peak_hwm,
                          time.monotonic() - start, started, machine())
    except KubeError as exc:
        raise BenchError(f"API error: {exc}") from exc
    finally:
        await run.close()
        await asyncio.to_thread(watcher.stop)


def run(options: LoadOptions, say: Say = print) -> LoadResult:
    """Start a local stack, run every phase, stop everything; raises :class:`BenchError`.

    The control planes' directories (certificates, logs, etcd) are removed after
    a successful run and kept after a failure (the error names them).
    """
    import tempfile

    needed = max(options.pods, math.ceil(max(options.rates, default=0) * options.steady_seconds),
                 options.restart_objects // 3 + 1, options.churn)
    per_node = max(110, math.ceil(needed * 1.5 / options.nodes))
    root = options.work_dir or Path(tempfile.mkdtemp(prefix="vcsync-bench-load-"))
    try:
        with local_stack(root, nodes=options.nodes, pods_per_node=per_node, say=say) as stack:
            result = uvloop.run(_run(stack, options, say))
    except (BenchError, LaunchError) as exc:
        lines = str(exc).splitlines() or [""]
        lines[0] += f" (logs under {root})"
        raise BenchError("\n".join(lines)) from exc
    if options.work_dir is None:
        shutil.rmtree(root, ignore_errors=True)
    return result

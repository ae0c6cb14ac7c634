"""Hot-path micro benchmark: the syncer's CPU per pod event, stage by stage, no I/O.

The stages a virtual pod's ADDED event goes through in ``vcsync run``, each
timed over a batch of distinct pods (so caches hold many objects, as they do
in a running syncer):

1. **parse**: ``orjson.loads`` of the watch-event line (what the client does);
2. **store**: ``strip`` + ``Store.upsert`` into the virtual pod cache with
   every index the enabled translators register (the engine's real wiring);
3. **key**: ``object_key`` and the shard the queue would pick (crc32);
4. **translate**: ``Controller.plan`` for the key, as ``reconcile`` calls it
   (both caches read; ``to_host`` builds the host pod);
5. **patch**: ``PodTranslator.sync`` against the host pod once the host ran
   it (binding, status patch, spec and token checks: the second reconcile);
6. **serialize**: ``orjson.dumps`` of the host pod and of the status patch.

The pod is realistic: 3 containers with env (values, ConfigMap/Secret key
refs, field refs), envFrom, probes, resources, volume mounts; ConfigMap,
Secret, emptyDir and the injected ``kube-api-access`` volume; 3 Services in
its namespace (service-link variables); managedFields as the API server
returns them. For comparison, the same JSON goes through kubernetes_asyncio's
model path (``ApiClient.deserialize(..., "V1Pod")``) in the same run.

The cyclic collector runs with the thresholds ``vcsync run`` sets
(:mod:`syncer.collector`); its pauses are reported as their own stage.

Timed in this thread's CPU time (``time.thread_time_ns``), so other processes
on a shared machine do not inflate the figures; the clock's own cost is
subtracted from every interval.

Run: ``vcsync bench hotpath [--pods 2000] [--rounds 7]`` (or
``python -m benchmarks.hotpath``).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import gc
import platform
import statistics
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import orjson

from contract import naming
from contract import resources as r
from contract.resources import Obj
from contract.translator import Context, Create, Patch, Side
from syncer import app, collector, config
from syncer.controller import CacheLookup, Controller, Engine, Wiring
from syncer.informer import InformerSet
from syncer.kube.client import KubeClient
from syncer.store import object_key, strip
from syncer.writer import EventRecorder, StatusBatcher, Writer
from translators import pods

VC = "bench"
HOST_NAMESPACE = "vcluster-bench"
NAMESPACE = "shop"
STAGES = ("parse", "store", "key", "translate", "patch", "serialize")
SHARDS = 8


# -- the objects ----------------------------------------------------------------------


def _managed_fields() -> list[Obj]:
    return [{
        "manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
        "time": "2026-11-20T10:00:00Z", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:generateName": {}, "f:labels": {
            ".": {}, "f:app": {}, "f:pod-template-hash": {}, "f:tier": {}},
            "f:ownerReferences": {".": {}, 'k:{"uid":"rs-uid"}': {}}},
            "f:spec": {"f:containers": {f'k:{{"name":"{n}"}}': {
                ".": {}, "f:env": {}, "f:image": {}, "f:name": {}, "f:resources": {}}
                for n in ("app", "sidecar", "logs")}}},
    }]


def _container(name: str, image: str, port: int) -> Obj:
    return {
        "name": name, "image": image, "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "env": [
            {"name": "LOG_LEVEL", "value": "info"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1",
                                                            "fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {
                "apiVersion": "v1", "fieldPath": "metadata.namespace"}}},
            {"name": "DB_HOST", "valueFrom": {"configMapKeyRef": {"name": "app-config",
                                                                 "key": "db.host"}}},
            {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "app-secret",
                                                                  "key": "password"}}},
        ],
        "envFrom": [{"configMapRef": {"name": "app-env"}}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                      "limits": {"memory": "256Mi"}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": port, "scheme": "HTTP"},
                           "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1,
                           "failureThreshold": 3},
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/app", "readOnly": True},
            {"name": "tls", "mountPath": "/etc/tls", "readOnly": True},
            {"name": "scratch", "mountPath": "/tmp"},
            {"name": "kube-api-access-x7k2p", "mountPath":
             "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": True},
        ],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }


def virtual_pod(i: int) -> Obj:
    """A pod as the virtual API server returns it (defaults and admission applied)."""
    name = f"web-7d4b9c8f6-{i:05d}"
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "generateName": "web-7d4b9c8f6-", "namespace": NAMESPACE,
            "uid": f"0d3c6f1e-2b4a-4c8e-9f00-{i:012d}", "resourceVersion": str(1000 + i),
            "creationTimestamp": "2026-11-20T10:00:00Z",
            "labels": {"app": "web", "pod-template-hash": "7d4b9c8f6", "tier": "frontend"},
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                 "name": "web-7d4b9c8f6", "uid": "rs-uid", "controller": True,
                                 "blockOwnerDeletion": True}],
            "managedFields": _managed_fields(),
        },
        "spec": {
            "containers": [_container("app", "registry.example.com/shop/web:1.4.2", 8080),
                           _container("sidecar", "envoyproxy/envoy:v1.31.0", 9901),
                           _container("logs", "fluent/fluent-bit:3.1", 2020)],
            "volumes": [
                {"name": "config", "configMap": {"name": "app-config", "defaultMode": 420}},
                {"name": "tls", "secret": {"secretName": "app-tls", "defaultMode": 420}},
                {"name": "scratch", "emptyDir": {}},
                {"name": "kube-api-access-x7k2p", "projected": {"defaultMode": 420, "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt",
                                   "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                        "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
                ]}},
            ],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst", "serviceAccountName": "default",
            "serviceAccount": "default", "securityContext": {}, "schedulerName":
            "default-scheduler", "enableServiceLinks": True, "priority": 0,
            "preemptionPolicy": "PreemptLowerPriority",
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                 "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                 "effect": "NoExecute", "tolerationSeconds": 300},
            ],
        },
        "status": {"phase": "Pending", "qosClass": "Burstable"},
    }


def _service(name: str, ip: str, ports: list[Obj], namespace: str = NAMESPACE) -> Obj:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "uid": f"svc-{name}",
                         "resourceVersion": "10"},
            "spec": {"clusterIP": ip, "ports": ports, "selector": {"app": name}}}


def _running(host: Obj, i: int) -> Obj:
    """The host pod after the scheduler and kwok had it: bound, Running, Ready."""
    now = "2026-11-20T10:00:02Z"
    meta = {**host["metadata"], "uid": f"host-{i}", "resourceVersion": str(5000 + i),
            "creationTimestamp": "2026-11-20T10:00:01Z"}
    conditions = [{"type": t, "status": "True", "lastTransitionTime": now}
                  for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]
    return {
        **host, "metadata": meta, "spec": {**host["spec"], "nodeName": "kwok-node-1"},
        "status": {
            "phase": "Running", "conditions": conditions, "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}], "podIP": f"127.128.{i // 250}.{i % 250}",
            "podIPs": [{"ip": f"127.128.{i // 250}.{i % 250}"}], "startTime": now,
            "qosClass": "Burstable",
            "containerStatuses": [
                {"name": c["name"], "image": c["image"], "ready": True, "restartCount": 0,
                 "state": {"running": {"startedAt": now}}}
                for c in host["spec"]["containers"]
            ],
        },
    }


class _NoClient:
    """Stands in for both API clients: the hot path never reaches them."""

    name = "none"


@dataclass
class World:
    """The engine's caches and one pod controller, wired as ``vcsync run`` wires them."""

    informers: InformerSet
    controller: Controller
    ctx: Context

    @property
    def translator(self) -> pods.PodTranslator:
        return cast(pods.PodTranslator, self.controller.translator)


def build_world() -> World:
    """Real translators (the default configuration), real stores and indexes, no clients."""
    cfg = config.parse({})
    clients = cast(dict[Side, KubeClient], {Side.VIRTUAL: _NoClient(), Side.HOST: _NoClient()})
    informers = InformerSet(clients, HOST_NAMESPACE, f"{naming.LABEL_MANAGED_BY}={VC}")
    ctx = Context(VC, HOST_NAMESPACE, CacheLookup(informers),
                  facts=app.translator_facts(cfg, "10.96.0.2"))
    status = StatusBatcher(clients[Side.VIRTUAL], lambda: True)
    writer = Writer(clients, VC, HOST_NAMESPACE, lambda: True, status)
    events = EventRecorder(clients[Side.VIRTUAL], lambda: True)
    engine = Engine(app.select_translators(cfg), Wiring(
        informers, writer, status, events, ctx, lambda: True, shards=SHARDS,
        workers_per_shard=cfg.syncer.workers_per_shard))
    store = informers.store
    store(Side.VIRTUAL, r.NAMESPACES).upsert({"metadata": {
        "name": NAMESPACE, "uid": "ns-uid", "labels": {"kubernetes.io/metadata.name": NAMESPACE,
                                                        "team": "shop"}}})
    for name, ip, port in (("web", "10.96.10.1", 80), ("cart", "10.96.10.2", 8080),
                           ("redis", "10.96.10.3", 6379)):
        store(Side.VIRTUAL, r.SERVICES).upsert(_service(
            name, ip, [{"name": "main", "port": port, "protocol": "TCP", "targetPort": port}]))
    dns = _service(naming.host_name("kube-dns", "kube-system", VC), "10.96.0.10",
                   [{"name": "dns", "port": 53, "protocol": "UDP"}], HOST_NAMESPACE)
    store(Side.HOST, r.SERVICES).upsert(dns)
    return World(informers, engine.controllers["pods"], ctx)


# -- timing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HotpathResult:
    pods: int
    rounds: int
    stages_us: dict[str, float]
    """µs per pod of each stage (and ``gc``) in the least disturbed round."""
    total_us: float
    median_total_us: float
    """The median over all rounds of the total (how noisy the machine was)."""
    model_us: float
    """kubernetes_asyncio: ``ApiClient.deserialize`` of the same pod into a ``V1Pod``."""
    model_parse_only_us: float
    """Of which stdlib ``json.loads`` (what the model path parses with)."""
    event_bytes: int
    host_pod_bytes: int
    machine: dict[str, str]

    @property
    def speedup(self) -> float:
        """How many times faster the whole hot path is than the model path alone."""
        return self.model_us / self.total_us

    def as_dict(self) -> Obj:
        return {
            "pods": self.pods, "rounds": self.rounds, "stages_us": self.stages_us,
            "total_us": self.total_us, "median_total_us": self.median_total_us,
            "model_path_us": self.model_us,
            "model_path_json_loads_us": self.model_parse_only_us,
            "speedup_vs_model_path": self.speedup, "event_bytes": self.event_bytes,
            "host_pod_bytes": self.host_pod_bytes, "machine": self.machine,
        }


_now = time.thread_time_ns
"""CPU time of this thread: what other processes on a shared machine do is not counted."""


def _timer_cost() -> int:
    """Nanoseconds one reading of the clock adds to an interval (subtracted from each)."""
    samples = []
    for _ in range(2000):
        start = _now()
        samples.append(_now() - start)
    return int(statistics.median(samples))


def _timed(func: Callable[[], object]) -> float:
    start = _now()
    func()
    return (_now() - start) / 1000


class _GcClock:
    """Time spent in the cyclic garbage collector, charged to the stage that triggered it."""

    def __init__(self) -> None:
        self.stage = ""
        self.by_stage: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self._start = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = _now()
        elif self.stage:
            self.by_stage[self.stage] += (_now() - self._start) / 1000


def _one_round(lines: list[bytes]) -> tuple[dict[str, float], float]:
    """Every line through every stage, one pod after the other, as the syncer sees a stream.

    Returns the µs spent in each stage's own code (collector pauses taken out)
    and the µs spent in the collector, both summed over all lines.
    """
    world = build_world()
    store = world.informers.store(Side.VIRTUAL, r.PODS)
    translator, ctx, controller = world.translator, world.ctx, world.controller
    clock = _GcClock()
    spent = dict.fromkeys(STAGES, 0)
    now = _now
    overhead = _timer_cost()
    gc.callbacks.append(clock)
    try:
        for i, line in enumerate(lines):
            clock.stage = "parse"
            t0 = now()
            obj = orjson.loads(line)["object"]
            clock.stage = "store"
            t1 = now()
            store.upsert(strip(obj))
            clock.stage = "key"
            t2 = now()
            key = object_key(obj)
            zlib.crc32(key.encode()) % SHARDS
            clock.stage = "translate"
            t3 = now()
            actions = controller.plan(store.get(key), controller.host_for(key))
            pod = next(a.obj for a in actions if isinstance(a, Create))
            clock.stage = ""
            t4 = now()
            host = _running(pod, i)  # what the host API server and kwok make of it: not ours
            clock.stage = "patch"
            t5 = now()
            status = next(a.patch for a in translator.sync(obj, host, ctx)
                          if isinstance(a, Patch) and a.subresource == "status")
            clock.stage = "serialize"
            t6 = now()
            orjson.dumps(pod)
            orjson.dumps(status)
            t7 = now()
            clock.stage = ""
            for stage, duration in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t6 - t5,
                                                t7 - t6), strict=True):
                spent[stage] += duration
    finally:
        gc.callbacks.remove(clock)
    correction = overhead * len(lines) / 1000
    code = {stage: max(0.0, spent[stage] / 1000 - clock.by_stage[stage] - correction)
            for stage in STAGES}
    return code, sum(clock.by_stage.values())


async def _model_path(bodies: list[bytes], rounds: int) -> tuple[float, float]:
    """µs per pod of ``ApiClient.deserialize(response, "V1Pod")`` and of its json.loads alone
    (collector pauses included: the model path allocates far more objects than ours)."""
    import json

    from kubernetes_asyncio import client as k8s_client

    api = k8s_client.ApiClient()

    class Response:
        def __init__(self, data: bytes) -> None:
            self.data = data

    try:
        responses: list[Any] = [Response(b) for b in bodies]
        model, plain = [], []
        for _ in range(rounds):
            model.append(_timed(lambda: [api.deserialize(x, "V1Pod") for x in responses]))
            plain.append(_timed(lambda: [json.loads(b) for b in bodies]))
    finally:
        await api.close()
    return min(model) / len(bodies), min(plain) / len(bodies)  # least disturbed, as ours


def machine() -> dict[str, str]:
    """What the figures came from."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return {"cpu": cpu, "cores": str(os.cpu_count()), "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def run(pods_count: int = 2000, rounds: int = 7) -> HotpathResult:
    """Time every stage over ``pods_count`` distinct pods, ``rounds`` times (best round)."""
    if pods_count < 1 or rounds < 1:
        raise ValueError("pods and rounds must be at least 1")
    objects = [virtual_pod(i) for i in range(pods_count)]
    lines = [orjson.dumps({"type": "ADDED", "object": o}) for o in objects]
    bodies = [orjson.dumps(o) for o in objects]
    _one_round(lines[: min(50, len(lines))])  # warm up imports and caches
    results: list[dict[str, float]] = []
    previous = collector.tune()
    try:
        for _ in range(rounds):
            gc.collect()
            code, paused = _one_round(lines)
            per_pod = {stage: micros / pods_count for stage, micros in code.items()}
            per_pod["gc"] = paused / pods_count
            results.append(per_pod)
        model, plain = asyncio.run(_model_path(bodies[: min(pods_count, 500)], max(1, rounds)))
    finally:
        gc.set_threshold(*previous)
    # The least disturbed round (as timeit advises): on a shared machine every disturbance
    # only adds time. The median of all rounds is kept for comparison.
    stages = min(results, key=lambda r: sum(r.values()))
    median_total = statistics.median(sum(r.values()) for r in results)
    world = build_world()
    host = next(a.obj for a in world.translator.to_host(copy.deepcopy(objects[0]), world.ctx)
                if isinstance(a, Create))
    return HotpathResult(
        pods=pods_count, rounds=rounds, stages_us=stages, total_us=sum(stages.values()),
        median_total_us=median_total,
        model_us=model, model_parse_only_us=plain, event_bytes=len(lines[0]),
        host_pod_bytes=len(orjson.dumps(host)), machine=machine(),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="hot-path micro benchmark (µs per pod)")
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    result = run(args.pods, args.rounds)
    for stage in (*STAGES, "gc"):
        print(f"{stage:10s} {result.stages_us[stage]:8.2f} µs")
    print(f"{'total':10s} {result.total_us:8.2f} µs per pod; model path "
          f"{result.model_us:.1f} µs ({result.speedup:.0f}x)")


if __name__ == "__main__":
    main()

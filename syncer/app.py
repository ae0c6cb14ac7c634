"""The ``vcsync run`` process: clients, engine, health/metrics server, lease, signals.

Lifecycle:
1. load and validate the configuration (bad input: exit 2 with the key named);
2. connect to both API servers, build the enabled translators' controllers;
   the cyclic collector is tuned for a cache holder and the synced caches are
   frozen out of its scans (:mod:`syncer.collector`);
3. serve ``/healthz``, ``/readyz`` (caches synced), ``/metrics`` and
   ``/debug/statistics`` on one aiohttp server, the kubelet endpoint
   (:mod:`syncer.kubelet`) and the metrics API (:mod:`syncer.metricsapi`) each on
   its own TLS port;
4. with ``--leader-elect``, only the Lease holder writes; losing the lease
   closes the write gate at once; the writer (the only replica, or the leader
   once it leads) registers the metrics API in the virtual cluster;
5. SIGTERM/SIGINT: stop taking work, finish in-flight writes, release the
   lease, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import os
import signal
import socket
import ssl
import sys
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import structlog
import uvloop
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from contract import discovery, naming
from contract.facts import Endpoint, Facts, HostPolicy
from contract.options import PodOptions
from contract.resources import CONFIGMAPS, PODS, SECRETS, SERVICES
from contract.translator import Context, Side, Translator
from syncer import collector
from syncer import config as config_mod
from syncer.controller import CacheLookup, Engine, Wiring
from syncer.informer import InformerSet
from syncer.kube.client import ClientSettings, KubeClient
from syncer.kube.credentials import CredentialsError
from syncer.kube.errors import KubeError, NotFound
from syncer.kubelet.loop import CrossLoopHost, LoopThread
from syncer.kubelet.pods import CachedPods
from syncer.kubelet.server import KubeletServer
from syncer.kubelet.tls import TlsError, server_context
from syncer.leader import LeaderElector
from syncer.metrics import SyncerMetrics, WorkqueueMetrics
from syncer.metricsapi import apiservice
from syncer.metricsapi.server import MetricsApiServer
from syncer.snapshot.endpoint import SnapshotEndpoint, Source
from syncer.writer import EventRecorder, StatusBatcher, Writer

log = logging.getLogger("vcsync")


REGISTRATION_BACKOFF_MAX = 30.0
"""Seconds between attempts to register the metrics API, at most."""


class StartupError(RuntimeError):
    """Something the syncer needs on the host is missing; the message says what."""


@dataclass(frozen=True)
class RunOptions:
    """What ``vcsync run`` was asked to do (flags, not sync rules)."""

    name: str
    host_namespace: str
    virtual_kubeconfig: str
    host_kubeconfig: str | None = None
    config_path: str | None = None
    set_values: tuple[str, ...] = ()
    health_address: str = "127.0.0.1:8080"
    leader_elect: bool = False
    api_service: str = ""
    """Host Service (in the host namespace) that fronts the virtual API server; default: name."""
    identity: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    log_level: str = "info"
    kubelet_address: str = "127.0.0.1:10250"
    """IP:port of the kubelet endpoint virtual Nodes point at; "off" (or empty) disables it."""
    kubelet_ca_cert: str = ""
    kubelet_ca_key: str = ""
    """The kubelet CA the virtual kube-apiserver's kubelet client certificate comes from."""
    metrics_api_port: int = 9443
    """127.0.0.1 port of the metrics API (``kubectl top``); 0 disables it."""
    snapshot_address: str = ""
    """IP:port of ``GET /snapshot`` (syncer.snapshot.endpoint); empty: not served."""
    snapshot_store: str = ""
    snapshot_pki: str = ""
    kubernetes_version: str = ""
    """Of the virtual control plane, for the snapshot's manifest."""

    def snapshot_source(self) -> Source | None:
        if not self.snapshot_address:
            return None
        if not (self.snapshot_store and self.snapshot_pki and self.kubernetes_version):
            raise ValueError("--snapshot-address needs --snapshot-store, --snapshot-pki and "
                             "--kubernetes-version")
        return Source(self.name, self.host_namespace, Path(self.snapshot_store),
                      Path(self.snapshot_pki), Path(self.config_path) if self.config_path
                      else None, self.kubernetes_version)

    def kubelet_endpoint(self) -> Endpoint | None:
        """The endpoint's (IP, port), None when off; ValueError says what is wrong."""
        if self.kubelet_address in ("", "off"):
            return None
        host, sep, port = self.kubelet_address.rpartition(":")
        try:
            ip = ipaddress.ip_address(host.strip("[]"))
            number = int(port)
        except ValueError as exc:
            raise ValueError(f"--kubelet-address {self.kubelet_address!r}: expected IP:PORT "
                             "(virtual Nodes show that IP) or off") from exc
        if not sep or ip.is_unspecified or not 0 < number < 65536:
            raise ValueError(f"--kubelet-address {self.kubelet_address!r}: needs a concrete IP "
                             "and a port (virtual Nodes show both)")
        if not (self.kubelet_ca_cert and self.kubelet_ca_key):
            raise ValueError("the kubelet endpoint needs --kubelet-ca-cert and --kubelet-ca-key "
                             "(the CA of the virtual kube-apiserver's kubelet client "
                             "certificate), or --kubelet-address=off")
        return str(ip), number

    def metrics_api(self) -> int | None:
        """The metrics API's port, None when off; ValueError says what is wrong."""
        if self.metrics_api_port == 0:
            return None
        if not 0 < self.metrics_api_port < 65536:
            raise ValueError(f"--metrics-api-port {self.metrics_api_port}: not a port")
        if not (self.kubelet_ca_cert and self.kubelet_ca_key):
            raise ValueError("the metrics API needs --kubelet-ca-cert and --kubelet-ca-key "
                             "(they also sign the virtual kube-apiserver's front-proxy client "
                             "certificate), or --metrics-api-port=0")
        return self.metrics_api_port


LOG_KEYS = ("ts", "level", "logger", "msg")
"""The first keys of every log line, as controller-runtime's zap logger writes them."""


def configure_logging(level: str) -> None:
    """JSON lines (structlog + orjson) for our logs and the stdlib ones alike.

    Every line: ``ts`` (RFC 3339, UTC), ``level``, ``logger``, ``msg`` (the keys
    of controller-runtime's JSON logs, which log tooling for operators reads),
    then ``kind`` and ``key`` of the object being reconciled, every field passed
    with ``extra=``, and ``exception`` (the traceback) if there is one.
    """
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
        structlog.stdlib.ExtraAdder(),
    ]
    renderer = structlog.processors.JSONRenderer(
        serializer=lambda obj, **_: orjson.dumps(obj, default=str).decode()
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _operator_keys,
            renderer,
        ],
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def _operator_keys(_: Any, __: str, event: MutableMapping[str, Any]) -> dict[str, Any]:
    """structlog's ``event`` becomes ``msg``; :data:`LOG_KEYS` come first."""
    event["msg"] = event.pop("event", "")
    first = {key: event.pop(key) for key in LOG_KEYS if key in event}
    return {**first, **event}


def load_config(options: RunOptions) -> config_mod.SyncerConfig:
    return read_config(options.config_path, options.set_values)


def read_config(path: str | None, set_values: Sequence[str] = ()) -> config_mod.SyncerConfig:
    """The file at ``path`` (or the defaults) with Helm-style ``--set`` overrides applied.

    Shared by every command that takes ``--config``/``--set``, so they all read
    the sync rules the same way.
    """
    data = config_mod.to_dict(config_mod.load(path))
    for assignment in set_values:
        data = config_mod.apply_set(data, assignment)
    return config_mod.parse(data)


def translator_facts(
    cfg: config_mod.SyncerConfig, api_service_ip: str, kubelet_endpoint: Endpoint | None = None,
) -> Facts:
    """The facts translators get: the API Service's ClusterIP from the host, the kubelet
    endpoint from the flags, the rest from the configuration.

    One function so that ``vcsync translate`` (no host) hands translators
    exactly the facts ``vcsync run`` does.
    """
    return Facts(
        api_service_ip=api_service_ip,
        pod_security_standard=cfg.policies.pod_security_standard.value,
        policy=host_policy(cfg),
        kubelet_endpoint=kubelet_endpoint,
        synced=frozenset(t.kind for t in select_translators(cfg)),
    )


def host_policy(cfg: config_mod.SyncerConfig) -> HostPolicy:
    """The ``policies`` (and the pod defaults of ``sync.toHost.pods``) for translators."""
    p, pods_section = cfg.policies, cfg.sync.to_host.section("pods", PodOptions)
    return HostPolicy(
        runtime_classes=frozenset(p.runtime_classes.allowed),
        schedulers=frozenset(p.schedulers.allowed),
        external_names=p.external_names.allowed,
        max_priority=p.priority_classes.max_value,
        allow_preemption=p.priority_classes.allow_preemption,
        runtime_class=pods_section.runtime_class_name,
        priority_class=pods_section.priority_class_name,
    )


def select_translators(cfg: config_mod.SyncerConfig) -> list[Translator]:
    """The enabled translators: built-in kinds under ``sync``, third-party under ``plugins``.

    A ``plugins`` kind with no installed translator is a configuration error
    (a typo must not silently sync nothing).
    """
    tree = config_mod.to_dict(cfg)
    classes = discovery.available()
    for kind in tree["plugins"]:
        if kind not in classes:
            raise config_mod.ConfigError(
                f"plugins.{kind}", f"no installed translator has this kind; installed: "
                f"{', '.join(sorted(classes))}"
            )
    return discovery.enabled(discovery.sections(tree["sync"], tree["plugins"], classes), classes)


class Syncer:
    """One virtual cluster's syncer; :meth:`run` returns the process exit code."""

    def __init__(
        self, options: RunOptions, cfg: config_mod.SyncerConfig,
        translators: list[Translator],
    ) -> None:
        self.options = options
        self.cfg = cfg
        self.translators = translators
        self.registry = CollectorRegistry()
        self.metrics = SyncerMetrics(self.registry)
        self.queue_metrics = WorkqueueMetrics(self.registry)
        self._elect_leader = options.leader_elect or cfg.syncer.leader_election.enabled
        self._leading = not self._elect_leader
        self._stop = asyncio.Event()
        self.engine: Engine | None = None
        self.elector: LeaderElector | None = None
        self.kubelet: KubeletServer | None = None
        self._kubelet_thread: LoopThread | None = None
        self.metrics_api: MetricsApiServer | None = None
        self._kubelet_endpoint = options.kubelet_endpoint()
        self._metrics_api_port = options.metrics_api()
        self._registration: tuple[KubeClient, int, bytes] | None = None
        """(virtual client, port, CA bundle) of the metrics API's APIService, once serving."""

    def may_write(self) -> bool:
        """The write gate: always open without election; with it, only while the Lease is
        ours *now* (the elector checks its renew deadline itself, so a stalled event
        loop cannot keep writing on an expired lease)."""
        if self.elector is None:
            return self._leading
        return self._leading and self.elector.is_leader

    async def _clients(self) -> dict[Side, KubeClient]:
        s = self.cfg.syncer
        observe = self.metrics.observe_request
        virtual = await KubeClient.from_kubeconfig(
            self.options.virtual_kubeconfig, name="virtual", observer=observe,
            settings=ClientSettings(qps=s.virtual.qps, burst=s.virtual.burst),
        )
        host_settings = ClientSettings(qps=s.host.qps, burst=s.host.burst)
        if self.options.host_kubeconfig:
            host = await KubeClient.from_kubeconfig(
                self.options.host_kubeconfig, name="host", observer=observe, settings=host_settings
            )
        else:
            host = KubeClient.in_cluster(name="host", observer=observe, settings=host_settings)
        return {Side.VIRTUAL: virtual, Side.HOST: host}

    async def _facts(self, host: KubeClient) -> Facts:
        """What pods need from the world besides the caches (see translators.pods)."""
        name = self.options.api_service or self.options.name
        try:
            service = await host.get(SERVICES, name, self.options.host_namespace)
        except NotFound as exc:
            raise StartupError(
                f"the host Service {self.options.host_namespace}/{name} that fronts the "
                "virtual API server does not exist (set --api-service)"
            ) from exc
        return translator_facts(self.cfg, service["spec"].get("clusterIP", ""),
                                self._kubelet_endpoint)

    def _build(self, clients: dict[Side, KubeClient], facts: Facts) -> Engine:
        opts = self.options
        informers = InformerSet(
            clients, opts.host_namespace, f"{naming.LABEL_MANAGED_BY}={opts.name}"
        )
        ctx = Context(opts.name, opts.host_namespace, lookup=CacheLookup(informers),
                      facts=facts)
        status = StatusBatcher(clients[Side.VIRTUAL], self.may_write,
                               observer=self.metrics.observe_write)
        writer = Writer(clients, opts.name, opts.host_namespace, self.may_write, status,
                        observer=self.metrics.observe_write)
        events = EventRecorder(clients[Side.VIRTUAL], self.may_write)
        engine = Engine(self.translators, Wiring(
            informers, writer, status, events, ctx, self.may_write,
            shards=self.cfg.syncer.shards, workers_per_shard=self.cfg.syncer.workers_per_shard,
            queue_metrics=self.queue_metrics,
        ))
        writer.use_caches(informers.existing_store(Side.HOST, SECRETS),
                          informers.existing_store(Side.VIRTUAL, CONFIGMAPS))
        return engine

    async def _serve_kubelet(self, host: KubeClient, engine: Engine) -> None:
        """Listen on the kubelet endpoint (its pod lookups read the engine's caches), on a
        stdlib loop in a thread of its own (see :mod:`syncer.kubelet.loop` for why).

        ``reuse_port``: replicas of one syncer on one machine (the local launcher's
        leader-election set-ups) share the address virtual Nodes show, as replicas in
        their own pods each have it; any of them can answer, none of them writes.
        """
        endpoint = self._kubelet_endpoint
        if endpoint is None:
            log.info("kubelet endpoint off: kubectl logs/exec/attach/port-forward will not "
                     "reach pods of this virtual cluster")
            return
        tls = self._tls("kubelet endpoint", [endpoint[0]])
        self.kubelet = KubeletServer(
            self._cached_pods(engine), CrossLoopHost(host, asyncio.get_running_loop()), tls,
            ready=engine.ready, observer=self.metrics.observe_kubelet)
        self._kubelet_thread = LoopThread("kubelet-endpoint")
        try:
            await self._kubelet_thread.run(self.kubelet.start(*endpoint))
        except OSError as exc:
            await self._kubelet_thread.close()
            raise StartupError(f"kubelet endpoint {endpoint[0]}:{endpoint[1]}: {exc}") from exc

    async def _serve_metrics_api(self, clients: dict[Side, KubeClient], engine: Engine) -> None:
        """Listen on the metrics API's port; its certificate names what the aggregator
        verifies (the routing Service's DNS name) and the loopback it dials."""
        port = self._metrics_api_port
        if port is None:
            log.info("metrics API off: kubectl top will not work in this virtual cluster")
            return
        tls = self._tls("metrics API", ["127.0.0.1"],
                        ["localhost", apiservice.server_name(apiservice.VIRTUAL_SERVICE)])
        self.metrics_api = MetricsApiServer(
            self._cached_pods(engine), clients[Side.VIRTUAL], clients[Side.HOST],
            self.options.host_namespace, self.options.name, tls, ready=engine.ready)
        try:
            await self.metrics_api.start(port)
        except OSError as exc:
            raise StartupError(f"metrics API 127.0.0.1:{port}: {exc}") from exc
        self._registration = (clients[Side.VIRTUAL], port, self._kubelet_ca())

    def _kubelet_ca(self) -> bytes:
        """The APIService's caBundle: the CA the endpoints' serving certificates come from."""
        try:
            return Path(self.options.kubelet_ca_cert).read_bytes()
        except OSError as exc:
            raise StartupError(f"kubelet CA: {exc}") from exc

    def _tls(self, what: str, ips: list[str], dns: Sequence[str] = ()) -> ssl.SSLContext:
        """An endpoint's TLS from the kubelet CA (:func:`~syncer.kubelet.tls.server_context`),
        a StartupError naming ``what`` when the CA files are unusable."""
        opts = self.options
        try:
            return server_context(Path(opts.kubelet_ca_cert), Path(opts.kubelet_ca_key), ips,
                                  dns)
        except (TlsError, OSError, ValueError) as exc:
            raise StartupError(f"{what}: {exc}") from exc

    def _cached_pods(self, engine: Engine) -> CachedPods:
        informers = engine.informers
        return CachedPods(informers.existing_store(Side.VIRTUAL, PODS),
                          informers.existing_store(Side.HOST, PODS), self.options.name,
                          self.options.host_namespace)

    async def _register_metrics_api(self) -> None:
        """Route the virtual cluster's ``metrics.k8s.io`` to this syncer, retrying with
        backoff until it is done (a task of its own: until then only ``kubectl top`` is
        missing, everything else works)."""
        if self._registration is None:
            return
        delay = 1.0
        while True:
            try:
                await apiservice.register(*self._registration)
                return
            except KubeError as exc:
                log.warning("registering the metrics API in the virtual cluster failed, "
                            "retrying in %.0fs: %s", delay, exc)
            await asyncio.sleep(delay)
            delay = min(2 * delay, REGISTRATION_BACKOFF_MAX)

    async def run(self) -> int:
        try:
            clients = await self._clients()
        except CredentialsError as exc:
            log.error("cannot start: %s", exc)
            return 1
        try:
            facts = await self._facts(clients[Side.HOST])
            self.engine = self._build(clients, facts)
            await self._serve_kubelet(clients[Side.HOST], self.engine)
            await self._serve_metrics_api(clients, self.engine)
        except StartupError as exc:
            log.error("cannot start: %s", exc)
            if self.kubelet is not None:
                await self.kubelet.stop()
            for client in clients.values():
                await client.close()
            return 1
        runner = await self._serve()
        snapshots = await self._serve_snapshots()
        tasks = [asyncio.create_task(self.engine.run(), name="engine"),
                 asyncio.create_task(self._freeze_when_synced(self.engine), name="gc-freeze")]
        if self._elect_leader:
            tasks.append(asyncio.create_task(self._elect(clients[Side.HOST]), name="leader"))
        else:
            tasks.append(asyncio.create_task(self._register_metrics_api(), name="metrics-api"))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        log.info("vcsync started", extra={"vcluster": self.options.name})
        await self._stop.wait()
        log.info("stopping: draining work")
        await self.engine.stop()
        if self.elector is not None:
            await self.elector.release()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.kubelet is not None and self._kubelet_thread is not None:
            await self._kubelet_thread.run(self.kubelet.stop())
            await self._kubelet_thread.close()
        if self.metrics_api is not None:
            await self.metrics_api.stop()
        await runner.cleanup()
        if snapshots is not None:
            await snapshots.stop()
        for client in clients.values():
            await client.close()
        log.info("stopped")
        return 0

    async def _freeze_when_synced(self, engine: Engine) -> None:
        await engine.started.wait()
        log.info("collector: %d start-up objects frozen", collector.freeze_caches())

    async def _elect(self, host: KubeClient) -> None:
        le = self.cfg.syncer.leader_election
        self.elector = LeaderElector(
            host, self.options.host_namespace, naming.lease_name(self.options.name),
            self.options.identity, lease_duration=le.lease_duration,
            renew_deadline=le.renew_deadline, retry_period=le.retry_period,
            on_change=lambda leading: self.metrics.leader.labels(self.options.name).set(
                int(leading)
            ),
        )
        await self.elector.run(self._started_leading, self._stopped_leading)

    async def _started_leading(self) -> None:
        log.info("became leader", extra={"identity": self.options.identity})
        self._leading = True
        if self.engine is not None:
            self.engine.resync()
        await self._register_metrics_api()

    def _stopped_leading(self) -> None:
        log.warning("lost leadership: writes stopped", extra={"identity": self.options.identity})
        self._leading = False

    # -- health / metrics server --------------------------------------------

    async def _serve(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/debug/statistics", self._statistics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        host, _, port = self.options.health_address.rpartition(":")
        await web.TCPSite(runner, host or "127.0.0.1", int(port)).start()
        return runner

    async def _serve_snapshots(self) -> SnapshotEndpoint | None:
        source = self.options.snapshot_source()
        if source is None:
            return None
        endpoint = SnapshotEndpoint(source)
        await endpoint.start(self.options.snapshot_address)
        return endpoint

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _readyz(self, _: web.Request) -> web.Response:
        ready = self.engine is not None and self.engine.ready()
        text, status = ("ok", 200) if ready else ("caches not synced", 503)
        return web.Response(text=text, status=status)

    async def _metrics(self, _: web.Request) -> web.Response:
        if self.engine is not None:
            for stats in self.engine.informers.statistics():
                self.metrics.objects.labels(stats.cluster, stats.resource).set(stats.objects)
        return web.Response(body=generate_latest(self.registry), content_type="text/plain")

    async def _statistics(self, _: web.Request) -> web.Response:
        body: dict[str, Any] = {"leading": self._leading}
        if self.engine is not None:
            body["informers"] = [dataclasses.asdict(s) for s in self.engine.informers.statistics()]
            body["queues"] = {
                kind: dataclasses.asdict(c.queue.statistics())
                for kind, c in self.engine.controllers.items()
            }
            status = self.engine.status
            body["status_writes"] = {
                "flushed": status.flushed, "coalesced": status.coalesced,
                "pending": status.pending,
            }
        if self.kubelet is not None:
            body["kubelet"] = dataclasses.asdict(self.kubelet.statistics())
        return web.Response(body=orjson.dumps(body), content_type="application/json")


def run(options: RunOptions) -> int:
    """Entry point of ``vcsync run``: validate, then run the syncer under uvloop."""
    configure_logging(options.log_level)
    try:
        cfg = load_config(options)
        translators = select_translators(cfg)
        options.kubelet_endpoint()
        options.metrics_api()
        options.snapshot_source()
    except (config_mod.ConfigError, ValueError) as exc:
        print(f"vcsync run: invalid configuration: {exc}", file=sys.stderr)
        return 2
    collector.tune()
    with contextlib.suppress(KeyboardInterrupt):
        return uvloop.run(Syncer(options, cfg, translators).run())
    return 0

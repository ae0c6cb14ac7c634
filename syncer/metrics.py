"""Prometheus metrics of the syncer.

Why a module of its own: metric names are a public contract (dashboards and
alerts written for controller-runtime work unchanged against vcsync), so they
are defined in one place rather than next to each user.

Why collectors live in an object instead of at module level: a
``CollectorRegistry`` refuses a second registration of the same name, so tests
that build many queues pass a private registry, while the daemon shares one
set of collectors on the global registry (:func:`default_workqueue_metrics`).
Invariant: each registry passed to :class:`WorkqueueMetrics` holds exactly one
instance of every ``workqueue_*`` and ``controller_runtime_*`` family; queues
are told apart by the ``name`` label, controllers (one queue each, the queue's
workers are the controller's) by the ``controller`` label.

Labels are client-go's and controller-runtime's: ``rest_client_requests_total``
by ``code`` (the HTTP status, ``<error>`` when no answer came), ``host`` (the
API server's host:port) and ``method``; a watch is the GET it is, counted
with the status of its answer, and (as in client-go) not in the latency
histograms.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

# controller-runtime's buckets: prometheus.ExponentialBuckets(10e-9, 10, 12),
# i.e. 10 ns .. 1000 s, so queue latency and reconcile time share one scale.
_LATENCY_BUCKETS = tuple(10.0**exponent for exponent in range(-8, 4))
# controller_runtime_reconcile_time_seconds (controller-runtime's buckets).
_RECONCILE_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8,
    0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25,
    30, 40, 50, 60)
# rest_client_* histograms (k8s.io/component-base/metrics/prometheus/restclient).
_REQUEST_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
_RATE_LIMITER_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
_SIZE_BUCKETS = (64, 256, 512, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216)
RECONCILE_RESULTS = ("success", "error", "requeue", "requeue_after")
ERROR_CODE = "<error>"
"""client-go's ``code`` of a request that got no answer."""


@dataclass(frozen=True, slots=True)
class QueueMetrics:
    """The ``workqueue_*`` children of one queue, already bound to its ``name``.

    Why bound once: ``labels()`` takes a lock and a dict lookup; resolving it
    per event on the queue's hot path would cost more than the event itself.
    """

    depth: Gauge
    adds: Counter
    queue_duration: Histogram
    work_duration: Histogram
    retries: Counter
    unfinished_work: Gauge
    longest_running: Gauge
    reconcile: ReconcileMetrics


@dataclass(frozen=True, slots=True)
class ReconcileMetrics:
    """The ``controller_runtime_*`` children of one controller (its queue's handler)."""

    total: dict[str, Counter]
    """By result: success, error, requeue, requeue_after."""
    errors: Counter
    terminal_errors: Counter
    panics: Counter
    time: Histogram
    active_workers: Gauge
    max_concurrent: Gauge

    def done(self, result: str, seconds: float) -> None:
        self.total[result].inc()
        if result == "error":
            self.errors.inc()
        self.time.observe(seconds)


class WorkqueueMetrics:
    """The workqueue metric families (controller-runtime names) on one registry, and the
    ``controller_runtime_reconcile*`` families of the controllers those queues serve."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self._reconcile = _ReconcileFamilies(registry)
        labels = ("name",)
        self._depth = Gauge(
            "workqueue_depth", "Current depth of workqueue", labels, registry=registry
        )
        self._adds = Counter(
            "workqueue_adds_total",
            "Total number of adds handled by workqueue",
            labels,
            registry=registry,
        )
        self._queue_duration = Histogram(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            labels,
            registry=registry,
            buckets=_LATENCY_BUCKETS,
        )
        self._work_duration = Histogram(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes",
            labels,
            registry=registry,
            buckets=_LATENCY_BUCKETS,
        )
        self._retries = Counter(
            "workqueue_retries_total",
            "Total number of retries handled by workqueue",
            labels,
            registry=registry,
        )
        self._unfinished_work = Gauge(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has been done that is in progress and hasn't "
            "been observed by work_duration. Large values indicate stuck threads.",
            labels,
            registry=registry,
        )
        self._longest_running = Gauge(
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running",
            labels,
            registry=registry,
        )

    def for_queue(self, name: str) -> QueueMetrics:
        """Return the children labelled ``name=name``; queues should have unique names."""
        return QueueMetrics(
            depth=self._depth.labels(name),
            adds=self._adds.labels(name),
            queue_duration=self._queue_duration.labels(name),
            work_duration=self._work_duration.labels(name),
            retries=self._retries.labels(name),
            unfinished_work=self._unfinished_work.labels(name),
            longest_running=self._longest_running.labels(name),
            reconcile=self._reconcile.for_controller(name),
        )


class _ReconcileFamilies:
    """controller-runtime's reconcile metrics, by ``controller``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("controller",)
        self.total = Counter(
            "controller_runtime_reconcile_total",
            "Total number of reconciliations per controller", ("controller", "result"),
            registry=registry)
        self.errors = Counter(
            "controller_runtime_reconcile_errors_total",
            "Total number of reconciliation errors per controller", labels, registry=registry)
        self.terminal_errors = Counter(
            "controller_runtime_terminal_reconcile_errors_total",
            "Total number of terminal reconciliation errors per controller", labels,
            registry=registry)
        self.panics = Counter(
            "controller_runtime_reconcile_panics_total",
            "Total number of reconciliation panics per controller", labels, registry=registry)
        self.time = Histogram(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller", labels, registry=registry,
            buckets=_RECONCILE_BUCKETS)
        self.active_workers = Gauge(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller", labels, registry=registry)
        self.max_concurrent = Gauge(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller", labels,
            registry=registry)

    def for_controller(self, name: str) -> ReconcileMetrics:
        """The children of controller ``name``, every counter present from the start (at 0,
        as controller-runtime initializes them)."""
        return ReconcileMetrics(
            total={result: self.total.labels(name, result) for result in RECONCILE_RESULTS},
            errors=self.errors.labels(name), terminal_errors=self.terminal_errors.labels(name),
            panics=self.panics.labels(name), time=self.time.labels(name),
            active_workers=self.active_workers.labels(name),
            max_concurrent=self.max_concurrent.labels(name))


@functools.cache
def default_workqueue_metrics() -> WorkqueueMetrics:
    """The families on the global registry, created on first use and then shared.

    Why lazily: importing this module must not register anything, so tests
    that only use private registries leave the global one untouched.
    """
    return WorkqueueMetrics(REGISTRY)


@dataclass(frozen=True, slots=True)
class RequestSample:
    """One HTTP request of a client, as client-go's metrics see it."""

    host: str
    """The API server's host:port, as in the client's server URL."""
    method: str
    code: str
    """The HTTP status code, or :data:`ERROR_CODE` when no answer came."""
    seconds: float
    throttled: float
    """Seconds the request waited for the client's rate limiter."""
    request_bytes: int
    response_bytes: int
    watch: bool = False


class SyncerMetrics:
    """Client, write, leader, object and process metrics of one ``vcsync run`` process.

    ``rest_client_*``, ``leader_election_master_status`` and ``process_*`` keep
    client-go's and the Prometheus clients' names and labels;
    ``vcsync_writes_total`` counts successful writes by side, verb and kind (what
    "zero writes on an idle restart" is measured with).
    """

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        if registry is not REGISTRY:  # the default registry has them from the start
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        self.requests = Counter(
            "rest_client_requests_total",
            "Number of HTTP requests, partitioned by status code, method, and host.",
            ("code", "host", "method"),
            registry=registry,
        )
        self.request_duration = Histogram(
            "rest_client_request_duration_seconds",
            "Request latency in seconds. Broken down by verb, and host.",
            ("host", "verb"),
            registry=registry,
            buckets=_REQUEST_BUCKETS,
        )
        self.rate_limiter_duration = Histogram(
            "rest_client_rate_limiter_duration_seconds",
            "Client side rate limiter latency in seconds. Broken down by verb, and host.",
            ("host", "verb"),
            registry=registry,
            buckets=_RATE_LIMITER_BUCKETS,
        )
        self.request_size = Histogram(
            "rest_client_request_size_bytes",
            "Request size in bytes. Broken down by verb and host.",
            ("host", "verb"),
            registry=registry,
            buckets=_SIZE_BUCKETS,
        )
        self.response_size = Histogram(
            "rest_client_response_size_bytes",
            "Response size in bytes. Broken down by verb and host.",
            ("host", "verb"),
            registry=registry,
            buckets=_SIZE_BUCKETS,
        )
        self.watches = Counter(
            "vcsync_watch_requests_total",
            "Watch requests among rest_client_requests_total (GETs that stream), by status "
            "code and host",
            ("code", "host"),
            registry=registry,
        )
        self.writes = Counter(
            "vcsync_writes_total",
            "Successful writes by the syncer, by side, verb and kind",
            ("side", "verb", "kind"),
            registry=registry,
        )
        self.leader = Gauge(
            "leader_election_master_status",
            "1 while this process holds the lease, else 0",
            ("name",),
            registry=registry,
        )
        self.objects = Gauge(
            "vcsync_cached_objects",
            "Objects in the informer caches, by side and resource",
            ("side", "resource"),
            registry=registry,
        )

        self.kubelet_requests = Counter(
            "vcsync_kubelet_requests_total",
            "Requests to the kubelet endpoint, by call (log, exec, attach, portforward, - "
            "for unrouted) and status code (0: the connection ended before an answer)",
            ("call", "code"),
            registry=registry,
        )

    def observe_request(self, sample: RequestSample) -> None:
        self.requests.labels(sample.code, sample.host, sample.method).inc()
        if sample.watch:
            self.watches.labels(sample.code, sample.host).inc()
            return
        self.request_duration.labels(sample.host, sample.method).observe(sample.seconds)
        self.rate_limiter_duration.labels(sample.host, sample.method).observe(sample.throttled)
        self.request_size.labels(sample.host, sample.method).observe(sample.request_bytes)
        if sample.code != ERROR_CODE:
            self.response_size.labels(sample.host, sample.method).observe(sample.response_bytes)

    def observe_write(self, side: str, verb: str, kind: str) -> None:
        self.writes.labels(side, verb, kind).inc()

    def observe_kubelet(self, call: str, code: int) -> None:
        self.kubelet_requests.labels(call, str(code)).inc()

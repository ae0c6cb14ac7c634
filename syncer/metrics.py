"""Prometheus metrics of the syncer.

Why a module of its own: metric names are a public contract (dashboards and
alerts written for controller-runtime work unchanged against vcsync), so they
are defined in one place rather than next to each user.

Why collectors live in an object instead of at module level: a
``CollectorRegistry`` refuses a second registration of the same name, so tests
that build many queues pass a private registry, while the daemon shares one
set of collectors on the global registry (:func:`default_workqueue_metrics`).
Invariant: each registry passed to :class:`WorkqueueMetrics` holds exactly one
instance of every ``workqueue_*`` family; queues are told apart by the
``name`` label.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

# controller-runtime's buckets: prometheus.ExponentialBuckets(10e-9, 10, 12),
# i.e. 10 ns .. 1000 s, so queue latency and reconcile time share one scale.
_LATENCY_BUCKETS = tuple(10.0**exponent for exponent in range(-8, 4))


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


class WorkqueueMetrics:
    """The workqueue metric families (controller-runtime names) on one registry."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
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
        )


@functools.cache
def default_workqueue_metrics() -> WorkqueueMetrics:
    """The families on the global registry, created on first use and then shared.

    Why lazily: importing this module must not register anything, so tests
    that only use private registries leave the global one untouched.
    """
    return WorkqueueMetrics(REGISTRY)


class SyncerMetrics:
    """Client, write, leader and object metrics of one ``vcsync run`` process.

    ``rest_client_*`` and ``leader_election_master_status`` keep client-go's
    names; ``vcsync_writes_total`` counts successful writes by side, verb and
    kind (what "zero writes on an idle restart" is measured with).
    """

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.requests = Counter(
            "rest_client_requests_total",
            "Number of HTTP requests, partitioned by cluster, method and status code",
            ("cluster", "method", "code"),
            registry=registry,
        )
        self.request_duration = Histogram(
            "rest_client_request_duration_seconds",
            "Request latency in seconds, by cluster and verb",
            ("cluster", "verb"),
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

    def observe_request(self, cluster: str, verb: str, code: int, seconds: float) -> None:
        self.requests.labels(cluster, verb, str(code)).inc()
        if verb != "WATCH":
            self.request_duration.labels(cluster, verb).observe(seconds)

    def observe_write(self, side: str, verb: str, kind: str) -> None:
        self.writes.labels(side, verb, kind).inc()

    def observe_kubelet(self, call: str, code: int) -> None:
        self.kubelet_requests.labels(call, str(code)).inc()

"""What an idle virtual control plane runs with, so many tenants fit on one host.

One source for both drivers: the local launcher (:mod:`syncer.local.cluster`)
applies these, and the chart's StatefulSet renders the same flags and
environment (``tests/chart`` checks the two agree). Measured with
``vcsync bench density`` and a per-variant comparison of one idle plane
(README, "Density"); each choice says what a tenant gives up.

- ``--watch-cache=false`` on the virtual kube-apiserver: every cached resource
  costs a cacher with its own timers (bookmarks, progress requests), about
  two thirds of an idle apiserver's CPU (28 -> 9 mCPU idle) and 20 MiB.
  Watches and lists are then served by kine directly, which it is built for
  (kine is k3s's store). Given up: nothing a client can observe except
  timing; a resumed watch whose revision kine has compacted answers 410 Gone
  sooner, which clients already handle by re-listing (the syncer's informers
  are tested that way, ``tests/cluster/test_informer.py``).
- ``GOGC``: Go grows its heap to twice the live heap by default; an idle
  apiserver lives on about 90 MiB and sat at 266 MiB RSS. ``GOGC=25`` keeps it
  near 200 MiB at the price of more frequent collections under load (CPU per
  request, not latency). ``GOMEMLIMIT`` was measured and rejected: below the
  live heap it thrashes (100 MiB: 430 mCPU at idle), above it changes
  nothing at idle, and a tenant's live heap grows with its objects.
- ``GOMAXPROCS``: an idle Go process wakes for timers, and with more Ps than it
  needs the scheduler spins looking for work on each wake-up. kine and the
  controller-manager are never CPU-bound in one tenant (1); the apiserver
  keeps 2 for concurrent requests. Given up: a tenant's controller-manager
  cannot use more than one core.

The controller-manager's set of controllers is the virtual one of
:data:`DISABLED_CONTROLLERS` only: disabling more (DRA, cloud, alpha-gated
controllers) measured within noise, because gated controllers never start.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

APISERVER_FLAGS: Final = ("--watch-cache=false",)
"""Extra kube-apiserver flags of a virtual control plane."""

GO_RUNTIME_ENV: Final = MappingProxyType({
    "kube-apiserver": MappingProxyType({"GOGC": "25", "GOMAXPROCS": "2"}),
    "kube-controller-manager": MappingProxyType({"GOGC": "50", "GOMAXPROCS": "1"}),
    "kine": MappingProxyType({"GOGC": "50", "GOMAXPROCS": "1"}),
})
"""Go runtime settings per component of a virtual control plane."""

DISABLED_CONTROLLERS: Final = (
    "nodeipam",
    "nodelifecycle",
    "persistentvolume-binder",
    "attachdetach",
    "persistentvolume-expander",
    "cloud-node-lifecycle",
    "ttl",
)
"""What a virtual cluster's controller-manager must not run: nodes are mirrored from
the host, volumes are bound and attached there (vCluster does the same)."""


def controllers() -> str:
    """The controller-manager's ``--controllers`` value."""
    return ",".join(["*", *(f"-{c}" for c in DISABLED_CONTROLLERS)])

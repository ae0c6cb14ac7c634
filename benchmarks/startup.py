"""Start-up time of a local host cluster in both network layouts, and of a virtual control plane.

Run: ``.venv/bin/python -m benchmarks.startup [--runs 5]`` (as root, for the namespace
layout). Each run starts in a fresh directory (new certificates, empty store) and is
timed from the first step to ready (host: all kwok nodes Ready), then stopped.

Host runs alternate between the two layouts of ``syncer.local.network`` in one
process, loopback and namespace in the order A-B-B-A..., so both arms see the same
machine load: *loopback* starts in this process's own namespace (127.0.0.1 nodes,
127.128.0.0/16 pods); *namespace* first creates a named network namespace and starts
the host inside it, as ``vcsync host create`` does (its creation is part of the time).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from syncer.local import network
from syncer.local.cluster import ControlPlane, HostCluster, VirtualControlPlane


def _time_start(cluster: ControlPlane) -> float:
    start = time.monotonic()
    with cluster:
        return time.monotonic() - start


def _host_in_namespace(name: str, root: Path) -> float:
    netns = f"vcsync-bench-{os.getpid()}-{name}"
    start = time.monotonic()
    if not network.create_named(netns):
        raise SystemExit("no network namespace here; run as root for the namespace layout")
    try:
        with network.entered(netns), HostCluster(name=name, root=root) as host:
            if not host.layout.isolated:
                raise SystemExit(f"host {name} did not get the namespace layout")
            return time.monotonic() - start
    finally:
        network.delete_named(netns)


def _report(label: str, samples: list[float]) -> None:
    print(f"{label:18s} start-up: median {statistics.median(samples):.1f}s"
          f" (min {min(samples):.1f}s, max {max(samples):.1f}s, n={len(samples)})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    arms: dict[str, list[float]] = {"host (loopback)": [], "host (namespace)": []}
    for i in range(2 * args.runs):
        namespace = i % 4 in (1, 2)  # A-B-B-A
        with tempfile.TemporaryDirectory() as tmp:
            if namespace:
                arms["host (namespace)"].append(_host_in_namespace(f"bench{i}", Path(tmp)))
            else:
                arms["host (loopback)"].append(
                    _time_start(HostCluster(name=f"bench{i}", root=Path(tmp))))
    for label, samples in arms.items():
        _report(label, samples)
    virtual = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            virtual.append(_time_start(VirtualControlPlane(name=f"bench{i}", root=Path(tmp))))
    _report("virtual", virtual)


if __name__ == "__main__":
    main()

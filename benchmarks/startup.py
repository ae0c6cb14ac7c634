"""Start-up time of a local host cluster and a virtual control plane (median of N).

Run: ``.venv/bin/python -m benchmarks.startup [--runs 5]``. Each run starts in
a fresh directory (new certificates, empty store) and is timed from the first
process start to ready (host: all kwok nodes Ready), then stopped.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from syncer.local.cluster import ControlPlane, HostCluster, VirtualControlPlane


def _time_start(cluster: ControlPlane) -> float:
    start = time.monotonic()
    with cluster:
        return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    kinds: tuple[type[ControlPlane], ...] = (HostCluster, VirtualControlPlane)
    for kind in kinds:
        samples = []
        for i in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                samples.append(_time_start(kind(name=f"bench{i}", root=Path(tmp))))
        print(
            f"{kind.kind:8s} start-up: median {statistics.median(samples):.1f}s"
            f" (min {min(samples):.1f}s, max {max(samples):.1f}s, n={len(samples)})",
            flush=True,
        )


if __name__ == "__main__":
    main()

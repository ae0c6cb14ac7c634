"""Deployment-to-Ready time, host writes per pod, idle node writes per minute.

Against real local control planes (host with 3 kwok nodes, a virtual control
plane, ``vcsync run`` as its own process):

1. ``kubectl create deployment web --image=nginx --replicas=2`` in a fresh
   virtual namespace, timed until both virtual pods are Ready (``--runs``
   times, median reported);
2. host writes per synced pod, from the syncer's own ``vcsync_writes_total``;
3. writes per minute caused by idle nodes (kwok heartbeats), measured over
   ``--idle`` seconds with nothing else changing.

Run: ``.venv/bin/python -m benchmarks.pods [--runs 5] [--idle 120]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.common import local_stack, ready_pods, writes
from syncer.local import binaries
from syncer.local.cluster import VirtualControlPlane
from syncer.local.process import wait_for


def deployment_ready_seconds(virtual: VirtualControlPlane, namespace: str) -> float:
    client = virtual.client()
    client.json("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    kubectl = [str(binaries.binary_path("kubectl")), f"--kubeconfig={virtual.kubeconfig}"]
    start = time.monotonic()
    subprocess.run([*kubectl, "create", "deployment", "web", "--image=nginx", "--replicas=2",
                    "-n", namespace], check=True, capture_output=True)
    if not wait_for(lambda: ready_pods(client, namespace) == 2, 120, interval=0.05):
        raise RuntimeError(f"pods in {namespace} not Ready within 120 s")
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--idle", type=float, default=120.0)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="vcsync-bench-"))
    with local_stack(root) as stack:
        syncer = stack.start_syncer()
        samples = [deployment_ready_seconds(stack.virtual, f"demo-{i}") for i in range(args.runs)]
        pods = 2 * args.runs
        host_writes = writes(syncer.url, side="host")
        print(f"deployment (2 replicas) -> both virtual pods Ready: median "
              f"{statistics.median(samples):.2f}s (min {min(samples):.2f}, "
              f"max {max(samples):.2f}, n={len(samples)})")
        print(f"host writes per synced pod: {host_writes / pods:.2f} "
              f"({host_writes:.0f} writes for {pods} pods; all writes incl. virtual: "
              f"{writes(syncer.url) / pods:.2f} per pod)")
        before = writes(syncer.url, kind="Node")
        time.sleep(args.idle)
        per_minute = (writes(syncer.url, kind="Node") - before) * 60 / args.idle
        print(f"node writes per minute, 3 idle nodes: {per_minute:.1f} "
              f"(over {args.idle:.0f}s)")


if __name__ == "__main__":
    main()

"""``make demo``: a host cluster and a virtual control plane, until Ctrl-C.

Why a module of its own: it is the first thing a new user runs, so it prints
what is running, where the kubeconfigs are, and what to try, then tears
everything down cleanly on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path

from syncer.local.binaries import binary_path
from syncer.local.cluster import HostCluster, VirtualControlPlane
from syncer.local.process import LaunchError


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "vcsync"


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    root = state_dir() / "demo"
    shutil.rmtree(root, ignore_errors=True)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    host = HostCluster(name="demo", root=root / "host")
    virtual = VirtualControlPlane(name="demo", root=root / "virtual")
    try:
        for cluster in (host, virtual):
            start = time.monotonic()
            print(f"starting {cluster.kind} control plane {cluster.name!r} ...", flush=True)
            cluster.start()
            print(f"  ready in {time.monotonic() - start:.1f}s at {cluster.server}", flush=True)
        _print_tour(host, virtual)
        while True:
            time.sleep(3600)
    except LaunchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
    finally:
        virtual.stop()
        host.stop()
    print("stopped; no component is left running")
    return 0


def _print_tour(host: HostCluster, virtual: VirtualControlPlane) -> None:
    kubectl = binary_path("kubectl")
    print(
        f"""
host cluster    : KUBECONFIG={host.kubeconfig}
virtual cluster : KUBECONFIG={virtual.kubeconfig}
kubectl         : {kubectl}

Try, in another terminal:
  {kubectl} --kubeconfig {host.kubeconfig} get nodes
  {kubectl} --kubeconfig {host.kubeconfig} create deployment web --image=nginx --replicas=2
  {kubectl} --kubeconfig {host.kubeconfig} get pods -o wide      # Running on kwok nodes
  {kubectl} --kubeconfig {virtual.kubeconfig} get namespaces     # the tenant's own API
  {kubectl} --kubeconfig {virtual.kubeconfig} create deployment web --image=nginx
  {kubectl} --kubeconfig {virtual.kubeconfig} get pods           # Pending: no syncer yet

Press Ctrl-C to stop both.""",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())

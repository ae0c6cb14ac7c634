"""``make demo``: the hands-on tour, run as a guided session of real commands.

Why a script that runs the commands instead of a text to copy: it is the
first thing a new user runs; every command is printed as typed, then its
output, so the terminal reads like the README's five-minute tour. Clusters
are left running at the end; a second run starts the tour afresh (it
deletes the two tour clusters first, never anything else).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import orjson

from syncer.local import binaries

_TOUR_CLUSTERS = ("my-vcluster", "my-vcluster-2")
_HOST_CONTEXT = "vcsync-host-vcsync"


class TourError(RuntimeError):
    """A tour command failed; its output was already shown."""


def _shown(argv: list[str]) -> str:
    """The command as the user would type it (``vcsync``/``kubectl`` on PATH)."""
    head = argv[0]
    if head == sys.executable:
        return shlex.join(["vcsync", *argv[3:]])
    return shlex.join(["kubectl" if "kubectl" in Path(head).name else head, *argv[1:]])


def _run(argv: list[str], check: bool = True) -> str:
    print(f"\n$ {_shown(argv)}", flush=True)
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          check=False)
    print(proc.stdout, end="", flush=True)
    if check and proc.returncode != 0:
        raise TourError(f"`{_shown(argv)}` failed with exit code {proc.returncode}")
    return proc.stdout


def vcsync(*args: str, check: bool = True) -> str:
    return _run([sys.executable, "-m", "syncer.cli.main", *args], check)


def kubectl(*args: str, check: bool = True) -> str:
    return _run([str(binaries.binary_path("kubectl")), *args], check)


def _link_kubectl() -> None:
    """Put ``kubectl`` next to ``vcsync`` in the venv, so ``. .venv/bin/activate`` gives both."""
    link = Path(sys.executable).parent / "kubectl"
    if not link.exists():
        link.symlink_to(binaries.binary_path("kubectl"))


def _quiet(*args: str) -> str:
    """A ``vcsync`` query the tour needs but the user need not see."""
    argv = [sys.executable, "-m", "syncer.cli.main", *args]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def _prepare_host() -> None:
    rows = [line.split() for line in _quiet("host", "list").splitlines()[1:]]
    status = next((row[1] for row in rows if row[0] == "vcsync"), None)
    if status == "Running":
        kubectl("config", "use-context", _HOST_CONTEXT)
        return
    if status is not None:
        vcsync("host", "delete")
    vcsync("host", "create")


def tour() -> None:
    _prepare_host()
    existing = {row["name"] for row in orjson.loads(_quiet("list", "--output", "json"))}
    for name in _TOUR_CLUSTERS:
        if name in existing:
            vcsync("delete", name)
    vcsync("create", "my-vcluster")
    kubectl("get", "namespaces")
    kubectl("create", "namespace", "demo")
    kubectl("create", "deployment", "web", "--image=nginx", "--replicas=2", "-n", "demo")
    kubectl("wait", "--for=condition=Available", "deployment/web", "-n", "demo",
            "--timeout=180s")
    kubectl("get", "pods", "-n", "demo")
    kubectl("logs", "deployment/web", "-n", "demo")
    kubectl("expose", "deployment", "web", "--port=80", "-n", "demo")
    # Endpoints need real pod IPs: a host in the loopback fallback never gets them.
    kubectl("wait", "--for=jsonpath={.endpoints[1].addresses[0]}", "endpointslice",
            "-l", "kubernetes.io/service-name=web", "-n", "demo", "--timeout=60s", check=False)
    kubectl("get", "endpointslices", "-n", "demo")
    vcsync("disconnect")
    kubectl("get", "pods", "-n", "vcluster-my-vcluster")
    vcsync("create", "my-vcluster-2")
    kubectl("get", "namespaces")
    vcsync("list")
    vcsync("disconnect")


def _epilogue() -> None:
    venv = Path(sys.executable).parent
    print(f"""
The host cluster and both virtual clusters keep running. To use them:
  . {venv}/activate                     # puts vcsync and kubectl on PATH
  vcsync connect my-vcluster            # kubectl now talks to the virtual cluster
  vcsync connect my-vcluster -- kubectl get pods -A
  vcsync disconnect                     # back to the host context
  vcsync pause my-vcluster / vcsync resume my-vcluster
To delete them:
  vcsync delete my-vcluster && vcsync delete my-vcluster-2
  vcsync host delete                    # stops the host and anything left on it
kubeconfig: {os.environ.get("KUBECONFIG") or Path.home() / ".kube" / "config"}""", flush=True)


def main() -> int:
    try:
        _link_kubectl()
        tour()
    except (TourError, binaries.BinaryMissing, subprocess.CalledProcessError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1
    _epilogue()
    return 0


if __name__ == "__main__":
    sys.exit(main())

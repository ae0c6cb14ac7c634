"""``make demo`` runs the tour, and a second run works too."""

from __future__ import annotations

import subprocess
import sys

from tests.cli.conftest import HOST_CONTEXT, Cli

TOUR = [
    "$ vcsync create my-vcluster",
    "$ kubectl get namespaces",
    "$ kubectl create namespace demo",
    "$ kubectl create deployment web --image=nginx --replicas=2 -n demo",
    "$ kubectl get pods -n demo",
    "$ kubectl logs deployment/web -n demo",
    "$ kubectl expose deployment web --port=80 -n demo",
    "$ kubectl get endpointslices -n demo",
    "$ vcsync disconnect",
    "$ kubectl get pods -n vcluster-my-vcluster",
    "$ vcsync create my-vcluster-2",
    "$ vcsync list",
]


def _demo(cli: Cli) -> str:
    proc = subprocess.run([sys.executable, "-m", "syncer.local.demo"], env=cli.env(),
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, f"make demo failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_demo_runs_the_tour_twice(cli: Cli) -> None:
    for run in (1, 2):
        out = _demo(cli)
        positions = [out.find(step) for step in TOUR]
        missing = [s for s, p in zip(TOUR, positions, strict=True) if p < 0]
        assert missing == [], f"run {run}: missing steps"
        assert positions == sorted(positions), f"run {run}: steps out of order"
        pods = out.split("$ kubectl get pods -n demo")[1].split("$ ")[0]
        assert pods.count("Running") == 2, pods
        logs = out.split("$ kubectl logs deployment/web -n demo")[1].split("$ ")[0]
        assert "runs on a kwok node" in logs, logs
        slices = out.split("$ kubectl get endpointslices -n demo")[1].split("$ ")[0]
        assert slices.count("10.244.") == 2, slices  # the two pods' real IPs
        host = out.split("$ kubectl get pods -n vcluster-my-vcluster")[1].split("$ ")[0]
        assert host.count("-x-demo-x-my-vcluster") == 2, host
        assert ("$ vcsync delete my-vcluster\n" in out) == (run == 2), "re-run must start afresh"
        assert {n: r["status"] for n, r in cli.listed().items()} == {
            "my-vcluster": "Running", "my-vcluster-2": "Running"}
        assert cli.current_context() == HOST_CONTEXT
        _no_endpoint_failures(cli)
    for name in ("my-vcluster", "my-vcluster-2"):
        cli.run("delete", name)


def _no_endpoint_failures(cli: Cli) -> None:
    """The host and both tour clusters: endpoint controllers never failed to write (pod IPs
    are real addresses in the host's network namespace, not refused loopback ones)."""
    contexts = [HOST_CONTEXT, *(f"vcsync_{n}_vcluster-{n}_{HOST_CONTEXT}"
                                for n in ("my-vcluster", "my-vcluster-2"))]
    for context in contexts:
        events = cli.kubectl_json("--context", context, "get", "events", "-A")["items"]
        failed = [e["message"] for e in events
                  if e.get("reason", "").startswith("FailedToUpdateEndpoint")]
        assert failed == [], f"{context}: {failed}"

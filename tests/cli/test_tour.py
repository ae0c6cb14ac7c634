"""The five-minute tour (``make demo``) with assertions, and what it implies about isolation."""

from __future__ import annotations

from typing import Any

from contract import naming
from tests.cli.conftest import HOST_CONTEXT, Cli
from tests.support import eventually

TOUR = ("my-vcluster", "my-vcluster-2")
VIRTUAL_DEFAULTS = {"default", "kube-node-lease", "kube-public", "kube-system"}


def _names(items: dict[str, Any]) -> set[str]:
    return {i["metadata"]["name"] for i in items["items"]}


def _running(cli: Cli, namespace: str, count: int, *selector: str) -> list[str]:
    pods = cli.kubectl_json("get", "pods", "-n", namespace, *selector)["items"]
    running = [p["metadata"]["name"] for p in pods if p.get("status", {}).get("phase") == "Running"]
    return running if len(running) == count else []


def _top(cli: Cli, namespace: str) -> list[list[str]]:
    """The rows of ``kubectl top pod`` (none while the metrics are not there yet)."""
    try:
        out = cli.kubectl("top", "pod", "-n", namespace)
    except AssertionError:
        return []
    return [line.split() for line in out.splitlines()[1:]]


def test_tour_two_isolated_virtual_clusters(cli: Cli) -> None:
    cli.use_host()
    cli.run("create", "my-vcluster")
    assert cli.current_context() == f"vcsync_my-vcluster_vcluster-my-vcluster_{HOST_CONTEXT}"
    assert _names(cli.kubectl_json("get", "namespaces")) == VIRTUAL_DEFAULTS

    cli.kubectl("create", "namespace", "demo")
    cli.kubectl("create", "deployment", "web", "--image=nginx", "--replicas=2", "-n", "demo")
    virtual_pods = eventually(lambda: _running(cli, "demo", 2),
                              "2 Running pods of deployment web in the virtual cluster", 90)
    # logs and exec reach the pods through the syncer's kubelet endpoint (vcsync create's)
    assert "runs on a kwok node" in cli.kubectl("logs", virtual_pods[0], "-n", "demo")
    assert cli.kubectl("exec", virtual_pods[0], "-n", "demo", "--", "echo", "hi") == "hi\n"
    # kubectl top reaches the host's metrics through the syncer's metrics API
    shown = eventually(lambda: _top(cli, "demo"), "kubectl top pod of both web pods", 120)
    assert sorted(row[0] for row in shown) == sorted(virtual_pods)

    cli.run("disconnect")
    assert cli.current_context() == HOST_CONTEXT
    from_demo = f"--selector={naming.LABEL_NAMESPACE}=demo"
    host_pods = eventually(lambda: _running(cli, "vcluster-my-vcluster", 2, from_demo),
                           "2 Running synced pods on the host", 30)
    assert sorted(host_pods) == sorted(
        naming.host_name(p, "demo", "my-vcluster") for p in virtual_pods)
    assert "demo" not in _names(cli.kubectl_json("get", "namespaces")), \
        "a virtual namespace leaked to the host"

    cli.run("create", "my-vcluster-2")
    assert _names(cli.kubectl_json("get", "namespaces")) == VIRTUAL_DEFAULTS
    seen = {p["metadata"]["namespace"] for p in cli.kubectl_json("get", "pods", "-A")["items"]}
    assert seen <= {"kube-system"}, "the second virtual cluster sees the first one's pods"

    listed = cli.listed()
    assert {n: (listed[n]["status"], listed[n]["connected"]) for n in TOUR} == {
        "my-vcluster": ("Running", False), "my-vcluster-2": ("Running", True)}
    table = cli.run("list").stdout.splitlines()
    assert table[0].split() == ["NAME", "NAMESPACE", "STATUS", "KUBERNETES", "VERSION",
                                "DRIVER", "CONNECTED", "AGE", "TTL"]

    # The same names in the second cluster land in its own host namespace.
    cli.kubectl("create", "namespace", "demo")
    cli.kubectl("create", "deployment", "web", "--image=nginx", "--replicas=1", "-n", "demo")
    eventually(lambda: _running(cli, "demo", 1), "1 Running pod in my-vcluster-2", 90)
    cli.run("connect", "my-vcluster")
    assert len(cli.kubectl_json("get", "pods", "-n", "demo")["items"]) == 2
    cli.run("disconnect")
    assert len(cli.kubectl_json("get", "pods", "-n", "vcluster-my-vcluster-2",
                                from_demo)["items"]) == 1

    for name in TOUR:
        cli.run("delete", name)
    assert not set(TOUR) & set(cli.listed())

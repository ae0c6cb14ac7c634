"""``vcsync create --driver helm``: the chart installed into the local host, as far as kwok goes.

kwok runs no containers: the release's StatefulSet pod is scheduled onto a kwok
node and reported Running and Ready, but no API server answers inside it (the
chart's own tests run its containers locally; see tests/cluster/test_chart.py).
What this shows is the CLI's side: install, list, connect, pause, resume, delete.
"""

from __future__ import annotations

from typing import Any

import yaml

from tests.cli.conftest import Cli
from tests.support import eventually

NO_PROVISIONER = "controlPlane.statefulSet.persistence.volumeClaim.enabled=false"


def _release_pods(cli: Cli) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cli.kubectl_json(
        "get", "pods", "-n", "vcluster-hv", "--selector=app.kubernetes.io/instance=hv")["items"]
    return items


def test_helm_driver_life_cycle(cli: Cli) -> None:
    cli.use_host()
    cli.run("create", "hv", "--driver", "helm", "--no-connect", "--set", NO_PROVISIONER)
    row = cli.listed()["hv"]
    assert (row["driver"], row["status"]) == ("helm", "Running")
    pods = _release_pods(cli)
    assert len(pods) == 1
    assert pods[0]["spec"]["nodeName"].startswith("kwok-node-")
    config = cli.kubectl_json("get", "configmap", "hv-config", "-n", "vcluster-hv")
    assert yaml.safe_load(config["data"]["config.yaml"])["sync"]["toHost"]["pods"]["enabled"]

    printed = yaml.safe_load(cli.run("connect", "hv", "--print").stdout)
    assert printed["clusters"][0]["cluster"]["server"] == "https://hv.vcluster-hv.svc:443"

    cli.run("pause", "hv")
    assert cli.listed()["hv"]["status"] == "Paused"
    eventually(lambda: _release_pods(cli) == [], "the control-plane pod gone while paused", 60)
    cli.run("resume", "hv")
    assert cli.listed()["hv"]["status"] == "Running"
    assert len(_release_pods(cli)) == 1

    cli.run("delete", "hv")
    namespaces = {n["metadata"]["name"] for n in cli.kubectl_json("get", "namespaces")["items"]}
    assert "vcluster-hv" not in namespaces
    assert "hv" not in cli.listed()


def test_helm_driver_refuses_values_the_schema_refuses(cli: Cli) -> None:
    cli.use_host()
    error = cli.fails("create", "hv2", "--driver", "helm", "--set",
                      "policies.podSecurityStandard=lenient")
    assert "invalid values" in error
    assert "hv2" not in cli.listed()


def test_helm_driver_upgrade_changes_values_and_refuses_a_downgrade(cli: Cli) -> None:
    cli.use_host()
    cli.run("create", "hu", "--driver", "helm", "--no-connect", "--set", NO_PROVISIONER)
    try:
        upgraded = cli.run("create", "hu", "--upgrade", "--set", NO_PROVISIONER,
                           "--set", "sync.toHost.ingresses.enabled=true")
        assert "upgraded" in upgraded.stderr
        config = cli.kubectl_json("get", "configmap", "hu-config", "-n", "vcluster-hu")
        rules = yaml.safe_load(config["data"]["config.yaml"])["sync"]["toHost"]
        assert rules["ingresses"]["enabled"] is True
        releases = cli.kubectl_json("get", "secrets", "-n", "vcluster-hu",
                                    "--selector=owner=helm,name=hu")["items"]
        assert len(releases) == 2, "helm upgrade made no new revision"
        assert cli.listed()["hu"]["status"] == "Running"
        err = cli.fails("create", "hu", "--upgrade", "--set", NO_PROVISIONER,
                        "--kubernetes-version", "v1.35.4")
        assert "downgrade" in err, err
    finally:
        cli.run("delete", "hu", check=False)

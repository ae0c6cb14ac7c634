"""``vcsync create NAME --upgrade``: a sync rule and the Kubernetes version changed in place,
with the virtual cluster's objects, pods, tokens and certificates kept."""

from __future__ import annotations

import orjson
import yaml

from contract import naming
from syncer.local import binaries
from tests.cli.conftest import HOST_CONTEXT, Cli
from tests.support import eventually


def _pids(cli: Cli, name: str) -> dict[str, int]:
    record = cli.record(name)
    pids = {c["name"]: int(c["pid"]) for c in record["plane"]["components"]}
    return {**pids, "vcsync": int(record["syncer"]["pid"])}


def _host_objects(cli: Cli, kind: str) -> dict[str, str]:
    """Host objects of the tenant namespace ``demo``: name -> uid."""
    items = cli.kubectl_json("--context", HOST_CONTEXT, "get", kind, "-n", "vcluster-up",
                             f"--selector={naming.LABEL_NAMESPACE}=demo")["items"]
    return {i["metadata"]["name"]: i["metadata"]["uid"] for i in items}


def _virtual_pods(cli: Cli) -> dict[str, str]:
    items = cli.kubectl_json("get", "pods", "-n", "demo")["items"]
    return {i["metadata"]["name"]: i["metadata"]["uid"] for i in items}


def _server_version(cli: Cli) -> str:
    return str(orjson.loads(cli.kubectl("version", "-o", "json"))["serverVersion"]["gitVersion"])


def _credentials(cli: Cli) -> tuple[str, str]:
    printed = yaml.safe_load(cli.run("connect", "up", "--print").stdout)
    return (printed["clusters"][0]["cluster"]["certificate-authority-data"],
            printed["users"][0]["user"]["token"])


def _ready(cli: Cli) -> bool:
    got = cli.kubectl_json("get", "deployment", "web", "-n", "demo")
    return bool(got.get("status", {}).get("readyReplicas") == 2)


def test_upgrade_changes_a_sync_rule_then_the_version_keeping_everything(cli: Cli) -> None:
    cli.use_host()
    old, new = binaries.SKEW_KUBERNETES_VERSION, binaries.KUBERNETES_VERSION
    assert "does not exist" in cli.fails("create", "up", "--upgrade")
    cli.run("create", "up", "--kubernetes-version", old)
    try:
        cli.kubectl("create", "namespace", "demo")
        cli.kubectl("create", "configmap", "loose", "--from-literal=k=v", "-n", "demo")
        cli.kubectl("create", "deployment", "web", "--image=nginx", "--replicas=2", "-n", "demo")
        eventually(lambda: _ready(cli), "deployment web ready before the upgrades", 120)
        pods, host_pods = _virtual_pods(cli), _host_objects(cli, "pods")
        assert len(host_pods) == 2
        assert not any(n.startswith("loose") for n in _host_objects(cli, "configmaps")), \
            "an unreferenced ConfigMap was synced with configMaps.all off"
        credentials, before = _credentials(cli), _pids(cli, "up")

        # a sync rule: only the syncer restarts
        rule = ("--set", "sync.toHost.configMaps.all=true")
        cli.run("create", "up", "--upgrade", "--kubernetes-version", old, *rule)
        eventually(lambda: any(n.startswith("loose") for n in _host_objects(cli, "configmaps")),
                   "ConfigMap loose on the host after configMaps.all=true", 60)
        after = _pids(cli, "up")
        assert after["vcsync"] != before["vcsync"], "the syncer kept its old configuration"
        assert {k: v for k, v in after.items() if k != "vcsync"} == \
            {k: v for k, v in before.items() if k != "vcsync"}, "the control plane restarted"
        quiet = cli.run("create", "up", "--upgrade", "--kubernetes-version", old, *rule)
        assert "nothing changed" in quiet.stderr
        assert _pids(cli, "up") == after

        # the Kubernetes version: one minor up, same store, tokens and certificates
        row = orjson.loads(cli.run("create", "up", "--upgrade", "--kubernetes-version", new,
                                   *rule, "-o", "json").stdout)
        assert row["kubernetesVersion"] == new
        assert row["status"] == "Running"
        assert _server_version(cli) == new
        assert cli.listed()["up"]["kubernetesVersion"] == new
        assert _credentials(cli) == credentials, "the upgrade replaced tokens or certificates"
        assert cli.kubectl_json("get", "configmap", "loose", "-n", "demo")["data"] == {"k": "v"}
        eventually(lambda: _ready(cli), "deployment web ready after the upgrade", 120)
        assert _virtual_pods(cli) == pods, "virtual pods were re-created"
        assert _host_objects(cli, "pods") == host_pods, "host pods were re-created"

        err = cli.fails("create", "up", "--upgrade", "--kubernetes-version", old, *rule)
        assert "downgrade" in err, err
        assert _server_version(cli) == new
    finally:
        cli.run("delete", "up", check=False)

"""Version skew: a virtual cluster one minor release behind its host passes the same tour."""

from __future__ import annotations

import orjson

from contract import naming
from syncer.local import binaries
from tests.cli.conftest import Cli
from tests.support import eventually


def test_older_virtual_cluster_on_newer_host(cli: Cli) -> None:
    cli.use_host()
    old = binaries.SKEW_KUBERNETES_VERSION
    cli.run("create", "skew", "--kubernetes-version", old)
    version = orjson.loads(cli.kubectl("version", "-o", "json"))
    assert version["serverVersion"]["gitVersion"] == old
    assert cli.listed()["skew"]["kubernetesVersion"] == old

    cli.kubectl("create", "namespace", "demo")
    cli.kubectl("create", "deployment", "web", "--image=nginx", "--replicas=2", "-n", "demo")

    def ready() -> bool:
        got = cli.kubectl_json("get", "deployment", "web", "-n", "demo")
        return bool(got.get("status", {}).get("readyReplicas") == 2)

    eventually(ready, f"deployment web ready in the {old} virtual cluster", 120)
    # an older kube-apiserver reaches the syncer's kubelet endpoint the same way
    assert "runs on a kwok node" in cli.kubectl("logs", "deployment/web", "-n", "demo")
    assert cli.kubectl("exec", "deployment/web", "-n", "demo", "--", "echo", "hi") == "hi\n"
    cli.run("disconnect")
    host = orjson.loads(cli.kubectl("version", "-o", "json"))["serverVersion"]["gitVersion"]
    assert host == binaries.KUBERNETES_VERSION
    pods = cli.kubectl_json("get", "pods", "-n", "vcluster-skew",
                            f"--selector={naming.LABEL_NAMESPACE}=demo")["items"]
    assert len(pods) == 2
    cli.run("delete", "skew")

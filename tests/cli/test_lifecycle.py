"""connect/disconnect, pause/resume, delete and TTLs, driven through the CLI."""

from __future__ import annotations

import ipaddress
import subprocess
from typing import Any

import yaml
from cryptography import x509

from contract import naming
from tests.cli.conftest import HOST_CONTEXT, Cli
from tests.support import eventually


def _context(name: str) -> str:
    return f"vcsync_{name}_vcluster-{name}_{HOST_CONTEXT}"


def _ready_replicas(cli: Cli, deployment: str, namespace: str) -> int:
    got = cli.kubectl_json("get", "deployment", deployment, "-n", namespace)
    return int(got.get("status", {}).get("readyReplicas") or 0)


def _host_pods(cli: Cli, name: str, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cli.kubectl_json(
        "--context", HOST_CONTEXT, "get", "pods", "-n", f"vcluster-{name}",
        f"--selector={naming.LABEL_NAMESPACE}={namespace}")["items"]
    return items


def test_connect_and_disconnect_restore_the_previous_context(cli: Cli) -> None:
    cli.use_host()
    # Somebody else's entries must survive every merge.
    cli.kubectl("config", "set-cluster", "other", "--server=https://127.0.0.1:1")
    cli.kubectl("config", "set-context", "other", "--cluster=other")
    cli.run("create", "conn", "--no-connect")
    assert cli.current_context() == HOST_CONTEXT

    printed = yaml.safe_load(cli.run("connect", "conn", "--print").stdout)
    assert printed["current-context"] == _context("conn")
    assert cli.current_context() == HOST_CONTEXT, "--print changed the current context"

    kubectl = str(cli.kubectl_path())
    ran = cli.run("connect", "conn", "--", kubectl, "get", "namespace", "kube-system")
    assert "kube-system" in ran.stdout
    assert cli.current_context() == HOST_CONTEXT, "connect -- CMD changed the current context"
    failed = cli.run("connect", "conn", "--", kubectl, "get", "namespace", "nope", check=False)
    assert failed.returncode == 1, "connect -- CMD must pass the command's exit code on"

    cli.run("connect", "conn")
    assert cli.current_context() == _context("conn")
    assert cli.kubectl_json("get", "namespace", "default")["metadata"]["name"] == "default"
    cli.run("disconnect")
    assert cli.current_context() == HOST_CONTEXT
    contexts = {c["name"] for c in cli.kubeconfig()["contexts"]}
    assert {"other", HOST_CONTEXT, _context("conn")} <= contexts
    assert "not a virtual cluster" in cli.fails("disconnect")

    # Host pods dial the API through the host Service: its ClusterIP is in the certificate.
    api_ip = cli.kubectl_json("get", "service", "conn", "-n", "vcluster-conn")["spec"]["clusterIP"]
    cert = next(cli.state.glob("vclusters/conn.*/virtual/pki/apiserver.crt")).read_bytes()
    sans = x509.load_pem_x509_certificate(cert).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.IPAddress)
    assert ipaddress.ip_address(api_ip) in sans

    cli.run("delete", "conn")
    contexts = {c["name"] for c in cli.kubeconfig()["contexts"]}
    assert _context("conn") not in contexts
    assert "other" in contexts


def test_pause_removes_host_pods_and_resume_brings_them_back(cli: Cli) -> None:
    cli.use_host()
    cli.run("create", "sleepy")
    cli.kubectl("create", "deployment", "app", "--image=nginx", "--replicas=2")
    eventually(lambda: _ready_replicas(cli, "app", "default") == 2, "deployment app ready", 90)
    before = {p["metadata"]["uid"] for p in _host_pods(cli, "sleepy", "default")}
    cli.run("disconnect")

    cli.run("pause", "sleepy")
    assert cli.listed()["sleepy"]["status"] == "Paused"
    assert cli.pids("sleepy") == [], "a paused virtual cluster still runs processes"
    eventually(lambda: _host_pods(cli, "sleepy", "default") == [], "host pods deleted", 30)
    assert "is paused" in cli.fails("connect", "sleepy")

    cli.run("resume", "sleepy")
    assert cli.listed()["sleepy"]["status"] == "Running"
    cli.run("connect", "sleepy")
    # The virtual pods keep their Ready status from before the pause until the syncer
    # sees their host pods gone (the Deployment then replaces them): wait for both.
    eventually(lambda: _ready_replicas(cli, "app", "default") == 2
               and len(_host_pods(cli, "sleepy", "default")) == 2,
               "deployment app ready again on two host pods after resume", 120)
    after = {p["metadata"]["uid"] for p in _host_pods(cli, "sleepy", "default")}
    assert not after & before, "resume did not re-create the host pods"
    cli.run("delete", "sleepy")


def test_delete_leaves_nothing_behind_and_is_idempotent(cli: Cli) -> None:
    cli.use_host()
    cli.run("create", "gone")
    cli.kubectl("create", "configmap", "cfg", "--from-literal=a=b")
    cli.kubectl("run", "pod", "--image=nginx", "--overrides",
                '{"spec":{"volumes":[{"name":"c","configMap":{"name":"cfg"}}]}}')
    cli.run("disconnect")
    eventually(lambda: _host_pods(cli, "gone", "default"), "the pod synced to the host", 60)
    assert cli.pids("gone")

    cli.run("delete", "gone")
    namespaces = {n["metadata"]["name"] for n in cli.kubectl_json("get", "namespaces")["items"]}
    assert "vcluster-gone" not in namespaces
    assert cli.pids("gone") == []
    assert _context("gone") not in {c["name"] for c in cli.kubeconfig()["contexts"]}
    assert "gone" not in cli.listed()
    again = cli.run("delete", "gone")
    assert "does not exist" in again.stderr


def test_delete_keep_namespace_removes_only_managed_objects(cli: Cli) -> None:
    cli.use_host()
    cli.run("create", "keeper", "--no-connect")
    cli.kubectl("create", "configmap", "host-own", "-n", "vcluster-keeper")
    cli.run("connect", "keeper", "--", str(cli.kubectl_path()), "create", "service",
            "clusterip", "web", "--tcp=80:80")
    eventually(lambda: cli.kubectl_json("get", "services", "-n", "vcluster-keeper",
                                        f"--selector={naming.LABEL_MANAGED_BY}=keeper")["items"],
               "the virtual Service synced to the host", 60)

    cli.run("delete", "keeper", "--keep-namespace")
    left = cli.kubectl_json("get", "services,configmaps,pods", "-n", "vcluster-keeper")["items"]
    names = {(o["kind"], o["metadata"]["name"]) for o in left}
    assert ("ConfigMap", "host-own") in names, "a host object not made by the syncer was deleted"
    managed = [o for o in left
               if (o["metadata"].get("labels") or {}).get(naming.LABEL_MANAGED_BY) == "keeper"]
    assert managed == []
    assert ("Service", "keeper") not in names, "the API Service is left behind"
    cli.kubectl("delete", "namespace", "vcluster-keeper", "--wait=false")


def test_ttl_and_delete_expired(cli: Cli) -> None:
    cli.use_host()
    cli.run("create", "short", "--ttl", "1s", "--no-connect")
    cli.run("create", "long", "--ttl", "2h", "--no-connect")
    listed = cli.listed()
    assert listed["short"]["ttl"] == "expired"
    assert listed["long"]["ttl"] in ("1h", "2h")
    deleted = cli.run("delete", "--expired")
    assert "deleted 1 expired" in deleted.stderr
    assert set(cli.listed()) >= {"long"}
    assert "short" not in cli.listed()
    cli.run("delete", "long")


def test_list_reports_a_dead_component(cli: Cli) -> None:
    cli.use_host()
    cli.run("create", "fragile", "--no-connect")
    syncer = [p for p in cli.pids("fragile") if b"syncer.cli.main" in _cmdline(p)]
    assert len(syncer) == 1
    subprocess.run(["kill", "-9", str(syncer[0])], check=True)
    eventually(lambda: cli.listed()["fragile"]["status"] == "Failed (vcsync not running)",
               "list to report the killed syncer", 15)
    cli.run("resume", "fragile")
    assert cli.listed()["fragile"]["status"] == "Running"
    cli.run("delete", "fragile")


def _cmdline(pid: int) -> bytes:
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        return handle.read()

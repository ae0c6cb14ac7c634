"""``vcsync translate`` through the CLI entry point: manifests in, host objects out, no cluster."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from contract import naming, resources
from contract.resources import Obj
from contract.translator import Index, Side
from syncer.cli.main import main
from syncer.offline import ManifestLookup

REPO = Path(__file__).resolve().parents[2]

POD_WITH_CONFIGMAP = """
apiVersion: v1
kind: ConfigMap
metadata: {name: app-config}
data: {greeting: hello}
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers: [{name: web, image: nginx}]
  volumes: [{name: cfg, configMap: {name: app-config}}]
"""

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
"""


def write(tmp_path: Path, text: str, name: str = "in.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def translate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["translate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def docs(text: str) -> list[Obj]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def only(objs: list[Obj], kind: str) -> Obj:
    found = [o for o in objs if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


# --- what gets printed --------------------------------------------------------------------


def test_pod_and_the_configmap_it_mounts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = translate(capsys, "-f", write(tmp_path, POD_WITH_CONFIGMAP), "--name", "vc1")
    assert code == 0, err
    objs = docs(out)
    pod, config_map = only(objs, "Pod"), only(objs, "ConfigMap")
    host_cm = naming.host_name("app-config", "default", "vc1")
    assert pod["metadata"]["name"] == naming.host_name("web", "default", "vc1")
    assert pod["metadata"]["namespace"] == "vcluster-vc1"
    assert pod["metadata"]["labels"][naming.LABEL_MANAGED_BY] == "vc1"
    assert pod["spec"]["volumes"][0]["configMap"]["name"] == host_cm
    assert config_map["metadata"]["name"] == host_cm
    assert config_map["metadata"]["namespace"] == "vcluster-vc1"
    assert config_map["data"] == {"greeting": "hello"}
    assert f"# references: ConfigMap default/app-config -> host {host_cm}\n" in out
    assert err == ""


def test_configmap_printed_once_whatever_the_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The pod comes first here: its EnsureSynced shows the ConfigMap before the pod."""
    cm, pod = POD_WITH_CONFIGMAP.split("---")
    code, out, _ = translate(capsys, "-f", write(tmp_path, f"{pod}---{cm}"))
    assert code == 0
    assert [o["kind"] for o in docs(out)] == ["ConfigMap", "Pod"]


def test_host_namespace_and_ips_come_from_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = translate(
        capsys, "-f", write(tmp_path, POD_WITH_CONFIGMAP), "--host-namespace", "tenants",
        "--api-service-ip", "10.0.0.7", "--dns-service-ip", "10.0.0.53",
    )
    assert code == 0
    pod = only(docs(out), "Pod")
    assert pod["metadata"]["namespace"] == "tenants"
    assert pod["spec"]["dnsConfig"]["nameservers"] == ["10.0.0.53"]
    assert pod["spec"]["hostAliases"][0]["ip"] == "10.0.0.7"


def test_services_in_the_namespace_give_env_vars(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service = """
apiVersion: v1
kind: Service
metadata: {name: db}
spec: {clusterIP: 10.96.3.4, selector: {app: db}, ports: [{port: 5432}]}
"""
    code, out, _ = translate(capsys, "-f", write(tmp_path, f"{POD_WITH_CONFIGMAP}---{service}"))
    assert code == 0
    container = only(docs(out), "Pod")["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DB_SERVICE_HOST"] == "10.96.3.4"
    assert only(docs(out), "Service")["metadata"]["name"] == naming.host_name(
        "db", "default", "my-vcluster"
    )


def test_deployment_is_not_synced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = translate(capsys, "-f", write(tmp_path, DEPLOYMENT))
    assert code == 0
    assert docs(out) == []
    assert err.startswith("# Deployment default/web: not synced to the host (no enabled "
                          "translator for Deployment; the virtual controller-manager")


def test_unreferenced_configmap_is_filtered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alone = POD_WITH_CONFIGMAP.split("---")[0]
    code, out, err = translate(capsys, "-f", write(tmp_path, alone))
    assert code == 0
    assert docs(out) == []
    assert "# ConfigMap default/app-config: not synced (nothing in the input references it" in err


def test_set_disables_a_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, POD_WITH_CONFIGMAP)
    code, out, err = translate(capsys, "-f", path, "--set", "sync.toHost.configMaps.enabled=false")
    assert code == 0
    assert [o["kind"] for o in docs(out)] == ["Pod"]
    assert "ConfigMap default/app-config: not synced to the host " \
           "(sync.toHost.configMaps.enabled is false)" in err
    assert "references: ConfigMap default/app-config: not synced" in out


def test_config_file_like_helm_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    values = write(tmp_path, "sync:\n  toHost:\n    configMaps:\n      all: true\n", "values.yaml")
    alone = POD_WITH_CONFIGMAP.split("---")[0]
    code, out, _ = translate(capsys, "-f", write(tmp_path, alone), "--config", values)
    assert code == 0
    assert [o["kind"] for o in docs(out)] == ["ConfigMap"]


def test_pod_security_violation_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    privileged = POD_WITH_CONFIGMAP.replace(
        "image: nginx}", "image: nginx, securityContext: {privileged: true}}"
    )
    code, out, err = translate(capsys, "-f", write(tmp_path, privileged),
                               "--set", "policies.podSecurityStandard=baseline")
    assert code == 0
    assert [o["kind"] for o in docs(out)] == ["ConfigMap"]
    assert "# Pod default/web: warning: PodSecurityViolation: " in err


def test_projected_token_is_described(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pod = POD_WITH_CONFIGMAP.replace(
        "volumes: [", "volumes: [{name: t, projected: {sources: [{serviceAccountToken: "
        "{path: t, audience: vault}}]}}, "
    )
    code, out, _ = translate(capsys, "-f", write(tmp_path, pod))
    assert code == 0
    assert "# tokens: host Secret vcluster-my-vcluster/vcsync-token-" in out
    assert "ServiceAccount default/default" in out


def test_lists_and_several_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cm, pod = (docs(part)[0] for part in POD_WITH_CONFIGMAP.split("---"))
    pod["metadata"]["namespace"] = cm["metadata"]["namespace"] = "team"
    listed = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [pod]})
    code, out, _ = translate(capsys, "-f", write(tmp_path, listed),
                             "-f", write(tmp_path, yaml.safe_dump(cm), "cm.yaml"))
    assert code == 0
    assert only(docs(out), "Pod")["spec"]["volumes"][0]["configMap"]["name"] == naming.host_name(
        "app-config", "team", "my-vcluster"
    )


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(POD_WITH_CONFIGMAP))
    code, out, _ = translate(capsys, "-f", "-")
    assert code == 0
    assert {o["kind"] for o in docs(out)} == {"Pod", "ConfigMap"}


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, f"{POD_WITH_CONFIGMAP}---{DEPLOYMENT}")
    code, out, err = translate(capsys, "-f", path, "--output", "json")
    assert code == 0
    assert [o["kind"] for o in json.loads(out)] == ["ConfigMap", "Pod"]
    assert "# Deployment default/web: not synced" in err


# --- errors: one line, exit 1 ----------------------------------------------------------------


@pytest.mark.parametrize(("text", "message"), [
    ("kind: [\n", "error: {path}: invalid YAML at line 2"),
    ("apiVersion: v1\nmetadata: {name: x}\n", "error: {path}: document 1: missing kind"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {}\n",
     "error: {path}: document 1: Pod without metadata.name"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec: oops\n",
     "error: Pod default/bad: translating failed: "),
])
def test_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path = write(tmp_path, text)
    code, out, err = translate(capsys, "-f", path)
    assert code == 1
    assert out == ""
    assert err.startswith(message.format(path=path))
    assert err.count("\n") == 1


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = translate(capsys, "-f", str(tmp_path / "nope.yaml"))
    assert code == 1
    assert err == f"error: {tmp_path / 'nope.yaml'}: cannot read: No such file or directory\n"


def test_invalid_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, POD_WITH_CONFIGMAP)
    code, out, err = translate(capsys, "-f", path, "--set", "sync.toHost.configMap.enabled=false")
    assert (code, out) == (1, "")
    assert err.startswith("error: invalid configuration: sync.toHost.configMap: unknown key")


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["translate"])
    assert exited.value.code == 2
    assert "-f/--filename" in capsys.readouterr().err


# --- the lookup and the real process ---------------------------------------------------------


def test_lookup_applies_declared_indexes_only() -> None:
    def mounts(pod: Obj) -> list[str]:
        return [v["configMap"]["name"] for v in pod["spec"]["volumes"]]

    lookup = ManifestLookup([Index(Side.VIRTUAL, resources.PODS, "mounts", mounts)])
    pod = docs(POD_WITH_CONFIGMAP)[1]
    pod["metadata"]["namespace"] = "default"
    lookup.add(Side.VIRTUAL, pod)
    assert lookup.by_index(Side.VIRTUAL, resources.PODS, "mounts", "app-config") == [pod]
    assert lookup.get(Side.VIRTUAL, resources.PODS, "default/web") is pod
    assert lookup.get(Side.HOST, resources.PODS, "default/web") is None
    assert lookup.in_namespace(Side.VIRTUAL, resources.PODS, "default") == [pod]
    with pytest.raises(KeyError):
        lookup.by_index(Side.VIRTUAL, resources.PODS, "undeclared", "x")


def test_module_entry_point(tmp_path: Path) -> None:
    path = write(tmp_path, POD_WITH_CONFIGMAP)
    done = subprocess.run(
        [sys.executable, "-m", "syncer.cli.main", "translate", "-f", path],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert {o["kind"] for o in docs(done.stdout)} == {"Pod", "ConfigMap"}

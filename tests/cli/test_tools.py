"""The CLI next to kubectl: kubeconfig rules, exec credentials, version, completion, JSON
output, and what the syncer it starts logs and exports."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import yaml

from syncer.local import network
from tests.cli.conftest import HOST_CONTEXT, Cli
from tests.support import eventually, http_get

PLUGIN = """#!/bin/sh
# A tiny exec credential plugin: it says when it ran and what it was told, then answers.
echo "$KUBERNETES_EXEC_INFO" >> "{calls}"
{body}
"""
ANSWER = """cat <<EOF
{{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
  "status": {{"token": "{token}", "expirationTimestamp": "2099-01-01T00:00:00Z"}}}}
EOF"""


def _plugin(path: Path, calls: Path, body: str) -> Path:
    path.write_text(PLUGIN.format(calls=calls, body=body))
    path.chmod(0o755)
    return path


def _exec_user(command: Path) -> dict[str, Any]:
    return {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(command),
                     "interactiveMode": "Never", "provideClusterInfo": True}}


def _host_token(cli: Cli) -> str:
    users = {u["name"]: u["user"] for u in cli.kubeconfig()["users"]}
    return str(users[HOST_CONTEXT]["token"])


def _scrape(cli: Cli, port: int) -> str:
    """The syncer's /metrics (it listens on 127.0.0.1 of the host's network namespace)."""
    with network.entered(cli.host_netns()):
        return http_get(f"http://127.0.0.1:{port}/metrics").decode()


def test_version_and_completion_scripts_load_in_bash(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    assert cli.run("--version").stdout.startswith("vcsync ")
    info = orjson.loads(cli.run("version", "-o", "json").stdout)
    assert info["vcsync"] in cli.run("version").stdout
    assert info["defaultKubernetesVersion"] in info["kubernetesVersions"]

    script = tmp_path / "vcsync.bash"
    script.write_text(cli.run("completion", "bash").stdout)
    probe = f"""set -e
source {script}
complete -p vcsync
complete_at() {{ COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _vcsync; echo "${{COMPREPLY[*]}}"; }}
complete_at vcsync ''
complete_at vcsync host ''
complete_at vcsync --context other connect dev --lo
"""
    lines = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True,
                           timeout=30).stdout.splitlines()
    assert "_vcsync" in lines[0]
    assert {"create", "connect", "list", "version", "completion", "--kubeconfig"} \
        <= set(lines[1].split())
    assert set(lines[2].split()) >= {"create", "delete", "list"}
    assert lines[3].split() == ["--local-port"]
    for shell in ("zsh", "fish"):
        text = cli.run("completion", shell).stdout
        assert "vcsync" in text
        assert "connect" in text
        if shutil.which(shell):
            subprocess.run([shell, "-n"], input=text, text=True, check=True, timeout=30)
    assert cli.run("completion", "tcsh", check=False).returncode == 2


def test_kubeconfig_rules_exec_credentials_and_concurrent_creates(cli: Cli,
                                                                  tmp_path: Path) -> None:
    """$KUBECONFIG with two paths (the first a symlink), the host reached once with its token
    and once through an exec plugin, two `vcsync create` at once; both contexts kept."""
    cli.use_host()
    real = tmp_path / "real-config"
    shutil.copy(cli.kubeconfig_path, real)
    first = tmp_path / "first"
    first.symlink_to(real)
    calls = tmp_path / "plugin-calls"
    good = _plugin(tmp_path / "login.sh", calls, ANSWER.format(token=_host_token(cli)))
    bad = _plugin(tmp_path / "broken.sh", calls, "echo 'no login session' >&2; exit 3")
    second = tmp_path / "second"
    second.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "clusters": [],
        "users": [{"name": "sso", "user": _exec_user(good)},
                  {"name": "broken", "user": _exec_user(bad)}],
        # the cluster is the one the first file defines: the files are merged
        "contexts": [{"name": "sso-host", "context": {"cluster": HOST_CONTEXT, "user": "sso"}},
                     {"name": "broken-host",
                      "context": {"cluster": HOST_CONTEXT, "user": "broken"}}],
    }))
    both = os.pathsep.join([str(first), str(second)])
    before_second = second.read_text()

    err = cli.fails("--context", "broken-host", "create", "nope", KUBECONFIG=both)
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: "), err
    assert "no login session" in last, err

    argv = [sys.executable, "-m", "syncer.cli.main"]
    procs = [subprocess.Popen([*argv, "create", "sso", "--context", "sso-host", "-o", "json"],
                              env=cli.env(KUBECONFIG=both), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True),
             subprocess.Popen([*argv, "create", "plain", "-o", "json"],
                              env=cli.env(KUBECONFIG=both), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)]
    created = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        created.append(orjson.loads(out))
    try:
        assert [c["name"] for c in created] == ["sso", "plain"]
        assert created[0]["hostContext"] == "sso-host"
        assert created[1]["hostContext"] == HOST_CONTEXT
        told = [orjson.loads(line) for line in calls.read_text().splitlines()]
        assert len(told) >= 2, told
        assert not any(t["spec"]["interactive"] for t in told), told
        assert all(t["spec"]["cluster"]["server"].startswith("https://") for t in told), told

        assert first.is_symlink(), "the symlinked kubeconfig was replaced by a file"
        assert stat.S_IMODE(real.stat().st_mode) == 0o600
        merged = yaml.safe_load(real.read_text())
        contexts = {c["name"] for c in merged["contexts"]}
        assert {c["context"] for c in created} <= contexts, "a concurrent create lost its entry"
        assert second.read_text() == before_second, "entries went to the second file"
        assert not list(tmp_path.glob("*.lock")), "a kubeconfig lock was left behind"

        for row in created:
            got = cli.kubectl("--context", row["context"], "get", "namespace", "default",
                              "-o", "name", kubeconfig=Path(both))
            assert got.strip() == "namespace/default"
        listed = {(r["name"], r["hostContext"])
                  for r in orjson.loads(cli.run("list", "-o", "json", KUBECONFIG=both).stdout)}
        assert {("sso", "sso-host"), ("plain", HOST_CONTEXT)} <= listed
        hosts = orjson.loads(cli.run("host", "list", "-o", "json").stdout)
        assert [h["context"] for h in hosts] == [HOST_CONTEXT]
        printed = orjson.loads(cli.run("connect", "plain", "--print", "-o", "json",
                                       KUBECONFIG=both).stdout)
        assert printed["current-context"] == created[1]["context"]
        _syncer_logs_and_metrics(cli, "sso")
    finally:
        for row in created:
            cli.run("delete", row["name"], "--context", row["hostContext"], KUBECONFIG=both,
                    check=False)


def _syncer_logs_and_metrics(cli: Cli, name: str) -> None:
    """The syncer behind an exec-credential host: controller-runtime's log keys with the
    ``extra=`` fields, and client-go's / controller-runtime's metric families."""
    syncer = cli.record(name)["syncer"]
    lines = [orjson.loads(line) for line in Path(syncer["log"]).read_text().splitlines()
             if line.startswith("{")]
    started = next(line for line in lines if line.get("msg") == "vcsync started")
    assert list(started)[:4] == ["ts", "level", "logger", "msg"], started
    assert started["vcluster"] == name, started
    leader = [line for line in lines if line.get("msg") == "became leader"]
    assert all(line.get("identity") for line in leader), leader

    def reconciled() -> str:
        page = _scrape(cli, int(syncer["port"]))
        return page if 'controller_runtime_reconcile_total{controller="' in page else ""

    text = eventually(reconciled, "the syncer's reconciles in its metrics")
    for family in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                   "process_open_fds", "controller_runtime_reconcile_errors_total",
                   "controller_runtime_reconcile_time_seconds_bucket",
                   "controller_runtime_active_workers", "rest_client_request_duration_seconds",
                   "rest_client_rate_limiter_duration_seconds_bucket"):
        assert f"\n{family}" in text, f"{family} missing"
    requests = [line for line in text.splitlines()
                if line.startswith("rest_client_requests_total{")]
    assert requests
    assert all('host="' in r and 'method="' in r and 'code="' in r for r in requests), requests
    assert not any('method="WATCH"' in r or 'code="0"' in r for r in requests), requests
    assert any('code="200"' in r and 'method="GET"' in r for r in requests), requests


def test_bench_without_its_extra_refuses_before_writing(tmp_path: Path) -> None:
    """Without matplotlib (the bench extra), `vcsync bench load` says so and writes nothing."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import sys\nsys.modules['matplotlib'] = None  # as if not installed\n")
    cli = Cli(tmp_path)
    out = tmp_path / "results"
    for bench in ("load", "density"):
        err = cli.fails("bench", bench, "--output", str(out), PYTHONPATH=str(hide))
        assert "matplotlib" in err, err
        assert "vcsync[bench]" in err, err
        assert not out.exists(), f"bench {bench} wrote {sorted(out.rglob('*'))}"

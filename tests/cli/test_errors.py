"""Every user mistake and broken environment gets one clear sentence, exit 1, and no residue."""

from __future__ import annotations

import socket
from pathlib import Path

import orjson
import pytest

from syncer.local import binaries, network
from tests.cli.conftest import HOST, Cli


@pytest.fixture
def fresh(tmp_path: Path) -> Cli:
    """A CLI home with no kubeconfig and no state."""
    return Cli(tmp_path)


@pytest.mark.parametrize(("args", "message"), [
    (["create", "Bad_Name"], "invalid virtual cluster name 'Bad_Name'"),
    (["create", "x", "--kubernetes-version", "v1.2.3"], "unsupported Kubernetes version"),
    (["create", "x", "--ttl", "5x"], "invalid duration '5x'"),
    (["create", "x", "--set", "sync.toHost.nope.enabled=true"], "invalid values"),
    # Helm's --set grammar: the comma starts a second assignment, which names an unknown key.
    (["create", "x", "--set", "syncer.shards=2,sync.toHost.nope.enabled=true"],
     "additional properties 'nope' not allowed"),
    (["create", "x", "--set", "sync.toHost.pods.enabled={true"], "list must terminate"),
    (["create", "x", "--set-string", "syncer.shards=2"], "/syncer/shards"),
    (["create", "x", "--set-file", "syncer.shards=/nonexistent/shards"], "cannot read"),
    (["create", "x", "--set", "controlPlane.distro=x"], "controlPlane.distro must be a mapping"),
    # null means the chart's default: the values pass and the next check speaks.
    (["create", "x", "--set", "controlPlane=null"], "no current kubectl context"),
    (["create", "x", "-f", "/nonexistent/values.yaml"], "cannot read values file"),
    (["create", "x"], "no current kubectl context"),
    (["delete"], "give the NAME"),
    (["resume", "ghost"], "no virtual cluster named 'ghost'"),
    (["connect", "ghost"], "no virtual cluster named 'ghost'"),
    (["disconnect"], "not a virtual cluster"),
    (["host", "create", "h", "--nodes", "0"], "--nodes must be between 1 and 100"),
])
def test_bad_input_is_one_clear_error(fresh: Cli, args: list[str], message: str) -> None:
    assert message in fresh.fails(*args)
    assert not (fresh.state / "vclusters").exists() or not any(
        (fresh.state / "vclusters").iterdir())


def test_unreachable_host(fresh: Cli) -> None:
    fresh.kubectl("config", "set-cluster", "dead", "--server=https://127.0.0.1:1")
    fresh.kubectl("config", "set-credentials", "dead", "--token=x")
    fresh.kubectl("config", "set-context", "dead", "--cluster=dead", "--user=dead")
    fresh.kubectl("config", "use-context", "dead")
    assert "at https://127.0.0.1:1 is unreachable" in fresh.fails("create", "x")


def test_missing_binaries(fresh: Cli, tmp_path: Path) -> None:
    error = fresh.fails("host", "create", VCSYNC_CACHE=str(tmp_path / "empty-cache"))
    assert "missing binaries for Kubernetes" in error
    assert "make binaries" in error


def test_name_conflicts(cli: Cli) -> None:
    assert f"host cluster {HOST!r} already exists" in cli.fails("host", "create", HOST)
    cli.use_host()
    cli.run("create", "dup", "--no-connect")
    assert "already exists" in cli.fails("create", "dup")
    assert "already holds virtual cluster 'dup'" in cli.fails(
        "create", "other", "--namespace", "vcluster-dup")
    cli.kubectl("create", "namespace", "taken")
    assert "host namespace 'taken' already exists" in cli.fails(
        "create", "squatter", "--namespace", "taken")
    cli.run("delete", "dup")
    cli.kubectl("delete", "namespace", "taken", "--wait=false")


def _cache_with_broken_kine(tmp_path: Path) -> Path:
    cache = tmp_path / "cache"
    (cache / "bin").mkdir(parents=True)
    for real in binaries.bin_dir().iterdir():
        (cache / "bin" / real.name).symlink_to(real)
    kine = cache / "bin" / f"kine-{binaries.KINE_VERSION}"
    kine.unlink()
    kine.write_text("#!/bin/sh\necho 'kine: cannot open the database: disk on fire' >&2\nexit 3\n")
    kine.chmod(0o755)
    return cache


def test_component_dying_at_start_is_named_and_nothing_is_left(cli: Cli, tmp_path: Path) -> None:
    cli.use_host()
    error = cli.fails("create", "broken", VCSYNC_CACHE=str(_cache_with_broken_kine(tmp_path)))
    assert "kine exited" in error
    assert "disk on fire" in error
    assert "broken" not in cli.listed()
    assert cli.pids("broken") == []
    namespaces = {n["metadata"]["name"] for n in cli.kubectl_json("get", "namespaces")["items"]}
    assert "vcluster-broken" not in namespaces, "the host namespace of a failed create is left"


def test_resume_onto_a_taken_port_says_so(cli: Cli) -> None:
    cli.use_host()
    cli.run("create", "squeezed", "--no-connect")
    cli.run("pause", "squeezed")
    record = next(cli.state.glob("vclusters/squeezed.*/vcluster.json"))
    port = orjson.loads(record.read_bytes())["plane"]["ports"]["store"]
    with network.entered(cli.host_netns()), socket.socket() as blocker:  # where kine binds
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        error = cli.fails("resume", "squeezed")
    assert f"port {port} of kine" in error
    assert "in use by another process" in error
    assert cli.listed()["squeezed"]["status"] == "Paused"
    assert cli.pids("squeezed") == []
    cli.run("delete", "squeezed")
    assert not record.exists()

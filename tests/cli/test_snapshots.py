"""``vcsync snapshot``: taken during churn, restored equal, here or beside the original.

- A snapshot taken while the chaos suite's churn writes (half-way through it)
  never pauses the tenant (the churn needs no retry), and the cluster restored
  from it into a second host namespace of the same host, while the original
  still runs, holds exactly the original's objects at the snapshot's
  revision: every object of every kind, by uid, content without
  resourceVersion, and count (the manifest's counts agree). Its host namespace
  then converges by the chaos oracle with nothing lost or duplicated, its
  pods come back through their controllers, a token issued before the
  snapshot still authenticates, and the two clusters stay independent.
- A restore into an existing cluster asks first, then makes it the snapshot
  again: what was made after the snapshot is gone, on the host too.
- Bad archives (truncated, edited, newer or older format, a Kubernetes
  version that would be a downgrade) are refused before anything changes.
- A restore whose CLI is SIGKILLed half-way leaves the target untouched or
  half-restored with a journal; running it again completes it.
"""

from __future__ import annotations

import asyncio
import functools
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from syncer.kube.client import KubeClient
from syncer.snapshot import archive
from tests import archives
from tests.chaos.churn import Churn, ChurnSpec
from tests.cli import snapshots as snap
from tests.cli.conftest import Cli
from tests.suite_size import pick
from tests.support import eventually, wait_until

OBJECTS = pick(ci=300, full=2000)
RATE = pick(ci=10.0, full=10.0)
LIVE_APPS = pick(ci=8, full=24)
CONVERGE_TIMEOUT = pick(ci=180.0, full=600.0)
SA_USER = "system:serviceaccount:default:default"


@pytest.mark.timeout(pick(ci=600, full=1800))  # full: 2,000 objects of churn, two clusters
async def test_snapshot_during_churn_restores_equal_beside_the_original(
    cli: Cli, tmp_path: Path
) -> None:
    cli.use_host()
    cli.run("create", "snap-src", "--no-connect")
    file = tmp_path / "src.tgz"
    async with snap.virtual_client(cli, "snap-src", tmp_path) as src:
        token = await snap.service_account_token(src, "default", "default")
        churn = Churn(src, ChurnSpec(objects=OBJECTS, rate=RATE, live_apps=LIVE_APPS, seed=21,
                                     prefix="snap"))
        work = asyncio.create_task(churn.run())
        await wait_until(functools.partial(churn.progressed, OBJECTS // 2),
                         f"the churn to create {OBJECTS // 2} objects",
                         timeout=OBJECTS / RATE * 4)
        await asyncio.to_thread(cli.run, "snapshot", "create", "snap-src", "-o", str(file))
        assert not work.done(), "the snapshot was to be taken during the churn"
        _only(tmp_path, file.name, "snap-src.kubeconfig")
        manifest = archive.read_manifest(file)
        original = await snap.objects_at(src, manifest.revision)
        record = await work
    assert record.counts["retry"] == 0, f"the tenant was interrupted: {record.summary()}"
    assert manifest.store_type == "kine-sqlite"
    for resource in ("configmaps", "secrets", "deployments", "replicasets", "namespaces"):
        assert manifest.objects.get(resource) == snap.count(original, resource), resource
    assert snap.count(original, "configmaps") >= 4, "the churn's objects are not in it"

    cli.run("snapshot", "restore", "snap-dst", str(file), "--no-connect")
    async with snap.virtual_client(cli, "snap-dst", tmp_path) as dst, \
            snap.virtual_client(cli, "snap-src", tmp_path) as src:
        restored = await snap.objects_at(dst, manifest.revision)
        assert snap.differences(original, restored) == []
        assert len(restored) == len(original)
        await _converged_and_rolled_out(cli, "snap-dst", dst)
        gone = await snap.lost(dst, snap.lasting(original))
        assert gone == [], "\n".join(gone)
        assert snap.whoami(cli, "snap-dst", token, tmp_path) == SA_USER
        await _independent(cli, src, dst)
        await snap.converged(cli, "snap-src", src, snap.host_record(cli), CONVERGE_TIMEOUT,
                             "the original's host namespace, after the restore beside it")
    cli.run("delete", "snap-dst")
    cli.run("delete", "snap-src")


def _only(directory: Path, *names: str) -> None:
    """The archive is written beside its target; nothing else stays there (no partial
    archive, no staging directory)."""
    assert sorted(p.name for p in directory.iterdir()) == sorted(names)


async def _converged_and_rolled_out(cli: Cli, name: str, client: KubeClient) -> None:
    async def rolled_out() -> bool:
        return not await snap.unavailable(client)

    await wait_until(rolled_out, f"every Deployment of {name} rolled out again",
                     timeout=CONVERGE_TIMEOUT, interval=1.0)
    await snap.converged(cli, name, client, snap.host_record(cli), CONVERGE_TIMEOUT,
                         f"the host namespace of {name}")


async def _independent(cli: Cli, src: KubeClient, dst: KubeClient) -> None:
    """A namespace made in one is not in the other; each host namespace holds only its own
    cluster's managed objects."""
    await dst.request("POST", "/api/v1/namespaces", body={"metadata": {"name": "only-dst"}})
    names = {n["metadata"]["name"] for n in (await src.request(
        "GET", "/api/v1/namespaces"))["items"]}
    assert "only-dst" not in names
    for namespace, other in (("vcluster-snap-src", "snap-dst"), ("vcluster-snap-dst",
                                                                  "snap-src")):
        found = cli.kubectl_json("get", "pods,configmaps,secrets,services", "-n", namespace,
                                 "-l", f"vcsync.dev/managed-by={other}")["items"]
        assert found == [], f"{other}'s objects in {namespace}"


# -- into an existing cluster ------------------------------------------------------------------


def _kubectl(cli: Cli, name: str, *args: str) -> str:
    proc = cli.run("connect", name, "--", str(cli.kubectl_path()), *args)
    return proc.stdout


def _uid(cli: Cli, name: str, *what: str) -> str:
    return _kubectl(cli, name, "get", *what, "-o", "jsonpath={.metadata.uid}")


def _seed(cli: Cli, name: str) -> None:
    _kubectl(cli, name, "create", "namespace", "keep")
    _kubectl(cli, name, "create", "configmap", "settings", "-n", "keep", "--from-literal=a=1")
    _kubectl(cli, name, "create", "deployment", "web", "-n", "keep", "--image=nginx",
             "--replicas=2")


def _later(cli: Cli, name: str) -> None:
    """Changes after the snapshot: a namespace with a Deployment, an edited ConfigMap."""
    _kubectl(cli, name, "create", "namespace", "later")
    _kubectl(cli, name, "create", "deployment", "late", "-n", "later", "--image=nginx")
    _kubectl(cli, name, "patch", "configmap", "settings", "-n", "keep", "-p",
             '{"data": {"a": "2"}}')
    eventually(lambda: _host_pods(cli, name, "later"), "the later pod on the host", 60)


def _host_pods(cli: Cli, name: str, namespace: str) -> list[str]:
    items = cli.kubectl_json("get", "pods", "-n", f"vcluster-{name}", "-l",
                             f"vcsync.dev/namespace={namespace}")["items"]
    return [p["metadata"]["name"] for p in items if not p["metadata"].get("deletionTimestamp")]


def _namespaces(cli: Cli, name: str) -> set[str]:
    return set(_kubectl(cli, name, "get", "namespaces", "-o",
                        "jsonpath={.items[*].metadata.name}").split())


def _marker(name: str) -> str:
    """What the state directory of virtual cluster ``name`` (in vcluster-NAME) is called."""
    return f"/{name}.vcluster-{name}."


def _untouched(cli: Cli, name: str, pids: list[int]) -> None:
    assert sorted(cli.pids(_marker(name))) == pids, "its processes were restarted"
    assert cli.listed()[name]["status"] == "Running"
    assert "later" in _namespaces(cli, name)


async def test_restore_into_an_existing_cluster_asks_then_replaces_it(
    cli: Cli, tmp_path: Path
) -> None:
    cli.use_host()
    cli.run("create", "snap-ex", "--no-connect")
    _seed(cli, "snap-ex")
    keep_uid = _uid(cli, "snap-ex", "namespace", "keep")
    file = tmp_path / "ex.tgz"
    async with snap.virtual_client(cli, "snap-ex", tmp_path) as client:
        token = await snap.service_account_token(client, "default", "default")
    cli.run("snapshot", "create", "snap-ex", "-o", str(file))
    _later(cli, "snap-ex")
    pids = sorted(cli.pids(_marker("snap-ex")))

    error = cli.fails("snapshot", "restore", "snap-ex", str(file))
    assert "confirm with --yes" in error
    for bad, words in _bad_archives(file, tmp_path).items():
        error = cli.fails("snapshot", "restore", "snap-ex", str(bad), "--yes")
        assert words in error, error
    _untouched(cli, "snap-ex", pids)

    cli.run("snapshot", "restore", "snap-ex", str(file), "--yes", "--no-connect")
    assert cli.listed()["snap-ex"]["status"] == "Running"
    assert "later" not in _namespaces(cli, "snap-ex")
    assert _uid(cli, "snap-ex", "namespace", "keep") == keep_uid
    assert _kubectl(cli, "snap-ex", "get", "configmap", "settings", "-n", "keep", "-o",
                    "jsonpath={.data.a}") == "1"
    assert snap.whoami(cli, "snap-ex", token, tmp_path) == SA_USER
    async with snap.virtual_client(cli, "snap-ex", tmp_path) as client:
        await _converged_and_rolled_out(cli, "snap-ex", client)
    assert _host_pods(cli, "snap-ex", "later") == []
    assert len(_host_pods(cli, "snap-ex", "keep")) == 2
    cli.run("delete", "snap-ex")


# -- bad archives --------------------------------------------------------------------------------


def _bad_archives(file: Path, tmp: Path) -> dict[Path, str]:
    """Broken copies of ``file`` -> words the refusal must contain."""
    data = file.read_bytes()
    (tmp / "truncated.tgz").write_bytes(data[: len(data) * 2 // 3])
    good = archives.members(file)
    store = [(n, d[:-1] + bytes([d[-1] ^ 1]) if n == "store/state.db" else d) for n, d in good]

    def edited(name: str, **changes: object) -> Path:
        return archives.repack(archives.remanifested(good, **changes), tmp / name)

    return {
        tmp / "truncated.tgz": "truncated",
        archives.repack(store, tmp / "tampered.tgz"):
            "store/state.db does not match its checksum",
        edited("newer.tgz", format=archive.FORMAT + 1): "newer vcsync",
        edited("older.tgz", format=0): "older vcsync",
        edited("k8s.tgz", kubernetes_version="v1.37.0"): "downgrade",
        tmp / "absent.tgz": "no snapshot file",
    }


def test_bad_archives_make_no_new_cluster(cli: Cli, tmp_path: Path) -> None:
    cli.use_host()
    cli.run("create", "snap-bad", "--no-connect")
    file = tmp_path / "bad.tgz"
    cli.run("snapshot", "create", "snap-bad", "-o", str(file))
    cli.run("delete", "snap-bad")
    for bad, words in _bad_archives(file, tmp_path).items():
        error = cli.fails("snapshot", "restore", "snap-new", str(bad), "--no-connect")
        assert words in error, error
        error = cli.fails("create", "snap-new", "--from-snapshot", str(bad), "--no-connect")
        assert words in error, error
    assert "snap-new" not in cli.listed()
    assert list((cli.state / "vclusters").glob("snap-new.*")) == []
    namespaces = {n["metadata"]["name"] for n in cli.kubectl_json("get", "namespaces")["items"]}
    assert "vcluster-snap-new" not in namespaces
    assert cli.pids(_marker("snap-new")) == []


# -- SIGKILL during a restore --------------------------------------------------------------------


def _kill_when(cli: Cli, args: list[str], reached: Callable[[], bool], what: str) -> None:
    """Run ``vcsync ARGS`` and SIGKILL it once ``reached()`` is true (polled every 20 ms)."""
    proc = subprocess.Popen([sys.executable, "-m", "syncer.cli.main", *args], env=cli.env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        eventually(lambda: reached() or proc.poll() is not None, what, timeout=120,
                   interval=0.02)
        assert proc.poll() is None, f"the restore ended (exit {proc.returncode}) before {what}"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def _journal(cli: Cli, name: str) -> Path | None:
    found = list((cli.state / "vclusters").glob(f"{name}.*/restore.json"))
    return found[0] if found else None


def _apiserver_started(cli: Cli, name: str) -> bool:
    return any("kube-apiserver" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(
        errors="replace") for pid in cli.pids(_marker(name)))


def test_sigkill_during_a_restore_is_completed_by_running_it_again(
    cli: Cli, tmp_path: Path
) -> None:
    cli.use_host()
    cli.run("create", "snap-k", "--no-connect")
    _seed(cli, "snap-k")
    file = tmp_path / "k.tgz"
    cli.run("snapshot", "create", "snap-k", "-o", str(file))
    keep_uid = _uid(cli, "snap-k", "namespace", "keep")

    # Into a new cluster, killed while its control plane starts: no record, so only its host
    # namespace is seen, as an interrupted attempt of this machine.
    new = ["snapshot", "restore", "snap-k2", str(file), "--no-connect"]
    _kill_when(cli, new, lambda: _apiserver_started(cli, "snap-k2"),
               "the new cluster's kube-apiserver to start")
    status = cli.listed()["snap-k2"]["status"]
    assert status.startswith("Incomplete (an interrupted create or restore here"), status
    cli.run(*new)
    assert _uid(cli, "snap-k2", "namespace", "keep") == keep_uid
    assert len(cli.pids(_marker("snap-k2"))) == 4, "processes of the killed attempt are left"

    # Into an existing one, killed once the journal is written (during the pause).
    _later(cli, "snap-k")
    replace = ["snapshot", "restore", "snap-k", str(file), "--yes", "--no-connect"]
    _kill_when(cli, replace, lambda: _journal(cli, "snap-k") is not None,
               "the restore journal to be written")
    status = cli.listed()["snap-k"]["status"]
    assert status.startswith("Restoring (interrupted"), status
    assert "restore into 'snap-k' was interrupted" in cli.fails("resume", "snap-k")
    started = time.monotonic()
    cli.run(*replace)
    assert time.monotonic() - started < 120
    assert cli.listed()["snap-k"]["status"] == "Running"
    assert "later" not in _namespaces(cli, "snap-k")
    assert _uid(cli, "snap-k", "namespace", "keep") == keep_uid
    assert _journal(cli, "snap-k") is None
    cli.run("delete", "snap-k2")
    cli.run("delete", "snap-k")


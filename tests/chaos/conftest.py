"""Fixtures of the chaos suite: the cluster tests' stack on audited control planes.

Differences from ``tests/cluster``, and why:

- one host cluster for the chaos package (not the session's): the tests
  restart its etcd and API server, and its API server writes an audit log
  of every write (``tests/chaos/audit.py``);
- the virtual control plane keeps its state in SQLite, as in production
  (a restarted in-memory kine would come back empty), and is audited too;
- the workload writes as its own ServiceAccount (``churn_client``), so the
  audit log tells its requests from the syncer's;
- ``report`` prints a test's figures and appends them as a JSON line to
  ``chaos.jsonl`` under pytest's base temp dir, or to
  ``benchmarks/results/chaos.jsonl`` at full size.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from syncer.kube.client import KubeClient
from syncer.local.cluster import HostCluster, VirtualControlPlane
from tests import suite_size
from tests.chaos import audit
from tests.cluster import conftest as cluster
from tests.cluster.conftest import VC, Stack
from tests.conftest import ClientFactory, running

CHURN_USER = audit.service_account_user("default", "chaos-churn")
SYNCER_USER = "vcsync-admin"
"""Who a syncer started by ``Stack.syncer`` is on both API servers (the admin kubeconfig)."""
RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "chaos.jsonl"
Report = Callable[[str, dict[str, Any]], None]
stack = cluster.stack
config = cluster.config


@pytest.fixture(scope="package")
def host_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostCluster]:
    """A host cluster of the chaos suite's own, with an audit log of writes."""
    root = tmp_path_factory.mktemp("chaos-host")
    cluster = HostCluster(name="chaos", root=root,
                          apiserver_args=audit.apiserver_flags(root / "audit"))
    with running(cluster):
        yield cluster


@pytest.fixture
def virtual_cluster(tmp_path: Path) -> Iterator[VirtualControlPlane]:
    """A virtual control plane on SQLite (state survives a kine restart), audited."""
    root = tmp_path / VC
    cluster = VirtualControlPlane(name=VC, root=root, store="sqlite",
                                  apiserver_args=audit.apiserver_flags(root / "audit"))
    with running(cluster):
        yield cluster


@pytest.fixture
async def churn_client(stack: Stack, connect: ClientFactory,
                       tmp_path: Path) -> AsyncIterator[KubeClient]:
    """A client of the virtual API server acting as ServiceAccount ``default/chaos-churn``."""
    path = await audit.identity(stack.virtual, stack.virtual_cluster, "default", "chaos-churn",
                                tmp_path / "churn.kubeconfig")
    client = await KubeClient.from_kubeconfig(str(path), name="churn")
    yield client
    await client.close()


@pytest.fixture(scope="session")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    """``report(test, figures)``: print the figures and keep them as one JSON line."""
    path = RESULTS if suite_size.full() else tmp_path_factory.getbasetemp() / "chaos.jsonl"

    def write(test: str, figures: dict[str, Any]) -> None:
        at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        line = json.dumps({"test": test, "size": suite_size.size(), "at": at, **figures},
                          sort_keys=True)
        print(f"\nchaos result: {line}")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as out:
            out.write(line + "\n")

    return write

"""Fixtures: real control planes (session host cluster, per-test virtual ones).

The session runs in a network namespace of its own (``syncer.local.network``):
the host cluster gets realistic node, pod and Service ranges there, and every
packet any component or test sends stays inside; it vanishes with the session.

Every process a test run starts carries ``VCSYNC_OWNER`` with this session's
id; at the end of the session a /proc scan must find none of them alive, and
no named network namespace of this session may remain, or the run fails (the
launcher's teardown is part of what we test).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from pathlib import Path
from typing import Protocol, TypeVar

import pytest

from syncer.kube.client import KubeClient
from syncer.local import network
from syncer.local.cluster import ControlPlane, HostCluster, VirtualControlPlane
from syncer.local.process import leftover_pids

C = TypeVar("C", bound=ControlPlane)
OWNER = os.environ.setdefault("VCSYNC_OWNER", f"pytest-{uuid.uuid4().hex[:12]}")


def pytest_configure(config: pytest.Config) -> None:
    """Enter the session's own network namespace before any thread or socket exists."""
    network.enter_private()


class Running(Protocol):
    """Something a test started that has logs and must be stopped."""

    def logs(self, lines: int = 30) -> str: ...

    def stop(self) -> None: ...


_LIVE: list[Running] = []


def track(process: Running) -> None:
    """Show ``process``'s log tail when a test fails; stop it at the end of the session."""
    _LIVE.append(process)


def untrack(process: Running) -> None:
    process.stop()
    _LIVE.remove(process)


def _started(cluster: ControlPlane) -> ControlPlane:
    track(cluster)
    cluster.start()
    return cluster


@contextlib.contextmanager
def running(cluster: C) -> Iterator[C]:
    """``cluster`` started and tracked for the block (a fixture's body), stopped after it."""
    _started(cluster)
    try:
        yield cluster
    finally:
        untrack(cluster)


@pytest.fixture(scope="session")
def host_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostCluster]:
    """One host cluster (etcd, apiserver, controller-manager, scheduler, 3 kwok nodes)."""
    with running(HostCluster(name="test", root=tmp_path_factory.mktemp("host"))) as cluster:
        yield cluster


VirtualFactory = Callable[[str], VirtualControlPlane]


@pytest.fixture
def virtual_cluster_factory(tmp_path: Path) -> Iterator[VirtualFactory]:
    """Start virtual control planes on demand (kine in memory); all stopped afterwards."""
    made: list[VirtualControlPlane] = []

    def make(name: str) -> VirtualControlPlane:
        cluster = VirtualControlPlane(name=name, root=tmp_path / name, store="memory")
        made.append(cluster)
        _started(cluster)
        return cluster

    yield make
    for cluster in made:
        untrack(cluster)


@pytest.fixture
def virtual_cluster(virtual_cluster_factory: VirtualFactory) -> VirtualControlPlane:
    return virtual_cluster_factory("vc1")


ClientFactory = Callable[[ControlPlane], Awaitable[KubeClient]]


@pytest.fixture
async def connect() -> AsyncIterator[ClientFactory]:
    """``await connect(cluster)`` gives an async raw-JSON client, closed after the test."""
    clients: list[KubeClient] = []

    async def make(cluster: ControlPlane) -> KubeClient:
        client = await KubeClient.from_kubeconfig(str(cluster.kubeconfig), name=cluster.kind)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


CONTROL_PLANE_SUITES = ("chaos", "cli", "cluster", "security")
"""Directories of tests/ whose tests drive real control planes (in-process or via ``vcsync``)."""
CONTROL_PLANE_FIXTURES = frozenset({"host_cluster", "virtual_cluster_factory"})
"""The fixtures that start control planes; a test anywhere that uses one needs them."""


def needs_control_planes(item: pytest.Item) -> bool:
    suite = item.path.relative_to(Path(__file__).parent).parts[0]
    return suite in CONTROL_PLANE_SUITES or bool(
        CONTROL_PLANE_FIXTURES & set(getattr(item, "fixturenames", ())))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs control planes ``cluster``, so ``-m "not cluster"`` is the
    fast run: by suite, and by fixture wherever else one is used."""
    for item in items:
        if needs_control_planes(item):
            item.add_marker(pytest.mark.cluster)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On failure, attach the tail of every running component's log to the report."""
    report = yield
    if report.failed and _LIVE:
        report.sections.append(("control-plane logs", "\n".join(c.logs(20) for c in _LIVE)))
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any process this session started is still alive."""
    for cluster in list(_LIVE):
        cluster.stop()
    leftovers = leftover_pids(OWNER)
    if leftovers:
        for pid in leftovers:
            os.kill(pid, 9)
        print(f"\nERROR: processes left running by the test session: {leftovers}")
        session.exitstatus = 1
    namespaces = network.owned_named(OWNER)
    if namespaces:
        for name in namespaces:
            network.delete_named(name)
        print(f"\nERROR: network namespaces left by the test session: {namespaces}")
        session.exitstatus = 1

"""Informer robustness against real API servers: 410 after compaction, stalls, resets."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import orjson
import pytest

from contract import resources as r
from contract.resources import Obj
from syncer.informer import Informer
from syncer.kube.client import KubeClient
from syncer.local.cluster import ControlPlane, HostCluster
from tests.conftest import OWNER, ClientFactory
from tests.proxy import FaultyProxy, kubeconfig_via
from tests.support import wait_until

Seen = list[tuple[str, Obj | None, Obj | None]]


@pytest.fixture(scope="module")
def uncached_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostCluster]:
    """A host whose API server watches etcd directly, so compaction yields 410 Gone."""
    cluster = HostCluster(
        name="nocache", root=tmp_path_factory.mktemp("nocache"), nodes=0, owner=OWNER,
        apiserver_args=["--watch-cache=false"],
    )
    with cluster:
        yield cluster


def _cm(name: str, value: str = "1") -> Obj:
    return {"metadata": {"name": name}, "data": {"v": value}}


async def _namespace(client: KubeClient, name: str) -> None:
    await client.create(r.NAMESPACES, {"metadata": {"name": name}})


def _compact(cluster: ControlPlane, revision: int) -> None:
    body = orjson.dumps({"revision": str(revision), "physical": True})
    req = urllib.request.Request(
        f"http://127.0.0.1:{cluster.ports['store']}/v3/kv/compaction", data=body, method="POST"
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


@contextlib.asynccontextmanager
async def _running(informer: Informer) -> AsyncIterator[None]:
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.synced.wait(), 30)
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _has(informer: Informer, name: str) -> bool:
    return name in _names(informer)


def _names(informer: Informer) -> set[str]:
    return {obj["metadata"]["name"] for obj in informer.store}


async def _same_as_fresh_list(informer: Informer, client: KubeClient, ns: str) -> bool:
    items, _ = await client.list(r.CONFIGMAPS, ns)
    fresh = {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in items}
    cached = {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in informer.store}
    return fresh == cached


async def test_gone_after_compaction_relists_and_emits_deletes(
    uncached_host: HostCluster, connect: ClientFactory
) -> None:
    client = await connect(uncached_host)
    await _namespace(client, "gone")
    for name in ("a", "b"):
        await client.create(r.CONFIGMAPS, _cm(name), "gone")
    seen: Seen = []
    informer = Informer(client, r.CONFIGMAPS, lambda k, o, n: seen.append((k, o, n)),
                        namespace="gone")
    async with _running(informer):
        assert {"a", "b"} <= _names(informer)
    # While nobody watches: change everything, then compact etcd past our version.
    await client.delete(r.CONFIGMAPS, "b", "gone")
    await client.create(r.CONFIGMAPS, _cm("c"), "gone")
    await client.patch(r.CONFIGMAPS, "a", {"data": {"v": "2"}}, "gone")
    _, rv = await client.list(r.CONFIGMAPS, "gone")
    _compact(uncached_host, int(rv))
    seen.clear()
    async with _running(informer):
        await wait_until(lambda: _same_as_fresh_list(informer, client, "gone"),
                         "the store to equal a fresh LIST after 410", timeout=30)
    assert informer.statistics().relists_after_gone >= 1, informer.statistics()
    assert ("gone/b", None) in [(k, n) for k, _, n in seen], "delete of b was not emitted"
    assert any(k == "gone/c" and o is None for k, o, _ in seen), "add of c was not emitted"
    assert any(k == "gone/a" and o is not None and n is not None for k, o, n in seen)


@pytest.mark.parametrize("fault", ["stall", "reset"])
async def test_watch_recovers_from_stalled_or_cut_stream(
    host_cluster: HostCluster, connect: ClientFactory, tmp_path: Path, fault: str
) -> None:
    direct = await connect(host_cluster)
    namespace = f"fault-{fault}"
    await _namespace(direct, namespace)
    proxy = await FaultyProxy(host_cluster.ports["apiserver"]).start()
    via = await KubeClient.from_kubeconfig(
        str(kubeconfig_via(host_cluster, proxy.port, tmp_path / "kubeconfig")), name="proxied"
    )
    informer = Informer(via, r.CONFIGMAPS, lambda k, o, n: None, namespace=namespace,
                        watch_timeout=2)
    try:
        async with _running(informer):
            await direct.create(r.CONFIGMAPS, _cm("early"), namespace)
            await wait_until(lambda: "early" in _names(informer), "the watch to stream events")
            hit = proxy.stall() if fault == "stall" else proxy.reset()
            assert hit >= 1, "no live connection to fault"
            await direct.create(r.CONFIGMAPS, _cm("late"), namespace)
            await wait_until(lambda: "late" in _names(informer),
                             f"the informer to see an object created during a {fault}",
                             timeout=30)
            assert informer.statistics().watches >= 2, informer.statistics()
            assert await _same_as_fresh_list(informer, direct, namespace)
    finally:
        await via.close()
        await proxy.stop()


async def test_each_break_of_a_streaming_watch_is_retried_promptly(
    host_cluster: HostCluster, connect: ClientFactory, tmp_path: Path
) -> None:
    """A watch that streamed and then broke is a *new* failure, not the next of a series.

    Found by the chaos wire test (tests/chaos/test_wire.py): the informer's
    backoff counted every break since the last clean end of a watch, so after
    a handful of connection resets minutes apart each new one left the
    informer blind for its full 30 s backoff. Here eight resets, each after
    the watch delivered an event: the informer must be back within a few
    seconds after every one of them.
    """
    direct = await connect(host_cluster)
    namespace = "fault-series"
    await _namespace(direct, namespace)
    proxy = await FaultyProxy(host_cluster.ports["apiserver"]).start()
    via = await KubeClient.from_kubeconfig(
        str(kubeconfig_via(host_cluster, proxy.port, tmp_path / "kubeconfig")), name="proxied"
    )
    informer = Informer(via, r.CONFIGMAPS, lambda k, o, n: None, namespace=namespace)
    recoveries: list[float] = []
    try:
        async with _running(informer):
            for i in range(8):
                await direct.create(r.CONFIGMAPS, _cm(f"seen-{i}"), namespace)
                start = time.monotonic()
                await wait_until(functools.partial(_has, informer, f"seen-{i}"),
                                 f"the informer to stream again after {i} resets", timeout=60)
                recoveries.append(time.monotonic() - start)
                assert proxy.reset() >= 1, "no live connection to reset"
    finally:
        await via.close()
        await proxy.stop()
    assert max(recoveries) < 5.0, f"seconds to see a new object after each reset: {recoveries}"

"""The raw-JSON client and the status batcher against a real API server."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from contract import resources as r
from contract.resources import Obj
from syncer.kube import liveness
from syncer.kube.client import ClientSettings, KubeClient
from syncer.kube.errors import (
    AlreadyExists,
    BadRequest,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    TooManyRequests,
)
from syncer.local.cluster import VirtualControlPlane
from syncer.writer import StatusBatcher
from tests.conftest import OWNER, ClientFactory
from tests.proxy import FaultyProxy, kubeconfig_via
from tests.support import TcpConnection, kubeconfig_for_token, tcp_connections, wait_until

KEEPALIVE_TIMER = 2
"""/proc/net/tcp's code for a socket whose keepalive timer runs."""


@pytest.fixture
async def vc(virtual_cluster: VirtualControlPlane, connect: ClientFactory) -> KubeClient:
    return await connect(virtual_cluster)


def _cm(name: str) -> Obj:
    return {"metadata": {"name": name}, "data": {"k": "v"}}


async def test_status_codes_map_to_the_error_hierarchy(vc: KubeClient) -> None:
    with pytest.raises(NotFound):
        await vc.get(r.CONFIGMAPS, "missing", "default")
    await vc.create(r.CONFIGMAPS, _cm("dup"), "default")
    with pytest.raises(AlreadyExists) as exists:
        await vc.create(r.CONFIGMAPS, _cm("dup"), "default")
    assert exists.value.status == 409
    assert exists.value.reason == "AlreadyExists"
    with pytest.raises(Invalid):
        await vc.create(r.CONFIGMAPS, _cm("Not_A_Name"), "default")
    with pytest.raises(BadRequest):
        await vc.request("POST", r.CONFIGMAPS.path("default"), body=b"{not json")
    with pytest.raises(NotFound):
        await vc.create(r.CONFIGMAPS, _cm("x"), "no-such-namespace")


async def test_forbidden_for_an_unprivileged_identity(
    virtual_cluster: VirtualControlPlane, vc: KubeClient, tmp_path: Path
) -> None:
    await vc.create(r.SERVICEACCOUNTS, {"metadata": {"name": "nobody"}}, "default")
    token = await vc.create_subresource(
        r.SERVICEACCOUNTS, "nobody", "token", {"spec": {}}, "default"
    )
    path = kubeconfig_for_token(virtual_cluster, token["status"]["token"],
                                tmp_path / "nobody.kubeconfig")
    async with await KubeClient.from_kubeconfig(str(path), name="nobody") as nobody:
        with pytest.raises(Forbidden):
            await nobody.list(r.SECRETS, "kube-system")


async def test_delete_honours_uid_precondition_and_grace(vc: KubeClient) -> None:
    created = await vc.create(r.CONFIGMAPS, _cm("guarded"), "default")
    with pytest.raises(Conflict):
        await vc.delete(r.CONFIGMAPS, "guarded", "default", uid="not-the-uid")
    await vc.delete(r.CONFIGMAPS, "guarded", "default", uid=created["metadata"]["uid"],
                    grace_period=0)
    with pytest.raises(NotFound):
        await vc.get(r.CONFIGMAPS, "guarded", "default")


async def test_paged_list_returns_everything(vc: KubeClient) -> None:
    await vc.create(r.NAMESPACES, {"metadata": {"name": "paged"}})
    await asyncio.gather(*(vc.create(r.CONFIGMAPS, _cm(f"p{i}"), "paged") for i in range(25)))
    items, rv = await vc.list(r.CONFIGMAPS, "paged", page_size=4)
    names = {i["metadata"]["name"] for i in items}
    assert {f"p{i}" for i in range(25)} <= names
    assert rv.isdigit()


async def test_server_side_apply_and_strategic_patch(vc: KubeClient) -> None:
    applied = await vc.patch(
        r.CONFIGMAPS, "applied",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"},
         "data": {"a": "1"}},
        "default", patch_type="apply", force=True,
    )
    assert applied["data"] == {"a": "1"}
    patched = await vc.patch(r.CONFIGMAPS, "applied", {"data": {"b": "2"}}, "default",
                             patch_type="strategic")
    assert patched["data"] == {"a": "1", "b": "2"}


def _pod(name: str) -> Obj:
    return {"metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}


async def test_status_batcher_coalesces_and_newest_wins(vc: KubeClient) -> None:
    await vc.create(r.PODS, _pod("statusy"), "default")
    batcher = StatusBatcher(vc, lambda: True, interval=0.05)
    flusher = asyncio.create_task(batcher.run())
    try:
        for i in range(50):
            batcher.submit(r.PODS, "statusy", "default",
                           {"status": {"message": f"update {i}", "reason": "Testing"}})
        await batcher.drain(timeout=10)
    finally:
        flusher.cancel()
    pod = await vc.get(r.PODS, "statusy", "default")
    assert pod["status"]["message"] == "update 49"
    assert batcher.flushed < 50, f"{batcher.flushed} writes for 50 updates: nothing coalesced"
    assert batcher.flushed + batcher.coalesced == 50


async def test_binding_subresource(vc: KubeClient) -> None:
    await vc.create(r.NODES, {"metadata": {"name": "n1"}})
    await vc.create(r.PODS, _pod("bindme"), "default")
    await vc.create_subresource(
        r.PODS, "bindme", "binding",
        {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "bindme"},
         "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}},
        "default",
    )
    assert (await vc.get(r.PODS, "bindme", "default"))["spec"]["nodeName"] == "n1"


@pytest.fixture(scope="module")
def throttled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VirtualControlPlane]:
    """An API server that answers 429 as soon as two requests are in flight."""
    cluster = VirtualControlPlane(
        name="throttled", root=tmp_path_factory.mktemp("throttled"), store="memory",
        owner=OWNER, apiserver_args=[
            "--enable-priority-and-fairness=false",
            "--max-requests-inflight=1",
            "--max-mutating-requests-inflight=1",
        ],
    )
    with cluster:
        yield cluster


async def _editor_kubeconfig(cluster: VirtualControlPlane, admin: KubeClient, path: Path,
                             name: str = "editor") -> Path:
    """A kubeconfig for a ServiceAccount allowed to edit ``default`` (not system:masters,
    which the API server exempts from its in-flight limits)."""
    await admin.create(r.SERVICEACCOUNTS, {"metadata": {"name": name}}, "default")
    await admin.create(r.ROLEBINDINGS, {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "edit"},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "default"}],
    }, "default")
    token = await admin.create_subresource(r.SERVICEACCOUNTS, name, "token",
                                           {"spec": {}}, "default")
    return kubeconfig_for_token(cluster, token["status"]["token"], path)


async def _allowed(client: KubeClient) -> bool:
    try:
        await client.create(r.CONFIGMAPS, _cm(f"probe-{uuid.uuid4().hex[:6]}"), "default")
    except Forbidden:
        return False
    return True


async def test_throttling_is_retried_with_backoff_until_everything_lands(
    throttled: VirtualControlPlane, connect: ClientFactory, tmp_path: Path
) -> None:
    admin = await connect(throttled)
    kubeconfig = await _editor_kubeconfig(throttled, admin, tmp_path / "editor.kubeconfig")
    codes: list[int] = []
    settings = ClientSettings(qps=0, burst=1, retries=12)  # no client-side pacing: provoke 429s
    async with await KubeClient.from_kubeconfig(
        str(kubeconfig), name="burst", settings=settings,
        observer=lambda sample: codes.append(int(sample.code) if sample.code.isdigit() else 0),
    ) as client:
        await wait_until(lambda: _allowed(client), "RBAC to let the editor create ConfigMaps")
        codes.clear()
        await asyncio.gather(
            *(client.create(r.CONFIGMAPS, _cm(f"t{i}"), "default") for i in range(100))
        )
    items, _ = await admin.list(r.CONFIGMAPS, "default")
    assert {f"t{i}" for i in range(100)} <= {i["metadata"]["name"] for i in items}
    assert 429 in codes, "the server never throttled: the test proves nothing"
    assert len(codes) < 100 * 6, f"{len(codes)} requests for 100 creates: no backoff"


async def test_a_create_to_replan_comes_back_at_the_first_429(
    throttled: VirtualControlPlane, connect: ClientFactory, tmp_path: Path
) -> None:
    """``retry_throttled=False``: the syncer's creates are not re-sent after a Retry-After
    (the source may be gone by then, found by tests/chaos/test_throttling.py); the 429
    comes back with the server's Retry-After, one request per create."""
    admin = await connect(throttled)
    kubeconfig = await _editor_kubeconfig(throttled, admin, tmp_path / "planner.kubeconfig",
                                          "planner")
    codes: list[int] = []
    settings = ClientSettings(qps=0, burst=1, retries=12)
    async with await KubeClient.from_kubeconfig(
        str(kubeconfig), name="planner", settings=settings,
        observer=lambda sample: codes.append(int(sample.code) if sample.code.isdigit() else 0),
    ) as client:
        await wait_until(lambda: _allowed(client), "RBAC to let the planner create ConfigMaps")
        codes.clear()
        outcomes = await asyncio.gather(
            *(client.create(r.CONFIGMAPS, _cm(f"p{i}"), "default", retry_throttled=False)
              for i in range(60)), return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, TooManyRequests)]
    assert refused, "the server never throttled: the test proves nothing"
    assert all(o.retry_after >= 1 for o in refused)
    assert len(codes) == 60, f"{len(codes)} requests for 60 creates: some were re-sent"


async def test_every_connection_of_the_client_probes_its_peer(
    virtual_cluster: VirtualControlPlane, tmp_path: Path,
) -> None:
    """Issue 22: an idle pooled connection, a watch and a stream opened for the kubelet
    endpoint each have the kernel's keepalive timer running, due within KEEPALIVE_IDLE
    seconds (read from /proc/net/tcp), so a peer that vanished silently is given up
    within USER_TIMEOUT seconds. The client talks through a proxy port of its own, so
    only its connections are looked at."""
    proxy = await FaultyProxy(virtual_cluster.ports["apiserver"]).start()
    path = kubeconfig_via(virtual_cluster, proxy.port, tmp_path / "kubeconfig")
    client = await KubeClient.from_kubeconfig(str(path), name="probed")

    seen: list[Obj] = []

    async def watch(revision: str) -> None:
        async for event in client.watch(r.NAMESPACES, revision):
            seen.append(event.object)

    try:
        _, revision = await client.list(r.NAMESPACES)
        watching = asyncio.create_task(watch(revision))
        # Made while the watch holds the first connection: a second one, then idle in the pool.
        await client.create(r.NAMESPACES, {"metadata": {"name": f"probe-{uuid.uuid4().hex[:6]}"}})
        await wait_until(lambda: seen, "the watch to stream the namespace's creation")
        _, writer = await (await client.stream_target()).connect()
        await wait_until(lambda: proxy.live >= 3, "a watching, a pooled and a stream connection")

        def probing() -> list[TcpConnection]:
            connections = tcp_connections([os.getpid()], proxy.port)
            timed = [c for c in connections
                     if c.timer == KEEPALIVE_TIMER and c.seconds <= liveness.KEEPALIVE_IDLE]
            return connections if len(timed) == len(connections) >= 3 else []

        await wait_until(probing, "every connection of the client to run a keepalive timer "
                         f"due within {liveness.KEEPALIVE_IDLE}s", timeout=20)
        writer.close()
        watching.cancel()
    finally:
        await client.close()
        await proxy.stop()

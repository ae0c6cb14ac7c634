"""The raw-JSON client and the status batcher against a real API server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

from syncer.kube import resources as r
from syncer.kube.client import KubeClient
from syncer.kube.errors import AlreadyExists, BadRequest, Conflict, Forbidden, Invalid, NotFound
from syncer.local.cluster import VirtualControlPlane
from syncer.writer import StatusBatcher
from tests.conftest import ClientFactory

Obj = dict[str, Any]


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
    config = virtual_cluster.kubeconfig_dict()
    config["users"][0]["user"] = {"token": token["status"]["token"]}
    path = tmp_path / "nobody.kubeconfig"
    path.write_text(yaml.safe_dump(config))
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

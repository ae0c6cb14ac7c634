"""What the snapshot tests compare: a virtual cluster's objects at one revision, both sides.

Why at one revision: a snapshot taken during churn is the store as of its
revision R (the manifest says which). The original is listed at exactly R
(``resourceVersionMatch=Exact``) right after the snapshot, while the churn
goes on; the restored cluster's kine starts from the copy, so its own list at
exactly R shows the restored state before any of its controllers or its
syncer wrote a thing. Equal lists there mean the restore is the original.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import yaml

from contract.resources import Obj
from syncer.cli.state import VClusterRecord
from syncer.kube.blocking import BlockingClient
from syncer.kube.client import KubeClient
from syncer.kube.errors import NotFound
from syncer.local import hostns
from syncer.local.cluster import ControlPlane, HostCluster, VirtualControlPlane
from tests.chaos.converge import wait_converged
from tests.cli.conftest import HOST, Cli
from tests.cluster.conftest import Stack

Key = tuple[str, str, str]
"""(list path, namespace, name)"""
CHANGED_BY_A_RESTORE = ("/pods", "/events", "/leases", "/endpoints", "/endpointslices",
                        "/nodes", "/ipaddresses")
"""Kinds a restored cluster legitimately replaces: pods come back through their
controllers; events and leases expire or are renewed; endpoints follow the new pods;
virtual Nodes mirror the host nodes the new pods run on (deleted while none does);
IPAddresses follow the ClusterIPs the Services get from the new host namespace."""


def host_record(cli: Cli) -> Obj:
    """The plane record of the CLI tests' host cluster (``vcsync host create``)."""
    data: Obj = orjson.loads((cli.state / "hosts" / HOST / "host.json").read_bytes())
    return dict(data["plane"])


def record_of(cli: Cli, name: str) -> tuple[VClusterRecord, Path]:
    """The record of virtual cluster ``name`` and its directory (under the CLI's state,
    not this process's)."""
    for file in (cli.state / "vclusters").glob("*/vcluster.json"):
        data = orjson.loads(file.read_bytes())
        if data["name"] == name:
            return VClusterRecord(**data), file.parent
    raise AssertionError(f"no record of virtual cluster {name!r}")


def kubeconfig_file(cli: Cli, name: str, directory: Path, token: str = "") -> Path:
    """The virtual cluster's kubeconfig as ``vcsync connect --print`` gives it (or with
    another bearer token)."""
    config = yaml.safe_load(cli.run("connect", name, "--print").stdout)
    if token:
        config["users"][0]["user"] = {"token": token}
    path = directory / f"{name}{'-token' if token else ''}.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


@contextlib.asynccontextmanager
async def virtual_client(cli: Cli, name: str, directory: Path) -> AsyncIterator[KubeClient]:
    client = await KubeClient.from_kubeconfig(str(kubeconfig_file(cli, name, directory)),
                                              name=name)
    try:
        yield client
    finally:
        await client.close()


def whoami(cli: Cli, name: str, token: str, directory: Path) -> str:
    """The user the virtual cluster authenticates ``token`` as ("" if refused)."""
    config = yaml.safe_load(kubeconfig_file(cli, name, directory, token).read_text())
    client = BlockingClient.from_kubeconfig(config)
    status, body = client.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                  {"apiVersion": "authentication.k8s.io/v1",
                                   "kind": "SelfSubjectReview"})
    return str(orjson.loads(body)["status"]["userInfo"]["username"]) if status == 201 else ""


async def service_account_token(client: KubeClient, namespace: str, name: str) -> str:
    """A TokenRequest token bound to nothing but the ServiceAccount (valid one hour)."""
    answer = await client.request(
        "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
        body={"spec": {"expirationSeconds": 3600}})
    return str(answer["status"]["token"])


# -- every object of every kind ------------------------------------------------------------


async def _list_paths(client: KubeClient) -> list[str]:
    """Every listable resource of every group's preferred version (no subresources)."""
    bases = ["/api/v1"]
    groups = await client.request("GET", "/apis")
    bases += [f"/apis/{g['preferredVersion']['groupVersion']}" for g in groups["groups"]]
    paths = []
    for base in bases:
        listing = await client.request("GET", base)
        paths += [f"{base}/{res['name']}" for res in listing["resources"]
                  if "/" not in res["name"] and "list" in res.get("verbs", ())]
    return paths


def _content(item: Obj) -> Obj:
    meta = {k: v for k, v in item["metadata"].items() if k != "resourceVersion"}
    return {**item, "metadata": meta}


async def objects_at(client: KubeClient, revision: int) -> dict[Key, Obj]:
    """Every stored object as of ``revision``, resourceVersion left out.

    Lists not served from the store at that revision (``componentstatuses``
    probes components live) are left out: their list carries no such revision.
    """
    found: dict[Key, Obj] = {}
    for path in await _list_paths(client):
        listed = await client.request("GET", path, params={
            "resourceVersion": str(revision), "resourceVersionMatch": "Exact"})
        if listed.get("metadata", {}).get("resourceVersion") != str(revision):
            continue
        for item in listed["items"]:
            meta = item["metadata"]
            found[(path, meta.get("namespace", ""), meta["name"])] = _content(item)
    return found


def differences(original: dict[Key, Obj], restored: dict[Key, Obj]) -> list[str]:
    """Objects missing, extra, with another uid, or with other content."""
    found = [f"missing: {k}" for k in sorted(original.keys() - restored.keys())]
    found += [f"extra: {k}" for k in sorted(restored.keys() - original.keys())]
    for key in sorted(original.keys() & restored.keys()):
        have, want = restored[key], original[key]
        if have["metadata"].get("uid") != want["metadata"].get("uid"):
            found.append(f"other uid: {key}")
        elif have != want:
            found.append(f"other content: {key}")
    return found


def count(objects: dict[Key, Obj], resource: str) -> int:
    return sum(1 for path, _, _ in objects if path.endswith(f"/{resource}"))


def lasting(objects: dict[Key, Obj]) -> dict[Key, str]:
    """key -> uid of the objects a restored cluster keeps: not those it replaces, and not
    those a deletion in progress at the snapshot removes (being deleted, or owned by an
    object that is gone or being deleted: the garbage collector finishes the cascade)."""
    alive = {o["metadata"]["uid"] for o in objects.values()
             if not o["metadata"].get("deletionTimestamp")}

    def kept(key: Key, obj: Obj) -> bool:
        meta = obj["metadata"]
        owners = {ref.get("uid") for ref in meta.get("ownerReferences") or ()}
        return (not key[0].endswith(CHANGED_BY_A_RESTORE) and meta["uid"] in alive
                and owners <= alive)

    return {k: o["metadata"]["uid"] for k, o in objects.items() if kept(k, o)}


async def lost(client: KubeClient, kept: dict[Key, str]) -> list[str]:
    """Of ``kept``, what is gone or came back with another uid (Services excepted: the
    syncer re-creates a virtual Service with a new host ClusterIP, by design)."""
    found = []
    for (path, namespace, name), uid in sorted(kept.items()):
        base, _, plural = path.rpartition("/")
        where = f"{base}/namespaces/{namespace}/{plural}" if namespace else base + "/" + plural
        status_uid = await _uid(client, f"{where}/{name}")
        if status_uid is None:
            found.append(f"lost: {path} {namespace}/{name}")
        elif status_uid != uid and plural != "services":
            found.append(f"re-created: {path} {namespace}/{name}")
    return found


async def _uid(client: KubeClient, path: str) -> str | None:
    try:
        obj = await client.request("GET", path)
    except NotFound:
        return None
    return str(obj["metadata"]["uid"])


# -- the host side -------------------------------------------------------------------------


@dataclass
class Opened:
    stack: Stack
    host: KubeClient

    async def close(self) -> None:
        await self.host.close()


async def open_stack(found: tuple[VClusterRecord, Path], host_record: Obj,
                     virtual: KubeClient) -> Opened:
    """The chaos suite's :class:`Stack` view of a CLI-made virtual cluster, for the oracle."""
    record, directory = found
    host_kubeconfig = directory / "host.kubeconfig"
    host = await KubeClient.from_kubeconfig(str(host_kubeconfig), name="host")
    host_plane = ControlPlane.restore(host_record)
    plane = ControlPlane.restore(record.plane)
    assert isinstance(host_plane, HostCluster)
    assert isinstance(plane, VirtualControlPlane)
    blocking = BlockingClient.from_kubeconfig(yaml.safe_load(host_kubeconfig.read_text()))
    stack = Stack(host_plane, plane, host, virtual, record.namespace, directory,
                  yaml.safe_load((directory / "syncer.yaml").read_text()),
                  api_ip=hostns.api_ip(blocking, record.namespace, record.name),
                  name=record.name, kubelet_port=int(record.syncer["kubeletPort"]))
    return Opened(stack, host)


async def converged(cli: Cli, name: str, virtual: KubeClient, host_record: Obj,
                    timeout: float, what: str) -> float:
    """Seconds until the chaos oracle finds nothing left to write for ``name``."""
    opened = await open_stack(record_of(cli, name), host_record, virtual)
    try:
        return await wait_converged(opened.stack, timeout, what)
    finally:
        await opened.close()


async def unavailable(client: KubeClient) -> list[str]:
    """Deployments whose pods are not all updated and available (pods come back through
    their controllers after a restore)."""
    listed = await client.request("GET", "/apis/apps/v1/deployments")
    found = []
    for d in listed["items"]:
        want, status = d["spec"].get("replicas", 1), d.get("status") or {}
        done = (status.get("observedGeneration") == d["metadata"].get("generation")
                and status.get("updatedReplicas") == want
                and status.get("availableReplicas") == want and status.get("replicas") == want)
        if not done:
            found.append(f"{d['metadata']['namespace']}/{d['metadata']['name']}")
    return found

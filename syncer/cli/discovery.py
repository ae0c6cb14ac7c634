"""Virtual clusters found on a host cluster, whoever made them.

``vcsync list`` shows the clusters this machine recorded; a host also holds
clusters that ``helm install`` made directly, or that vcsync on another
machine made. They are found by what every install leaves on the host:

- Helm (either driver's chart, or ``helm install`` by hand): a StatefulSet
  labelled ``app.kubernetes.io/name=vcsync``; the release is its
  ``app.kubernetes.io/instance`` label, replicas 0 means paused;
- the local driver: a namespace labelled ``vcsync.dev/managed-by=NAME`` (its
  control plane runs on the machine that made it; only that machine knows
  whether it runs).

``vcsync connect NAME`` adopts a Helm release found this way (a record like
the one ``vcsync create --driver helm`` writes), after which every command
works on it.
"""

from __future__ import annotations

import datetime
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import orjson
import yaml

from contract import naming
from syncer.cli import chart, kubeconfig, output, state
from syncer.cli.errors import CliError
from syncer.cli.state import VClusterRecord
from syncer.kube.blocking import BlockingClient, BlockingError

CHART_SELECTOR = "app.kubernetes.io/name=vcsync"
INSTANCE = "app.kubernetes.io/instance"


@dataclass(frozen=True)
class Found:
    """A virtual cluster seen on the host."""

    name: str
    namespace: str
    driver: str
    status: str
    kubernetes_version: str
    created: float
    replicas: int = 1


def host_client(host_context: str) -> BlockingClient:
    config = kubeconfig.extract(kubeconfig.load(), host_context)
    return BlockingClient.from_kubeconfig(config, timeout=5.0)


def on_host(client: BlockingClient) -> list[Found]:
    """Every virtual cluster the host shows (raises BlockingError when it cannot be asked)."""
    found = [_release(s) for s in _items(client, "/apis/apps/v1/statefulsets", CHART_SELECTOR)]
    releases = {(f.name, f.namespace) for f in found}
    for ns in _items(client, "/api/v1/namespaces", naming.LABEL_MANAGED_BY):
        meta = ns["metadata"]
        name = (meta.get("labels") or {}).get(naming.LABEL_MANAGED_BY, "")
        if name and (name, meta["name"]) not in releases:
            found.append(Found(name, meta["name"], "local",
                               "Unknown (local driver, made on another machine)", "-",
                               _timestamp(meta.get("creationTimestamp"))))
    return found


def _items(client: BlockingClient, path: str, selector: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"labelSelector": selector})
    status, body = client.request("GET", f"{path}?{query}")
    if status != 200:
        raise BlockingError(f"GET {path} -> {status or 'unreachable'}")
    items: list[dict[str, Any]] = orjson.loads(body).get("items") or []
    return items


def _release(sts: dict[str, Any]) -> Found:
    meta, spec = sts["metadata"], sts.get("spec") or {}
    replicas = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    ready = int((sts.get("status") or {}).get("readyReplicas") or 0)
    if replicas == 0:
        status = "Paused"
    elif ready >= 1:
        status = "Running"
    else:
        status = f"Pending ({ready}/{replicas} ready)"
    version = "-"
    for container in (spec.get("template") or {}).get("spec", {}).get("containers") or ():
        if container.get("name") == "kube-apiserver":
            version = str(container.get("image", "")).rpartition(":")[2] or "-"
    name = (meta.get("labels") or {}).get(INSTANCE) or meta["name"]
    return Found(name, meta["namespace"], "helm", status, version,
                 _timestamp(meta.get("creationTimestamp")), replicas or 1)


def _timestamp(text: str | None) -> float:
    if not text:
        return 0.0
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def adopt(name: str, namespace: str | None) -> VClusterRecord:
    """The record of a Helm release named ``name`` found on the current host context, made
    now; CliError when there is none (or only one the local driver made elsewhere)."""
    where = f" in namespace {namespace!r}" if namespace else ""
    config = kubeconfig.load()
    host_context = state.host_context(config, required=False)
    if not kubeconfig.has_context(config, host_context):  # no host to look on
        raise CliError(f"no virtual cluster named {name!r}{where}; see `vcsync list`")
    try:
        found = [f for f in on_host(host_client(host_context))
                 if f.name == name and namespace in (None, f.namespace)]
    except BlockingError as exc:
        raise CliError(f"no virtual cluster named {name!r} is recorded here, and the host "
                       f"context {host_context!r} cannot be asked ({exc})") from exc
    if not found:
        raise CliError(f"no virtual cluster named {name!r}{where}; see `vcsync list`")
    if len(found) > 1:
        spaces = ", ".join(sorted(f.namespace for f in found))
        raise CliError(f"several virtual clusters are named {name!r} (namespaces {spaces}); "
                       "pick one with --namespace")
    release = found[0]
    if release.driver != "helm":
        raise CliError(f"virtual cluster {name!r} in {release.namespace!r} was made by vcsync "
                       "on another machine (local driver: its control plane runs there); "
                       "connect from that machine")
    record = VClusterRecord(
        name, release.namespace, host_context,
        state.context_name(name, release.namespace, host_context), release.kubernetes_version,
        "helm", {"replicas": release.replicas}, {}, created=release.created or time.time())
    directory = record.directory
    directory.mkdir(parents=True, exist_ok=True)
    host_file = directory / "host.kubeconfig"
    host_file.touch(mode=0o600)
    host_file.write_text(yaml.safe_dump(kubeconfig.extract(kubeconfig.load(), host_context)))
    values = chart.helm("get", "values", name, "--namespace", release.namespace,
                        "--kubeconfig", str(host_file), "--output", "yaml")
    (directory / "values.yaml").write_text(values if values.strip() != "null" else "{}\n")
    record.save()
    output.info(f"found Helm release {name!r} in {release.namespace!r} on {host_context!r}; "
                "recorded it here")
    return record

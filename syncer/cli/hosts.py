"""``vcsync host create|delete|list``: local host clusters that outlive the command.

Like kind clusters: etcd, kube-apiserver, controller-manager, scheduler and
kwok (with fake nodes that run pods) as background processes, a context
``vcsync-host-NAME`` merged into the user's kubeconfig, and a record under
the state directory that later commands use to find and stop them.

The processes run in a network namespace of the host's own, with realistic
node, pod and Service ranges (:mod:`syncer.local.network`); a forwarder
(:mod:`syncer.local.forward`) carries 127.0.0.1 ports of the API servers into
it, so kubeconfigs work unchanged from outside. Where no namespace can be
made, the loopback layout is used (said once, with what it loses).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any

from syncer.cli import checks, kubeconfig, output, state, vclusters
from syncer.cli.errors import CliError
from syncer.cli.state import HostRecord
from syncer.local import binaries, network
from syncer.local.cluster import ControlPlane, HostCluster
from syncer.local.forward import Forwarder
from syncer.local.process import (
    CLUSTER_ENV,
    Component,
    LaunchError,
    background_owner,
    free_port,
    kill_all,
    pids_with_env,
)

DEFAULT_NAME = "vcsync"
_HOST_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "kwok",
                    "metrics-server")


def register(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser(
        "host", help="local host clusters (etcd, kube-apiserver, kwok nodes)",
        description="Manage local host clusters that run as background processes.")
    sub = p.add_subparsers(dest="host_command", required=True, metavar="COMMAND")
    create = sub.add_parser("create", help="start a local host cluster")
    create.add_argument("name", nargs="?", default=DEFAULT_NAME,
                        help="the host cluster (default %(default)s)")
    create.add_argument("--nodes", type=int, default=3, help="kwok nodes (default %(default)s)")
    create.add_argument("--kubernetes-version", default=binaries.KUBERNETES_VERSION,
                        help="of its control plane (default %(default)s)")
    create.set_defaults(handler=create_host)
    delete = sub.add_parser("delete", help="stop a local host cluster and its virtual clusters")
    delete.add_argument("name", nargs="?", default=DEFAULT_NAME,
                        help="the host cluster (default %(default)s)")
    delete.set_defaults(handler=delete_host)
    listing = sub.add_parser("list", help="list local host clusters")
    listing.add_argument("--output", "-o", choices=["table", "json"], default="table",
                         help="output format (default %(default)s)")
    listing.set_defaults(handler=list_hosts)


def marker(record_name: str) -> str:
    return f"host:{HostRecord.directory(record_name)}"


def create_host(args: argparse.Namespace) -> int:
    name = checks.dns_label(args.name, "host cluster name", 40)
    version = checks.kubernetes_version(args.kubernetes_version)
    if not 1 <= args.nodes <= 100:
        raise CliError(f"--nodes must be between 1 and 100, not {args.nodes}")
    if HostRecord.load(name) is not None:
        raise CliError(f"host cluster {name!r} already exists; delete it first with "
                       f"`vcsync host delete {name}`")
    checks.built(_HOST_COMPONENTS, version)
    output.info(f"creating host cluster {name!r} (Kubernetes {version}, {args.nodes} nodes)")
    directory = HostRecord.directory(name)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    env = {CLUSTER_ENV: marker(name)}
    plane = HostCluster(name=name, root=directory / "cluster", kubernetes_version=version,
                        nodes=args.nodes, die_with_parent=False,
                        owner=background_owner(), env=env)
    plane.ports["apiserver"] = free_port()  # free here, where the forwarder listens on it
    netns: str | None = None
    forwarder: Component | None = None
    try:
        with output.step("network namespace and forwarder"):
            netns, forwarder = _network(network.name_for(name, background_owner()),
                                        directory, env)
        with output.step("etcd, kube-apiserver, controller-manager, scheduler, kwok nodes"), \
                network.entered(netns):
            plane.start()
        if forwarder is not None and netns is not None:
            Forwarder(netns, directory).tell("add", plane.ports["apiserver"])
    except BaseException as exc:
        _tear_down(plane, forwarder, netns, name)
        shutil.rmtree(directory, ignore_errors=True)
        if isinstance(exc, LaunchError | network.NetworkError):
            raise CliError(f"host cluster {name!r} did not start: {exc}") from exc
        raise
    HostRecord(name, plane.context, args.nodes, version, plane.record(), netns=netns,
               forwarder=_component_record(forwarder)).save()
    _add_context(plane)
    output.info(f"host cluster {name!r} is ready; kubectl context {plane.context!r} "
                "is now current")
    return 0


def _network(netns: str, directory: Path, env: dict[str, str]
             ) -> tuple[str | None, Component | None]:
    """The host's namespace and its running forwarder; (None, None) for the loopback layout."""
    if not network.create_named(netns):
        return None, None
    forwarder = Forwarder(netns, directory)
    component = forwarder.component(background_owner(), env)
    try:
        component.start()
        forwarder.wait_ready(component)
    except BaseException:
        component.stop()
        network.delete_named(netns)
        raise
    return netns, component


def _component_record(component: Component | None) -> dict[str, Any] | None:
    if component is None:
        return None
    return {"argv": component.argv, "log": str(component.log), "pid": component.pid}


def _forwarder_component(record: HostRecord) -> Component | None:
    if record.forwarder is None:
        return None
    f = record.forwarder
    return Component(name="forwarder", argv=list(f["argv"]), log=Path(f["log"]),
                     owner=background_owner(), die_with_parent=False,
                     env={CLUSTER_ENV: marker(record.name)}, pid=int(f["pid"]))


def _tear_down(plane: ControlPlane, forwarder: Component | None, netns: str | None,
               name: str) -> None:
    """Stop everything of the host: its processes, its forwarder, its namespace."""
    plane.stop()
    if forwarder is not None:
        forwarder.stop()
    kill_all(pids_with_env(CLUSTER_ENV, marker(name)))
    if netns is not None:
        network.delete_named(netns)


def _add_context(plane: ControlPlane) -> None:
    own = plane.kubeconfig_dict()
    with kubeconfig.edit() as config:
        kubeconfig.upsert(config, plane.context, own["clusters"][0]["cluster"],
                          own["users"][0]["user"])
        config["current-context"] = plane.context


def delete_host(args: argparse.Namespace) -> int:
    record = HostRecord.load(args.name)
    if record is None:
        output.info(f"host cluster {args.name!r} does not exist; nothing to delete")
        return 0
    for vcluster in state.VClusterRecord.all():
        if vcluster.host_context == record.context:
            vclusters.forget_with_host(vcluster)
    with output.step(f"stop host cluster {record.name!r}"):
        _tear_down(ControlPlane.restore(record.plane), _forwarder_component(record),
                   record.netns, record.name)
    with kubeconfig.edit() as config:
        kubeconfig.remove(config, record.context)
    record.forget()
    output.info(f"host cluster {record.name!r} deleted")
    return 0


def host_status(record: HostRecord) -> str:
    dead = ControlPlane.restore(record.plane).dead_components()
    forwarder = _forwarder_component(record)
    if forwarder is not None and not forwarder.running():
        dead.append("forwarder")
    if record.netns is not None and not network.named_path(record.netns).exists():
        dead.append(f"network namespace {record.netns}")
    if not dead:
        return "Running"
    if len(dead) >= len(record.plane["components"]):
        return "Stopped"
    return f"Failed ({', '.join(dead)} not running)"


def list_hosts(args: argparse.Namespace) -> int:
    now = time.time()
    rows = [{"name": r.name, "status": host_status(r), "kubernetesVersion": r.kubernetes_version,
             "nodes": r.nodes, "context": r.context, "age": state.format_age(now - r.created),
             "networkNamespace": r.netns}
            for r in HostRecord.all()]
    if args.output == "json":
        output.json(rows)
        return 0
    keys = ["name", "status", "kubernetesVersion", "nodes", "context", "age"]
    print(output.table(["NAME", "STATUS", "KUBERNETES VERSION", "NODES", "CONTEXT", "AGE"],
                       [[str(row[k]) for k in keys] for row in rows]))
    return 0

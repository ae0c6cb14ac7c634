"""``vcsync create|delete|list|pause|resume``: virtual clusters on the current host context.

A virtual cluster is identified by name, host namespace and host context.
Commands that take a NAME find it among the records of the state directory
(``--namespace`` picks one when several share a name). The host is always
the *host* context: when the current context is a virtual cluster's, its
host context is meant (creating a virtual cluster inside one is not what
anybody wants from ``vcsync create`` after ``vcsync connect``).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any

import orjson
import yaml

from syncer import config as config_mod
from syncer.cli import checks, connection, kubeconfig, output, state
from syncer.cli.errors import CliError
from syncer.cli.state import VClusterRecord
from syncer.kube.blocking import BlockingClient, BlockingError
from syncer.kube.resources import NAMESPACES
from syncer.local import binaries
from syncer.local.process import LaunchError
from syncer.local.vcluster import LocalVCluster

_VIRTUAL_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kine")
_DRIVERS = ("local", "helm")


def register(commands: Any) -> None:
    _register_create(commands)
    delete = commands.add_parser("delete", help="delete a virtual cluster and its host objects")
    delete.add_argument("name", nargs="?")
    delete.add_argument("--namespace", "-n")
    delete.add_argument("--keep-namespace", action="store_true",
                        help="delete the managed host objects but keep the host namespace")
    delete.add_argument("--expired", action="store_true",
                        help="delete every virtual cluster whose --ttl has passed")
    delete.set_defaults(handler=delete_cmd)
    listing = commands.add_parser("list", help="list virtual clusters")
    listing.add_argument("--output", "-o", choices=["table", "json"], default="table")
    listing.set_defaults(handler=list_cmd)
    for verb, handler, text in (
        ("pause", pause_cmd, "stop a virtual cluster and its host pods; keep its state"),
        ("resume", resume_cmd, "start a paused virtual cluster again"),
    ):
        p = commands.add_parser(verb, help=text)
        p.add_argument("name")
        p.add_argument("--namespace", "-n")
        p.set_defaults(handler=handler)


def _register_create(commands: Any) -> None:
    p = commands.add_parser("create", help="create a virtual cluster on the current host context")
    p.add_argument("name")
    p.add_argument("--namespace", "-n", help="host namespace (default vcluster-NAME)")
    p.add_argument("--connect", action=argparse.BooleanOptionalAction, default=True,
                   help="switch the kubeconfig to the new virtual cluster (default: yes)")
    p.add_argument("--kubernetes-version", default=binaries.KUBERNETES_VERSION)
    p.add_argument("-f", "--values", action="append", default=[], metavar="VALUES_YAML",
                   help="sync rules, same keys as the Helm values (repeatable)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one value, e.g. sync.toHost.ingresses.enabled=true")
    p.add_argument("--driver", choices=_DRIVERS, default="local")
    p.add_argument("--ttl", help="delete with `vcsync delete --expired` after this long (2h, 1d)")
    p.set_defaults(handler=create_cmd)


# -- create --------------------------------------------------------------------


def create_cmd(args: argparse.Namespace) -> int:
    name = checks.dns_label(args.name, "virtual cluster name", 40)
    namespace = checks.dns_label(args.namespace or f"vcluster-{name}", "namespace")
    version = checks.kubernetes_version(args.kubernetes_version)
    ttl = state.parse_duration(args.ttl) if args.ttl else None
    if args.driver == "helm":
        raise CliError("the helm driver is not available yet: it installs the Helm chart, "
                       "which this build does not ship; use --driver local")
    values = _values(args.values, args.set)
    config = kubeconfig.load()
    host_context = state.host_context(config)
    _check_free(name, namespace, host_context)
    checks.built(_VIRTUAL_COMPONENTS, version)
    host_config = kubeconfig.extract(config, host_context, kubeconfig.path().parent)
    _check_host(host_config, host_context, namespace)
    output.info(f"creating virtual cluster {name!r} in host namespace {namespace!r} "
                f"on {host_context!r} (Kubernetes {version})")
    directory = VClusterRecord.directory_for(name, namespace, host_context)
    vc = _start(name, namespace, directory, version, host_config, values)
    record = VClusterRecord(
        name, namespace, host_context, _context_name(name, namespace, host_context), version,
        args.driver, **vc.record(), ttl_seconds=ttl)
    record.save()
    output.info(f"virtual cluster {name!r} is running")
    if args.connect:
        connection.switch_to(record)
    return 0


def _context_name(name: str, namespace: str, host_context: str) -> str:
    return f"vcsync_{name}_{namespace}_{host_context}"


def _values(files: list[str], assignments: list[str]) -> dict[str, Any]:
    """Values files merged in order, then ``--set``; validated like ``vcsync run`` does."""
    data: dict[str, Any] = {}
    try:
        for file in files:
            loaded = yaml.safe_load(Path(file).read_text()) or {}
            if not isinstance(loaded, dict):
                raise CliError(f"values file {file} must hold a mapping")
            data = _merge(data, loaded)
        for assignment in assignments:
            data = config_mod.apply_set(data, assignment)
        config_mod.parse(data)
    except OSError as exc:
        raise CliError(f"cannot read values file: {exc}") from exc
    except (yaml.YAMLError, config_mod.ConfigError) as exc:
        raise CliError(f"invalid values: {exc}") from exc
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        old = merged.get(key)
        both = isinstance(old, dict) and isinstance(value, dict)
        merged[key] = _merge(old, value) if both else value  # type: ignore[arg-type]
    return merged


def _check_free(name: str, namespace: str, host_context: str) -> None:
    for record in VClusterRecord.all():
        if record.host_context != host_context:
            continue
        if record.name == name and record.namespace == namespace:
            raise CliError(f"virtual cluster {name!r} already exists in namespace "
                           f"{namespace!r} on {host_context!r}")
        if record.namespace == namespace:
            raise CliError(f"host namespace {namespace!r} already holds virtual cluster "
                           f"{record.name!r}; choose another --namespace")


def _check_host(host_config: dict[str, Any], host_context: str, namespace: str) -> None:
    client = BlockingClient.from_kubeconfig(host_config, timeout=5.0)
    server = host_config["clusters"][0]["cluster"].get("server", "?")
    status, _ = client.request("GET", "/readyz")
    if status == 0:
        raise CliError(f"the host cluster of context {host_context!r} at {server} is "
                       "unreachable; is it running? (`vcsync host list`)")
    if status != 200:
        raise CliError(f"the host cluster of context {host_context!r} at {server} is not "
                       f"ready (GET /readyz answered {status})")
    status, _ = client.request("GET", NAMESPACES.path(name=namespace))
    if status == 200:
        raise CliError(f"host namespace {namespace!r} already exists on {host_context!r}; "
                       "choose another --namespace or delete it")


def _start(name: str, namespace: str, directory: Path, version: str,
           host_config: dict[str, Any], values: dict[str, Any]) -> LocalVCluster:
    """Run every creation step; on any failure undo them all and say which step failed."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    vc = LocalVCluster(name, namespace, directory, version, marker=f"vcluster:{directory}")
    _write_private(vc.host_kubeconfig, yaml.safe_dump(host_config))
    if values:
        vc.values_file.write_text(yaml.safe_dump(values))
    prepared = False
    try:
        with output.step(f"host namespace {namespace} and the Service fronting the API"):
            vc.prepare_host()
            prepared = True
        with output.step(f"virtual control plane (kine, kube-apiserver {version}, "
                         "controller-manager)"):
            vc.start_plane()
        with output.step("CoreDNS in the virtual cluster"):
            vc.apply_dns()
        with output.step("syncer (vcsync run), until its caches are synced"):
            vc.start_syncer()
    except BaseException as exc:
        _undo(vc, prepared)
        if isinstance(exc, LaunchError | BlockingError):
            raise CliError(f"creating virtual cluster {name!r} failed: {exc}") from exc
        raise
    return vc


def _undo(vc: LocalVCluster, prepared: bool) -> None:
    vc.kill()
    if prepared:
        try:
            vc.cleanup_host(keep_namespace=False)
        except BlockingError as exc:
            output.info(f"warning: could not remove host namespace {vc.namespace}: {exc}")
    shutil.rmtree(vc.root, ignore_errors=True)


def _write_private(file: Path, text: str) -> None:
    file.touch(mode=0o600)
    file.write_text(text)


# -- find ------------------------------------------------------------------------


def handle(record: VClusterRecord) -> LocalVCluster:
    return LocalVCluster.restore(
        record.name, record.namespace, record.directory, record.kubernetes_version,
        f"vcluster:{record.directory}", record.plane, record.syncer)


# -- delete --------------------------------------------------------------------------


def delete_cmd(args: argparse.Namespace) -> int:
    if args.expired:
        if args.name:
            raise CliError("give either NAME or --expired, not both")
        now = time.time()
        expired = [r for r in VClusterRecord.all() if r.expired(now)]
        for record in expired:
            _delete(record, keep_namespace=False)
        output.info(f"deleted {len(expired)} expired virtual cluster(s)")
        return 0
    if not args.name:
        raise CliError("give the NAME of the virtual cluster to delete (or --expired)")
    found = state.find(args.name, args.namespace)
    if found is None:
        output.info(f"virtual cluster {args.name!r} does not exist; nothing to delete")
        return 0
    _delete(found, args.keep_namespace)
    return 0


def _delete(record: VClusterRecord, keep_namespace: bool) -> None:
    vc = handle(record)
    output.info(f"deleting virtual cluster {record.name!r} in {record.namespace!r}")
    with output.step("stop the syncer and the virtual control plane"):
        vc.kill()
    what = "managed host objects" if keep_namespace else f"host namespace {record.namespace}"
    with output.step(f"delete the {what}"):
        try:
            vc.cleanup_host(keep_namespace)
        except BlockingError as exc:
            raise CliError(f"could not clean up the host ({exc}); its processes are stopped "
                           "and its record is kept: run `vcsync delete` again when the host "
                           "is reachable") from exc
    connection.drop(record)
    record.forget()
    output.info(f"virtual cluster {record.name!r} deleted")


def forget_with_host(record: VClusterRecord) -> None:
    """The host cluster itself goes away: stop the processes, drop context and record."""
    handle(record).kill()
    connection.drop(record)
    record.forget()
    output.info(f"  virtual cluster {record.name!r} on it stopped and forgotten")


# -- pause / resume ----------------------------------------------------------------


def pause_cmd(args: argparse.Namespace) -> int:
    record = state.require(args.name, args.namespace)
    if record.paused:
        output.info(f"virtual cluster {record.name!r} is already paused")
        return 0
    vc = handle(record)
    with output.step("stop the syncer and the virtual control plane"):
        vc.kill()  # the syncer first: it must not see the host pods vanish
    with output.step(f"delete the host pods in {record.namespace}"):
        try:
            vc.delete_host_pods()
        except BlockingError as exc:
            raise CliError(f"could not delete the host pods: {exc}") from exc
    record.paused = True
    record.save()
    output.info(f"virtual cluster {record.name!r} paused; `vcsync resume {record.name}` "
                "brings it back")
    return 0


def resume_cmd(args: argparse.Namespace) -> int:
    record = state.require(args.name, args.namespace)
    vc = handle(record)
    if not record.paused and not vc.problems():
        output.info(f"virtual cluster {record.name!r} is running; nothing to resume")
        return 0
    vc.kill()
    try:
        with output.step("virtual control plane and syncer"):
            vc.resume()
    except LaunchError as exc:
        raise CliError(f"resuming virtual cluster {record.name!r} failed: {exc}") from exc
    saved = vc.record()
    record.plane, record.syncer, record.paused = saved["plane"], saved["syncer"], False
    record.save()
    output.info(f"virtual cluster {record.name!r} resumed; its controllers re-create the pods")
    return 0


# -- list --------------------------------------------------------------------------


def status(record: VClusterRecord) -> str:
    if record.paused:
        return "Paused"
    problems = handle(record).problems()
    if problems:
        return f"Failed ({', '.join(problems)} not running)"
    return "Running"


def _ttl(record: VClusterRecord, now: float) -> str:
    if record.ttl_seconds is None:
        return "-"
    left = record.created + record.ttl_seconds - now
    return "expired" if left <= 0 else state.format_age(left)


def list_cmd(args: argparse.Namespace) -> int:
    now = time.time()
    current = kubeconfig.current_context(kubeconfig.load())
    rows = [{
        "name": r.name, "namespace": r.namespace, "status": status(r),
        "kubernetesVersion": r.kubernetes_version, "driver": r.driver,
        "connected": r.context == current, "age": state.format_age(now - r.created),
        "ttl": _ttl(r, now), "hostContext": r.host_context, "context": r.context,
    } for r in VClusterRecord.all()]
    if args.output == "json":
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return 0
    header = ["NAME", "NAMESPACE", "STATUS", "KUBERNETES VERSION", "DRIVER", "CONNECTED",
              "AGE", "TTL"]
    keys = ["name", "namespace", "status", "kubernetesVersion", "driver", "connected", "age",
            "ttl"]
    print(output.table(header, [[str(row[k]) for k in keys] for row in rows]))
    return 0

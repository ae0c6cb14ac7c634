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
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from contract.resources import NAMESPACES
from syncer import config as config_mod
from syncer.cli import (
    chart,
    checks,
    connection,
    drivers,
    hostnet,
    kubeconfig,
    output,
    staging,
    state,
)
from syncer.cli.chart import HelmRelease
from syncer.cli.errors import CliError
from syncer.cli.state import VClusterRecord
from syncer.kube.blocking import BlockingClient, BlockingError
from syncer.local import binaries, hostns
from syncer.local.process import CLUSTER_ENV, LaunchError, kill_all, pids_with_env
from syncer.local.vcluster import LocalVCluster, host_client
from syncer.snapshot.archive import SnapshotError, check_kubernetes, minor, restorable_versions

_COMPONENTS = {"local": ("kube-apiserver", "kube-controller-manager", "kine", "helm"),
               "helm": ("helm",)}


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
    p.add_argument("--kubernetes-version",
                   help="default: the values' controlPlane.distro.k8s.version, else "
                        f"{binaries.KUBERNETES_VERSION}")
    p.add_argument("-f", "--values", action="append", default=[], metavar="VALUES_YAML",
                   help="sync rules, same keys as the Helm values (repeatable)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one value, e.g. sync.toHost.ingresses.enabled=true")
    p.add_argument("--driver", choices=drivers.DRIVERS, default="local",
                   help="local: processes on this machine; helm: the chart on the host")
    p.add_argument("--ttl", help="delete with `vcsync delete --expired` after this long (2h, 1d)")
    p.add_argument("--from-snapshot", metavar="FILE",
                   help="start from a `vcsync snapshot create` archive (its objects, "
                        "certificates, tokens and values; -f/--set apply on top)")
    p.set_defaults(handler=create_cmd)


# -- create --------------------------------------------------------------------


@dataclass
class _Plan:
    """What ``create`` decided and checked before it starts anything."""

    name: str
    namespace: str
    host_context: str
    directory: Path
    staged: staging.Staged | None
    """The verified archive of ``--from-snapshot``."""
    values: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    syncer_config: dict[str, Any] = field(default_factory=dict)
    host_config: dict[str, Any] = field(default_factory=dict)

    def settle(self, args: argparse.Namespace) -> None:
        """Values (over the snapshot's), version and the rendered config: the checks of the
        user's input, made before any other (without a snapshot, before the host's)."""
        staged = self.staged
        self.values = _values(args.values, args.set, staged.values() if staged else {})
        self.version = _version(args.kubernetes_version or _snapshot_version(staged),
                                self.values, args.driver)
        if staged is not None:
            staging.check_restorable(staged, self.version)
        self.syncer_config = render(self.name, self.namespace, self.values)


def create_cmd(args: argparse.Namespace) -> int:
    name = checks.dns_label(args.name, "virtual cluster name", 40)
    namespace = checks.dns_label(args.namespace or f"vcluster-{name}", "namespace")
    ttl = state.parse_duration(args.ttl) if args.ttl else None
    plan = _Plan(name, namespace, "", Path(), None)
    if not args.from_snapshot:
        plan.settle(args)
    config = kubeconfig.load()
    plan.host_context = state.host_context(config)
    _check_free(name, namespace, plan.host_context)
    plan.directory = VClusterRecord.directory_for(name, namespace, plan.host_context)
    if args.from_snapshot:
        plan.staged = _stage(args, name, namespace, plan.directory)
    try:
        _check(args, config, plan)
    except CliError:
        if plan.staged is not None:  # nothing was started: the staged archive goes
            shutil.rmtree(plan.directory, ignore_errors=True)
        raise
    started = _make(plan, args.driver, args.from_snapshot)
    record = VClusterRecord(
        name, namespace, plan.host_context,
        _context_name(name, namespace, plan.host_context), plan.version, args.driver,
        **started.record(), ttl_seconds=ttl)
    record.save()
    staging.finish(plan.directory)
    output.info(f"virtual cluster {name!r} is running")
    if args.connect:
        connection.switch_to(record)
    return 0


def _check(args: argparse.Namespace, config: kubeconfig.Config, plan: _Plan) -> None:
    """The rest of the plan (a snapshot's values first) and the host's checks."""
    if plan.staged is not None:
        plan.settle(args)
    checks.built(_COMPONENTS[args.driver], plan.version)
    plan.host_config = kubeconfig.extract(config, plan.host_context, kubeconfig.path().parent)
    _check_host(plan.host_config, plan.host_context, plan.namespace)


def _make(plan: _Plan, driver: str, snapshot: str | None) -> drivers.VirtualCluster:
    """Write the cluster's files and start it (journaled when it starts from a snapshot)."""
    source = f" from snapshot {snapshot}" if plan.staged is not None else ""
    output.info(f"creating virtual cluster {plan.name!r} in host namespace "
                f"{plan.namespace!r} on {plan.host_context!r} (Kubernetes {plan.version}, "
                f"driver {driver}){source}")
    directory = plan.directory
    if plan.staged is None:
        shutil.rmtree(directory, ignore_errors=True)
    else:
        staging.begin(directory, plan.staged, f"create {plan.name}")
    directory.mkdir(parents=True, exist_ok=True)
    _write_private(directory / "host.kubeconfig", yaml.safe_dump(plan.host_config))
    (directory / "values.yaml").write_text(yaml.safe_dump(plan.values))
    if driver == "helm":
        return _install(plan.name, plan.namespace, directory)
    (directory / "syncer.yaml").write_text(yaml.safe_dump(plan.syncer_config))
    return _start(plan.name, plan.namespace, directory, plan.version, plan.staged,
                  hostnet.network_of(plan.host_context))


def _stage(args: argparse.Namespace, name: str, namespace: str, directory: Path
           ) -> staging.Staged:
    """The verified archive of ``--from-snapshot``, staged in the new cluster's directory
    (after what an interrupted restore of the same cluster left is removed)."""
    if args.driver != "local":
        raise CliError("--from-snapshot restores into the local driver only; a Helm-installed "
                       "virtual cluster cannot be restored yet (see README: Snapshots)")
    _abandon_interrupted(name, namespace, directory)
    shutil.rmtree(directory, ignore_errors=True)
    try:
        return staging.stage(Path(args.from_snapshot), directory)
    except CliError:
        shutil.rmtree(directory, ignore_errors=True)
        raise


def _abandon_interrupted(name: str, namespace: str, directory: Path) -> None:
    """Remove what a restore into a new cluster left when it was killed before it finished:
    its processes, its host namespace (only if labelled as this cluster's), its files."""
    if staging.interrupted(directory) is None:
        return
    output.info(f"a restore into {name!r} was interrupted; removing what it had made")
    kill_all(pids_with_env(CLUSTER_ENV, f"vcluster:{directory}"))
    kubeconfig_file = directory / "host.kubeconfig"
    if kubeconfig_file.is_file():
        client = host_client(kubeconfig_file)
        if hostns.owned_by(client, namespace, name):
            hostns.cleanup(client, namespace, name, keep_namespace=False)


def _snapshot_version(staged: staging.Staged | None) -> str | None:
    """The Kubernetes version the snapshot was taken with, else the oldest one built here
    that may serve its store (an upgrade); None without a snapshot."""
    if staged is None:
        return None
    taken = staged.manifest.kubernetes_version
    fits = restorable_versions(taken, checks.SUPPORTED_VERSIONS)
    if taken in fits:
        return taken
    if fits:
        return fits[0]
    try:  # says why the newest one built here cannot serve it
        check_kubernetes(taken, max(checks.SUPPORTED_VERSIONS, key=minor))
    except SnapshotError as exc:
        raise CliError(f"cannot restore {staged.archive}: {exc}") from exc
    return taken


def _version(flag: str | None, values: dict[str, Any], driver: str) -> str:
    """``--kubernetes-version``, else ``controlPlane.distro.k8s.version``, else the default.

    The result is written back into the values, so the chart and the local
    driver run the same version.
    """
    k8s = values.setdefault("controlPlane", {}).setdefault("distro", {}).setdefault("k8s", {})
    version = flag or k8s.get("version") or binaries.KUBERNETES_VERSION
    k8s["version"] = version
    return checks.kubernetes_version(version) if driver == "local" else str(version)


def render(name: str, namespace: str, values: dict[str, Any]) -> dict[str, Any]:
    """The syncer config the chart renders for ``values`` (schema-checked), validated."""
    with tempfile.TemporaryDirectory(prefix="vcsync-values-") as tmp:
        file = Path(tmp) / "values.yaml"
        file.write_text(yaml.safe_dump(values))
        try:
            rendered = chart.render_syncer_config(name, namespace, file)
        except CliError as exc:
            raise CliError(f"invalid values: {exc}") from exc
    try:
        config_mod.parse(rendered)
    except config_mod.ConfigError as exc:
        raise CliError(f"invalid values: {exc}") from exc
    return rendered


def _context_name(name: str, namespace: str, host_context: str) -> str:
    return f"vcsync_{name}_{namespace}_{host_context}"


def _values(files: list[str], assignments: list[str], base: dict[str, Any]
            ) -> dict[str, Any]:
    """``base`` (a snapshot's values), values files merged in order, then ``--set``
    (checked later, by the chart's schema)."""
    data: dict[str, Any] = base
    try:
        for file in files:
            loaded = yaml.safe_load(Path(file).read_text()) or {}
            if not isinstance(loaded, dict):
                raise CliError(f"values file {file} must hold a mapping")
            data = _merge(data, loaded)
        for assignment in assignments:
            data = config_mod.apply_set(data, assignment)
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
           staged: staging.Staged | None, host: hostnet.HostNetwork | None) -> LocalVCluster:
    """Run every creation step (inside the host's network namespace, if it has one); on any
    failure undo them all and say which step failed.

    With ``staged``, the control plane starts on the snapshot's store and PKI.
    """
    vc = LocalVCluster(name, namespace, directory, version, marker=f"vcluster:{directory}")
    prepared = False
    try:
        with hostnet.inside(host):
            with output.step(f"host namespace {namespace} and the Service fronting the API"):
                vc.prepare_host()
                prepared = True
            if staged is not None:
                vc.install_snapshot(staged.store, staged.pki)
            with output.step(f"virtual control plane (kine, kube-apiserver {version}, "
                             "controller-manager)"):
                vc.start_plane(restored=staged is not None)
            with output.step("CoreDNS in the virtual cluster"):
                vc.apply_dns()
            with output.step("syncer (vcsync run), until its caches are synced"):
                vc.start_syncer()
        if host is not None:
            host.forward(vc.api_port)
    except BaseException as exc:
        _undo(vc, prepared, directory)
        if isinstance(exc, LaunchError | BlockingError):
            raise CliError(f"creating virtual cluster {name!r} failed: {exc}") from exc
        raise
    return vc


def _install(name: str, namespace: str, directory: Path) -> HelmRelease:
    release = HelmRelease(name, namespace, directory)
    try:
        with output.step(f"helm install {name} (waits until the control-plane pods are Ready)"):
            release.install()
    except BaseException:
        _undo(release, True, directory)
        raise
    return release


def _undo(vc: drivers.VirtualCluster, prepared: bool, directory: Path) -> None:
    vc.kill()
    if prepared:
        try:
            vc.cleanup_host(keep_namespace=False)
        except (BlockingError, CliError) as exc:
            output.info(f"warning: could not clean up the host namespace: {exc}")
    shutil.rmtree(directory, ignore_errors=True)


def _write_private(file: Path, text: str) -> None:
    file.touch(mode=0o600)
    file.write_text(text)


# -- find ------------------------------------------------------------------------


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
    vc = drivers.handle(record)
    output.info(f"deleting virtual cluster {record.name!r} in {record.namespace!r}")
    with output.step("stop the syncer and the virtual control plane"):
        vc.kill()
    _unforward(record)
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


def _unforward(record: VClusterRecord) -> None:
    host = hostnet.network_of(record.host_context)
    port = record.plane.get("ports", {}).get("apiserver")
    if host is not None and record.driver == "local" and port:
        host.unforward(int(port))


def forget_with_host(record: VClusterRecord) -> None:
    """The host cluster itself goes away: stop the processes, drop context and record."""
    drivers.handle(record).kill()
    connection.drop(record)
    record.forget()
    output.info(f"  virtual cluster {record.name!r} on it stopped and forgotten")


# -- pause / resume ----------------------------------------------------------------


def pause_cmd(args: argparse.Namespace) -> int:
    record = state.require(args.name, args.namespace)
    if record.paused:
        output.info(f"virtual cluster {record.name!r} is already paused")
        return 0
    vc = drivers.handle(record)
    with output.step("stop the syncer and the virtual control plane"):
        vc.kill()  # the syncer first: it must not see the host pods vanish
    with output.step(f"delete the host pods in {record.namespace}"):
        try:
            vc.delete_host_pods()
        except BlockingError as exc:
            raise CliError(f"could not delete the host pods: {exc}") from exc
    record.plane = vc.record()["plane"]  # the helm driver remembers its replicas here
    record.paused = True
    record.save()
    output.info(f"virtual cluster {record.name!r} paused; `vcsync resume {record.name}` "
                "brings it back")
    return 0


def resume_cmd(args: argparse.Namespace) -> int:
    record = state.require(args.name, args.namespace)
    journal = staging.interrupted(record.directory)
    if journal is not None:
        raise CliError(f"a restore into {record.name!r} was interrupted and its state is "
                       f"half replaced; finish it with `vcsync snapshot restore {record.name} "
                       f"{journal.get('archive')} --yes`")
    vc = drivers.handle(record)
    if not record.paused and not vc.problems():
        output.info(f"virtual cluster {record.name!r} is running; nothing to resume")
        return 0
    vc.kill()
    try:
        with output.step("virtual control plane and syncer"), \
                hostnet.inside(hostnet.network_of(record.host_context)):
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
    if staging.interrupted(record.directory) is not None:
        return "Restoring (interrupted: run the restore again)"
    if record.paused:
        return "Paused"
    problems = drivers.handle(record).problems()
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

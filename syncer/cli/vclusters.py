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
import copy
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from contract.resources import NAMESPACES
from syncer import config as config_mod
from syncer import strvals
from syncer.cli import (
    chart,
    checks,
    connection,
    discovery,
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
from syncer.snapshot.archive import (
    SnapshotError,
    check_kubernetes,
    minor,
    restorable_versions,
    version_step,
)

_COMPONENTS = {"local": ("kube-apiserver", "kube-controller-manager", "kine", "helm"),
               "helm": ("helm",)}


def register(commands: Any) -> None:
    _register_create(commands)
    delete = commands.add_parser("delete", help="delete a virtual cluster and its host objects")
    delete.add_argument("name", nargs="?", help="the virtual cluster (omit with --expired)")
    delete.add_argument("--namespace", "-n", help="its host namespace, if several share NAME")
    delete.add_argument("--keep-namespace", action="store_true",
                        help="delete the managed host objects but keep the host namespace")
    delete.add_argument("--expired", action="store_true",
                        help="delete every virtual cluster whose --ttl has passed")
    delete.set_defaults(handler=delete_cmd)
    listing = commands.add_parser("list", help="list virtual clusters")
    listing.add_argument("--output", "-o", choices=["table", "json"], default="table",
                         help="output format (default %(default)s)")
    listing.set_defaults(handler=list_cmd)
    for verb, handler, text in (
        ("pause", pause_cmd, "stop a virtual cluster and its host pods; keep its state"),
        ("resume", resume_cmd, "start a paused virtual cluster again"),
    ):
        p = commands.add_parser(verb, help=text)
        p.add_argument("name", help="the virtual cluster")
        p.add_argument("--namespace", "-n", help="its host namespace, if several share NAME")
        p.set_defaults(handler=handler)


def _register_create(commands: Any) -> None:
    p = commands.add_parser("create", help="create a virtual cluster on the current host context")
    _create_arguments(p)
    p.set_defaults(handler=create_cmd)


def create_args(name: str, **given: Any) -> argparse.Namespace:
    """``vcsync create NAME``'s arguments with every default, ``given`` on top: for commands
    that create through :func:`create_cmd` (a snapshot restore), so a new option of
    ``create`` can never be missing from them."""
    parser = argparse.ArgumentParser(add_help=False)
    _create_arguments(parser)
    return argparse.Namespace(**{**vars(parser.parse_args([name])), **given})


def _create_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="the virtual cluster (a DNS label, at most 40 characters)")
    p.add_argument("--namespace", "-n", help="host namespace (default vcluster-NAME)")
    p.add_argument("--connect", action=argparse.BooleanOptionalAction, default=True,
                   help="switch the kubeconfig to the new virtual cluster (default: yes)")
    p.add_argument("--kubernetes-version",
                   help="default: the values' controlPlane.distro.k8s.version, else "
                        f"{binaries.KUBERNETES_VERSION}")
    p.add_argument("-f", "--values", action="append", default=[], metavar="VALUES_YAML",
                   help="sync rules, same keys as the Helm values (repeatable)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override values as helm --set does, e.g. "
                        "sync.toHost.ingresses.enabled=true,syncer.shards=2")
    p.add_argument("--set-string", action="append", default=[], metavar="KEY=VALUE",
                   help="as --set, every value kept as a string (helm --set-string)")
    p.add_argument("--set-file", action="append", default=[], metavar="KEY=PATH",
                   help="as --set, each value the content of the file it names "
                        "(helm --set-file)")
    p.add_argument("--driver", choices=drivers.DRIVERS, default="local",
                   help="local: processes on this machine; helm: the chart on the host")
    p.add_argument("--ttl", help="delete with `vcsync delete --expired` after this long (2h, 1d)")
    p.add_argument("--from-snapshot", metavar="FILE",
                   help="start from a `vcsync snapshot create` archive (its objects, "
                        "certificates, tokens and values; -f/--set apply on top)")
    p.add_argument("--output", "-o", choices=["text", "json"], default="text",
                   help="json: print the new cluster as `vcsync list -o json` shows it")
    p.add_argument("--upgrade", action="store_true",
                   help="change an existing cluster instead: its values become -f/--set "
                        "(as helm upgrade), its Kubernetes version --kubernetes-version (one "
                        "minor up at most); only what changed restarts, its data stays")


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
        self.values = _values(args.values, _assignments(args),
                              staged.values() if staged else {})
        self.version = _version(args.kubernetes_version or _snapshot_version(staged),
                                self.values, args.driver)
        if staged is not None:
            staging.check_restorable(staged, self.version)
        self.syncer_config = render(self.name, self.namespace, self.values)


def create_cmd(args: argparse.Namespace) -> int:
    if args.upgrade:
        return upgrade_cmd(args)
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
        state.context_name(name, namespace, plan.host_context), plan.version, args.driver,
        **started.record(), ttl_seconds=ttl)
    record.save()
    staging.finish(plan.directory)
    output.info(f"virtual cluster {name!r} is running")
    if args.connect:
        connection.switch_to(record)
    if args.output == "json":
        output.json(_row(record, time.time(), kubeconfig.current_context(kubeconfig.load())))
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
    k8s = _k8s_values(values)
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


def _assignments(args: argparse.Namespace) -> list[tuple[strvals.Reader, str]]:
    """``--set``, then ``--set-string``, then ``--set-file``: Helm applies the three groups
    in that order, whatever their order on the command line."""
    return [*((strvals.typed, a) for a in args.set),
            *((strvals.as_string, a) for a in args.set_string),
            *((strvals.file_content, a) for a in args.set_file)]


def _values(files: list[str], assignments: list[tuple[strvals.Reader, str]],
            base: dict[str, Any]) -> dict[str, Any]:
    """``base`` (a snapshot's values), values files merged in order, then the ``--set``
    groups read as Helm reads them (a ``null`` stays, as in a values file: Helm's merge
    removes the key, default included). Checked later, by the chart's schema."""
    data: dict[str, Any] = base
    try:
        for file in files:
            loaded = yaml.safe_load(Path(file).read_text()) or {}
            if not isinstance(loaded, dict):
                raise CliError(f"values file {file} must hold a mapping")
            data = _merge(data, loaded)
    except OSError as exc:
        raise CliError(f"cannot read values file: {exc}") from exc
    except yaml.YAMLError as exc:
        raise CliError(f"invalid values: {exc}") from exc
    for reader, assignment in assignments:
        try:
            data = strvals.apply(data, assignment, reader)
        except strvals.StrvalsError as exc:
            raise CliError(f"invalid values: {assignment!r}: {exc}") from exc
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


# -- upgrade ----------------------------------------------------------------------


def upgrade_cmd(args: argparse.Namespace) -> int:
    """``create NAME --upgrade`` (vCluster's): new values and/or Kubernetes version for an
    existing cluster, applied by restarting only what changed."""
    if args.from_snapshot:
        raise CliError("--upgrade and --from-snapshot do not go together; restore with "
                       "`vcsync snapshot restore`")
    record = state.find(args.name, args.namespace)
    if record is None:
        raise CliError(f"virtual cluster {args.name!r} does not exist; create it without "
                       "--upgrade")
    if record.paused:
        raise CliError(f"virtual cluster {record.name!r} is paused; `vcsync resume "
                       f"{record.name}` first")
    values = _values(args.values, _assignments(args), {})
    version = _version(args.kubernetes_version or _values_version(values)
                       or record.kubernetes_version, values, record.driver)
    _check_step(record, version)
    config = render(record.name, record.namespace, values)
    changed = _write_upgrade(record, values, config)
    if version == record.kubernetes_version and not changed:
        output.info(f"virtual cluster {record.name!r}: nothing changed")
    else:
        _apply_upgrade(record, version, changed)
    if args.output == "json":
        output.json(_row(record, time.time(), kubeconfig.current_context(kubeconfig.load())))
    return 0


def _values_version(values: dict[str, Any]) -> str | None:
    version = _k8s_values(copy.deepcopy(values)).get("version")
    return str(version) if version else None


def _k8s_values(values: dict[str, Any]) -> dict[str, Any]:
    """``controlPlane.distro.k8s`` of ``values``, made where missing or null (a ``null``
    from ``--set`` or a file means "the chart's default", a mapping); any other type is
    the user's mistake."""
    node, path = values, "controlPlane.distro.k8s"
    for key in path.split("."):
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            raise CliError(f"invalid values: {path.split(key)[0]}{key} must be a mapping")
        node = child
    return node


def _check_step(record: VClusterRecord, version: str) -> None:
    step = version_step(record.kubernetes_version, version)
    if step == "downgrade":
        raise CliError(f"virtual cluster {record.name!r} runs Kubernetes "
                       f"{record.kubernetes_version}; {version} would downgrade its control "
                       "plane, which Kubernetes does not support")
    if step == "jump":
        raise CliError(f"virtual cluster {record.name!r} runs Kubernetes "
                       f"{record.kubernetes_version}; {version} is more than one minor "
                       "version newer: Kubernetes upgrades one minor version at a time")
    if record.driver == "local":
        checks.built(_COMPONENTS["local"], version)


def _write_upgrade(record: VClusterRecord, values: dict[str, Any],
                   config: dict[str, Any]) -> bool:
    """Write the new values and syncer config; whether the config differs from the old."""
    directory = record.directory
    old = directory / "syncer.yaml"
    before = yaml.safe_load(old.read_text()) if old.is_file() else None
    (directory / "values.yaml").write_text(yaml.safe_dump(values))
    if record.driver == "local":
        old.write_text(yaml.safe_dump(config))
    return before != config


def _apply_upgrade(record: VClusterRecord, version: str, changed: bool) -> None:
    what = (f"Kubernetes {record.kubernetes_version} -> {version}"
            if version != record.kubernetes_version else "the syncer's new configuration")
    vc = drivers.handle(record)
    try:
        with output.step(f"upgrade {record.name!r}: {what}"), \
                hostnet.inside(hostnet.network_of(record.host_context)):
            vc.upgrade(version, changed)
    except LaunchError as exc:
        raise CliError(f"upgrading virtual cluster {record.name!r} failed: {exc}") from exc
    saved = vc.record()
    record.plane, record.syncer = saved["plane"], saved["syncer"]
    record.kubernetes_version = version
    record.save()
    output.info(f"virtual cluster {record.name!r} upgraded ({what})")


# -- pause / resume ----------------------------------------------------------------


def pause_cmd(args: argparse.Namespace) -> int:
    record = state.require(args.name, args.namespace)
    if record.paused:
        output.info(f"virtual cluster {record.name!r} is already paused")
        return 0
    vc = drivers.handle(record)
    with output.step("stop the syncer and the virtual control plane"):
        vc.kill()  # the syncer first: it must not see the host pods vanish
    connection.proxy(record).stop()  # a Helm cluster's port-forward has nothing to reach
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


def _row(r: VClusterRecord, now: float, current: str | None) -> dict[str, Any]:
    return {
        "name": r.name, "namespace": r.namespace, "status": status(r),
        "kubernetesVersion": r.kubernetes_version, "driver": r.driver,
        "connected": r.context == current, "age": state.format_age(now - r.created),
        "ttl": _ttl(r, now), "hostContext": r.host_context, "context": r.context,
    }


def _found_rows(config: kubeconfig.Config, known: list[VClusterRecord], now: float
                ) -> list[dict[str, Any]]:
    """The virtual clusters the current host shows that no record here knows (installed
    with Helm, or by vcsync on another machine); a warning when it cannot be asked."""
    host = state.host_context(config, required=False)
    if not host or not kubeconfig.has_context(config, host):
        return []
    try:
        found = discovery.on_host(discovery.host_client(host))
    except (BlockingError, CliError) as exc:
        output.info(f"warning: host context {host!r} not asked for virtual clusters "
                    f"made elsewhere: {exc}")
        return []
    mine = {(r.name, r.namespace) for r in known if r.host_context == host}
    return [{"name": f.name, "namespace": f.namespace, "status": _found_status(f, host),
             "kubernetesVersion": f.kubernetes_version, "driver": f.driver,
             "connected": False, "age": state.format_age(now - f.created) if f.created else "-",
             "ttl": "-", "hostContext": host, "context": ""}
            for f in found if (f.name, f.namespace) not in mine]


def _found_status(found: discovery.Found, host: str) -> str:
    """A local-driver cluster this machine began but has no record of (its creation or
    restore was interrupted: records are written last) is not "another machine's"."""
    if found.driver == "local" and VClusterRecord.directory_for(
            found.name, found.namespace, host).is_dir():
        return "Incomplete (an interrupted create or restore here: run it again)"
    return found.status


def list_cmd(args: argparse.Namespace) -> int:
    now = time.time()
    config = kubeconfig.load()
    current = kubeconfig.current_context(config)
    records = VClusterRecord.all()
    rows = [_row(r, now, current) for r in records] + _found_rows(config, records, now)
    if args.output == "json":
        output.json(rows)
        return 0
    header = ["NAME", "NAMESPACE", "STATUS", "KUBERNETES VERSION", "DRIVER", "CONNECTED",
              "AGE", "TTL"]
    keys = ["name", "namespace", "status", "kubernetesVersion", "driver", "connected", "age",
            "ttl"]
    print(output.table(header, [[str(row[k]) for k in keys] for row in rows]))
    return 0

"""``vcsync snapshot create|restore|inspect``: a virtual cluster to one archive and back.

``create`` takes a consistent copy of the store while the cluster runs (it
never pauses the tenant), adds its PKI and values and writes one archive
(:mod:`syncer.snapshot.archive`). ``restore NAME FILE`` makes a new virtual
cluster from it (the same as ``vcsync create NAME --from-snapshot FILE``),
or, after confirmation, replaces an existing one: paused first, store and
PKI swapped, resumed; its syncer then brings the host namespace in line
(orphans deleted, missing copies created, pods re-created by their
controllers). Every archive is verified whole before anything changes.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from syncer.cli import connection, drivers, hostnet, output, staging, state, vclusters
from syncer.cli.chart import HelmRelease
from syncer.cli.errors import CliError
from syncer.cli.state import VClusterRecord
from syncer.kube.blocking import BlockingError
from syncer.local.process import LaunchError
from syncer.snapshot import archive, kine
from syncer.snapshot.archive import Manifest, SnapshotError


def register(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser(
        "snapshot", help="back up a virtual cluster to one archive; restore it",
        description="Snapshots of a virtual cluster's store, certificates, tokens and values.")
    sub = p.add_subparsers(dest="snapshot_command", required=True, metavar="COMMAND")
    create = sub.add_parser("create", help="write a snapshot archive of a running cluster")
    create.add_argument("name", help="the virtual cluster to snapshot")
    create.add_argument("--namespace", "-n", help="its host namespace, if several share NAME")
    create.add_argument("--output", "-o", type=Path, metavar="FILE",
                        help="archive to write (default NAME-<UTC time>.vcsync-snapshot.tgz)")
    create.set_defaults(handler=create_cmd)
    restore = sub.add_parser(
        "restore", help="restore an archive into a new virtual cluster, or replace one",
        description="NAME new: like `vcsync create NAME --from-snapshot FILE`. NAME existing: "
                    "asks first (or --yes), pauses it, replaces its state, resumes it.")
    restore.add_argument("name", help="the virtual cluster to restore into")
    restore.add_argument("file", type=Path, help="a `vcsync snapshot create` archive")
    restore.add_argument("--namespace", "-n", help="host namespace (new: default vcluster-NAME)")
    restore.add_argument("--yes", "-y", action="store_true",
                         help="replace an existing virtual cluster without asking")
    restore.add_argument("--connect", action=argparse.BooleanOptionalAction, default=True,
                         help="switch the kubeconfig to it afterwards (default: yes)")
    restore.add_argument("--kubernetes-version",
                         help="new cluster: default the snapshot's (or the next minor built)")
    restore.set_defaults(handler=restore_cmd)
    inspect = sub.add_parser("inspect", help="verify an archive and show its manifest")
    inspect.add_argument("file", type=Path, help="a `vcsync snapshot create` archive")
    inspect.add_argument("--output", "-o", choices=["table", "json"], default="table",
                         help="output format (default %(default)s)")
    inspect.set_defaults(handler=inspect_cmd)


# -- create ------------------------------------------------------------------------------


def create_cmd(args: argparse.Namespace) -> int:
    record = state.require(args.name, args.namespace)
    _refuse_interrupted(record)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out: Path = args.output or Path(f"{record.name}-{stamp}.vcsync-snapshot.tgz")
    if out.is_dir() or not out.parent.is_dir():
        raise CliError(f"cannot write the snapshot to {out}: no such directory, or a directory")
    started = time.monotonic()
    try:
        manifest = _create_helm(record, out) if record.driver == "helm" else _create_local(
            record, out)
    except (OSError, SnapshotError) as exc:
        raise CliError(f"cannot write the snapshot to {out}: {exc}") from exc
    output.info(f"snapshot of {record.name!r} written to {out}: {manifest.total_objects} "
                f"objects at revision {manifest.revision}, {_size(out.stat().st_size)}, "
                f"{time.monotonic() - started:.1f}s")
    return 0


def _create_local(record: VClusterRecord, out: Path) -> Manifest:
    vc = drivers.local(record)
    if not (vc.pki_directory / "ca.key").is_file():
        output.info("warning: this virtual cluster was created before vcsync kept its CA key; "
                    "a restore keeps its serving certificate, which names only this host "
                    "Service's ClusterIP")
    with tempfile.TemporaryDirectory(prefix=".vcsync-snapshot-", dir=out.parent) as tmp:
        parts = Path(tmp)
        try:
            with output.step("consistent copy of the store (the cluster keeps running)"):
                info = vc.stage_snapshot(parts)
        except kine.StoreError as exc:
            raise CliError(f"cannot snapshot {record.name!r}: {exc}") from exc
        manifest = Manifest(
            kubernetes_version=record.kubernetes_version, store_type=kine.STORE_TYPE,
            store_file=kine.STORE_FILE, revision=info.revision, objects=info.objects,
            source=_source(record), vcsync_version=importlib.metadata.version("vcsync"))
        with output.step(f"write and checksum {out}"):
            return archive.write(parts, manifest, out)


def _create_helm(record: VClusterRecord, out: Path) -> Manifest:
    """The archive the control-plane pod streams out, verified here, with the values of the
    release added (the pod has only the rendered config)."""
    release = HelmRelease(record.name, record.namespace, record.directory)
    with tempfile.TemporaryDirectory(prefix=".vcsync-snapshot-", dir=out.parent) as tmp:
        received, parts = Path(tmp) / "pod.tgz", Path(tmp) / "parts"
        with output.step(f"snapshot in pod {record.name}-0, through kubectl port-forward"):
            release.fetch_snapshot(received)
        try:
            manifest = archive.read(received, parts)
        except SnapshotError as exc:
            raise CliError(f"the archive from pod {record.name}-0 is unusable: {exc}") from exc
        shutil.copyfile(release.values_file, parts / "config" / "values.yaml")
        manifest.source = _source(record)
        with output.step(f"write and checksum {out}"):
            return archive.write(parts, manifest, out)


def _source(record: VClusterRecord) -> dict[str, str]:
    return {"name": record.name, "namespace": record.namespace,
            "hostContext": record.host_context, "driver": record.driver}



def _size(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB" if n >= 1 << 20 else f"{n / 1024:.1f} KiB"


def _refuse_interrupted(record: VClusterRecord) -> None:
    journal = staging.interrupted(record.directory)
    if journal is not None:
        raise CliError(f"a restore of {journal.get('archive')} into {record.name!r} was "
                       f"interrupted; finish it with `vcsync snapshot restore {record.name} "
                       f"{journal.get('archive')} --yes`")


# -- restore -----------------------------------------------------------------------------


def restore_cmd(args: argparse.Namespace) -> int:
    record = state.find(args.name, args.namespace)
    if record is None:
        return vclusters.create_cmd(vclusters.create_args(
            args.name, namespace=args.namespace, kubernetes_version=args.kubernetes_version,
            driver="local", connect=args.connect, from_snapshot=str(args.file)))
    if args.kubernetes_version and args.kubernetes_version != record.kubernetes_version:
        raise CliError(f"virtual cluster {record.name!r} runs Kubernetes "
                       f"{record.kubernetes_version}; --kubernetes-version applies to a new one")
    if record.driver != "local":
        raise CliError(f"virtual cluster {record.name!r} was installed with the Helm driver; "
                       "restoring into it is not supported yet")
    staged = staging.stage(args.file, record.directory)
    staging.check_restorable(staged, record.kubernetes_version)
    _confirm(record, staged, args.yes)
    _replace(record, staged)
    if args.connect:
        connection.switch_to(record)
    else:
        connection.refresh(record)
    return 0


def _confirm(record: VClusterRecord, staged: staging.Staged, yes: bool) -> None:
    what = (f"replace every object, certificate and token of virtual cluster {record.name!r} "
            f"with those of {staged.archive} ({staged.manifest.total_objects} objects, taken "
            f"{staged.manifest.created}); it is paused meanwhile")
    if yes:
        return
    if not sys.stdin.isatty():
        staging.discard(record.directory)
        raise CliError(f"this would {what}: confirm with --yes")
    answer = input(f"This will {what}. Continue? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        staging.discard(record.directory)
        raise CliError("restore cancelled; nothing was changed")


def _replace(record: VClusterRecord, staged: staging.Staged) -> None:
    """Pause, swap store, PKI and values, resume; journaled, so a rerun completes it."""
    vc = drivers.local(record)
    values = staged.values()
    rendered = vclusters.render(record.name, record.namespace, values)
    staging.begin(record.directory, staged, f"replace {record.name}")
    output.info(f"restoring {staged.archive} into virtual cluster {record.name!r}")
    try:
        with output.step("pause: stop the syncer and the control plane, delete the host pods"):
            vc.kill()
            vc.delete_host_pods()
            record.paused = True
            record.save()
        with output.step("replace the store, certificates, tokens and values"):
            vc.install_snapshot(staged.store, staged.pki)
            (record.directory / "values.yaml").write_text(yaml.safe_dump(values))
            (record.directory / "syncer.yaml").write_text(yaml.safe_dump(rendered))
            vc.adopt_restored_pki()
        with output.step("resume: control plane and syncer, until its caches are synced"), \
                hostnet.inside(hostnet.network_of(record.host_context)):
            vc.resume()
    except (LaunchError, BlockingError, OSError) as exc:
        raise CliError(f"restoring into {record.name!r} failed ({exc}); run the same "
                       "command again to finish it") from exc
    saved = vc.record()  # the new pids
    record.plane, record.syncer, record.paused = saved["plane"], saved["syncer"], False
    record.save()
    staging.finish(record.directory)
    output.info(f"virtual cluster {record.name!r} restored to revision "
                f"{staged.manifest.revision}; its syncer brings the host namespace in line")


# -- inspect ------------------------------------------------------------------------------


def inspect_cmd(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="vcsync-inspect-") as tmp:
        try:
            manifest = archive.read(args.file, Path(tmp))
        except SnapshotError as exc:
            raise CliError(str(exc)) from exc
    if args.output == "json":
        print(manifest.to_json().decode())
        return 0
    rows = [["format", str(manifest.format)], ["created", manifest.created],
            ["source", f"{manifest.source.get('name')} in {manifest.source.get('namespace')}"],
            ["kubernetes", manifest.kubernetes_version], ["store", manifest.store_type],
            ["revision", str(manifest.revision)], ["objects", str(manifest.total_objects)],
            ["files", str(len(manifest.files))]]
    print(output.table(["FIELD", "VALUE"], rows))
    return 0


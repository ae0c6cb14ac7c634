"""A snapshot archive verified and unpacked next to the virtual cluster it will become.

Why a staging directory inside the cluster's own state directory: the
archive is checked whole (format, checksums, versions) before anything of
the target changes, and its files then move into place with ``rename`` on
the same filesystem. Why a journal (``restore.json``): a restore killed
half-way leaves a target that is neither the old cluster nor the snapshot;
the journal says so (``vcsync list``, ``resume``), and running the same
restore again completes it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from syncer.cli.errors import CliError
from syncer.snapshot import archive, kine
from syncer.snapshot.archive import Manifest, SnapshotError

JOURNAL = "restore.json"
STAGING = ".restore-staging"


@dataclass(frozen=True)
class Staged:
    """A verified archive unpacked in ``directory``."""

    manifest: Manifest
    directory: Path
    archive: Path

    @property
    def store(self) -> Path:
        return self.directory / self.manifest.store_file

    @property
    def pki(self) -> Path:
        return self.directory / "pki"

    def values(self) -> dict[str, Any]:
        """The values the snapshotted cluster was created with."""
        file = self.directory / "config" / "values.yaml"
        loaded = yaml.safe_load(file.read_text()) if file.is_file() else None
        return loaded if isinstance(loaded, dict) else {}


def stage(file: Path, cluster_directory: Path) -> Staged:
    """Verify ``file`` whole and unpack it under ``cluster_directory``; nothing else changes."""
    directory = cluster_directory / STAGING
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    try:
        manifest = archive.read(file, directory)
    except SnapshotError as exc:
        shutil.rmtree(directory, ignore_errors=True)
        raise CliError(f"cannot restore {file}: {exc}") from exc
    return Staged(manifest, directory, file)


def check_restorable(staged: Staged, kubernetes_version: str) -> None:
    """The local driver runs kine on SQLite: other stores, and versions Kubernetes cannot
    upgrade from, are refused (the staged files are removed)."""
    manifest = staged.manifest
    try:
        if manifest.store_type != kine.STORE_TYPE:
            raise SnapshotError(f"its store is {manifest.store_type!r}; a local virtual "
                                f"cluster runs kine on SQLite ({kine.STORE_TYPE!r})")
        archive.check_kubernetes(manifest.kubernetes_version, kubernetes_version)
    except SnapshotError as exc:
        discard(staged.directory.parent)
        raise CliError(f"cannot restore {staged.archive}: {exc}") from exc


def discard(cluster_directory: Path) -> None:
    shutil.rmtree(cluster_directory / STAGING, ignore_errors=True)


def begin(cluster_directory: Path, staged: Staged, what: str) -> None:
    """Write the journal: from here on the target is being changed."""
    data = {"archive": str(staged.archive.resolve()), "what": what,
            "revision": staged.manifest.revision}
    (cluster_directory / JOURNAL).write_bytes(orjson.dumps(data))


def finish(cluster_directory: Path) -> None:
    (cluster_directory / JOURNAL).unlink(missing_ok=True)
    discard(cluster_directory)


def interrupted(cluster_directory: Path) -> dict[str, Any] | None:
    """The journal of a restore that did not finish, or None."""
    file = cluster_directory / JOURNAL
    if not file.is_file():
        return None
    try:
        found: dict[str, Any] = orjson.loads(file.read_bytes())
    except orjson.JSONDecodeError:
        found = {"archive": "(unreadable journal)", "what": "restore"}
    return found

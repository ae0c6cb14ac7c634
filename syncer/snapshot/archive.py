"""The snapshot archive: a gzipped tar with a manifest, verified before anything uses it.

Layout (member order is part of the format)::

    manifest.json          what the archive holds (see :class:`Manifest`)
    manifest.sha256        hex SHA-256 of manifest.json
    store/...              the store copy (``store/state.db`` for kine/SQLite)
    pki/...                CA, keys and token file of the control plane
    config/...             the values (``values.yaml``) and rendered syncer config

Why the manifest comes first and lists every other member with its SHA-256 and
size: a reader checks the format version before it extracts anything, and
refuses a truncated archive (a listed member missing or short), an edited one
(a digest differs, or the manifest differs from its own digest) and any
member the manifest does not name, before a single file of a cluster is
touched. The digests catch corruption and careless edits, not a forger who
rewrites the manifest too: an archive holds the cluster's CA key and every
Secret, so it must be kept where only its owners can write it anyway.
"""

from __future__ import annotations

import contextlib
import datetime
import gzip
import hashlib
import io
import os
import re
import shutil
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import orjson

FORMAT = 1
"""Bumped on any change a reader of the previous format would misread."""
OLDEST_READABLE = 1
MANIFEST = "manifest.json"
MANIFEST_DIGEST = "manifest.sha256"
_SECTIONS = ("store", "pki", "config")
_CHUNK = 1 << 20
_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


class SnapshotError(Exception):
    """An archive that cannot be written, read or restored; the message says why."""


@dataclass
class Manifest:
    """What one archive holds; serialised as ``manifest.json``."""

    kubernetes_version: str
    store_type: str
    """``kine-sqlite`` (kine on SQLite) or ``etcd`` (an etcd snapshot file)."""
    store_file: str
    revision: int
    """The store's revision at the snapshot: every object is as it was at this revision."""
    objects: dict[str, int]
    """Live objects per storage prefix (``pods``, ``apps.example.com/widgets``, ...)."""
    source: dict[str, str]
    """name, namespace, host context and driver of the cluster it was taken from."""
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    """member -> {"sha256": hex, "size": bytes}, for every member but the manifest."""
    format: int = FORMAT
    vcsync_version: str = ""
    created: str = ""

    @property
    def total_objects(self) -> int:
        return sum(self.objects.values())

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        try:
            raw = orjson.loads(data)
            fmt = int(raw["format"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise SnapshotError(f"not a vcsync snapshot: unreadable manifest ({exc})") from exc
        check_format(fmt)
        try:
            return cls(**raw)
        except TypeError as exc:
            raise SnapshotError(f"not a vcsync snapshot: manifest fields wrong ({exc})") from exc


def check_format(fmt: int) -> None:
    """Refuse formats this vcsync cannot read, saying which side is too old."""
    if fmt > FORMAT:
        raise SnapshotError(f"the snapshot has format {fmt}, written by a newer vcsync; this "
                            f"vcsync reads formats {OLDEST_READABLE} to {FORMAT}: upgrade vcsync")
    if fmt < OLDEST_READABLE:
        raise SnapshotError(f"the snapshot has format {fmt}, written by an older vcsync that "
                            f"this one no longer reads (formats {OLDEST_READABLE} to {FORMAT}); "
                            "restore it with that older vcsync")


def minor(version: str) -> tuple[int, int]:
    match = _VERSION.fullmatch(version.strip())
    if match is None:
        raise SnapshotError(f"unrecognised Kubernetes version {version!r} in the snapshot")
    return int(match[1]), int(match[2])


def version_step(have: str, want: str) -> str:
    """What serving a store of Kubernetes ``have`` with ``want`` is, by Kubernetes' skew
    rules: ``ok`` (the same minor, or the next one), ``downgrade`` (an older minor: the
    store cannot go back) or ``jump`` (more than one minor newer: upgrade one at a time)."""
    old, new = minor(have), minor(want)
    if new < old:
        return "downgrade"
    if new[0] != old[0] or new[1] > old[1] + 1:
        return "jump"
    return "ok"


def check_kubernetes(snapshot: str, target: str) -> None:
    """A store written by Kubernetes ``snapshot`` may be served by ``target``: the same
    minor, or the next one (an upgrade, as kube-apiserver supports); never older."""
    step = version_step(snapshot, target)
    if step == "downgrade":
        raise SnapshotError(f"the snapshot was taken with Kubernetes {snapshot}; restoring it "
                            f"into {target} would downgrade its store, which Kubernetes does "
                            f"not support: restore it into {snapshot}")
    if step == "jump":
        raise SnapshotError(f"the snapshot was taken with Kubernetes {snapshot}; {target} is "
                            "more than one minor version newer (Kubernetes upgrades one minor "
                            "at a time): restore it into the next minor first")


def restorable_versions(snapshot: str, available: tuple[str, ...]) -> list[str]:
    """Those of ``available`` that may serve a store written by ``snapshot``, oldest first."""
    fits = []
    for version in available:
        with contextlib.suppress(SnapshotError):
            check_kubernetes(snapshot, version)
            fits.append(version)
    return sorted(fits, key=minor)


# -- writing ----------------------------------------------------------------------------


def _digest(path: Path) -> dict[str, Any]:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha.update(chunk)
    return {"sha256": sha.hexdigest(), "size": path.stat().st_size}


def _members(staging: Path) -> Iterator[tuple[str, Path]]:
    for section in _SECTIONS:
        for path in sorted((staging / section).rglob("*")):
            if path.is_file():
                yield path.relative_to(staging).as_posix(), path


def write(staging: Path, manifest: Manifest, out: Path, level: int = 6) -> Manifest:
    """Archive ``staging/{store,pki,config}`` with ``manifest`` (its ``files`` filled in)
    to ``out``: written beside it first and renamed, so ``out`` is never half an archive."""
    manifest.files = {name: _digest(path) for name, path in _members(staging)}
    if manifest.store_file not in manifest.files:
        raise SnapshotError(f"the store copy {manifest.store_file} is missing")
    manifest.format = FORMAT
    manifest.created = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    body = manifest.to_json()
    tmp = out.with_name(f".{out.name}.partial")
    try:
        with _private(tmp) as raw, gzip.GzipFile(fileobj=raw, mode="wb",
                                                  compresslevel=level) as gz:
            stream(gz, staging, manifest, body)
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return manifest


def stream(out: io.BufferedIOBase, staging: Path, manifest: Manifest, body: bytes) -> None:
    """Write the uncompressed tar of an archive to ``out`` (the syncer's endpoint streams
    it through gzip straight to the client)."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, MANIFEST, body)
        _add_bytes(tar, MANIFEST_DIGEST, hashlib.sha256(body).hexdigest().encode())
        for name in manifest.files:
            info = tarfile.TarInfo(name)
            path = staging / name
            info.size, info.mode = path.stat().st_size, 0o600
            with path.open("rb") as handle:
                tar.addfile(info, handle)


@contextlib.contextmanager
def _private(path: Path) -> Iterator[IO[bytes]]:
    """A new file only its owner can read: it holds keys and Secrets."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        yield handle


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o600
    tar.addfile(info, io.BytesIO(data))


# -- reading ----------------------------------------------------------------------------


def read(archive: Path, into: Path) -> Manifest:
    """Verify ``archive`` whole and extract it into the empty directory ``into``.

    Raises :class:`SnapshotError` for anything but a complete, unmodified
    archive of a readable format; ``into`` then holds nothing to be used.
    """
    try:
        with archive.open("rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as gz, \
                tarfile.open(fileobj=gz, mode="r|") as tar:
            manifest = _verified(tar, into)
            while gz.read(_CHUNK):  # to the end: gzip checks its length and CRC there
                pass
            return manifest
    except FileNotFoundError as exc:
        raise SnapshotError(f"no snapshot file {archive}") from exc
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
        raise SnapshotError(f"{archive} is truncated or not a vcsync snapshot ({exc})") from exc


def read_manifest(archive: Path) -> Manifest:
    """The manifest alone (checked against its digest), without reading the members."""
    try:
        with archive.open("rb") as raw, tarfile.open(fileobj=raw, mode="r|gz") as tar:
            return _manifest(tar)
    except FileNotFoundError as exc:
        raise SnapshotError(f"no snapshot file {archive}") from exc
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
        raise SnapshotError(f"{archive} is truncated or not a vcsync snapshot ({exc})") from exc


def _next_file(tar: tarfile.TarFile, expected: str) -> IO[bytes]:
    member = tar.next()
    if member is None or member.name != expected or not member.isfile():
        found = "nothing" if member is None else repr(member.name)
        raise SnapshotError(f"not a vcsync snapshot: expected {expected} here, found {found}")
    handle = tar.extractfile(member)
    if handle is None:
        raise SnapshotError(f"not a vcsync snapshot: {expected} is not a file")
    return handle


def _manifest(tar: tarfile.TarFile) -> Manifest:
    body = _next_file(tar, MANIFEST).read()
    digest = _next_file(tar, MANIFEST_DIGEST).read().decode(errors="replace").strip()
    manifest = Manifest.from_json(body)  # the format check first: its message is clearer
    if hashlib.sha256(body).hexdigest() != digest:
        raise SnapshotError("the snapshot's manifest does not match its checksum: the archive "
                            "was modified")
    return manifest


def _verified(tar: tarfile.TarFile, into: Path) -> Manifest:
    manifest = _manifest(tar)
    seen: set[str] = set()
    while (member := tar.next()) is not None:  # iterating would start over
        name = _safe_name(member, manifest, seen)
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        handle = tar.extractfile(member)
        if handle is None:
            raise SnapshotError(f"not a vcsync snapshot: {name} is not a file")
        got = _copy_digest(handle, target)
        want = manifest.files[name]
        if got != want:
            raise SnapshotError(f"{name} does not match its checksum in the manifest "
                                f"(sha256 {got['sha256'][:12]}..., {got['size']} bytes; "
                                f"expected {want['sha256'][:12]}..., {want['size']} bytes): "
                                "the archive is corrupt or was modified")
        seen.add(name)
    missing = sorted(set(manifest.files) - seen)
    if missing:
        raise SnapshotError(f"the snapshot is truncated: {', '.join(missing[:5])} missing")
    return manifest


def _safe_name(member: tarfile.TarInfo, manifest: Manifest, seen: set[str]) -> str:
    """A member's name, if it is one the manifest lists, not yet seen, and a plain file."""
    name = member.name
    path = PurePosixPath(name)
    if (name not in manifest.files or name in seen or not member.isfile()
            or path.is_absolute() or ".." in path.parts):
        raise SnapshotError(f"the snapshot holds {name!r}, which its manifest does not list "
                            "(or twice): the archive was modified")
    return name


def _copy_digest(handle: IO[bytes], target: Path) -> dict[str, Any]:
    sha = hashlib.sha256()
    size = 0
    with _private(target) as out:
        while chunk := handle.read(_CHUNK):
            sha.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return {"sha256": sha.hexdigest(), "size": size}


def copy_tree(source: Path, target: Path) -> None:
    """Copy the files of a directory of small private files (a PKI; a mounted Secret's
    files are links into its ``..data`` directory, which is skipped)."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir()):
        if path.is_file() and not path.name.startswith(".."):
            shutil.copyfile(path, target / path.name)
            (target / path.name).chmod(0o600)

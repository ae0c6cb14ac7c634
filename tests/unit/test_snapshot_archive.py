"""The snapshot archive and the kine store copy, without a cluster.

What must hold before any restore changes anything: a complete, unmodified
archive of a readable format reads back byte for byte; every truncation,
edit, extra member and unreadable format is refused with a message saying
which; the Kubernetes version rules follow kube-apiserver's upgrade rules;
and the SQLite copy is one revision of the store even while it is written.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import orjson
import pytest

from syncer.snapshot import archive, kine
from syncer.snapshot.archive import Manifest, SnapshotError
from tests import archives
from tests.support import eventually

_SCHEMA = """CREATE TABLE kine (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, created INTEGER,
             deleted INTEGER, create_revision INTEGER, prev_revision INTEGER, lease INTEGER,
             value BLOB, old_value BLOB)"""


def _kine_db(path: Path, rows: list[tuple[str, int]]) -> Path:
    """A kine-shaped SQLite file in WAL mode with (name, deleted) rows in revision order."""
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(_SCHEMA)
        db.executemany("INSERT INTO kine (name, deleted, value) VALUES (?, ?, x'00')", rows)
        db.commit()
    return path


def _staged(tmp: Path) -> tuple[Path, Manifest]:
    staging = tmp / "staging"
    info = kine.backup(_kine_db(tmp / "source.db", [("/registry/pods/a/p", 0)]),
                       staging / kine.STORE_FILE)
    (staging / "pki").mkdir()
    (staging / "pki" / "ca.crt").write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    (staging / "config").mkdir()
    (staging / "config" / "values.yaml").write_text("sync: {}\n")
    manifest = Manifest(kubernetes_version="v1.36.3", store_type=kine.STORE_TYPE,
                        store_file=kine.STORE_FILE, revision=info.revision,
                        objects=info.objects, source={"name": "vc"})
    return staging, manifest


@pytest.fixture
def good(tmp_path: Path) -> Path:
    staging, manifest = _staged(tmp_path)
    archive.write(staging, manifest, tmp_path / "good.tgz")
    return tmp_path / "good.tgz"


def _refused(file: Path, tmp: Path, *words: str) -> str:
    into = tmp / "into"
    into.mkdir(exist_ok=True)
    with pytest.raises(SnapshotError) as caught:
        archive.read(file, into)
    message = str(caught.value)
    assert all(w in message for w in words), message
    return message


def test_a_complete_archive_reads_back_byte_for_byte(good: Path, tmp_path: Path) -> None:
    into = tmp_path / "into"
    into.mkdir()
    manifest = archive.read(good, into)
    staging = tmp_path / "staging"
    assert set(manifest.files) == {"store/state.db", "pki/ca.crt", "config/values.yaml"}
    for name in manifest.files:
        assert (into / name).read_bytes() == (staging / name).read_bytes(), name
        assert (into / name).stat().st_mode & 0o077 == 0, f"{name} readable by others"
    assert good.stat().st_mode & 0o077 == 0
    assert (manifest.revision, manifest.objects) == (1, {"pods": 1})
    assert archive.read_manifest(good) == manifest


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.999])
def test_a_truncated_archive_is_refused(good: Path, tmp_path: Path, keep: float) -> None:
    data = good.read_bytes()
    cut = tmp_path / "cut.tgz"
    cut.write_bytes(data[:int(len(data) * keep)])
    _refused(cut, tmp_path, "truncated")


def test_a_missing_member_is_refused(good: Path, tmp_path: Path) -> None:
    members = [(n, d) for n, d in archives.members(good) if n != "pki/ca.crt"]
    _refused(archives.repack(members, tmp_path / "short.tgz"), tmp_path, "truncated", "pki/ca.crt")


def test_an_edited_member_is_refused(good: Path, tmp_path: Path) -> None:
    members = [(n, d.replace(b"sync", b"sunc") if n == "config/values.yaml" else d)
               for n, d in archives.members(good)]
    _refused(archives.repack(members, tmp_path / "edited.tgz"), tmp_path, "config/values.yaml",
             "checksum")


def test_an_edited_manifest_is_refused(good: Path, tmp_path: Path) -> None:
    members = [(n, d.replace(b"v1.36.3", b"v1.35.4") if n == archive.MANIFEST else d)
               for n, d in archives.members(good)]
    _refused(archives.repack(members, tmp_path / "edited.tgz"), tmp_path, "manifest", "checksum")


def test_an_unlisted_member_is_refused(good: Path, tmp_path: Path) -> None:
    members = [*archives.members(good), ("pki/extra.key", b"x")]
    _refused(archives.repack(members, tmp_path / "extra.tgz"), tmp_path, "pki/extra.key")


def test_a_member_outside_the_archive_is_refused_even_if_listed(good: Path,
                                                                 tmp_path: Path) -> None:
    members = archives.members(good)
    files = orjson.loads(dict(members)[archive.MANIFEST])["files"]
    files["../escape"] = {"sha256": "0" * 64, "size": 1}
    bad = [*archives.remanifested(members, files=files), ("../escape", b"x")]
    _refused(archives.repack(bad, tmp_path / "escape.tgz"), tmp_path, "../escape")
    assert not (tmp_path / "escape").exists()


def test_a_file_that_is_no_archive_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tgz"
    junk.write_bytes(b"not a snapshot at all")
    _refused(junk, tmp_path, "not a vcsync snapshot")
    plain = archives.repack([("hello.txt", b"hi")], tmp_path / "plain.tgz")
    _refused(plain, tmp_path, "not a vcsync snapshot", "manifest.json")
    _refused(tmp_path / "absent.tgz", tmp_path, "no snapshot file")


def test_formats_newer_and_older_are_refused_saying_which(good: Path, tmp_path: Path) -> None:
    items = archives.members(good)
    newer = archives.repack(archives.remanifested(items, format=archive.FORMAT + 1, extra="x"),
                            tmp_path / "newer.tgz")
    _refused(newer, tmp_path, "newer vcsync", "upgrade vcsync")
    older = archives.repack(archives.remanifested(items, format=archive.OLDEST_READABLE - 1),
                            tmp_path / "older.tgz")
    _refused(older, tmp_path, "older vcsync", "no longer reads")


@pytest.mark.parametrize(("snapshot", "target"), [
    ("v1.36.3", "v1.36.3"), ("v1.36.3", "v1.36.0"), ("v1.35.4", "v1.36.3")])
def test_same_or_next_minor_may_serve_the_store(snapshot: str, target: str) -> None:
    archive.check_kubernetes(snapshot, target)


@pytest.mark.parametrize(("snapshot", "target", "words"), [
    ("v1.36.3", "v1.35.4", "downgrade"),
    ("v1.34.1", "v1.36.3", "more than one minor"),
    ("v2.0.0", "v1.36.3", "downgrade"),
    ("1.x", "v1.36.3", "unrecognised"),
])
def test_other_versions_are_refused(snapshot: str, target: str, words: str) -> None:
    with pytest.raises(SnapshotError, match=words):
        archive.check_kubernetes(snapshot, target)


def test_restorable_versions_lists_what_may_serve_a_store() -> None:
    built = ("v1.36.3", "v1.35.4")
    assert archive.restorable_versions("v1.35.1", built) == ["v1.35.4", "v1.36.3"]
    assert archive.restorable_versions("v1.36.0", built) == ["v1.36.3"]
    assert archive.restorable_versions("v1.37.0", built) == []


def test_live_objects_are_the_keys_whose_newest_row_is_no_tombstone(tmp_path: Path) -> None:
    rows = [("compact_rev_key", 0), ("/registry/pods/a/p1", 0), ("/registry/pods/a/p2", 0),
            ("/registry/pods/a/p1", 1), ("/registry/services/specs/a/s", 0),
            ("/registry/services/endpoints/a/s", 0), ("/registry/pods/a/p1", 0),
            ("/registry/apps.example.com/widgets/a/w", 0), ("/registry/configmaps/a/c", 0),
            ("/registry/configmaps/a/c", 1)]
    info = kine.describe(_kine_db(tmp_path / "k.db", rows))
    assert info.revision == len(rows)
    assert info.objects == {"apps.example.com/widgets": 1, "pods": 2, "services": 2}


def test_a_file_that_is_no_kine_store_is_refused(tmp_path: Path) -> None:
    with pytest.raises(kine.StoreError, match="no kine database"):
        kine.backup(tmp_path / "absent.db", tmp_path / "copy.db")
    other = tmp_path / "other.db"
    with closing(sqlite3.connect(other)) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(kine.StoreError, match="not a kine database"):
        kine.backup(other, tmp_path / "copy.db")


def test_the_copy_is_one_revision_while_a_writer_keeps_writing(tmp_path: Path) -> None:
    """Every row up to the copy's revision is in it, none after: one read transaction.

    The writer commits one row per transaction, as kine does, from another
    connection; it is never blocked for the busy timeout (WAL readers do not
    block writers), and the copies are taken while it runs.
    """
    source = _kine_db(tmp_path / "live.db", [("/registry/pods/a/p0", 0)])
    stop = threading.Event()
    written: list[int] = []

    def write() -> None:
        with closing(sqlite3.connect(source, timeout=0.5)) as db:
            n = 1
            while not stop.is_set():
                db.execute("INSERT INTO kine (name, deleted, value) VALUES (?, 0, ?)",
                           (f"/registry/configmaps/a/c{n}", b"v" * 512))
                db.commit()
                written.append(n)
                n += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        eventually(lambda: len(written) > 10, "the writer to commit its first rows", 10)
        revisions = []
        for i in range(5):
            copy = tmp_path / f"copy{i}.db"
            info = kine.backup(source, copy)
            with closing(sqlite3.connect(copy)) as db:
                ids = [row[0] for row in db.execute("SELECT id FROM kine ORDER BY id")]
            assert ids == list(range(1, info.revision + 1))
            assert info.objects == {"pods": 1, "configmaps": info.revision - 1}
            revisions.append(info.revision)
    finally:
        stop.set()
        writer.join()
    assert len(written) > revisions[-1], "the writer made no progress while copies were taken"
    assert revisions == sorted(revisions)
